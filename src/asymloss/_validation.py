"""Shared argument validation: one place for the error messages users see.

Every public function of asymloss validates its arguments with these helpers so that an error
always names the argument, the value it got and what is allowed.
"""
from __future__ import annotations

import difflib
import math
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "closest_names",
    "unknown_name_error",
    "check_choice",
    "check_number",
    "plain_scalar",
]


def closest_names(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The up-to-``n`` entries of ``choices`` closest to ``name`` (case-insensitive)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.4)
    return [lowered[h] for h in hits]


def unknown_name_error(kind: str, name: str, choices: Iterable[str]) -> KeyError:
    """A ``KeyError`` (subclass ``UnknownNameError``) naming the closest valid names."""
    choices = sorted(choices)
    close = closest_names(name, choices)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownNameError(
        f"unknown {kind} {name!r}.{hint} Available: {', '.join(choices)}."
    )


class UnknownNameError(KeyError, ValueError):
    """Raised for a name that no registry knows. A ``KeyError`` and a ``ValueError``."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


def check_choice(arg: str, value: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` naming them."""
    if value not in choices:
        close = closest_names(str(value), choices)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{arg} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}.{hint}"
        )
    return value


def check_number(
    arg: str,
    value,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    integer: bool = False,
) -> float:
    """Validate a real (or integer) scalar against open/closed bounds; return it.

    NumPy scalars and 0-d arrays are accepted like the Python numbers they hold and returned as
    those (``np.float32(0.5)`` → ``0.5`` as a ``float``, ``np.int64(3)`` → ``3``).

    >>> check_number("q", 0.7, gt=0)
    0.7
    >>> check_number("seed", np.int64(1), ge=0, integer=True)
    1
    """
    value = plain_scalar(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        integer and not isinstance(value, int)
    ):
        what = "an integer" if integer else "a real number"
        raise TypeError(f"{arg} must be {what}; got {value!r} ({type(value).__name__}).")
    if not integer and not math.isfinite(value):
        raise ValueError(f"{arg} must be finite; got {value!r}.")
    bounds = []
    ok = True
    if gt is not None:
        bounds.append(f"> {gt}")
        ok &= value > gt
    if ge is not None:
        bounds.append(f">= {ge}")
        ok &= value >= ge
    if lt is not None:
        bounds.append(f"< {lt}")
        ok &= value < lt
    if le is not None:
        bounds.append(f"<= {le}")
        ok &= value <= le
    if not ok:
        raise ValueError(f"{arg} must be {' and '.join(bounds)}; got {value!r}.")
    return value


def plain_scalar(value: Any) -> Any:
    """A NumPy scalar or 0-d array as the Python number it holds; anything else unchanged.

    NumPy booleans become ``bool`` (and are then refused where a number is expected, like ``True``).
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        return value.item()
    return value
