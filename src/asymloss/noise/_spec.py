"""Noise specifications: the strings users write (``"symmetric:0.4"``) parsed into a small record."""
from __future__ import annotations

from dataclasses import dataclass

from .._validation import check_number, unknown_name_error

__all__ = ["NoiseSpec", "parse_noise", "list_noise_kinds", "CIFAR10N_VARIANTS"]

#: Synthetic kinds that take a rate in [0, 1).
RATE_KINDS = ("symmetric", "uniform", "pairflip", "asymmetric", "instance")
#: CIFAR-10N label sets: spec variant -> key in the official file.
CIFAR10N_VARIANTS = {
    "aggre": "aggre_label",
    "rand1": "random_label1",
    "rand2": "random_label2",
    "rand3": "random_label3",
    "worst": "worse_label",
}
_ALL_KINDS = ("clean", *RATE_KINDS, "cifar10n", "cifar100n")


def list_noise_kinds() -> list[str]:
    """The noise kinds a spec string may name (``transition`` matrices are passed as arrays)."""
    return list(_ALL_KINDS)


@dataclass(frozen=True)
class NoiseSpec:
    """A parsed noise specification.

    ``kind`` is one of :func:`list_noise_kinds` or ``"transition"`` (a user matrix);
    ``rate`` the nominal rate η for the synthetic kinds (``None`` otherwise); ``variant`` the
    CIFAR-10N label set (``aggre``, ``rand1``, ``rand2``, ``rand3``, ``worst``) or ``None``.
    ``str(spec)`` gives the canonical spec string, and ``parse_noise(str(spec)) == spec``.
    """

    kind: str
    rate: float | None = None
    variant: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in (*_ALL_KINDS, "transition"):
            raise unknown_name_error("noise kind", str(self.kind), _ALL_KINDS)
        if self.kind in RATE_KINDS:
            check_number(f"rate of {self.kind} noise", self.rate, ge=0.0, lt=1.0)
            object.__setattr__(self, "rate", float(self.rate))
        elif self.rate is not None:
            raise ValueError(f"{self.kind} noise takes no rate; got rate={self.rate!r}.")
        if self.kind == "cifar10n":
            if self.variant not in CIFAR10N_VARIANTS:
                raise unknown_name_error("CIFAR-10N label set", str(self.variant), CIFAR10N_VARIANTS)
        elif self.variant is not None:
            raise ValueError(f"{self.kind} noise takes no variant; got variant={self.variant!r}.")

    def __str__(self) -> str:
        if self.kind in RATE_KINDS:
            return f"{self.kind}:{self.rate:g}"
        if self.kind == "cifar10n":
            return f"cifar10n:{self.variant}"
        return self.kind


def parse_noise(spec) -> NoiseSpec:
    """Parse and validate a noise spec string.

    Accepted: ``"clean"``; ``"<kind>:<rate>"`` for ``symmetric``, ``uniform``, ``pairflip``,
    ``asymmetric`` and ``instance`` with ``0 <= rate < 1``; ``"cifar10n:<set>"`` with
    ``<set>`` in ``aggre rand1 rand2 rand3 worst``; ``"cifar100n"``. A ``NoiseSpec`` is returned
    unchanged. Whitespace around parts is ignored, names are case-insensitive.

    >>> parse_noise("symmetric:0.4")
    NoiseSpec(kind='symmetric', rate=0.4, variant=None)
    >>> str(parse_noise("cifar10n:worst"))
    'cifar10n:worst'
    """
    if isinstance(spec, NoiseSpec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"noise must be a spec string such as 'symmetric:0.4', a NoiseSpec or a (K, K) "
            f"transition matrix; got {type(spec).__name__}."
        )
    kind, sep, arg = (s.strip() for s in spec.strip().partition(":"))
    kind = kind.lower()
    if kind not in _ALL_KINDS:
        raise unknown_name_error("noise kind", kind, _ALL_KINDS)
    if kind in ("clean", "cifar100n"):
        if sep:
            raise ValueError(f"noise {spec!r}: {kind!r} takes no argument; write {kind!r}.")
        return NoiseSpec(kind)
    if kind == "cifar10n":
        if not arg:
            raise ValueError(
                f"noise {spec!r}: cifar10n needs a label set, one of "
                f"{', '.join(CIFAR10N_VARIANTS)} (for example 'cifar10n:worst')."
            )
        variant = arg.lower()
        if variant not in CIFAR10N_VARIANTS:
            raise unknown_name_error("CIFAR-10N label set", variant, CIFAR10N_VARIANTS)
        return NoiseSpec(kind, variant=variant)
    if not arg:
        raise ValueError(
            f"noise {spec!r}: {kind!r} needs a rate in [0, 1), for example '{kind}:0.4'."
        )
    try:
        rate = float(arg)
    except ValueError:
        raise ValueError(
            f"noise {spec!r}: the rate must be a number in [0, 1); got {arg!r}."
        ) from None
    check_number(f"noise rate of {spec!r}", rate, ge=0.0, lt=1.0)
    return NoiseSpec(kind, rate=rate)
