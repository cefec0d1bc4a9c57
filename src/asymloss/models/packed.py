"""R models of one architecture as one packed model (grouped convolutions, batched linear layers).

:func:`pack_models` turns R models built by :func:`~asymloss.models.create_model` with the same
arguments (their weights may differ) into one module whose computation is the R models side by
side:

- every activation carries the R runs along dimension 1, run-major: an image batch of the pack is
  ``(B, R*C, H, W)`` where channels ``r*C .. (r+1)*C - 1`` are run ``r``'s, and a flat activation
  is ``(B, R*F)``;
- ``Conv2d(C_in, C_out, groups=g)`` becomes ``Conv2d(R*C_in, R*C_out, groups=R*g)``: each group
  only sees its own run's channels;
- ``BatchNorm1d/2d(C)`` becomes ``BatchNorm(R*C)``: batch norm is per channel, so this *is* R
  separate batch norms (batch statistics, running statistics and affine parameters per run);
- ``Linear(F, O)`` becomes :class:`PackedLinear` (weights ``(R, O, F)``, one ``baddbmm``);
- parameter-free modules that act per channel or per sample (ReLU, pooling, Flatten, Identity,
  containers) and the models' own ``forward`` code (residual additions, ``F.relu``, global
  average pooling, ``flatten(1)``) work unchanged on the packed layout.

Every packed parameter and buffer holds the R runs' tensors stacked along dimension 0 (a
convolution's ``R*C_out`` output channels, a linear layer's ``R``), so ``t.unflatten(0, (R, -1))[r]``
is run ``r``'s tensor, and per-run quantities (gradient norms, L1 penalties) are reductions over
``t.reshape(R, -1)``. :meth:`PackedModel.run_state_dict` returns a run's state dict in the single
model's format (same keys, shapes and values) and :meth:`PackedModel.load_run_state_dict` loads one.

    >>> import torch
    >>> from asymloss.models import create_model
    >>> from asymloss.models.packed import pack_models
    >>> models = [create_model("cnn4", 10, 1, 28) for _ in range(3)]
    >>> packed = pack_models(models, example=torch.randn(2, 1, 28, 28))
    >>> packed(torch.randn(5, 3 * 1, 28, 28)).shape          # (R, B, K)
    torch.Size([3, 5, 10])
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

__all__ = ["PackedLinear", "PackedModel", "pack_models", "PackingError"]

# Modules without parameters that act per sample and per channel, so they work on the packed layout.
_PASS_THROUGH = (
    nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.MaxPool2d, nn.AvgPool2d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Sequential, nn.ModuleList,
)


class PackingError(TypeError):
    """The models cannot be packed (an unsupported layer, or different architectures)."""


class PackedLinear(nn.Module):
    """R independent ``Linear(in_features, out_features)`` layers on a ``(B, R*in)`` input.

    ``weight`` is ``(R, out, in)`` and ``bias`` ``(R, out)``; the output is ``(B, R*out)``.
    """

    def __init__(self, runs: int, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.runs, self.in_features, self.out_features = runs, in_features, out_features
        self.weight = nn.Parameter(torch.empty(runs, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(runs, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xr = x.reshape(b, self.runs, self.in_features).transpose(0, 1)  # (R, B, in)
        wt = self.weight.transpose(1, 2)  # (R, in, out)
        if self.bias is not None:
            out = torch.baddbmm(self.bias.unsqueeze(1), xr, wt)
        else:
            out = torch.bmm(xr, wt)
        return out.transpose(0, 1).reshape(b, self.runs * self.out_features)

    def extra_repr(self) -> str:
        return f"runs={self.runs}, in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def _packed_module(m: nn.Module, runs: int) -> nn.Module:
    """The packed counterpart of one leaf module (parameters uninitialised), or ``m`` itself."""
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros":
            raise PackingError(f"cannot pack {m}: padding_mode {m.padding_mode!r} (only 'zeros').")
        return nn.Conv2d(runs * m.in_channels, runs * m.out_channels, m.kernel_size, m.stride, m.padding,
                         m.dilation, groups=runs * m.groups, bias=m.bias is not None)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return type(m)(runs * m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                       track_running_stats=m.track_running_stats)
    if isinstance(m, nn.Linear):
        return PackedLinear(runs, m.in_features, m.out_features, bias=m.bias is not None)
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise PackingError(f"cannot pack {m}: only Flatten(1, -1) keeps the runs apart.")
        return m
    if isinstance(m, nn.Dropout) or "Dropout" in type(m).__name__:
        raise PackingError(f"cannot pack {m}: dropout draws from the global random stream, not per run.")
    own = list(m.parameters(recurse=False)) + list(m.buffers(recurse=False))
    if own and not isinstance(m, _PASS_THROUGH):
        raise PackingError(f"cannot pack a {type(m).__name__}: a layer with parameters or buffers that "
                           "asymloss.models.packed does not know how to keep per run.")
    return m


def _replace_leaves(module: nn.Module, runs: int) -> None:
    for name, child in list(module.named_children()):
        new = _packed_module(child, runs)
        if new is child:
            _replace_leaves(child, runs)
        else:
            setattr(module, name, new)


class PackedModel(nn.Module):
    """R copies of a template architecture trained side by side (see the module docstring).

    ``forward(x)`` takes ``(B, R*C, H, W)`` (run ``r``'s images in channels ``r*C:(r+1)*C``) and
    returns the logits as ``(R, B, K)`` (contiguous, so ``out[r]`` is run ``r``'s ``(B, K)``).
    """

    def __init__(self, template: nn.Module, runs: int) -> None:
        super().__init__()
        if runs < 1:
            raise ValueError(f"runs must be >= 1; got {runs}.")
        self.runs = runs
        net = copy.deepcopy(template)
        _replace_leaves(net, runs)
        self.net = net
        self._single_shapes = {k: tuple(v.shape) for k, v in template.state_dict().items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)  # (B, R*K)
        b = out.shape[0]
        return out.reshape(b, self.runs, -1).transpose(0, 1).contiguous()

    # -- per-run views --------------------------------------------------------------------------
    def _split(self, key: str, t: torch.Tensor) -> torch.Tensor:
        """``t`` (packed) as a view ``(R, *single_shape)`` (splitting dimension 0 is always a view)."""
        return t.view(self.runs, *self._single_shapes[key])

    def run_state_dict(self, r: int) -> dict[str, torch.Tensor]:
        """Run ``r``'s state dict, as the single model's ``state_dict()`` (keys, shapes, dtypes)."""
        out = {}
        for key, t in self.state_dict().items():
            single = key[len("net."):]
            if t.dim() == 0:
                out[single] = t.detach().clone()
            else:
                out[single] = self._split(single, t.detach())[r].clone()
        return out

    @torch.no_grad()
    def load_run_state_dict(self, r: int, state: dict[str, torch.Tensor]) -> None:
        """Copy a single model's ``state_dict`` into run ``r``'s slices (strict on keys and shapes)."""
        own = self.state_dict(keep_vars=True)
        keys = {k[len("net."):] for k in own}
        if set(state) != keys:
            missing, extra = sorted(keys - set(state)), sorted(set(state) - keys)
            raise PackingError(f"state dict does not fit the packed architecture (missing {missing}, unexpected {extra}).")
        for key, t in own.items():
            single = key[len("net."):]
            src = state[single]
            if tuple(src.shape) != self._single_shapes[single]:
                raise PackingError(f"{single}: shape {tuple(src.shape)}, expected {self._single_shapes[single]}.")
            if t.dim() == 0:  # num_batches_tracked: one count, the same for every run of a pack
                t.copy_(src)
            else:
                self._split(single, t)[r].copy_(src)


def pack_models(models: Sequence[nn.Module], *, example: torch.Tensor | None = None) -> PackedModel:
    """One :class:`PackedModel` holding ``models`` (same architecture), each run's weights copied in.

    With ``example`` (a small single-run input batch, e.g. ``torch.randn(2, C, H, W)``), the packed
    model's output is compared with each model's (evaluation mode, nothing is updated): a model
    whose ``forward`` mixes channels in a way the packed layout cannot express raises
    :class:`PackingError`.
    """
    models = list(models)
    if not models:
        raise ValueError("pack_models needs at least one model.")
    template = models[0]
    shapes = {k: tuple(v.shape) for k, v in template.state_dict().items()}
    for m in models[1:]:
        if type(m) is not type(template) or {k: tuple(v.shape) for k, v in m.state_dict().items()} != shapes:
            raise PackingError("all models of a pack must have the same architecture.")
    packed = PackedModel(template, len(models))
    ref = next(template.parameters())
    packed.to(device=ref.device, dtype=ref.dtype)
    for r, m in enumerate(models):
        packed.load_run_state_dict(r, m.state_dict())
    if example is not None:
        check_packed(models, packed, example.to(device=ref.device, dtype=ref.dtype))
    return packed


@torch.no_grad()
def check_packed(models: Sequence[nn.Module], packed: PackedModel, x: torch.Tensor,
                 rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Raise :class:`PackingError` unless ``packed`` computes each of ``models`` on its own input
    (``x``, a single-run batch, scaled and rolled differently per run; evaluation mode: nothing is
    updated)."""
    modes = [m.training for m in models] + [packed.training]
    for m in models:
        m.eval()
    packed.eval()
    try:
        R = len(models)
        xs = [torch.roll(x, r, 0) * (1.0 + r / R) for r in range(R)]  # a different input per run
        out = packed(torch.stack(xs, 1).flatten(1, 2))
        for r, m in enumerate(models):
            ref = m(xs[r])
            scale = max(1.0, float(ref.abs().max()))
            if out[r].shape != ref.shape or not torch.allclose(out[r], ref, rtol=rtol, atol=atol * scale):
                diff = float((out[r] - ref).abs().max()) if out[r].shape == ref.shape else float("nan")
                raise PackingError(f"the packed model does not compute run {r}'s model (max difference "
                                   f"{diff:.3g}): its forward mixes channels in a way packing cannot express.")
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)
        packed.train(modes[-1])
