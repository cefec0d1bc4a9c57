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

    def logp(self) -> torch.Tensor:
        """``log_softmax(logits, dim=1)``, shape (N, C, ...), computed once."""
        if self._logp is None:
            self._logp = F.log_softmax(self.logits, dim=1)
        return self._logp

    def logp_y(self) -> torch.Tensor:
        """``log p_y`` of shape (N, ...), gathered from :meth:`logp` (no one-hot)."""
        if self._logp_y is None:
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
                    self._p = torch.softmax(self.logits, dim=1)
        return self._p

    def p_y(self) -> torch.Tensor:
        """``p_y = exp(log p_y)``, shape (N, ...)."""
        return self.logp_y().exp()

    def one_minus_p_y(self) -> torch.Tensor:
        """``1 - p_y`` computed as ``-expm1(log p_y)`` (exact near ``p_y = 1``; +0, not -0, at 1)."""
        return 0.0 - torch.expm1(self.logp_y())

    def gather(self, values: torch.Tensor) -> torch.Tensor:
        """Pick the label's entry of a (N, C, ...) tensor: returns (N, ...)."""
        return values.gather(1, self.index).squeeze(1)


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
    if target.device.type == "cpu":
        # Host-side checks are free of device syncs on CPU: report bad labels clearly.
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



def _first_order_only(what: str) -> None:
    """Refuse a double backward (``create_graph=True``) through a hand-written backward."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            "this asymloss loss supports first-order gradients only; double backward "
            f"(create_graph=True) is not differentiable through its {what}."
        )

class _RowSum(torch.autograd.Function):
    """``S = sum_k g(log p_k)`` over dim 1 with a hand-written backward.

    ``fwd(logp) -> (S, aux)`` runs without autograd (free to work in place on its own temporaries);
    ``bwd(logp, aux, grad_S) -> grad_logp`` (``grad_S`` already unsqueezed to broadcast over dim 1)
    computes ``g'(log p) * grad_S`` from the saved ``aux``, usually without another transcendental
    function; it may overwrite ``aux`` and return it as the gradient (fresh (N, C) buffers cost
    page faults on CPU): a second backward through the same graph recomputes ``aux`` first. This halves the passes over the (N, C, ...) tensor compared with autograd through
    ``clamp``/``exp``/``pow``. First-order only: a double backward raises an error.

    With an ``index`` it also returns ``log p_y`` gathered at it, whose gradient is scatter-added
    into the same buffer (no zero-filled (N, C, ...) tensor and no extra sum of two gradients).
    """

    @staticmethod
    def forward(ctx, logp, fwd, bwd, index):
        S, aux = fwd(logp)
        ctx.fwd, ctx.bwd, ctx.index = fwd, bwd, index
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(logp)
        ctx.aux = aux  # no-grad temporaries (no reference cycle); bwd may reuse them as its buffer
        if index is None:
            return S, None
        return S, logp.gather(1, index).squeeze(1)

    @staticmethod
    def backward(ctx, grad_S, grad_y):
        _first_order_only("fused row sum")
        (logp,) = ctx.saved_tensors
        aux = ctx.aux
        if aux is None:  # a second backward (retain_graph=True): the first one consumed aux
            aux = ctx.fwd(logp)[1]
        ctx.aux = None
        if grad_S is not None:
            grad = ctx.bwd(logp, aux, grad_S.unsqueeze(1))
        elif grad_y is not None:
            grad = torch.zeros_like(logp)
        else:
            return None, None, None, None
        if grad_y is not None:
            grad.scatter_add_(1, ctx.index, grad_y.unsqueeze(1).to(grad.dtype))
        return grad, None, None, None


def row_sum(logp: torch.Tensor, fwd, bwd, batch: "Optional[Batch]" = None) -> torch.Tensor:
    """``sum_k g(log p_k)`` along dim 1 with the fused backward of :class:`_RowSum`.

    With ``batch`` (whose ``logp()`` is ``logp``) and ``log p_y`` not computed yet, ``log p_y`` is
    gathered inside the same Function and cached on the batch (one backward buffer for both).
    """
    if batch is None or batch._logp_y is not None:
        return _RowSum.apply(logp, fwd, bwd, None)[0]
    S, logp_y = _RowSum.apply(logp, fwd, bwd, batch.index)
    batch._logp_y = logp_y
    return S


class _ClampedOffTarget(torch.autograd.Function):
    """``(sum_{k != y} max(p_k, eps), max(p_y, eps), log p_y)`` from the logits, analytic backward.

    Forward: one softmax (or ``exp`` of the cached ``log p``), a clamp and a row sum; the label's
    entry is zeroed before summing, so the off-target mass is a sum of positive terms (no
    cancellation near ``p_y = 1``). ``log p_y`` (only ``with_logp_y``) is
    ``(z_y - max_k z_k) + log(max_k p_k)``: ``max p >= 1/C`` never underflows, so it is finite for
    any finite logits, without a log_softmax pass. Backward, w.r.t. the logits directly::

        d off / dz_j = p_j (m_j - S),   m_j = 1[j != y, p_j > eps],  S = sum_k m_k p_k
        d v_y / dz_j = 1[p_y > eps] p_y (1[j = y] - p_j)
        d log p_y / dz_j = 1[j = y] - p_j

    Saves ``p``; the first backward works in the clamp's buffer. First-order only.
    """

    @staticmethod
    def forward(ctx, logits, batch, eps, with_logp_y):
        p = batch.p_detached()
        index = batch.index
        v = p.clamp_min(eps)
        v_y = v.gather(1, index)
        v.scatter_(1, index, 0.0)
        off = v.sum(1)
        ctx.eps = eps
        ctx.index = index
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(p)
        ctx.v = v  # no-grad temporary, reused as the gradient buffer by the first backward
        logp_y = None
        if with_logp_y:
            logp_y = (logits.gather(1, index) - logits.amax(1, keepdim=True)).add_(p.amax(1, keepdim=True).log_())
            logp_y = logp_y.squeeze(1)
        return off, v_y.squeeze(1), logp_y

    @staticmethod
    def backward(ctx, g_off, g_vy, g_l):
        _first_order_only("fused clamp")
        (p,) = ctx.saved_tensors
        index, eps = ctx.index, ctx.eps
        v, ctx.v = ctx.v, None
        # grad = g_off (w - p S) + d (e_y - p), d = g_vy 1[p_y > eps] p_y + g_l
        d = None
        if g_vy is not None:
            p_y = p.gather(1, index)
            d = torch.where(p_y > eps, p_y, 0.0).mul_(g_vy.unsqueeze(1))
        if g_l is not None:
            d = g_l.unsqueeze(1) if d is None else d.add_(g_l.unsqueeze(1))
        if g_off is not None:
            g = g_off.unsqueeze(1)
            if v is not None:                            # max(p, eps) with 0 at y -> m_j p_j
                w = torch.threshold_(v, eps, 0.0)
            else:                                        # second backward (retain_graph=True)
                w = F.threshold(p, eps, 0.0).scatter_(1, index, 0.0)
            c = w.sum(1, keepdim=True).mul_(g)
            if d is not None:
                c = c.add_(d)
            grad = w.mul_(g).addcmul_(p, c, value=-1.0)
        elif d is not None:
            grad = p * -d
        else:
            return None, None, None, None
        if d is not None:
            grad.scatter_add_(1, index, d.to(grad.dtype))
        return grad, None, None, None


def clamped_off_target(batch: "Batch", eps: float, with_logp_y: bool = False):
    """``(sum_{k != y} max(p_k, eps), max(p_y, eps), log p_y or None)``, each (N, ...), with the
    fused backward of :class:`_ClampedOffTarget`."""
    return _ClampedOffTarget.apply(batch.logits, batch, eps, with_logp_y)


class _SquareMass(torch.autograd.Function):
    """``(sum_k p_k^2, p_y)`` from the logits with an analytic backward (no log_softmax)::

        d sum p^2 / dz_j = 2 p_j (p_j - sum_k p_k^2),   d p_y / dz_j = p_y (1[j = y] - p_j)

    One softmax (or ``exp`` of the cached ``log p``) and one dot product forward, three elementwise
    passes backward on one temporary. Saves ``p`` only. First-order only.
    """

    @staticmethod
    def forward(ctx, logits, batch):
        p = batch.p_detached()
        sq = torch.linalg.vecdot(p, p, dim=1)
        p_y = p.gather(1, batch.index)
        ctx.index = batch.index
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(p, sq, p_y)
        return sq, p_y.squeeze(1)

    @staticmethod
    def backward(ctx, g_sq, g_py):
        _first_order_only("fused sum of squares")
        p, sq, p_y = ctx.saved_tensors
        index = ctx.index
        g2 = (g_sq if g_sq is not None else torch.zeros_like(sq)).unsqueeze(1) * 2.0
        c = g2 * sq.unsqueeze(1)                         # p_j (2g p_j - (2g sq + g_py p_y)) + g_py p_y e_y
        if g_py is not None:
            gp = g_py.unsqueeze(1) * p_y
            c = c + gp
        grad = (p * g2).sub_(c).mul_(p)
        if g_py is not None:
            grad.scatter_add_(1, index, gp)
        return grad, None


def square_mass(batch: "Batch"):
    """``(sum_k p_k^2, p_y)``, each (N, ...), with the fused backward of :class:`_SquareMass`."""
    return _SquareMass.apply(batch.logits, batch)


class _LogProbSum(torch.autograd.Function):
    """``(sum_k log p_k, log p_y)`` from the logits with an analytic backward (NCE's two parts).

    Forward: one log_softmax, its row sum and the label's entry; then the same buffer is turned
    into ``p = exp(log p)`` in place, which the backward needs and which is shared with the
    batch (:meth:`Batch.p_detached`) for the fused passive terms. Backward, w.r.t. the logits::

        d sum_k log p_k / dz_j = 1 - C p_j,    d log p_y / dz_j = 1[j = y] - p_j

    one (N, C, ...) buffer, no log_softmax backward. First-order only.
    """

    @staticmethod
    def forward(ctx, logits, batch):
        logp = torch.log_softmax(logits, dim=1)
        index = batch.index
        total = logp.sum(1)
        logp_y = logp.gather(1, index).squeeze(1)
        p = logp.exp_()
        if batch._p is None:
            batch._p = p
        ctx.index = index
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(p)
        return total, logp_y

    @staticmethod
    def backward(ctx, g_total, g_y):
        _first_order_only("fused log-probability sum")
        (p,) = ctx.saved_tensors
        if g_total is None and g_y is None:
            return None, None
        c = None
        if g_total is not None:
            g_total = g_total.unsqueeze(1)
            c = g_total * p.shape[1]
        if g_y is not None:
            g_y = g_y.unsqueeze(1)
            c = g_y if c is None else c + g_y
        grad = p * c.neg_() if c is not g_y else p * -c
        if g_total is not None:
            grad.add_(g_total)
        if g_y is not None:
            grad.scatter_add_(1, ctx.index, g_y.to(grad.dtype))
        return grad, None


def log_prob_sum(batch: "Batch"):
    """``(sum_k log p_k, log p_y)``, each (N, ...), with the fused backward of :class:`_LogProbSum`;
    caches ``log p_y`` and ``p`` on the batch (not ``log p``: its buffer becomes ``p``)."""
    total, logp_y = _LogProbSum.apply(batch.logits, batch)
    if batch._logp_y is None:
        batch._logp_y = logp_y
    return total, logp_y


def step(x: torch.Tensor) -> torch.Tensor:
    """``1[x > 0]`` for ``x >= 0`` as a float tensor, by arithmetic (faster than comparisons on CPU)."""
    return torch.sign(x)


def tiny(dtype: torch.dtype) -> float:
    """Smallest positive normal number of ``dtype`` (guards ``x**g`` gradients at ``x = 0``)."""
    return torch.finfo(dtype).tiny
