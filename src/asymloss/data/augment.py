"""Batched image augmentation on the device of the batch, driven by an explicit ``torch.Generator``.

Every function takes a float batch ``(N, C, H, W)`` and draws one set of random parameters per
sample, vectorised (no Python loop over samples). The random numbers are drawn with
``generator`` on the generator's device and then moved to the batch's device, so a CPU generator
with a given seed gives the same augmentation on CPU and GPU batches.

Equivalence with torchvision (applied per image, in ``[0, 1]`` float units):

==============================================  ============================================
asymloss.data.augment                           torchvision.transforms
==============================================  ============================================
``random_crop(x, padding=4, generator=g)``      ``RandomCrop(32, padding=4)`` (zero padding;
                                                offsets ``i, j`` uniform in ``0..2*padding``)
``hflip(x, generator=g)``                       ``RandomHorizontalFlip()`` (p = 0.5)
``random_rotation(x, 20, generator=g)``         ``RandomRotation(20, interpolation=BILINEAR)``
                                                (angle uniform in [-20, 20] degrees,
                                                counter-clockwise, about the image centre,
                                                zero fill, no expand). torchvision's default
                                                interpolation is NEAREST: pass
                                                ``mode="nearest"`` for that.
``normalize(x, mean, std)``                     ``Normalize(mean, std)``
==============================================  ============================================

The distributions are the same; the random streams are not (torchvision draws per image from
the global generator). Example::

    g = torch.Generator().manual_seed(0)
    aug = Augment(crop_padding=4, hflip=True, mean=ds.mean, std=ds.std)
    xb = aug(ds.x_train[:128].to(device).float() / 255, generator=g)
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .._validation import check_choice, check_number

__all__ = ["random_crop", "hflip", "random_rotation", "rotate", "normalize", "to_float", "Augment"]


def _check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a batch tensor of shape (N, C, H, W); got {shape}.")


def _uniform(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gdev = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(n, generator=generator, device=gdev, dtype=torch.float64).to(device)


def _randint(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gdev = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(0, high, (n,), generator=generator, device=gdev).to(device)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (``ToTensor``'s scaling)."""
    return x.to(torch.float32).div_(255.0) if x.dtype == torch.uint8 else x.to(torch.float32)


def crop_at(x: torch.Tensor, padding: int, top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
    """Crop each image ``n`` of the zero-padded batch at ``(top[n], left[n])`` (same output size).

    One padded tensor and index arithmetic: output ``[n, c, h, w] = padded[n, c, top[n] + h,
    left[n] + w]``, done as a single ``gather`` on the flattened padded planes.
    """
    n, c, h, w = x.shape
    wp = w + 2 * padding
    padded = F.pad(x, (padding, padding, padding, padding)).reshape(n, c, -1)
    rows = top.view(n, 1, 1) + torch.arange(h, device=x.device).view(1, h, 1)
    cols = left.view(n, 1, 1) + torch.arange(w, device=x.device).view(1, 1, w)
    flat = (rows * wp + cols).view(n, 1, h * w).expand(n, c, h * w)
    return padded.gather(2, flat).view(n, c, h, w)


def random_crop(x: torch.Tensor, padding: int = 4, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by ``padding`` on each side and crop back to ``(H, W)`` at a random offset per image.

    Equivalent to torchvision ``RandomCrop((H, W), padding=padding)`` (fill 0, constant mode): the
    offsets ``top, left`` are uniform on ``0..2*padding``.

    Args:
        x: ``(N, C, H, W)`` float (or uint8) batch on any device.
        padding: pixels of zero padding per side (``>= 0``).
        generator: source of randomness (its own device; values are moved to ``x.device``).
    Returns:
        ``(N, C, H, W)``, same dtype and device.
    """
    _check_batch(x)
    check_number("padding", padding, ge=0, integer=True)
    if padding == 0:
        return x
    n = x.shape[0]
    top = _randint(2 * padding + 1, n, generator, x.device)
    left = _randint(2 * padding + 1, n, generator, x.device)
    return crop_at(x, padding, top, left)


def hflip(x: torch.Tensor, p: float = 0.5, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability ``p`` (torchvision ``RandomHorizontalFlip(p)``)."""
    _check_batch(x)
    check_number("p", p, ge=0, le=1)
    flip = _uniform(x.shape[0], generator, x.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def rotate(x: torch.Tensor, angles: torch.Tensor, *, mode: str = "bilinear") -> torch.Tensor:
    """Rotate image ``n`` by ``angles[n]`` degrees counter-clockwise about its centre, zero fill.

    Output pixel ``(i, j)`` (centre ``((H-1)/2, (W-1)/2)``) samples the input at the pixel
    position rotated back by the angle, with ``grid_sample`` (``align_corners=False``, zero padding):
    torchvision's ``F.rotate`` convention. Works for non-square images (the map is a rotation in
    pixel units, not in normalised coordinates).
    """
    _check_batch(x)
    check_choice("mode", mode, ("bilinear", "nearest"))
    n, _, h, w = x.shape
    a = angles.to(device=x.device, dtype=torch.float64) * (math.pi / 180.0)
    cos, sin = torch.cos(a), torch.sin(a)
    # source (pixel units, relative to the centre, y down) = [[cos, -sin], [sin, cos]] @ output.
    # affine_grid works in normalised units u = 2x/W, v = 2y/H: theta = S R S^-1, S = diag(2/W, 2/H).
    theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=x.device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * (h / w)
    theta[:, 1, 0] = sin * (w / h)
    theta[:, 1, 1] = cos
    dtype = x.dtype if x.is_floating_point() else torch.float32
    grid = F.affine_grid(theta.to(dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x.to(dtype), grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out if x.is_floating_point() else out.round().clamp(0, 255).to(x.dtype)


def random_rotation(
    x: torch.Tensor, degrees: float, *, generator: torch.Generator | None = None, mode: str = "bilinear"
) -> torch.Tensor:
    """Rotate each image by an angle uniform in ``[-degrees, degrees]`` (counter-clockwise positive).

    Equivalent to torchvision ``RandomRotation(degrees, interpolation=BILINEAR)`` (fill 0, centre,
    no expand); ``mode="nearest"`` matches torchvision's default interpolation.
    """
    _check_batch(x)
    check_number("degrees", degrees, ge=0)
    if degrees == 0:
        return x
    angles = (_uniform(x.shape[0], generator, x.device) * 2.0 - 1.0) * degrees
    return rotate(x, angles, mode=mode)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean[c]) / std[c]`` per channel (torchvision ``Normalize``), for float ``x``."""
    _check_batch(x)
    c = x.shape[1]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"mean and std need {c} entries (one per channel of x); got {list(mean)}, {list(std)}.")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be positive; got {list(std)}.")
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
    return (x - m) / s


class Augment:
    """Composable training augmentation: crop (zero padding) -> horizontal flip -> rotation -> normalise.

    Args:
        crop_padding: padding of the random crop (0 = no crop).
        hflip: flip left-right with probability 0.5.
        rotation: maximum rotation in degrees (0 = none).
        mean, std: if given, normalise last (per channel).
        mode: interpolation of the rotation, ``"bilinear"`` or ``"nearest"``.

    Called on a float batch ``(N, C, H, W)`` (uint8 batches are scaled to [0, 1] first) with an
    explicit ``generator``; returns a float batch on the same device.

    >>> aug = Augment(crop_padding=4, hflip=True)  # torchvision: RandomCrop(32, 4), RandomHorizontalFlip()
    >>> aug(torch.zeros(2, 3, 32, 32), generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        crop_padding: int = 0,
        hflip: bool = False,
        rotation: float = 0.0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        mode: str = "bilinear",
    ) -> None:
        self.crop_padding = int(check_number("crop_padding", crop_padding, ge=0, integer=True))
        if not isinstance(hflip, bool):
            raise TypeError(f"hflip must be True or False; got {hflip!r}.")
        self.hflip = hflip
        self.rotation = float(check_number("rotation", rotation, ge=0, le=180))
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together (or neither).")
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None
        self.mode = check_choice("mode", mode, ("bilinear", "nearest"))

    @property
    def active(self) -> bool:
        """Whether any random transform (crop, flip, rotation) is switched on."""
        return bool(self.crop_padding or self.hflip or self.rotation)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x)
        x = to_float(x) if not x.is_floating_point() else x
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, generator=generator)
        if self.hflip:
            x = hflip(x, generator=generator)
        if self.rotation:
            x = random_rotation(x, self.rotation, generator=generator, mode=self.mode)
        if self.mean is not None:
            x = normalize(x, self.mean, self.std)
        return x

    def __repr__(self) -> str:
        return (
            f"Augment(crop_padding={self.crop_padding}, hflip={self.hflip}, rotation={self.rotation}, "
            f"mean={self.mean}, std={self.std}, mode={self.mode!r})"
        )
