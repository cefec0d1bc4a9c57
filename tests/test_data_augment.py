"""Batched augmentation against independent per-sample reference implementations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asymloss.data import Augment
from asymloss.data.augment import crop_at, hflip, normalize, random_crop, random_rotation, rotate, to_float


def _ref_crop(img: np.ndarray, p: int, top: int, left: int) -> np.ndarray:
    """torchvision RandomCrop(padding=p) on one image: zero-pad, then slice at (top, left)."""
    c, h, w = img.shape
    padded = np.zeros((c, h + 2 * p, w + 2 * p), img.dtype)
    padded[:, p : p + h, p : p + w] = img
    return padded[:, top : top + h, left : left + w]


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 5),
    c=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    p=st.integers(0, 4),
    seed=st.integers(0, 10_000),
)
def test_crop_at_equals_slicing_padded_image(n, c, h, w, p, seed):
    rng = np.random.default_rng(seed)
    x = rng.random((n, c, h, w))
    top = rng.integers(0, 2 * p + 1, n)
    left = rng.integers(0, 2 * p + 1, n)
    out = crop_at(torch.from_numpy(x), p, torch.from_numpy(top), torch.from_numpy(left)).numpy()
    for i in range(n):
        np.testing.assert_array_equal(out[i], _ref_crop(x[i], p, top[i], left[i]))


def test_random_crop_offsets_uniform_over_all_positions():
    p, n = 2, 2500  # 25 offsets, 100 expected each
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 5, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 1.0  # no zeros
    out = random_crop(x, p, generator=g).numpy()
    xs = x.numpy()
    counts = np.zeros((2 * p + 1, 2 * p + 1), int)
    for t in range(2 * p + 1):
        for l in range(2 * p + 1):
            ref = np.stack([_ref_crop(img, p, t, l) for img in xs])
            counts[t, l] = np.all(out == ref, axis=(1, 2, 3)).sum()
    assert counts.sum() == n  # every output is exactly one padded slice of its own input
    # chi-square with 24 d.o.f.: the 99.9% quantile is 51.2
    chi2 = ((counts - n / 25) ** 2 / (n / 25)).sum()
    assert chi2 < 51.2, counts


def test_random_crop_uint8_and_determinism():
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a = random_crop(x, 4, generator=torch.Generator().manual_seed(5))
    b = random_crop(x, 4, generator=torch.Generator().manual_seed(5))
    c = random_crop(x, 4, generator=torch.Generator().manual_seed(6))
    assert a.dtype == torch.uint8 and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(random_crop(x, 0), x)


def test_hflip():
    x = torch.rand(4000, 1, 2, 3, generator=torch.Generator().manual_seed(0))
    out = hflip(x, generator=torch.Generator().manual_seed(1))
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert torch.all(flipped ^ same)  # each image is either mirrored or untouched
    assert abs(flipped.double().mean().item() - 0.5) < 0.03  # 4000 draws: sd 0.008
    assert torch.equal(hflip(x, p=0.0), x) and torch.equal(hflip(x, p=1.0), x.flip(-1))
    assert torch.equal(x.flip(-1)[0, 0, 0], x[0, 0, 0].flip(0))


def test_rotation_exact_cases():
    x = torch.rand(3, 2, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(rotate(x, torch.zeros(3)).numpy(), x.numpy(), atol=1e-12)
    # counter-clockwise, like numpy.rot90 / torch.rot90 with k=1 on (H, W)
    np.testing.assert_allclose(rotate(x, torch.full((3,), 90.0)).numpy(), torch.rot90(x, 1, (2, 3)).numpy(), atol=1e-12)
    np.testing.assert_allclose(rotate(x, torch.full((3,), -90.0)).numpy(), torch.rot90(x, -1, (2, 3)).numpy(), atol=1e-12)
    # 180 degrees on a non-square image flips both axes
    y = torch.rand(2, 1, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(rotate(y, torch.full((2,), 180.0)).numpy(), y.flip(2, 3).numpy(), atol=1e-12)
    # per-sample angles
    z = rotate(x, torch.tensor([0.0, 90.0, 180.0]))
    np.testing.assert_allclose(z[2].numpy(), x[2].flip(1, 2).numpy(), atol=1e-12)
    np.testing.assert_allclose(z[0].numpy(), x[0].numpy(), atol=1e-12)


def _ref_rotate(img: np.ndarray, deg: float) -> np.ndarray:
    """float64 reference: output pixel (i, j) samples the input at the centre-relative position rotated
    back by ``deg`` (counter-clockwise positive, y down), bilinear, zero outside."""
    c, h, w = img.shape
    a = math.radians(deg)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            dx, dy = j - cx, i - cy
            sx = cx + math.cos(a) * dx - math.sin(a) * dy
            sy = cy + math.sin(a) * dx + math.cos(a) * dy
            x0, y0 = math.floor(sx), math.floor(sy)
            for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                    if 0 <= yy < h and 0 <= xx < w:
                        out[:, i, j] += wy * wx * img[:, yy, xx]
    return out


@pytest.mark.parametrize("h,w", [(7, 7), (6, 9), (9, 5)])
def test_rotation_matches_float64_reference(h, w):
    rng = np.random.default_rng(h * w)
    x = rng.random((4, 2, h, w))
    angles = np.array([13.0, -20.0, 37.5, 161.0])
    out = rotate(torch.from_numpy(x), torch.from_numpy(angles)).numpy()
    for i in range(4):
        np.testing.assert_allclose(out[i], _ref_rotate(x[i], angles[i]), atol=1e-10)


def test_random_rotation_angles_in_range_and_direction():
    # a single bright pixel right of the centre; a CCW rotation by a moves it up (y decreases)
    n = 400
    x = torch.zeros(n, 1, 21, 21, dtype=torch.float64)
    x[:, 0, 10, 18] = 1.0
    out = random_rotation(x, 20.0, generator=torch.Generator().manual_seed(0))
    ys, xs = torch.meshgrid(torch.arange(21.0, dtype=torch.float64), torch.arange(21.0, dtype=torch.float64), indexing="ij")
    mass = out[:, 0].sum((1, 2))
    cy = (out[:, 0] * ys).sum((1, 2)) / mass - 10
    cx = (out[:, 0] * xs).sum((1, 2)) / mass - 10
    ang = torch.rad2deg(torch.atan2(-cy, cx))  # CCW angle of the centre of mass
    assert ang.abs().max() <= 20.5
    assert ang.min() < -15 and ang.max() > 15 and abs(ang.mean().item()) < 2.0
    assert torch.equal(random_rotation(x, 0.0), x)


def test_nearest_mode_keeps_values():
    x = torch.randint(0, 5, (3, 1, 8, 8), generator=torch.Generator().manual_seed(0)).double()
    out = rotate(x, torch.tensor([10.0, 25.0, -33.0]), mode="nearest")
    assert set(out.unique().tolist()) <= set(x.unique().tolist())


def test_normalize_and_to_float():
    x = torch.rand(2, 3, 4, 4)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = normalize(x, mean, std)
    for c in range(3):
        torch.testing.assert_close(out[:, c], (x[:, c] - mean[c]) / std[c])
    assert to_float(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="need 3 entries"):
        normalize(x, (0.1,), (0.2,))


def test_augment_composes_in_order():
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    aug = Augment(crop_padding=4, hflip=True, rotation=20.0, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))
    out = aug(x, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    ref = random_crop(x.float() / 255, 4, generator=g)
    ref = hflip(ref, generator=g)
    ref = random_rotation(ref, 20.0, generator=g)
    ref = normalize(ref, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    torch.testing.assert_close(out, ref)
    assert out.dtype == torch.float32 and out.shape == x.shape
    ident = Augment()
    xf = x.float() / 255
    assert torch.equal(ident(xf), xf)
    assert aug.active and not ident.active and not Augment(mean=(0.5,), std=(0.2,)).active
    assert Augment(rotation=5.0).active and Augment(hflip=True).active and Augment(crop_padding=2).active
    assert "crop_padding=4" in repr(aug)


def test_augment_validation():
    with pytest.raises(ValueError, match="crop_padding must be >= 0"):
        Augment(crop_padding=-1)
    with pytest.raises(ValueError, match="rotation must be"):
        Augment(rotation=200)
    with pytest.raises(TypeError, match="hflip must be True or False"):
        Augment(hflip=1)
    with pytest.raises(ValueError, match="mean and std must be given together"):
        Augment(mean=(0.5,))
    with pytest.raises(ValueError, match="mode must be one of"):
        Augment(mode="bicubic")
    with pytest.raises(ValueError, match=r"x must be a batch tensor of shape \(N, C, H, W\)"):
        Augment(hflip=True)(torch.zeros(3, 4, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batch_cpu_generator_same_result():
    x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    aug = Augment(crop_padding=4, hflip=True, rotation=20.0)
    cpu = aug(x, generator=torch.Generator().manual_seed(1))
    gpu = aug(x.cuda(), generator=torch.Generator().manual_seed(1))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)
    g = torch.Generator(device="cuda").manual_seed(1)
    assert aug(x.cuda(), generator=g).device.type == "cuda"
