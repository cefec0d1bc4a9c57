"""Inputs shared by the loss tests."""
from __future__ import annotations

import torch


def extreme_logits(dtype: torch.dtype, scale: float, K: int = 10):
    """``(z, y)``: 12 samples of logits at ±``scale`` — confidently right (0-2), confidently wrong
    (3-5), ties and mixtures (6-11) — as a leaf of ``dtype`` that requires grad."""
    g = torch.Generator().manual_seed(8)
    z = torch.full((12, K), -scale)
    top = torch.randint(0, K, (12,), generator=g)
    z[torch.arange(12), top] = scale
    z[6:] = torch.where(torch.rand(6, K, generator=g) < 0.5, scale, -scale)  # ties and mixtures
    y = torch.randint(0, K, (12,), generator=g)
    y[:3] = top[:3]  # confidently right
    y[3:6] = (top[3:6] + 1) % K  # confidently wrong
    return z.to(dtype).requires_grad_(True), y
