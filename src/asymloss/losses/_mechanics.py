"""The later losses that need a training mechanic (docs/training-mechanics.md).

One declaration per loss (docs/adding-a-loss.md): the SR losses are plain kernels; GJS, ALDR-KL
and NLNL are hand-written module classes (they take more than logits and labels) declared with
``@loss`` on the class, with a functional form built from the same declaration.

- Sparse Regularization (``ce_sr``, ``fl_sr``, ``gce_sr``): plain losses; the engine's epoch
  schedule grows ``lam`` (docs/training-mechanics.md, 'Hyperparameter schedules').
- GJS (``gjs``): ``num_views = views`` augmented views of each sample; the input is a (M, N, C)
  tensor or a sequence of M (N, C) tensors (docs/training-mechanics.md, 'Augmented views').
- ALDR-KL (``aldr_kl``): a per-sample lambda_i kept in a buffer indexed by training-set position;
  called with ``index=`` (docs/training-mechanics.md, 'Per-sample state').
- NLNL (``nlnl``): called with ``complementary=`` labels; class weights from the noisy training
  labels (docs/training-mechanics.md, 'Complementary labels').

A loss declares the mechanics it needs with the class attributes ``num_views``, ``needs_index``
and ``needs_complementary`` (:meth:`asymloss.losses.Loss.mechanics`);
:meth:`MechanicsLoss.bind_training_set` receives the (noisy) training labels before training. Called without what it needs, a loss raises a ``ValueError``
that says what is missing.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as TF

import inspect

from . import _core
from ._base import _COMMON_KW, Loss, _collect, _module_signature
from ._define import Bool, Int, Real, loss, signature_params
from ._paper import REF_EPS, _k_ce, _k_focal, _k_gce

__all__ = ["MechanicsLoss", "GJS", "ALDRKL", "NLNL", "gjs", "aldr_kl", "nlnl", "nlnl_class_weight"]

Tensor = torch.Tensor
_SR_MIN_PROB = 1e-7        # the regulariser's clamp of softmax(z')
_JS_EPS = 1e-7             # GJS: log clamps of d and m
_ALDR_SMOOTH = 1e-5        # ALDR-KL: added to softmax(s / lambda_i) before the KL
_NLNL_EPS = 1e-5           # NLNL: clamp of 1 - p of the complementary label


class MechanicsLoss(Loss):
    """A loss that declares engine mechanics (class attributes read by the engine), constructed
    from its declaration (``@loss(...)`` on the class) like a generated class."""

    def __init__(self, *args, weight=None, ignore_index=-100, reduction="mean", num_classes=None, **kw):
        hp = _collect(self.definition, type(self).__name__, tuple(self.definition.params), args, kw)
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction, num_classes=num_classes)
        for k, v in hp.items():
            setattr(self, k, v)

    def bind_training_set(self, targets: Tensor, num_classes: Optional[int] = None) -> None:
        """Receive the (noisy) training labels before training (state sized by the training set,
        class statistics). The engine calls it once per run, before loading a checkpoint."""

    def kernel(self, batch):
        raise ValueError(
            f"loss {self.name!r} needs {', '.join(self.mechanics())} from the training engine and cannot be "
            "combined with another loss or wrapped (it has no per-sample kernel of the logits alone)."
        )


def _declared(cls):
    """Give a hand-written class the signature of its declaration."""
    cls.__init__ = _init_with_signature(cls)
    return cls


def _init_with_signature(cls):
    def __init__(self, *args, **kw):
        MechanicsLoss.__init__(self, *args, **kw)
        self._post_init()
    __init__.__signature__ = _module_signature(cls.definition)
    __init__.__qualname__ = f"{cls.__name__}.__init__"
    return __init__


def _function(name: str, impl, extra: list, doc: str):
    """The functional form of a hand-written loss: its declared hyperparameters as keywords (bound
    and validated by the declaration) and ``extra`` keyword parameters passed to ``impl``."""
    from ._define import get_definition

    d = get_definition(name)

    names = [p.name for p in extra]

    def fn(input, target, *, weight=None, ignore_index=-100, reduction="mean", **kw):
        given = {k: kw.pop(k) for k in names if k in kw}
        hp = d.bind(kw, owner=f"{name}()")                      # unknown keywords: the usual error
        return impl(input, target, **given, **hp, weight=weight, ignore_index=ignore_index, reduction=reduction)

    pos = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("input", "target")]
    fn.__signature__ = inspect.Signature([*pos, *extra, *signature_params(d), *_COMMON_KW])
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    fn.__module__ = "asymloss.losses.functional"
    return fn


def _kw(name, default=None):
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)


# ------------------------------------------------------------------------------------------------
# Sparse Regularization (Zhou et al. 2021): base loss on normalised logits + lam * sum_k p'_k^p
# ------------------------------------------------------------------------------------------------

def sr_logits(z: Tensor, tau: float, normalize: bool) -> Tensor:
    """``z / (tau max(||z||_2, 1e-12))`` over dim 1 (``normalize=False``: ``z / tau``, MNIST)."""
    if normalize:
        z = TF.normalize(z, p=2.0, dim=1, eps=1e-12)
    return z / tau


def _sr(b: _core.Batch, base, tau: float, p: float, lam: float, normalize: bool) -> Tensor:
    nb = _core.Batch(sr_logits(b.logits, tau, normalize), b.target, b.valid)
    value = base(nb)
    if lam == 0:
        return value
    # clamp(p'_k, 1e-7, 1)^p = exp(p clamp(log p'_k, log 1e-7, 0)): one exp over the classes
    # (from the log_softmax the base loss shares) instead of exp, then pow's log and exp
    return value + lam * torch.exp(nb.logp().clamp(math.log(_SR_MIN_PROB), 0.0) * p).sum(1)


#: Sparse Regularization's hyperparameters (CE+SR, FL+SR, GCE+SR); ``lam`` grows by an epoch
#: schedule (docs/training-mechanics.md, 'Hyperparameter schedules')
_SR_PARAMS = dict(tau=Real(0.5, gt=0), p=Real(0.1, gt=0, le=1), lam=Real(1.2, ge=0), normalize=Bool(True))


@loss("ce_sr", cls="CESR", kind="active", params=_SR_PARAMS, aliases=("cesr",))
def k_ce_sr(b: _core.Batch, tau: float, p: float, lam: float, normalize: bool) -> Tensor:
    """CE + Sparse Regularization (Zhou et al. 2021): CE on ``z' = z / (tau ||z||_2)`` plus
    ``lam sum_k clamp(p'_k, 1e-7, 1)^p``, ``p' = softmax(z')``; ``normalize=False`` is
    ``z' = z / tau`` (the MNIST setting). ``lam`` grows by an epoch schedule
    (docs/training-mechanics.md, 'Hyperparameter schedules')."""
    return _sr(b, _k_ce, tau, p, lam, normalize)


@loss("fl_sr", cls="FLSR", kind="active", params=dict(**_SR_PARAMS, gamma=Real(0.5, ge=0), detach=Bool(True)),
      aliases=("flsr", "focal_sr"))
def k_fl_sr(b: _core.Batch, tau: float, p: float, lam: float, normalize: bool, gamma: float,
            detach: bool) -> Tensor:
    """Focal loss + Sparse Regularization (Zhou et al. 2021); the focal factor is detached with
    ``detach`` (the reference code's gradient)."""
    return _sr(b, lambda nb: _k_focal(nb, gamma, detach), tau, p, lam, normalize)


@loss("gce_sr", cls="GCESR", kind="active", params=dict(**_SR_PARAMS, q=Real(0.01, gt=0, le=1)),
      aliases=("gcesr",))
def k_gce_sr(b: _core.Batch, tau: float, p: float, lam: float, normalize: bool, q: float) -> Tensor:
    """GCE + Sparse Regularization (Zhou et al. 2021); ``p'_y`` clamped at 1e-7 as GCE; the "+SR"
    GCE uses a small ``q`` (0.01)."""
    return _sr(b, lambda nb: _k_gce(nb, q, REF_EPS), tau, p, lam, normalize)


# ------------------------------------------------------------------------------------------------
# GJS (Englesson & Azizpour 2021): generalised Jensen-Shannon over the label and M views
# ------------------------------------------------------------------------------------------------

def k_gjs(logits: Tensor, index: Tensor, pi1: float, scaled: bool = True) -> Tensor:
    """GJS per sample of views ``logits`` (M, N, C), label gather index (N, 1).

    ``d_1 = e_y``, ``d_{i+1} = softmax(z^(i))`` with weights ``pi1`` and ``(1 - pi1) / M``;
    ``m = sum_i pi_i d_i``; ``sum_i pi_i KL(d_i || m)`` with ``log d`` and ``log m`` clamped at 1e-7
    (``m`` also at 1), divided by ``Z = -(1 - pi1) log(1 - pi1)`` when ``scaled``.
    """
    M = logits.shape[0]
    w = (1.0 - pi1) / M
    lmin = math.log(_JS_EPS)
    logp = torch.log_softmax(logits, dim=2)                          # (M, N, C)
    p = logp.exp()
    m = (w * p).sum(0)                                               # (N, C): the views' part of m
    m = m.scatter_add(1, index, m.new_full(index.shape, pi1))        # + pi1 e_y
    lm = m.clamp(_JS_EPS, 1.0).log()
    kl_views = (p * (logp.clamp_min(lmin) - lm)).sum(2)              # (M, N); p_k = 0 gives 0
    kl_label = -lm.gather(1, index).squeeze(1)                       # KL(e_y || m) = -log m_y
    value = pi1 * kl_label + w * kl_views.sum(0)
    if scaled:
        value = value / (-(1.0 - pi1) * math.log1p(-pi1))
    return value


def _stack_views(input: Union[Tensor, Sequence[Tensor]], views: int, name: str) -> Tensor:
    if isinstance(input, (list, tuple)):
        if not input or not all(isinstance(t, Tensor) for t in input):
            raise TypeError(f"{name}: input must be a (M, N, C) tensor or a sequence of M (N, C) logit tensors.")
        shapes = {tuple(t.shape) for t in input}
        if len(shapes) != 1:
            raise ValueError(f"{name}: every view must have the same shape; got {sorted(shapes)}.")
        input = torch.stack(list(input))
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a (M, N, C) tensor or a sequence of M (N, C) logit tensors; "
                        f"got {type(input).__name__}.")
    if input.dim() != 3 or input.shape[0] != views:
        raise ValueError(
            f"{name} needs {views} augmented views of each sample: input of shape (M={views}, N, C) or a list of "
            f"{views} (N, C) logit tensors; got shape {tuple(input.shape)}. In training the engine supplies the "
            f"views (docs/training-mechanics.md, 'Augmented views'); with one view use loss 'js'."
        )
    return input


def _gjs(input, target, pi1, views, scaled, weight, ignore_index, reduction, num_classes=None):
    stacked = _stack_views(input, views, "gjs")
    _core.check_common(reduction, ignore_index)
    _core.check_weight(weight)
    batch = _core.prepare(stacked[0], target, ignore_index=ignore_index, num_classes=num_classes, min_classes=2)
    logits = stacked.float() if stacked.dtype in (torch.float16, torch.bfloat16) else stacked
    out = _core.reduce(k_gjs(logits, batch.index, pi1, scaled), batch, weight, reduction)
    return out.to(stacked.dtype) if out.dtype != stacked.dtype else out


@_declared
@loss("gjs", kind="passive", min_classes=2, aliases=("generalized_jensen_shannon",),
      params=dict(pi1=Real(0.5, gt=0, lt=1), views=Int(2, ge=2), scaled=Bool(True)))
class GJS(MechanicsLoss):
    """Generalised Jensen-Shannon loss over the label and ``views`` augmented views (Englesson &
    Azizpour 2021, ``JensenShannonDivergenceWeightedScaled``): weights ``pi1`` for the label and
    ``(1 - pi1) / views`` for each view; ``scaled=False`` is the unscaled ``JSWC``.

    Called with a (views, N, C) tensor or a list of ``views`` (N, C) logit tensors."""

    def _post_init(self) -> None:
        pass

    @property
    def num_views(self) -> int:  # type: ignore[override]
        return self.views

    def forward(self, input, target: Tensor) -> Tensor:
        return _gjs(input, target, self.pi1, self.views, self.scaled, self.weight, self.ignore_index,
                    self.reduction, self.num_classes)


gjs = _function("gjs", lambda input, target, **kw: _gjs(input, target, **kw), [],
                "Generalised Jensen-Shannon loss (see :class:`GJS`); ``input`` (views, N, C) or a list of views.")


# ------------------------------------------------------------------------------------------------
# ALDR-KL (Zhu et al. 2023, ALDRLoss_V1): LDR-KL with a per-sample lambda_i
# ------------------------------------------------------------------------------------------------

def _aldr_lambda(s: Tensor, lam_i: Tensor, lam: float, alpha: float) -> Tensor:
    """ALDR's new ``lambda_i`` from the normalised scores ``s`` and the stored ``lam_i``."""
    K = s.shape[1]
    q = torch.softmax(s / lam_i.unsqueeze(1), dim=1) + _ALDR_SMOOTH
    q = q / q.sum(1, keepdim=True)
    kl = (q * torch.log(K * q)).sum(1)
    return lam - lam * kl / (alpha * math.log(K))


def k_aldr_kl(logits: Tensor, index: Tensor, lam_i: Tensor, margin: float, lam: float, alpha: float,
              softplus: bool) -> tuple[Tensor, Tensor]:
    """ALDR-KL per sample of logits (N, C) with gather index (N, 1) and the samples' stored
    ``lam_i`` (N,). Returns ``(loss, new lam_i)``; the new ``lam_i`` is detached, and the loss uses
    it as a constant (as the reference, which stores it and reads it back): the gradient w.r.t.
    ``d`` is ``softmax(d / lambda_i)``."""
    logK = math.log(logits.shape[1])
    s = TF.softplus(logits) if softplus else logits
    s = s / (s.abs().sum(1, keepdim=True) / logits.shape[1]).clamp_min(_core.tiny(s.dtype))
    with torch.no_grad():
        new = _aldr_lambda(s, lam_i, lam, alpha)
    d = (s - s.gather(1, index) + margin).scatter(1, index, 0.0)
    lam_c = new.unsqueeze(1)
    with torch.no_grad():
        value = new * (torch.logsumexp(d / lam_c, 1) - logK) - alpha * logK / (2.0 * lam) * (new - lam) ** 2
    lam_true = _aldr_lambda(s, lam_i, lam, alpha) if d.requires_grad else new   # = new, with its graph
    # the gradient w.r.t. d with lambda_i held fixed, built from its true (differentiable) value so
    # that the second derivative is that of the first-order gradient actually used
    w = torch.softmax(d / lam_true.unsqueeze(1), dim=1)
    return _core.pseudo_view(value, w, d), new


def _aldr(input, target, index, state, margin, lam, alpha, softplus, weight, ignore_index, reduction,
          num_classes=None):
    if index is None:
        raise ValueError(
            "aldr_kl keeps a per-sample lambda_i indexed by training-set position: call it with index=<the batch's "
            "positions in the training set> (the engine passes them; docs/training-mechanics.md, 'Per-sample state')."
        )
    if state is None:
        raise ValueError("aldr_kl has no per-sample state yet: call bind_training_set(train_labels) (or "
                         "give state=<a (train size,) tensor filled with lam>) before training.")
    if not isinstance(index, Tensor) or index.is_floating_point() or index.dim() != 1:
        raise TypeError(f"index must be a 1-D integer tensor of training-set positions; got {index!r:.80}.")
    _core.check_common(reduction, ignore_index)
    _core.check_weight(weight)
    batch = _core.prepare(input, target, ignore_index=ignore_index, num_classes=num_classes, min_classes=2)
    if input.dim() != 2 or index.shape[0] != input.shape[0]:
        raise ValueError(f"aldr_kl takes (N, C) logits and an index of N positions; got input "
                         f"{tuple(input.shape)} and index {tuple(index.shape)}.")
    index = index.to(state.device)
    if _core.host_checks(index) and index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(state)):
        raise ValueError(f"index holds a position outside [0, {len(state) - 1}] (the training set's size is "
                         f"{len(state)}).")
    lam_i = state[index].to(device=batch.logits.device, dtype=batch.logits.dtype)
    value, new = k_aldr_kl(batch.logits, batch.index, lam_i, margin, lam, alpha, softplus)
    if batch.valid is not None:
        new = torch.where(batch.valid, new, lam_i)
    state[index] = new.to(device=state.device, dtype=state.dtype)
    out = _core.reduce(value, batch, weight, reduction)
    return out.to(input.dtype) if out.dtype != input.dtype else out


@_declared
@loss("aldr_kl", kind="passive", min_classes=2, aliases=("aldr", "aldrkl", "aldrloss_v1"),
      params=dict(margin=Real(0.1, ge=0), lam=Real(1.0, gt=0), alpha=Real(2.0, gt=1), softplus=Bool(False)))
class ALDRKL(MechanicsLoss):
    """ALDR-KL (Zhu et al. 2023, ``ALDRLoss_V1``): LDR-KL whose lambda is per sample, ``lambda_i``,
    adapted at every call from ``lam`` (lambda_0) and ``alpha > 1`` and stored in the buffer
    ``lambdas`` (one entry per training sample, on the logits' device, saved with the state dict).

    Call :meth:`bind_training_set` (the engine does) and then ``loss(logits, target, index=positions)``.
    ``softplus=True`` (CIFAR-100 in the reference) normalises softplus(z) instead of z."""
    needs_index = True

    def _post_init(self) -> None:
        self.register_buffer("lambdas", None)

    def bind_training_set(self, targets: Tensor, num_classes: Optional[int] = None) -> None:
        """One ``lambda_i = lam`` per training sample (float32, on the labels' device)."""
        self.lambdas = torch.full((len(targets),), self.lam, dtype=torch.float32, device=targets.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "lambdas"
        if key in state_dict and (self.lambdas is None or self.lambdas.shape != state_dict[key].shape):
            self.lambdas = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, input: Tensor, target: Tensor, index: Optional[Tensor] = None) -> Tensor:
        if self.lambdas is not None and self.lambdas.device != input.device:
            self.lambdas = self.lambdas.to(input.device)
        return _aldr(input, target, index, self.lambdas, self.margin, self.lam, self.alpha, self.softplus,
                     self.weight, self.ignore_index, self.reduction, self.num_classes)


aldr_kl = _function(
    "aldr_kl", lambda input, target, index=None, state=None, **kw: _aldr(input, target, index, state, **kw),
    [_kw("index"), _kw("state")],
    "ALDR-KL (see :class:`ALDRKL`). ``index``: the batch's training-set positions; ``state``: the "
    "(train size,) tensor of ``lambda_i`` (start it at ``lam``), updated in place at ``index``.")


# ------------------------------------------------------------------------------------------------
# NLNL (Kim et al. 2019) as in the ALFs code, negative learning only, without its NaN
# ------------------------------------------------------------------------------------------------

def nlnl_class_weight(targets: Tensor, num_classes: int) -> Tensor:
    """NLNL's class weights ``w_c = max_j n_j / n_c`` from the training labels (1 for an empty class)."""
    counts = torch.bincount(targets.long().flatten(), minlength=num_classes).double()
    w = counts.max() / counts
    return torch.where(counts > 0, w, torch.ones_like(w)).float()


def k_nlnl(b: _core.Batch, complementary: Tensor, class_weight: Optional[Tensor]) -> Tensor:
    """``-w_y log clamp(1 - p_ybar, 1e-5, 1)`` per sample."""
    logp_bar = b.logp().gather(1, complementary.unsqueeze(1)).squeeze(1)
    value = -(0.0 - torch.expm1(logp_bar)).clamp(_NLNL_EPS, 1.0).log()
    if class_weight is not None:
        value = value * class_weight.to(device=value.device, dtype=value.dtype)[b.target]
    return value


def _nlnl(input, target, complementary, class_weight, weight, ignore_index, reduction, num_classes=None):
    if complementary is None:
        raise ValueError(
            "nlnl learns from complementary labels: call it with complementary=<a label other than the target per "
            "sample> ((y + U{1..K-1}) mod K, as asymloss.train.mechanics.complementary_labels draws them; the engine passes them, "
            "docs/training-mechanics.md, 'Complementary labels')."
        )
    if not isinstance(complementary, Tensor) or complementary.is_floating_point() or \
            tuple(complementary.shape) != tuple(target.shape):
        raise ValueError(f"complementary must be an integer tensor shaped like target {tuple(target.shape)}.")

    def kernel(b):
        comp = complementary.to(b.target.device).long()
        if _core.host_checks(comp) and comp.numel():
            lo, hi = int(comp.min()), int(comp.max())
            if lo < 0 or hi >= b.num_classes:
                raise ValueError(f"complementary holds class index {lo if lo < 0 else hi}, outside [0, "
                                 f"{b.num_classes - 1}].")
        if b.valid is not None:
            comp = torch.where(b.valid, comp, 0)
        return k_nlnl(b, comp, class_weight)

    return _core.compute(input, target, kernel, weight=weight, ignore_index=ignore_index, reduction=reduction,
                         num_classes=num_classes, min_classes=2)


@_declared
@loss("nlnl", kind="passive", min_classes=2, aliases=("negative_learning",))
class NLNL(MechanicsLoss):
    """NLNL's negative learning (Kim et al. 2019) as the ALFs code, without its NaN:
    ``-w_y log clamp(1 - p_ybar, 1e-5, 1)`` for a complementary label ``ybar`` drawn afresh every
    step, ``w_c = max_j n_j / n_c`` from the noisy training labels (buffer ``class_weight``, 1 until
    :meth:`bind_training_set`). Call ``loss(logits, target, complementary=ybar)``."""
    needs_complementary = True

    def _post_init(self) -> None:
        self.register_buffer("class_weight", None)

    def bind_training_set(self, targets: Tensor, num_classes: Optional[int] = None) -> None:
        """Class weights from the training labels (``num_classes`` defaults to ``max + 1``)."""
        K = int(num_classes) if num_classes is not None else int(targets.max()) + 1
        self.class_weight = nlnl_class_weight(targets.cpu(), K).to(targets.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "class_weight"
        if key in state_dict and (self.class_weight is None or self.class_weight.shape != state_dict[key].shape):
            self.class_weight = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, input: Tensor, target: Tensor, complementary: Optional[Tensor] = None) -> Tensor:
        return _nlnl(input, target, complementary, self.class_weight, self.weight, self.ignore_index,
                     self.reduction, self.num_classes)


nlnl = _function(
    "nlnl", lambda input, target, complementary=None, class_weight=None, **kw:
        _nlnl(input, target, complementary, class_weight, **kw),
    [_kw("complementary"), _kw("class_weight")],
    "NLNL's negative learning (see :class:`NLNL`); ``complementary``: a label other than the target "
    "per sample; ``class_weight`` (C,): :func:`nlnl_class_weight`.")
