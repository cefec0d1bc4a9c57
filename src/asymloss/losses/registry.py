"""Loss registry: ``create_loss`` / ``list_losses`` / ``list_presets`` / ``get_preset``.

Names are case-insensitive and accept the papers' and the reference code's spellings:
``"nce+agce"``, ``"NCEandAGCE"``, ``"nce_agce"``, ``"NCE-AGCE"`` are the same loss. Any two
registered losses can also be combined on the fly: ``create_loss("gce+mae", alpha=1, beta=1)``.

Example::

    >>> import asymloss
    >>> loss_fn = asymloss.create_loss("NCEandAGCE", preset="paper:cifar100")
    >>> loss_fn.alpha, loss_fn.beta, loss_fn.a, loss_fn.q
    (10.0, 0.1, 1.8, 3.0)
"""
from __future__ import annotations

import inspect
import re
from typing import Optional

from .._validation import check_number, unknown_name_error
from ._base import ActivePassive, Loss
from ._define import COMMON as _COMMON, get_definition, on_define, on_validate
from .modules import CLASSES
from .presets import PRESET_ENGINE, PRESETS

__all__ = ["create_loss", "list_losses", "list_presets", "get_preset", "describe_loss", "resolve_name",
           "preset_engine_settings", "get_definition"]

#: canonical name -> module class (derived from the declarations)
LOSSES: dict[str, type] = CLASSES


def _key(name: str) -> str:
    return re.sub(r"and|[^a-z0-9]", "", name.lower())


_ALIASES: dict[str, str] = {}


def _spellings(d) -> set:
    return {_key(alias) for alias in (d.name, d.cls_name, d.func_name, *d.aliases)}


def _check_aliases(d) -> None:
    taken = {k: _ALIASES[k] for k in _spellings(d) if _ALIASES.get(k, d.name) != d.name}
    if taken:
        raise ValueError(f"loss {d.name!r}: its spellings {sorted(taken)} already name "
                         f"{sorted(set(taken.values()))}; choose other aliases.")


def _add_aliases(d) -> None:
    _check_aliases(d)
    _ALIASES.update(dict.fromkeys(_spellings(d), d.name))


on_define(_add_aliases)
on_validate(_check_aliases)


def resolve_name(name: str) -> str:
    """The canonical registry name of ``name`` (any spelling), or raise the closest-name error."""
    if not isinstance(name, str):
        raise TypeError(f"loss name must be a string; got {name!r}.")
    canon = _ALIASES.get(_key(name))
    if canon is None:
        raise unknown_name_error("loss", name, LOSSES)
    return canon


def _split_combo(name: str) -> Optional[tuple[str, str]]:
    parts = re.split(r"\+|and", name, flags=re.IGNORECASE) if "+" in name else \
        re.split(r"and", name)  # CamelCase 'XandY'
    parts = [p for p in parts if p.strip()]
    if len(parts) != 2:
        return None
    try:
        return resolve_name(parts[0]), resolve_name(parts[1])
    except (KeyError, TypeError):
        return None


def hparam_defaults(cls) -> dict:
    """The constructor keywords of a loss class (its declared hyperparameters, and a wrapper's
    ``loss``) with their defaults; not weight/ignore_index/reduction/num_classes."""
    return {k: p.default for k, p in inspect.signature(cls).parameters.items()
            if k not in (*_COMMON, "num_classes") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def list_losses() -> list[str]:
    """Canonical names of every registered loss (combinations spelled ``active+passive``)."""
    return sorted(LOSSES)


def list_presets() -> list[str]:
    """Names of the hyperparameter presets (``paper:*``, ``apl:*``, ``anl:*``, ``jal:*``, ``eps:*``)."""
    return sorted(PRESETS)


def _check_preset(preset: str) -> str:
    if not isinstance(preset, str):
        raise TypeError(f"preset must be a string such as 'paper:cifar10'; got {preset!r}.")
    key = preset.strip().lower()
    if key not in PRESETS:
        raise unknown_name_error("preset", preset, PRESETS)
    return key


def preset_engine_settings(preset: str) -> dict:
    """The training-engine settings a preset's method trains with (``l1_weight``,
    ``weight_decay``, ``loss_schedule``), or ``{}`` (a new dict)."""
    import copy

    return copy.deepcopy(PRESET_ENGINE.get(_check_preset(preset), {}))


def presets_defining(name: str) -> list[str]:
    """The presets that give hyperparameters for loss ``name``."""
    canon = resolve_name(name)
    return [p for p in sorted(PRESETS) if canon in PRESETS[p]]


def get_preset(preset: str, name: str) -> dict:
    """The hyperparameters that ``preset`` gives loss ``name`` (a new dict).

    Losses without hyperparameters (CE, NCE) are defined by every preset (an empty dict). For any
    other loss that the preset does not define, a ``ValueError`` names the presets that do.

    >>> get_preset("paper:mnist", "NCEandAGCE")
    {'alpha': 0.0, 'beta': 1.0, 'a': 4.0, 'q': 0.2}
    """
    key = _check_preset(preset)
    canon = resolve_name(name)
    d = get_definition(canon)
    if canon in PRESETS[key]:
        values = dict(PRESETS[key][canon])
        d.bind(values, owner=f"preset {key!r}: {canon}")     # the declaration validates the preset
        return values
    if not d.params:
        return {}
    others = presets_defining(canon)
    where = f"presets that define it: {', '.join(others)}" if others else "no preset defines it"
    raise ValueError(
        f"preset {preset!r} does not define loss {canon!r}; {where}. "
        f"Pass its hyperparameters explicitly instead."
    )


def describe_loss(name: str) -> dict:
    """Name, class, role, hyperparameters with defaults and allowed values, presets and summary of a loss."""
    canon = resolve_name(name)
    d = get_definition(canon)
    return {"name": canon, "class": d.cls_name, "kind": d.kind, "hparams": d.defaults(),
            "constraints": {k: p.describe(k) for k, p in d.params.items()},
            "pointwise": d.pointwise, "presets": presets_defining(canon), "summary": d.summary}


def _check_overrides(label: str, allowed, overrides: dict) -> None:
    for k in overrides:
        if k not in allowed:
            raise unknown_name_error(f"{label} hyperparameter", k, allowed)


_CLIP_RE = (re.compile(r"^\s*(?:lc|logit_?clip)\s*\((.+)\)\s*$", re.IGNORECASE),
            re.compile(r"^(.+?)[\s_-]+lc\s*$", re.IGNORECASE))


def _split_clip(name: str) -> Optional[str]:
    """The wrapped loss's name of a LogitClip spelling ``lc(<loss>)`` or ``<loss>_lc``, else None."""
    for pattern in _CLIP_RE:
        m = pattern.match(name)
        if m:
            return m.group(1).strip()
    return None


def _create_clipped(base: str, num_classes, preset, overrides) -> Loss:
    """LogitClip around ``create_loss(base, preset=preset, ...)``: tau, p, legacy_threshold and the
    common arguments go to the wrapper, every other override to the wrapped loss."""
    wrapper = LOSSES["logit_clip"]
    clip = {k: overrides[k] for k in (*wrapper.definition.params, *_COMMON) if k in overrides}
    inner = create_loss(base, preset=preset, **{k: v for k, v in overrides.items() if k not in clip})
    return wrapper(inner, num_classes=num_classes, **clip)


def create_loss(name: str, num_classes: Optional[int] = None, preset: Optional[str] = None,
                **overrides) -> Loss:
    """Build a loss module by name.

    Args:
        name: any spelling of a registered loss (``list_losses()``), or ``"x+y"`` for two
            registered losses combined as ``alpha * x + beta * y``.
        num_classes: optional; when given, inputs with another number of classes are rejected
            (no loss needs it: K is read from the input).
        preset: reference hyperparameters (``list_presets()``), e.g. ``"paper:cifar10"``.
        **overrides: hyperparameters (and ``weight``/``ignore_index``/``reduction``); they win over
            the preset.

    >>> loss_fn = create_loss("nce+agce", num_classes=10, preset="paper:cifar10", beta=2.0)
    >>> loss_fn.hparams()
    {'alpha': 1.0, 'beta': 2.0, 'a': 6.0, 'q': 1.5}
    """
    if num_classes is not None:
        check_number("num_classes", num_classes, ge=1, integer=True)
    try:
        canon = resolve_name(name)
    except KeyError:
        base = _split_clip(name) if isinstance(name, str) else None
        if base is not None:
            return _create_clipped(base, num_classes, preset, overrides)
        pair = _split_combo(name) if isinstance(name, str) else None
        if pair is None:
            raise
        return _create_combo(name, pair, num_classes, preset, overrides)
    cls = LOSSES[canon]
    params = get_preset(preset, canon) if preset is not None else {}
    _check_overrides(canon, [*hparam_defaults(cls), *_COMMON], overrides)
    params.update(overrides)
    return cls(**params, num_classes=num_classes)


def _create_combo(name, pair, num_classes, preset, overrides):
    active_cls, passive_cls = LOSSES[pair[0]], LOSSES[pair[1]]
    if preset is not None:
        raise ValueError(
            f"preset {preset!r} does not define loss {name!r} (an ad-hoc combination of "
            f"{pair[0]!r} and {pair[1]!r}); pass alpha, beta and the hyperparameters explicitly."
        )
    if pair[0] == pair[1]:
        raise ValueError(
            f"cannot combine loss {pair[0]!r} with itself ({name!r}): alpha * L + beta * L is "
            f"(alpha + beta) * L; use {pair[0]!r} and scale it."
        )
    ha, hp = hparam_defaults(active_cls), hparam_defaults(passive_cls)
    parts, combo, common = split_combo_params(name, ha, hp, overrides)
    return ActivePassive(active_cls(**parts[0]), passive_cls(**parts[1]),
                           combo.get("alpha", 1.0), combo.get("beta", 1.0), num_classes=num_classes, **common)


def split_combo_params(name: str, active: dict, passive: dict, overrides: dict):
    """Route the keywords of a combination ``alpha * active + beta * passive`` (the one rule):

    - ``alpha`` and ``beta`` are always the combination's coefficients;
    - ``active_<h>`` / ``passive_<h>`` set hyperparameter ``h`` of that part (always allowed);
    - a plain ``h`` goes to the one part that has it; a name both parts have, or a part's own
      ``alpha``/``beta`` (SCE's), must be prefixed: a plain one is an error naming the two spellings.

    Returns ``((active kwargs, passive kwargs), {alpha, beta}, common kwargs)``.
    """
    ambiguous = (set(active) & set(passive))
    inner_ab = {"alpha", "beta"} & (set(active) | set(passive))
    allowed = ["alpha", "beta", *(f"active_{k}" for k in active), *(f"passive_{k}" for k in passive),
               *(k for k in active if k not in ambiguous | inner_ab),
               *(k for k in passive if k not in ambiguous | inner_ab), *_COMMON]
    act, pas, combo, common = {}, {}, {}, {}
    for k, v in overrides.items():
        if k in _COMMON:
            common[k] = v
        elif k in ("alpha", "beta"):
            combo[k] = v
        elif k.startswith("active_") and k[len("active_"):] in active:
            act[k[len("active_"):]] = v
        elif k.startswith("passive_") and k[len("passive_"):] in passive:
            pas[k[len("passive_"):]] = v
        elif k in ambiguous:
            raise ValueError(
                f"hyperparameter {k!r} of {name!r} is ambiguous: both parts have it; write "
                f"active_{k}= or passive_{k}=."
            )
        elif k in active:
            act[k] = v
        elif k in passive:
            pas[k] = v
        else:
            raise unknown_name_error(f"{name} hyperparameter", k, allowed)
    return (act, pas), combo, common
