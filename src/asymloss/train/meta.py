"""Meta-learned loss hyperparameters: the bilevel update of docs/meta.md.

A small *meta set* of training images with trusted (clean) labels is held out of the training
set. Every ``meta_every`` steps, before the real step on the noisy batch ``(x, ỹ)``:

1. a *virtual* SGD step ``θ̂(Λ) = θ − η_t · d(∇_θ L_Λ(f(x; θ), ỹ))`` (``d``: the run's own SGD
   update, momentum, Nesterov and weight decay included, without gradient clipping), kept
   differentiable in the hyperparameters Λ (``create_graph=True``; ``torch.func.functional_call``
   evaluates the model at θ̂ without touching it, on copies of its buffers);
2. the meta loss: the cross-entropy of the virtually updated model on a meta batch
   ``(x^m, y^m)``;
3. one optimiser step (Adam by default, or SGD) on the *unconstrained* parameters ``u`` of the
   hyperparameters, ``Λ = c(u)`` (second-order: the gradient flows through step 1);
4. the real step then uses the updated Λ (plain Python floats on the loss module, so the real step
   is the engine's usual one).

Valid ranges hold by construction: each hyperparameter's range is read from its loss's declaration
(``Real(default, gt=..., le=...)``; docs/adding-a-loss.md) and mapped by the kind of range, never by
the loss's name (:data:`TRANSFORMS`): ``lo < Λ < hi`` (or closed) →
``lo + (hi − lo)·sigmoid(u)``; ``Λ > lo`` → ``lo + softplus(u)``; ``Λ < hi`` → ``hi − softplus(u)``.
So GCE's ``q ∈ (0, 1]`` is ``sigmoid(u)``, AUL's ``a > 1`` is ``1 + softplus(u)``, AGCE's
``a, q > 0`` and a combination's ``alpha, beta ≥ 0`` are ``softplus(u)``.

A hyperparameter can be learned when its loss computes it with differentiable torch operations
(checked on a small batch when the learner is built: the mixed derivative ∂²L/∂z∂Λ must exist
and be finite). Numerical safeguards (:data:`NUMERICAL_HPARAMS`) are not learned unless named.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MetaLearner", "Constraint", "LearnedHparam", "TRANSFORMS", "NUMERICAL_HPARAMS",
           "learnable_hparams", "select_meta_set", "swapped_hparams", "meta_objective", "meta_trajectory",
           "check_meta_loss", "check_meta_data"]

#: Hyperparameters that are numerical safeguards rather than modelling choices (probability clamps,
#: RCE's log-of-zero constant): learned only when named in ``meta_params``.
NUMERICAL_HPARAMS = ("eps", "A", "min_prob")
#: An open bound is kept at this distance (relative to max(1, |bound|)): softplus and sigmoid
#: reach their limits in floating point.
MARGIN = 1e-9


def _softplus_inv(v: float) -> float:
    return v + math.log(-math.expm1(-v)) if v < 30 else v


#: The map from the unconstrained parameter u to the hyperparameter, by kind of range:
#: ``(forward(u, lo, hi), inverse(value, lo, hi), name)``.
TRANSFORMS: dict[str, tuple[Callable, Callable, str]] = {
    "interval": (lambda u, lo, hi: lo + (hi - lo) * torch.sigmoid(u),
                 lambda v, lo, hi: math.log((v - lo) / (hi - v)), "lo + (hi - lo)·sigmoid(u)"),
    "lower": (lambda u, lo, hi: lo + F.softplus(u), lambda v, lo, hi: _softplus_inv(v - lo), "lo + softplus(u)"),
    "upper": (lambda u, lo, hi: hi - F.softplus(u), lambda v, lo, hi: _softplus_inv(hi - v), "hi − softplus(u)"),
    "real": (lambda u, lo, hi: u, lambda v, lo, hi: v, "u"),
}


@dataclass(frozen=True)
class Constraint:
    """A hyperparameter's valid range as its loss declares it (``None``: unbounded on that side)."""

    lo: Optional[float] = None
    lo_open: bool = True
    hi: Optional[float] = None
    hi_open: bool = True

    @property
    def kind(self) -> str:
        """The key of :data:`TRANSFORMS`."""
        if self.lo is not None and self.hi is not None:
            return "interval"
        return "lower" if self.lo is not None else "upper" if self.hi is not None else "real"

    def describe(self) -> str:
        if self.kind == "interval":
            return f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.kind == "lower":
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.kind == "upper":
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return "any real"

    def _inner(self) -> tuple[Optional[float], Optional[float]]:
        """The bounds moved inside by :data:`MARGIN` where they are open."""
        lo = None if self.lo is None else self.lo + (MARGIN * max(1.0, abs(self.lo)) if self.lo_open else 0.0)
        hi = None if self.hi is None else self.hi - (MARGIN * max(1.0, abs(self.hi)) if self.hi_open else 0.0)
        return lo, hi

    def value(self, u: torch.Tensor) -> torch.Tensor:
        """The hyperparameter for the unconstrained ``u`` (differentiable; inside the range)."""
        v = TRANSFORMS[self.kind][0](u, self.lo, self.hi)
        lo, hi = self._inner()
        if (lo is not None and lo != self.lo) or (hi is not None and hi != self.hi):
            v = v.clamp(min=lo if self.lo_open else None, max=hi if self.hi_open else None)
        return v

    def raw(self, value: float) -> float:
        """The unconstrained parameter of ``value`` (a value on or past a bound starts just inside)."""
        span = None if self.kind != "interval" else self.hi - self.lo
        lo = None if self.lo is None else self.lo + MARGIN * (span if span is not None else max(1.0, abs(self.lo)))
        hi = None if self.hi is None else self.hi - MARGIN * (span if span is not None else max(1.0, abs(self.hi)))
        v = float(value)
        if lo is not None:
            v = max(v, lo)
        if hi is not None:
            v = min(v, hi)
        return TRANSFORMS[self.kind][1](v, self.lo, self.hi)


# -- which hyperparameters, and their declared ranges ----------------------------------------------

class _Probe(float):
    """A float that records the bounds a validator compares it with (``check_number``'s gt/ge/lt/le)."""

    def __new__(cls, value):
        self = super().__new__(cls, value)
        self.seen = []
        return self

    def _cmp(self, op, other):
        self.seen.append((op, float(other)))
        return getattr(float(self), f"__{op}__")(other)

    def __gt__(self, other):
        return self._cmp("gt", other)

    def __ge__(self, other):
        return self._cmp("ge", other)

    def __lt__(self, other):
        return self._cmp("lt", other)

    def __le__(self, other):
        return self._cmp("le", other)

    __hash__ = float.__hash__


def _declared_constraint(owner: nn.Module, attr: str) -> Optional[Constraint]:
    """The range of ``owner``'s hyperparameter ``attr`` as its loss declares it: the bounds of its
    ``Real`` parameter (docs/adding-a-loss.md, 'The declaration'); ``None`` when it is not a real
    number or there is no range to read."""
    definition = getattr(owner, "definition", None)
    if definition is not None and attr in definition.params:
        p = definition.params[attr]
        if not p.continuous:
            return None
        lo, lo_open = (p.gt, True) if p.gt is not None else (p.ge, False)
        hi, hi_open = (p.lt, True) if p.lt is not None else (p.le, False)
        return Constraint(None if lo is None else float(lo), lo_open, None if hi is None else float(hi), hi_open)
    return _probed_constraint(owner, attr)


def _probed_constraint(owner: nn.Module, attr: str) -> Optional[Constraint]:
    """For a hand-written loss class without a declaration (an ad-hoc ``ActivePassive``): build it
    again with ``attr`` a :class:`_Probe`; the bounds its validation compares the value with are
    its range. ``None`` when the loss cannot be rebuilt so."""
    from ..losses.modules import ActivePassive

    probe = _Probe(getattr(owner, attr))
    try:
        if isinstance(owner, ActivePassive) and attr in ("alpha", "beta"):
            kw = {"alpha": owner.alpha, "beta": owner.beta, attr: probe}
            ActivePassive(owner.active, owner.passive, **kw)
        else:
            kw = {n: getattr(owner, n) for n in owner.hparam_names}
            kw[attr] = probe
            type(owner)(**kw)
    except (TypeError, ValueError, KeyError):
        return None
    lo = hi = None
    lo_open = hi_open = True
    for op, b in probe.seen:
        if op in ("gt", "ge") and (lo is None or b > lo or (b == lo and op == "gt")):
            lo, lo_open = b, op == "gt"
        if op in ("lt", "le") and (hi is None or b < hi or (b == hi and op == "lt")):
            hi, hi_open = b, op == "lt"
    return Constraint(lo, lo_open, hi, hi_open)


def _resolve(module: nn.Module, key: str):
    """``(owner, attribute)`` of the hyperparameter that ``module.hparams()`` calls ``key``, or
    ``None`` when it is not one plain attribute (a value shared by two parts, a property)."""
    from ..losses.modules import ActivePassive, Loss

    if key in getattr(module, "hparam_names", ()):
        attr = getattr(type(module), key, None)
        if key in vars(module) or (isinstance(attr, property) and attr.fset is not None):
            return module, key   # a plain attribute, or a combination's property that sets its part(s)
    if isinstance(module, ActivePassive):
        parts = [("active_", module.active), ("passive_", module.passive)]
    elif isinstance(getattr(module, "loss", None), Loss):   # a wrapper (LogitClip)
        parts = [("", module.loss)]
    else:
        return None
    for prefix, part in parts:
        if prefix and key.startswith(prefix):
            hit = _resolve(part, key[len(prefix):])
            if hit is not None:
                return hit
    hits = [h for h in (_resolve(part, key) for _, part in parts) if h is not None]
    return hits[0] if len(hits) == 1 else None


@dataclass(frozen=True)
class LearnedHparam:
    """One meta-learned hyperparameter: its name in ``loss.hparams()``, where it lives, its range."""

    name: str
    owner: nn.Module
    attr: str
    constraint: Constraint


def _why_not(loss: nn.Module, key: str, value) -> tuple[Optional[LearnedHparam], str]:
    if isinstance(value, bool) or not isinstance(value, float):
        return None, "not a real number"
    hit = _resolve(loss, key)
    if hit is None:
        return None, "not one attribute of one loss term (shared or derived)"
    constraint = _declared_constraint(*hit)
    if constraint is None:
        return None, "its valid range could not be read from its loss"
    return LearnedHparam(key, hit[0], hit[1], constraint), ""


def learnable_hparams(loss: nn.Module, names: Optional[Sequence[str]] = None, *,
                      num_classes: int = 10, loss_name: Optional[str] = None) -> tuple[list[LearnedHparam], dict]:
    """The hyperparameters of ``loss`` to meta-learn: ``names``, or by default every continuous one
    (not :data:`NUMERICAL_HPARAMS`, not a coefficient that is 0: its term is off). Returns
    ``(learned, not_learned)``, ``not_learned`` mapping the other hyperparameters to the reason.

    Raises ``ValueError`` naming ``meta_params`` for an unknown or unlearnable name, and for a loss
    with no continuous hyperparameter."""
    label = loss_name or getattr(loss, "name", type(loss).__name__)
    hp = dict(loss.hparams()) if hasattr(loss, "hparams") else {}
    learned, skipped = [], {}
    if names is not None:
        for key in names:
            if key not in hp:
                from .._validation import unknown_name_error

                if not hp:
                    raise ValueError(f"meta_params: loss {label!r} has no hyperparameters to learn.")
                raise unknown_name_error(f"hyperparameter of loss {label!r} in meta_params", key, hp)
            item, why = _why_not(loss, key, hp[key])
            if item is None:
                raise ValueError(f"meta_params: hyperparameter {key!r} of loss {label!r} cannot be meta-learned: {why}.")
            learned.append(item)
        skipped = {k: "not in meta_params" for k in hp if k not in names}
        bad, error = _not_differentiable(loss, learned, num_classes)
        if bad:
            why = f" ({type(error).__name__}: {str(error).splitlines()[0][:120]})" if error else ""
            raise ValueError(
                f"meta_params: loss {label!r} is not differentiable in {', '.join(repr(b) for b in bad)} (its kernel "
                f"treats it as a constant{why}), so it cannot be meta-learned. Name other hyperparameters in "
                "meta_params, or use a loss whose hyperparameters enter as plain formulas (gce, agce, aul, ael, sce, "
                "nce+agce, ...).")
    else:
        for key, value in hp.items():
            item, why = _why_not(loss, key, value)
            if item is not None and key in NUMERICAL_HPARAMS:
                item, why = None, "a numerical safeguard (name it in meta_params to learn it)"
            if item is not None and float(value) == 0.0 and item.constraint.lo == 0.0:
                item, why = None, "0: its term is off (give it a positive start value to learn it)"
            if item is not None and _not_differentiable(loss, [item], num_classes)[0]:
                item, why = None, "the loss's kernel treats it as a constant (not differentiable in it)"
            if item is None:
                skipped[key] = why
            else:
                learned.append(item)
        if not learned:
            detail = "; ".join(f"{k}: {w}" for k, w in skipped.items()) or "it has none"
            raise ValueError(
                f"meta_set: loss {label!r} has no continuous hyperparameter to meta-learn ({detail}). Choose a loss "
                "with one (e.g. gce, agce, aul, ael, sce or nce+agce), or leave meta_set out.")
    return learned, skipped


@contextlib.contextmanager
def swapped_hparams(hparams: Sequence[LearnedHparam], values: Sequence[Any]):
    """Set each hyperparameter's attribute to the given value (e.g. a 0-d tensor, which makes the
    loss differentiable in it) for the block; the old values are put back afterwards."""
    old = [getattr(h.owner, h.attr) for h in hparams]
    try:
        for h, v in zip(hparams, values):
            setattr(h.owner, h.attr, v)
        yield
    finally:
        for h, v in zip(hparams, old):
            setattr(h.owner, h.attr, v)


def _not_differentiable(loss: nn.Module, learned: Sequence[LearnedHparam], num_classes: int
                        ) -> tuple[list[str], Optional[BaseException]]:
    """The hypergradient needs ∂²L/∂z∂Λ. On a small float64 batch, autograd's mixed derivative (the
    hyperparameters as 0-d tensors) must exist, be finite and agree with central differences of
    ∂L/∂z in Λ (the hyperparameters as plain floats): a kernel that treats a hyperparameter as a
    constant (a fused Function that takes it as a number) would give a gradient without it."""
    device = next((b.device for b in loss.buffers()), torch.device("cpu"))
    K = max(int(num_classes), getattr(loss, "min_classes", 1), 2)
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(6, K, generator=gen, dtype=torch.float64).to(device)
    y = (torch.arange(6) % K).to(device)
    w = torch.linspace(-1, 1, z0.numel(), dtype=torch.float64, device=device).view_as(z0)
    start = [float(getattr(h.owner, h.attr)) for h in learned]

    def s_of(values, create_graph=False):  # sum(w · ∂L/∂z)
        z = z0.clone().requires_grad_(True)
        with swapped_hparams(learned, values):
            out = loss(z, y)
        (gz,) = torch.autograd.grad(out, z, create_graph=create_graph)
        return (gz * w).sum()

    bad: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a kernel that turns a tensor into a number warns: it is refused below
            vals = [torch.tensor(v, dtype=torch.float64, device=device, requires_grad=True) for v in start]
            mixed = torch.autograd.grad(s_of(vals, create_graph=True), vals, allow_unused=True)
            for i, (h, g) in enumerate(zip(learned, mixed)):
                if g is None or not torch.isfinite(g).all():
                    bad.append(h.name)
                    continue
                step = 1e-6 * max(1.0, abs(start[i]))
                up, down = list(start), list(start)
                up[i] += step
                down[i] -= step
                fd = (float(s_of(up)) - float(s_of(down))) / (2 * step)
                if abs(float(g) - fd) > 1e-6 + 1e-3 * abs(fd):
                    bad.append(h.name)
    except (TypeError, RuntimeError, ValueError) as e:
        return [h.name for h in learned], e
    return bad, None


# -- the meta set ----------------------------------------------------------------------------------

def _derive_seed(*parts: int) -> int:
    from .engine import _derive_seed as derive

    return derive(*parts)


def _subset_labels(config, labels: np.ndarray) -> np.ndarray:
    """The clean labels of the (sub)set a run trains on, in its order (the rule of ``prepare_data``)."""
    from .engine import SUBSET_SEED

    n = len(labels)
    if config.subset is not None and config.subset < n:
        idx = np.sort(np.random.default_rng(SUBSET_SEED).permutation(n)[: config.subset])
        return labels[idx]
    return labels


def select_meta_set(meta_set, clean_labels, num_classes: int, seed: int) -> np.ndarray:
    """Indices (sorted) of the meta set among the training images.

    ``meta_set``: an integer N (class-balanced: N // K per class, the first N mod K classes of a
    random class order one more, drawn with a seed derived from ``seed``), or the trusted indices
    themselves. Raises ``ValueError`` naming ``meta_set`` when it is larger than the data, leaves no
    training image, or misses a class."""
    y = np.asarray(clean_labels, dtype=np.int64)
    n, K = len(y), int(num_classes)
    counts = np.bincount(y, minlength=K)
    if isinstance(meta_set, (tuple, list, np.ndarray)):
        idx = np.asarray(meta_set, dtype=np.int64)
        if idx.size and (idx.max() >= n):
            raise ValueError(f"meta_set index {int(idx.max())} is out of range: the training set has {n} images "
                             f"(indices 0..{n - 1}, counted in the subset the run trains on).")
        if len(idx) >= n:
            raise ValueError(f"meta_set holds {len(idx)} images, the whole training set of {n}: leave some to train on.")
        missing = sorted(set(range(K)) - set(y[idx].tolist()))
        if missing:
            raise ValueError(f"meta_set misses class{'es' if len(missing) > 1 else ''} "
                             f"{', '.join(map(str, missing))}: the trusted images must hold every class "
                             f"(their clean labels cover {K - len(missing)} of {K}).")
        return np.sort(idx)
    N = int(meta_set)
    if N >= n:
        raise ValueError(f"meta_set={N} is larger than the data: the run's training set has {n} images; use "
                         f"fewer than {n} (docs/meta.md, 'Options').")
    if N < K:
        raise ValueError(f"meta_set={N} cannot hold every class: a class-balanced meta set needs at least "
                         f"{K} images (one per class) for {K} classes.")
    rng = np.random.default_rng(_derive_seed(seed, 0, 3) % (2 ** 63))
    want = np.full(K, N // K)
    want[rng.permutation(K)[: N % K]] += 1
    short = [k for k in range(K) if counts[k] < want[k] + 1]
    if short:
        k = short[0]
        raise ValueError(f"meta_set={N} needs {want[k]} clean images of class {k} and leaves none to train on: the "
                         f"training set has {counts[k]}; use a smaller meta_set.")
    picked = [rng.permutation(np.flatnonzero(y == k))[: want[k]] for k in range(K)]
    return np.sort(np.concatenate(picked))


def _check_no_mechanics(loss: nn.Module, schedule: Optional[dict], label: str) -> None:
    """The meta step calls the loss on logits and labels only, and sets its hyperparameters itself."""
    from .mechanics import needs

    wanted = needs(loss)
    if wanted:
        raise ValueError(f"meta_set: loss {label!r} needs training mechanics ({', '.join(wanted)}) that the meta "
                         "step does not supply; meta-learn another loss, or leave meta_set out.")
    if schedule:
        raise ValueError(f"meta_set: loss {label!r} comes with a hyperparameter schedule ({', '.join(schedule)}); "
                         "the meta-learner and a schedule cannot both set the hyperparameters.")


def check_meta_loss(loss: nn.Module, config, num_classes: int, schedule: Optional[dict] = None) -> list[LearnedHparam]:
    """The run's loss can be meta-learned as ``config`` asks (see :func:`learnable_hparams`)."""
    _check_no_mechanics(loss, schedule, config.loss)
    return learnable_hparams(loss, config.meta_params, num_classes=num_classes, loss_name=config.loss)[0]


def check_meta_data(config, clean_labels, num_classes: int) -> None:
    """The meta set fits the (sub)set of ``clean_labels`` the run trains on (see :func:`select_meta_set`)."""
    labels = _subset_labels(config, np.asarray(clean_labels))
    select_meta_set(config.meta_set, labels, num_classes, config.seed)


# -- the bilevel objective ---------------------------------------------------------------------------

def meta_objective(model: nn.Module, loss_fn: nn.Module, hparams: Sequence[LearnedHparam], values: Sequence[torch.Tensor],
                   x: torch.Tensor, y: torch.Tensor, x_meta: torch.Tensor, y_meta: torch.Tensor, *, lr: float,
                   momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                   l1_weight: float = 0.0, momentum_buffers: Optional[Sequence[Optional[torch.Tensor]]] = None
                   ) -> torch.Tensor:
    """The meta loss ``CE(f(x_meta; θ̂(Λ)), y_meta)`` after a virtual SGD step on ``(x, y)``, as a
    differentiable function of ``values`` (the hyperparameters Λ as tensors).

    The virtual step is the real optimiser's: ``d = ∇_θ L + wd·θ``, with momentum ``b = μ·b_old + d``
    (``b = d`` without an old buffer) and ``d = b`` (or ``d + μ·b`` with Nesterov); ``θ̂ = θ − lr·d``.
    The model and its buffers (batch-norm statistics) are not changed."""
    from torch.func import functional_call

    # in the contiguous memory format: PyTorch's double backward of a channels-last convolution is
    # about 2x slower on CPUs (the values are the same; the model's own parameters are not touched)
    named = [(n, p.contiguous()) for n, p in model.named_parameters() if p.requires_grad]
    names, params = [n for n, _ in named], [p for _, p in named]
    x, x_meta = x.contiguous(), x_meta.contiguous()

    def buffers():
        return {n: b.clone(memory_format=torch.contiguous_format) for n, b in model.named_buffers()}

    def wide(t):  # half-precision logits are computed in float32, as in the engine; float64 stays
        return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t

    with swapped_hparams(hparams, values):
        out = functional_call(model, {**dict(named), **buffers()}, (x,))
        loss = loss_fn(wide(out), y)
    if l1_weight:
        loss = loss + l1_weight * sum(p.abs().sum() for p in params)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    bufs = momentum_buffers if momentum_buffers is not None else [None] * len(params)
    new = {}
    for name, p, g, b in zip(names, params, grads, bufs):
        theta = p.detach()
        d = g + weight_decay * theta if weight_decay else g
        if momentum:
            m = d if b is None else b * momentum + d
            d = d + momentum * m if nesterov else m
        new[name] = theta - lr * d
    out_meta = functional_call(model, {**new, **buffers()}, (x_meta,))
    return F.cross_entropy(wide(out_meta), y_meta)


# -- the learner the engine calls ---------------------------------------------------------------------

class MetaLearner:
    """Holds the meta set, the unconstrained hyperparameters and their optimiser; the engine calls
    :meth:`begin_epoch`, :meth:`step` (once per training step, before the real step) and
    :meth:`end_epoch`, and checkpoints :meth:`state_dict`."""

    def __init__(self, loss_fn: nn.Module, hparams: Sequence[LearnedHparam], x_meta: torch.Tensor,
                 y_meta: torch.Tensor, prep: Callable, *, lr: float, every: int, batch_size: int,
                 optimizer: str, seed: int, l1_weight: float = 0.0, memory_format=torch.contiguous_format,
                 info: Optional[dict] = None, not_learned: Optional[dict] = None):
        self.loss_fn, self.hparams = loss_fn, list(hparams)
        self.x_meta, self.y_meta, self.prep = x_meta, y_meta, prep
        self.every, self.batch_size, self.seed, self.l1_weight = every, min(batch_size, len(y_meta)), seed, l1_weight
        self.memory_format = memory_format
        device = y_meta.device
        self.initial = {h.name: float(getattr(h.owner, h.attr)) for h in self.hparams}
        self.raw = [torch.tensor(h.constraint.raw(self.initial[h.name]), dtype=torch.float64, device=device,
                                 requires_grad=True) for h in self.hparams]
        self.optimizer_name, self.lr = optimizer, lr
        self.optimizer = (torch.optim.Adam(self.raw, lr=lr) if optimizer == "adam" else torch.optim.SGD(self.raw, lr=lr))
        self.steps = 0          # training steps seen (a meta step runs when steps % every == 0)
        self.meta_steps = 0
        self.info, self.not_learned = dict(info or {}), dict(not_learned or {})
        self._apply()

    # -- building from a run ---------------------------------------------------------------------
    @classmethod
    def create(cls, config, data, resolved, device: torch.device, prep: Callable, memory_format):
        """The learner of a run, and ``data`` without the meta set's images (they are never trained on)."""
        import dataclasses

        loss_fn = resolved.module
        _check_no_mechanics(loss_fn, getattr(resolved, "schedule", None), config.loss)
        learned, skipped = learnable_hparams(loss_fn, config.meta_params, num_classes=data.num_classes,
                                             loss_name=config.loss)
        idx = select_meta_set(config.meta_set, data.y_clean.numpy(), data.num_classes, config.seed)
        keep = np.setdiff1d(np.arange(len(data.y_clean)), idx)
        t_idx, t_keep = torch.from_numpy(idx), torch.from_numpy(keep)
        y_meta = data.y_clean[t_idx]
        info = {
            "size": int(len(idx)),
            "source": "given" if isinstance(config.meta_set, tuple) else "drawn (class-balanced)",
            "per_class": np.bincount(y_meta.numpy(), minlength=data.num_classes).tolist(),
            "noisy_in_meta_set": int((data.y_noisy[t_idx] != y_meta).sum()),
            "indices_sha256": hashlib.sha256(idx.astype("<i8").tobytes()).hexdigest(),
            "train_size_after": int(len(keep)),
        }
        train_data = dataclasses.replace(data, x_train=data.x_train[t_keep], y_noisy=data.y_noisy[t_keep],
                                         y_clean=data.y_clean[t_keep])
        learner = cls(loss_fn, learned, data.x_train[t_idx].to(device).contiguous(), y_meta.to(device), prep,
                      lr=config.meta_lr, every=config.meta_every, batch_size=config.meta_batch_size or config.batch_size,
                      optimizer=config.meta_optimizer, seed=config.seed, l1_weight=resolved.l1_weight,
                      memory_format=memory_format, info=info, not_learned=skipped)
        return learner, train_data

    # -- values ------------------------------------------------------------------------------------
    def values(self) -> list[torch.Tensor]:
        return [h.constraint.value(r) for h, r in zip(self.hparams, self.raw)]

    def current(self) -> dict[str, float]:
        """The hyperparameters now, as the real step uses them."""
        return {h.name: float(getattr(h.owner, h.attr)) for h in self.hparams}

    def _apply(self) -> None:
        with torch.no_grad():
            for h, v in zip(self.hparams, self.values()):
                setattr(h.owner, h.attr, float(v))

    # -- the engine's hooks --------------------------------------------------------------------------
    def begin_epoch(self, epoch: int) -> None:
        self._gen = torch.Generator().manual_seed(_derive_seed(self.seed, epoch, 2))
        self._order: list[int] = []
        self._loss_sum, self._count, self._seconds = 0.0, 0, 0.0

    def _meta_batch(self) -> torch.Tensor:
        while len(self._order) < self.batch_size:
            self._order += torch.randperm(len(self.y_meta), generator=self._gen).tolist()
        take, self._order = self._order[: self.batch_size], self._order[self.batch_size:]
        return torch.tensor(take, dtype=torch.int64, device=self.y_meta.device)

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
        """Before the real step on the noisy batch ``(x, y)``: every ``every`` steps, one meta step."""
        due = self.steps % self.every == 0
        self.steps += 1
        if not due:
            return
        t0 = time.perf_counter()
        group = optimizer.param_groups[0]
        params = [p for p in model.parameters() if p.requires_grad]
        bufs = [optimizer.state.get(p, {}).get("momentum_buffer") for p in params]
        idx = self._meta_batch()
        x_meta = self.prep(self.x_meta[idx]).contiguous(memory_format=self.memory_format)
        meta_loss = meta_objective(
            model, self.loss_fn, self.hparams, self.values(), x, y, x_meta, self.y_meta[idx], lr=group["lr"],
            momentum=group["momentum"], nesterov=group["nesterov"], weight_decay=group["weight_decay"],
            l1_weight=self.l1_weight, momentum_buffers=bufs)
        grads = torch.autograd.grad(meta_loss, self.raw)
        for r, g in zip(self.raw, grads):
            r.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._apply()
        self.meta_steps += 1
        self._loss_sum += float(meta_loss.detach())
        self._count += 1
        self._seconds += time.perf_counter() - t0   # _apply() read the values back: the step has finished

    def end_epoch(self) -> dict[str, Any]:
        """The epoch's entry: the hyperparameters at its end, its mean meta loss, its meta steps and the
        seconds they took (part of the epoch's ``seconds``)."""
        return {"hparams": self.current(), "meta_loss": self._loss_sum / self._count if self._count else None,
                "meta_steps": self._count, "seconds": self._seconds}

    def describe(self) -> dict[str, Any]:
        """The run record's ``meta`` entry (what was learned, how, from how many trusted images)."""
        return {
            **self.info,
            "lr": self.lr, "every": self.every, "batch_size": self.batch_size, "optimizer": self.optimizer_name,
            "learned": {h.name: {"initial": self.initial[h.name], "range": h.constraint.describe(),
                                 "transform": TRANSFORMS[h.constraint.kind][2]} for h in self.hparams},
            "not_learned": self.not_learned,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"raw": [r.detach().cpu().clone() for r in self.raw], "optimizer": self.optimizer.state_dict(),
                "steps": self.steps, "meta_steps": self.meta_steps, "names": [h.name for h in self.hparams]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state.get("names", [])) != [h.name for h in self.hparams]:
            raise ValueError("the checkpoint's meta-learned hyperparameters differ from this run's; cannot resume.")
        with torch.no_grad():
            for r, v in zip(self.raw, state["raw"]):
                r.copy_(v)
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps, self.meta_steps = int(state["steps"]), int(state["meta_steps"])
        self._apply()


def meta_trajectory(record: dict) -> dict[str, list[float]]:
    """``{name: [start value, value after epoch 1, ...]}`` of a run record's meta-learned hyperparameters."""
    meta = record.get("meta") or {}
    out = {k: [float(v["initial"])] for k, v in (meta.get("learned") or {}).items()}
    for entry in record.get("epochs") or []:
        for k, v in ((entry.get("meta") or {}).get("hparams") or {}).items():
            out.setdefault(k, []).append(float(v))
    return out
