"""Shared machinery of every loss (private).

One place for: input validation (shapes, dtypes, label range), the float32 upcast of half-precision
inputs, the cached log-probabilities ``log p`` / ``log p_y`` (gathered, never through a one-hot
tensor) and the ``weight`` / ``ignore_index`` / ``reduction`` semantics of
``torch.nn.functional.cross_entropy``.

A loss is a *kernel*: a function ``kernel(batch) -> per-sample loss`` of shape ``(N, d1, ..., dk)``
that reads what it needs from a :class:`Batch`. :func:`compute` prepares the batch, calls the kernel
and reduces.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .._validation import check_choice

REDUCTIONS = ("mean", "sum", "none")
_HALF = (torch.float16, torch.bfloat16)


class Batch:
    """Validated logits and labels of one call, with lazily computed, cached log-probabilities.

    Attributes: ``logits`` (N, C, ...) in the compute dtype (float32 for half inputs), ``target``
    (N, ...) int64 with ignored positions replaced by class 0, ``valid`` (N, ...) bool mask or
    ``None`` when nothing is ignored, ``num_classes`` (C).

    The shared quantities (``log p``, ``log p_y``, ``p``) and the fused paths that compute several
    of them at once are methods: a kernel asks the batch, and whatever a fused path computed on
    the way (``log p_y``, ``p``) is cached for the next term of a combination.
    """

    __slots__ = ("logits", "target", "valid", "num_classes", "_logp", "_logp_y", "_index", "_p")

    def __init__(self, logits: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor]):
        self.logits = logits
        self.target = target
        self.valid = valid
        self.num_classes = logits.shape[1]
        self._logp = None
        self._logp_y = None
        self._index = None
        self._p = None

    @property
    def dtype(self) -> torch.dtype:
        return self.logits.dtype

    @property
    def index(self) -> torch.Tensor:
        """``target.unsqueeze(1)``: the gather index of shape (N, 1, d1, ..., dk)."""
        if self._index is None:
            self._index = self.target.unsqueeze(1)
        return self._index

    @property
    def has_logp(self) -> bool:
        """Whether :meth:`logp` has been computed (a fused path may then be the slower one)."""
        return self._logp is not None

    @property
    def has_logp_y(self) -> bool:
        return self._logp_y is not None

    def logp(self) -> torch.Tensor:
        """``log_softmax(logits, dim=1)``, shape (N, C, ...), computed once."""
        if self._logp is None:
            self._logp = F.log_softmax(self.logits, dim=1)
        return self._logp

    def logp_y(self) -> torch.Tensor:
        """``log p_y`` of shape (N, ...): for C < 64 (and no :meth:`logp` computed yet)
        ``z_y - logsumexp(z)`` with a gradient exact near ``p_y = 1`` (:class:`_LogProbY`);
        else gathered from :meth:`logp` (PyTorch's kernels, faster on long rows)."""
        if self._logp_y is None:
            if self._logp is None and self.num_classes < 64:
                self._logp_y = _LogProbY.apply(self.logits, self.index)[0]
            else:
                self._logp_y = self.logp().gather(1, self.index).squeeze(1)
        return self._logp_y

    def p_detached(self) -> torch.Tensor:
        """``softmax(logits, dim=1)`` without autograd (for fused backwards), computed once.

        When :meth:`logp` has been computed already and there are few classes, ``exp(log p)`` (one
        elementwise pass) is much cheaper than a second softmax over a short dim 1 (about 20x at
        C = 10 on CPU); from C ~ 64 on the fused softmax kernel is the faster one.
        """
        if self._p is None:
            with torch.no_grad():
                if self._logp is not None and self.num_classes < 64:
                    self._p = self._logp.detach().exp()
                else:
                    self._p = torch.softmax(self.logits.detach(), dim=1)
        return self._p

    def p_y(self) -> torch.Tensor:
        """``p_y = exp(log p_y)``, shape (N, ...)."""
        return self.logp_y().exp()

    def one_minus_p_y(self) -> torch.Tensor:
        """``1 - p_y``: the value is ``-expm1(log p_y)`` (exact near ``p_y = 1``; +0, not -0, at 1),
        the gradient that of ``-exp(log p_y)`` (``expm1``'s backward, ``(expm1(l) + 1) g``, is 0
        in float32 once ``p_y < 6e-8``)."""
        logp_y = self.logp_y()
        value = 0.0 - torch.expm1(logp_y)
        p_y = torch.exp(logp_y)
        return value.detach() + (p_y.detach() - p_y)

    def gather(self, values: torch.Tensor) -> torch.Tensor:
        """Pick the label's entry of a (N, C, ...) tensor: returns (N, ...)."""
        return values.gather(1, self.index).squeeze(1)

    # -- fused paths (value and gradient together; see the Functions below) -----------------------

    def row_sum(self, kind: str, c1: float = 0.0, c2: float = 0.0) -> torch.Tensor:
        """``sum_k f(log p_k)`` (N, ...) for ``kind`` in ``sum`` (f(l) = l), ``powclamp``
        (max(e^(c1 l), c2)), ``clampmin`` (max(l, c1) - c1), ``focal`` ((1 - e^l)^c1 l, factor
        detached when c2); gathers and caches ``log p_y`` in the same Function when not cached."""
        if self._logp_y is not None:
            return _RowSum.apply(self.logp(), None, kind, c1, c2)[0]
        S, logp_y = _RowSum.apply(self.logp(), self.index, kind, c1, c2)[:2]
        self._logp_y = logp_y
        return S

    def clamped_off_target(self, eps: float, with_logp_y: bool = False):
        """``(sum_{k != y} max(p_k, eps), max(p_y, eps), log p_y or None)``, each (N, ...)."""
        off, v_y, logp_y, _ = _ClampedOffTarget.apply(self.logits, self.p_detached(), self.index, eps,
                                                      with_logp_y)
        return off, v_y, (logp_y if with_logp_y else None)

    def square_mass(self):
        """``(sum_k p_k^2, p_y)``, each (N, ...)."""
        return _SquareMass.apply(self.logits, self.p_detached(), self.index)

    def log_prob_sum(self):
        """``(sum_k log p_k, log p_y)``, each (N, ...); caches ``log p_y`` and ``p``."""
        total, logp_y, p = _LogProbSum.apply(self.logits, self.index)
        if self._p is None:
            self._p = p
        if self._logp_y is None:
            self._logp_y = logp_y
        return total, logp_y


def _check_inputs(input, target, num_classes: Optional[int]) -> None:
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor of logits; got {type(input).__name__}.")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor of class indices; got {type(target).__name__}.")
    if not input.is_floating_point():
        raise TypeError(
            f"input must be floating-point logits (float16, bfloat16, float32 or float64); got {input.dtype}."
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(
            f"target must hold integer class indices (int64 preferred); got dtype {target.dtype}. "
            "Soft (probability) targets are not supported."
        )
    if input.dim() < 2:
        raise ValueError(
            f"input must have shape (N, C) or (N, C, d1, ..., dk); got shape {tuple(input.shape)}."
        )
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target must have shape {expected} for input of shape {tuple(input.shape)} "
            f"(N, d1, ..., dk); got {tuple(target.shape)}."
        )
    if num_classes is not None and input.shape[1] != num_classes:
        raise ValueError(
            f"input has {input.shape[1]} classes along dim 1 but the loss was built with "
            f"num_classes={num_classes}."
        )


def _wrapped(t: torch.Tensor) -> bool:
    """Whether ``t`` is a ``torch.func`` transform's wrapper (vmap/grad): no data-dependent Python."""
    return torch._C._functorch.is_functorch_wrapped_tensor(t)


def host_checks(*tensors: torch.Tensor) -> bool:
    """Whether data-dependent host checks are free here: eager mode, CPU, no ``torch.func``
    transform. Elsewhere (a device, ``torch.compile``, ``vmap``) a loss call never reads a
    tensor's value on the host."""
    if torch.compiler.is_compiling():
        return False
    return all(t.device.type == "cpu" and not _wrapped(t) for t in tensors)


def prepare(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int = -100,
    num_classes: Optional[int] = None,
    min_classes: int = 1,
) -> Batch:
    """Validate ``input``/``target`` and build a :class:`Batch` (half precision upcast to float32)."""
    _check_inputs(input, target, num_classes)
    C = input.shape[1]
    if C < min_classes:
        raise ValueError(f"this loss needs at least {min_classes} classes; input has C={C}.")
    logits = input.float() if input.dtype in _HALF else input
    target = target.long() if target.dtype != torch.int64 else target
    valid = target != ignore_index
    if host_checks(target):
        # Eager CPU tensors: the checks cost no device sync. Report bad labels clearly.
        all_valid = bool(valid.all())
        labels = target if all_valid else target[valid]
        if labels.numel():
            lo, hi = torch.aminmax(labels)
            lo, hi = int(lo), int(hi)
            if lo < 0 or hi >= C:
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"target contains class index {bad}, outside the valid range [0, {C - 1}] for "
                    f"C={C} classes (ignore_index={ignore_index} marks samples to skip)."
                )
        if all_valid:
            return Batch(logits, target, None)
    elif target.device.type != "cpu" and not torch.compiler.is_compiling() and not _wrapped(target):
        # On a device: an asynchronous device-side assert (no host sync); a bad label stops the
        # stream with this message instead of an out-of-bounds gather.
        ok = ((target >= 0) & (target < C)) | ~valid
        torch._assert_async(ok.all(), f"asymloss: target holds a class index outside [0, {C - 1}]")
    return Batch(logits, torch.where(valid, target, 0), valid)


def check_weight(weight, num_classes: Optional[int] = None) -> Optional[torch.Tensor]:
    """Validate a per-class weight: ``None`` or a 1-D floating tensor (of length ``num_classes``)."""
    if weight is None:
        return None
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be None or a 1-D torch.Tensor; got {type(weight).__name__}.")
    if weight.dim() != 1 or not weight.is_floating_point():
        raise ValueError(
            f"weight must be a 1-D floating-point tensor of per-class weights; got shape "
            f"{tuple(weight.shape)} and dtype {weight.dtype}."
        )
    if num_classes is not None and weight.numel() != num_classes:
        raise ValueError(f"weight must have {num_classes} entries (one per class); got {weight.numel()}.")
    return weight


def check_common(reduction: str, ignore_index) -> None:
    """Validate ``reduction`` and ``ignore_index`` (the arguments shared by every loss)."""
    check_choice("reduction", reduction, REDUCTIONS)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an integer; got {ignore_index!r}.")


def reduce(loss: torch.Tensor, batch: Batch, weight: Optional[torch.Tensor], reduction: str) -> torch.Tensor:
    """Apply ``weight`` / ``ignore_index`` / ``reduction`` exactly like ``F.cross_entropy``.

    ``loss`` is the per-sample loss (N, ...). Ignored samples contribute 0 (and 0 in ``'none'``);
    with a ``weight`` each sample is multiplied by ``weight[y]`` and ``'mean'`` divides by the sum of
    the weights of the non-ignored samples (NaN when every sample is ignored, like PyTorch).
    """
    w = None
    if weight is not None:
        if weight.numel() != batch.num_classes:
            raise ValueError(
                f"weight must have {batch.num_classes} entries (one per class); got {weight.numel()}."
            )
        w = weight.to(device=loss.device, dtype=loss.dtype)[batch.target]
    if batch.valid is not None:
        loss = torch.where(batch.valid, loss, loss.new_zeros(()))
        w = batch.valid.to(loss.dtype) if w is None else w * batch.valid
    if w is not None:
        loss = loss * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if w is None:
        return loss.mean()
    return loss.sum() / w.sum()


def compute(
    input: torch.Tensor,
    target: torch.Tensor,
    kernel: Callable[[Batch], torch.Tensor],
    *,
    weight: Optional[torch.Tensor] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    num_classes: Optional[int] = None,
    min_classes: int = 1,
) -> torch.Tensor:
    """Validate, run ``kernel`` on the prepared batch, reduce, and cast back to the input dtype."""
    check_common(reduction, ignore_index)
    check_weight(weight)
    batch = prepare(input, target, ignore_index=ignore_index, num_classes=num_classes, min_classes=min_classes)
    out = reduce(kernel(batch), batch, weight, reduction)
    return out.to(input.dtype) if out.dtype != input.dtype else out



# ------------------------------------------------------------------------------------------------
# Fused autograd Functions.
#
# Each computes a few per-row quantities and their gradient w.r.t. the logits (or log p) by hand, to
# halve the passes over the (N, C, ...) tensor in eager mode. They work with every PyTorch
# mechanism a composite formula works with:
# - ``setup_context`` style and ``generate_vmap_rule``: ``torch.func.grad``/``vjp``/``jacrev``/
#   ``vmap`` and ``torch.compile(fullgraph=True)`` trace them;
# - two backwards: with grad mode off (an ordinary ``.backward()``) the fast one works in place on
#   the forward's temporaries; with grad mode on (``create_graph=True``, and every ``torch.func``
#   transform) a differentiable one recomputes from the saved inputs with out-of-place operations,
#   so double backward (``gradgradcheck``) is exact;
# - the forward's temporaries are extra outputs (non-differentiable), never fields written on a
#   shared object; a second backward through the same graph (``retain_graph=True``) recomputes
#   them when the first one consumed their buffers.
# ------------------------------------------------------------------------------------------------

def _fast_backward() -> bool:
    """True in an ordinary backward: grad mode off and not inside ``torch.compile`` tracing."""
    return not torch.is_grad_enabled() and not torch.compiler.is_compiling()


def _keep_aux(ctx, aux) -> None:
    # Non-differentiable outputs hold no reference to ctx: no reference cycle. Only kept for the
    # eager fast path (compiled and transformed code recompute what they need).
    ctx.aux = aux if not torch.compiler.is_compiling() else None


def _take_aux(ctx):
    aux, ctx.aux = getattr(ctx, "aux", None), None
    return aux


class _Function(torch.autograd.Function):
    """Base of asymloss's autograd Functions: ``apply`` without the per-call ``inspect.signature``
    binding that ``torch.autograd.Function.apply`` does for ``setup_context``-style Functions (it
    fills in defaults; these ``forward`` s take every argument positionally and have none). That
    binding costs about 30 µs per call, 10% of a whole loss call at (4096, 10). Under
    ``torch.compile`` and ``torch.func`` transforms ``apply`` is PyTorch's own."""

    @classmethod
    def apply(cls, *args):
        if torch._C._are_functorch_transforms_active() or torch.compiler.is_compiling():
            return super().apply(*args)
        return super(torch.autograd.Function, cls).apply(*torch._functorch.utils.unwrap_dead_wrappers(args))


class _ConstFactorMul(_Function):
    """``w * x`` with ``w`` a constant for the gradient (``w.detach() * x``), except that the
    gradient ``w * g`` stays a function of ``w``: a double backward differentiates the
    gradient actually used (the reference codes' detached focal factors), so ``gradgradcheck``
    holds for it."""

    generate_vmap_rule = True

    @staticmethod
    def forward(w, x):
        return w * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        return None, w * g


def const_factor_mul(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``w * x``, differentiated as if ``w`` were a constant (see :class:`_ConstFactorMul`)."""
    return _ConstFactorMul.apply(w, x)


# A pseudo-gradient (a detached factor) is exact under double backward only while its value enters
# the loss linearly: a later operation whose backward formula reads the value (a ratio's
# ``-g a / b^2``) would read it through the pseudo-derivative's graph node. The helpers below keep
# two tensors with the same value: a *pseudo* one, through which the first-order gradient flows,
# and a *true* one, whose graph has the true derivative and which only backward formulas read, so
# that the second derivative is that of the first-order gradient actually used.

class _PseudoView(_Function):
    """``value`` itself (a view), with the gradient ``w * g`` for ``x`` (``value = w * x + c``, ``w``
    a constant for the first-order gradient, as :class:`_ConstFactorMul`) and none for ``value``.
    A per-sample ``value`` (N, ...) of rows ``x`` (N, C, ...) gets ``w * g`` broadcast over the
    classes: ``w`` is then the first-order gradient of ``value`` w.r.t. ``x``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(value, w, x):
        return value.view_as(value)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[1])

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        if w.dim() > g.dim():                    # a per-sample value of a row: broadcast over dim 1
            g = g.unsqueeze(1)
        return None, None, w * g


def pseudo_view(value: torch.Tensor, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``value`` (``= w * x`` up to a constant) differentiated as ``w`` constant times ``x``; the true
    ``value`` keeps its own graph for :func:`pseudo_ratio`."""
    return _PseudoView.apply(value, w, x)


class _RowSumTangent(_Function):
    """``S`` itself (a view of a :meth:`Batch.row_sum` output), with the derivative of the row sum
    ``kind`` (``c1``, ``c2``) w.r.t. ``logp``: the true derivative of a row sum whose own Function
    gives a pseudo-derivative (``focal`` with a detached factor: pass ``c2 = 0``)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(S, logp, kind, c1, c2):
        return S.view_as(S)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.kind, ctx.c1, ctx.c2 = inputs[2:]
        ctx.save_for_backward(inputs[1])
        ctx.set_materialize_grads(False)     # a first-order backward passes no gradient here

    @staticmethod
    def backward(ctx, g):
        if g is None:
            return None, None, None, None, None
        (logp,) = ctx.saved_tensors
        return None, _rs_derivative(ctx.kind, logp, ctx.c1, ctx.c2) * g.unsqueeze(1), None, None, None


class _PseudoRatio(_Function):
    """``a / b`` whose gradient flows through ``a`` and ``b`` (pseudo-derivatives), with the
    backward formula ``(g / b, -g (a / b) / b)`` (``torch.div``'s, bit for bit) read from ``a_true``
    and ``b_true``: the same values, whose graphs carry the true derivatives for a double backward."""

    generate_vmap_rule = True

    @staticmethod
    def forward(a, b, a_true, b_true):
        return a / b

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[2], inputs[3])

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g / b, -g * ((a / b) / b), None, None


def row_sum_tangent(S: torch.Tensor, logp: torch.Tensor, kind: str, c1: float = 0.0,
                    c2: float = 0.0) -> torch.Tensor:
    """``S`` with the derivative of the row sum ``kind`` (``c1``, ``c2``) w.r.t. ``logp`` (see
    :class:`_RowSumTangent`)."""
    return _RowSumTangent.apply(S, logp, kind, c1, c2)


def pseudo_ratio(a: torch.Tensor, b: torch.Tensor, a_true: torch.Tensor, b_true: torch.Tensor) -> torch.Tensor:
    """``a / b`` for pseudo-differentiated ``a``, ``b`` (see :class:`_PseudoRatio`)."""
    return _PseudoRatio.apply(a, b, a_true, b_true)


class _LogProbY(_Function):
    """``log p_y = z_y - logsumexp(z)`` with a gradient exact near ``p_y = 1``::

        d log p_y / dz_j = 1[j = y] - p_j,   the label's entry computed as -expm1(log p_y)

    (``log_softmax``'s backward forms ``1 - p_y`` by subtraction: no relative precision once
    ``p_y`` is close to 1). Two forwards, by the number of classes (``python bench/logprob.py``
    measures both against ``F.cross_entropy``):

    - C < :data:`LSE_MAX_CLASSES`: one ``logsumexp`` reduction and a gather, 0.3-0.5x of
      ``F.cross_entropy`` on CPU, where ``log_softmax``'s kernel is slow on short rows; the fast
      backward is one ``exp`` pass from the kept ``logsumexp``, a product and a scatter;
    - longer rows: ``log_softmax``'s fused kernel and a gather (``logsumexp``'s four passes cost
      up to 1.5x more there); the fast backward turns the kept ``log p`` into ``-p g`` in its own
      buffer (``exp_``, ``mul_``: no new (N, C, ...) tensor, whose first touch costs more than the
      arithmetic at segmentation sizes) and scatters the exact label entry.

    Used for C < 64; on longer rows :meth:`Batch.logp_y` gathers from ``log_softmax`` directly.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(z, index):
        if z.shape[1] < LSE_MAX_CLASSES:
            lse = torch.logsumexp(z, 1, keepdim=True)
            return (z.gather(1, index) - lse).squeeze(1), lse
        logp = torch.log_softmax(z, 1)
        return logp.gather(1, index).squeeze(1), logp

    @staticmethod
    def setup_context(ctx, inputs, output):
        z, index = inputs
        ctx.save_for_backward(z, index, output[0])
        ctx.mark_non_differentiable(output[1])
        ctx.lse = z.shape[1] < LSE_MAX_CLASSES          # which forward ran: aux is lse, or log p
        ctx.set_materialize_grads(False)                # no (N, C, ...) zeros for aux's gradient
        _keep_aux(ctx, output[1])

    @staticmethod
    def backward(ctx, g, _):
        if g is None:
            return None, None
        z, index, logp_y = ctx.saved_tensors
        g1 = g.unsqueeze(1)
        top = torch.expm1(logp_y).unsqueeze(1) * -g1
        if _fast_backward():
            aux, lse = _take_aux(ctx), ctx.lse
            if aux is None:                              # a second backward: recompute
                aux = torch.logsumexp(z, 1, keepdim=True) if lse else torch.log_softmax(z, 1)
            # p from the kept temporary: a new tensor from lse, log p's own buffer (consumed) else
            p = torch.sub(z, aux).exp_() if lse else aux.exp_()
            return p.mul_(-g1).scatter_(1, index, top), None
        return (torch.softmax(z, 1) * -g1).scatter(1, index, top), None


#: :class:`_LogProbY` takes ``logsumexp`` for fewer classes than this, ``log_softmax`` from it on
#: (measured on CPU with AVX-512: ``python bench/logprob.py``).
LSE_MAX_CLASSES = 16


# Row sums S = sum_k f(log p_k) over dim 1. Each kind gives: the forward (S and temporaries), the
# fast in-place derivative f'(log p) * g from the temporaries, and the derivative as a
# differentiable formula of log p.

def _rs_forward(kind, logp, c1, c2):
    if kind == "sum":                                    # f(l) = l
        return logp.sum(1), ()
    if kind == "powclamp":                               # f(l) = max(exp(c1 l), c2)
        v = (logp * c1).exp_()
        if c2 > 0:
            v.clamp_min_(c2)
        return v.sum(1), (v,)
    if kind == "clampmin":                               # f(l) = max(l, c1) - c1 >= 0
        v = logp.clamp_min(c1).sub_(c1)
        return v.sum(1), (v,)
    if kind == "focal":                                  # f(l) = (1 - e^l)^gamma l, c1 = gamma
        detach = bool(c2)
        base = torch.expm1(logp).neg_()                  # 1 - p_k, exact near p_k = 1
        base.clamp_min_(0.0 if detach else tiny(logp.dtype))
        w = _pow(base, c1)
        return torch.linalg.vecdot(w, logp, dim=1), (base, w)
    raise ValueError(f"unknown row-sum kind {kind!r}")


def _rs_fast(kind, logp, aux, g, c1, c2):
    """f'(log p) * g in place in the temporaries' buffers (consumed)."""
    if kind == "sum":
        return torch.empty_like(logp).copy_(g.expand_as(logp))
    if kind == "powclamp":                               # c1 p^c1 1[p^c1 > floor]
        (v,) = aux
        if c2 > 0:
            torch.threshold_(v, c2, 0.0)
        return v.mul_(g * c1)
    if kind == "clampmin":                               # 1[l > lmin]; v >= 0, so sign is the step
        (v,) = aux
        return v.sign_().mul_(g)
    base, w = aux                                        # focal
    if c2:                                               # detached factor: d/dl [w l] = w
        return w.mul_(g)
    # d/dl [base^gamma l] = w - gamma l (w / base - w), p = 1 - base, in base's buffer
    t = torch.div(w, base, out=base).sub_(w).mul_(logp)
    return t.mul_(g * -c1).addcmul_(w, g)


def _rs_derivative(kind, logp, c1, c2):
    """f'(log p), differentiable (out of place)."""
    if kind == "sum":
        return torch.ones_like(logp)
    if kind == "powclamp":
        v = torch.exp(logp * c1)
        return torch.where(v > c2, v * c1, torch.zeros_like(v))
    if kind == "clampmin":
        return (logp > c1).to(logp.dtype)
    if c2:                # detached focal factor: f' = w, itself a function of log p (double backward)
        return _pow((-torch.expm1(logp)).clamp_min(0.0), c1)
    base = (-torch.expm1(logp)).clamp_min(tiny(logp.dtype))
    w = base ** c1
    return w - (c1 * logp) * (w / base - w)


def _pow(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """x ** gamma for x >= 0 (a fresh tensor), via the fastest exact kernel for the usual gammas."""
    if gamma == 0.5:
        return torch.sqrt(x)
    if gamma == 1.0:
        return x.clone()
    if gamma == 1.5:
        return torch.sqrt(x).mul_(x)
    if gamma == 2.0:
        return x * x
    if gamma == 3.0:
        return (x * x).mul_(x)
    return torch.log(x).mul_(gamma).exp_()              # cheaper than pow on CPU


class _RowSum(_Function):
    """``S = sum_k f(log p_k)`` over dim 1 (``kind``, constants ``c1``, ``c2``: see ``_rs_forward``)
    and, with an ``index``, ``log p_y`` gathered in the same Function, whose gradient is
    scatter-added into the same buffer. Returns ``(S, log p_y or an empty tensor, *temporaries)``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(logp, index, kind, c1, c2):
        S, aux = _rs_forward(kind, logp, c1, c2)
        logp_y = logp.gather(1, index).squeeze(1) if index is not None else S.new_empty(0)
        return (S, logp_y) + tuple(aux)

    @staticmethod
    def setup_context(ctx, inputs, output):
        logp, index, kind, c1, c2 = inputs
        ctx.kind, ctx.c1, ctx.c2, ctx.has_index = kind, c1, c2, index is not None
        ctx.save_for_backward(logp, index)
        ctx.mark_non_differentiable(*output[2:])
        if index is None:
            ctx.mark_non_differentiable(output[1])
        _keep_aux(ctx, output[2:])
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, g_S, g_y, *_):
        logp, index = ctx.saved_tensors
        kind, c1, c2 = ctx.kind, ctx.c1, ctx.c2
        g_y = g_y if ctx.has_index else None
        fast = _fast_backward()
        aux = _take_aux(ctx) if fast else None
        if g_S is not None:
            g = g_S.unsqueeze(1)
            if fast:
                if aux is None:                          # a second backward: recompute
                    aux = _rs_forward(kind, logp, c1, c2)[1]
                grad = _rs_fast(kind, logp, aux, g, c1, c2)
            else:
                grad = _rs_derivative(kind, logp, c1, c2) * g
        elif g_y is not None:
            grad = torch.zeros_like(logp)
        else:
            return None, None, None, None, None
        if g_y is not None:
            add = g_y.unsqueeze(1).to(grad.dtype)
            grad = grad.scatter_add_(1, index, add) if fast else grad.scatter_add(1, index, add)
        return grad, None, None, None, None


def _zero_label_entry_(v: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Set ``v``'s label entries (dim 1) to 0 in place and return ``v``. ``scatter_`` with a scalar
    has no ``vmap`` batching rule (a slow per-sample fallback, with a warning): under ``torch.func``
    transforms (and under ``torch.compile``, which fuses it) a ``masked_fill_`` with a broadcast class
    comparison does the same."""
    if torch.compiler.is_compiling() or _wrapped(v):
        classes = torch.arange(v.shape[1], device=v.device).view((1, -1) + (1,) * (v.dim() - 2))
        return v.masked_fill_(classes == index, 0.0)
    return v.scatter_(1, index, 0.0)


class _ClampedOffTarget(_Function):
    """``(sum_{k != y} max(p_k, eps), max(p_y, eps), log p_y)`` from the logits.

    Forward: one softmax (``p``, given), a clamp and a row sum; the label's entry is zeroed
    before summing, so the off-target mass is a sum of positive terms (no cancellation near
    ``p_y = 1``). ``log p_y`` is ``(z_y - max_k z_k) + log(max_k p_k)``: ``max p >= 1/C`` never
    underflows. Backward, w.r.t. the logits::

        d off / dz_j = p_j (m_j - S),   m_j = 1[j != y, p_j > eps],  S = sum_k m_k p_k
        d v_y / dz_j = 1[p_y > eps] p_y (1[j = y] - p_j)
        d log p_y / dz_j = 1[j = y] - p_j
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(logits, p, index, eps, with_logp_y):
        v = p.clamp_min(eps)
        v_y = v.gather(1, index)
        _zero_label_entry_(v, index)
        off = v.sum(1)
        if with_logp_y:
            logp_y = (logits.gather(1, index) - logits.amax(1, keepdim=True)) + p.amax(1, keepdim=True).log()
            logp_y = logp_y.squeeze(1)
        else:
            logp_y = off.new_empty(0)
        return off, v_y.squeeze(1), logp_y, v

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, p, index, eps, with_logp_y = inputs
        ctx.eps, ctx.with_logp_y = eps, with_logp_y
        ctx.save_for_backward(logits, p, index)
        ctx.mark_non_differentiable(output[3])
        if not with_logp_y:
            ctx.mark_non_differentiable(output[2])
        _keep_aux(ctx, output[3])
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, g_off, g_vy, g_l, _):
        logits, p, index = ctx.saved_tensors
        eps = ctx.eps
        if not ctx.with_logp_y:                          # the placeholder output has no gradient
            g_l = None
        fast = _fast_backward()
        v = _take_aux(ctx) if fast else None
        if not fast:
            p = torch.softmax(logits, 1)                 # differentiable: exact double backward
        # grad = g_off (w - p S) + d (e_y - p),  d = g_vy 1[p_y > eps] p_y + g_l
        d = None
        if g_vy is not None:
            p_y = p.gather(1, index)
            d = torch.where(p_y > eps, p_y, torch.zeros_like(p_y)) * g_vy.unsqueeze(1)
        if g_l is not None:
            d = g_l.unsqueeze(1) if d is None else d + g_l.unsqueeze(1)
        if g_off is not None:
            g = g_off.unsqueeze(1)
            if fast and v is not None:                   # max(p, eps) with 0 at y -> m_j p_j
                w = torch.threshold_(v, eps, 0.0)
            else:
                w = _zero_label_entry_(torch.where(p > eps, p, torch.zeros_like(p)), index)
            c = w.sum(1, keepdim=True) * g
            if d is not None:
                c = c + d
            grad = w.mul_(g).addcmul_(p, c, value=-1.0) if fast else w * g - p * c
        elif d is not None:
            grad = p * -d
        else:
            return None, None, None, None, None
        if d is not None:
            d = d.to(grad.dtype)
            grad = grad.scatter_add_(1, index, d) if fast else grad.scatter_add(1, index, d)
        return grad, None, None, None, None


class _SquareMass(_Function):
    """``(sum_k p_k^2, p_y)`` from the logits (``p`` given) with an analytic backward::

        d sum p^2 / dz_j = 2 p_j (p_j - sum_k p_k^2),   d p_y / dz_j = p_y (1[j = y] - p_j)
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(logits, p, index):
        return torch.linalg.vecdot(p, p, dim=1), p.gather(1, index).squeeze(1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, p, index = inputs
        ctx.save_for_backward(logits, p, index, *output)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, g_sq, g_py):
        logits, p, index, sq, p_y = ctx.saved_tensors
        if _fast_backward():                             # the forward's outputs: no second pass
            sq, p_y = sq.unsqueeze(1), p_y.unsqueeze(1)
        else:                                            # functions of the logits (double backward)
            p = torch.softmax(logits, 1)
            sq = torch.linalg.vecdot(p, p, dim=1).unsqueeze(1)
            p_y = p.gather(1, index)
        g2 = (g_sq.unsqueeze(1) * 2.0) if g_sq is not None else torch.zeros_like(sq)
        c = g2 * sq                                      # p_j (2g p_j - (2g sq + g_py p_y)) + g_py p_y e_y
        if g_py is not None:
            gp = g_py.unsqueeze(1) * p_y
            c = c + gp
        if _fast_backward():
            grad = (p * g2).sub_(c).mul_(p)
            return (grad.scatter_add_(1, index, gp) if g_py is not None else grad), None, None
        grad = (p * g2 - c) * p
        if g_py is not None:
            grad = grad.scatter_add(1, index, gp)
        return grad, None, None


class _LogProbSum(_Function):
    """``(sum_k log p_k, log p_y, p)`` from the logits (NCE's two parts; ``p`` non-differentiable,
    for other terms). Backward, w.r.t. the logits::

        d sum_k log p_k / dz_j = 1 - C p_j,    d log p_y / dz_j = 1[j = y] - p_j
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(logits, index):
        logp = torch.log_softmax(logits, dim=1)
        total = logp.sum(1)
        logp_y = logp.gather(1, index).squeeze(1)
        return total, logp_y, logp.exp_()

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, index = inputs
        ctx.save_for_backward(logits, index, output[2])
        ctx.mark_non_differentiable(output[2])
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, g_total, g_y, _):
        logits, index, p = ctx.saved_tensors
        if g_total is None and g_y is None:
            return None, None
        fast = _fast_backward()
        if not fast:
            p = torch.softmax(logits, 1)
        c = None
        if g_total is not None:
            g_total = g_total.unsqueeze(1)
            c = g_total * p.shape[1]
        if g_y is not None:
            g_y = g_y.unsqueeze(1)
            c = g_y if c is None else c + g_y
        grad = p * -c
        if fast:
            if g_total is not None:
                grad.add_(g_total)
            return (grad.scatter_add_(1, index, g_y.to(grad.dtype)) if g_y is not None else grad), None
        if g_total is not None:
            grad = grad + g_total
        if g_y is not None:
            grad = grad.scatter_add(1, index, g_y.to(grad.dtype))
        return grad, None


def step(x: torch.Tensor) -> torch.Tensor:
    """``1[x > 0]`` for ``x >= 0`` as a float tensor, by arithmetic (faster than comparisons on CPU)."""
    return torch.sign(x)


def tiny(dtype: torch.dtype) -> float:
    """Smallest positive normal number of ``dtype`` (guards ``x**g`` gradients at ``x = 0``)."""
    return torch.finfo(dtype).tiny
