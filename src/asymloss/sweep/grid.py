"""Grids: losses × noise settings × seeds on one protocol, expanded into runs with stable ids.

A :class:`Grid` is what a user asks for; :func:`expand_grid` turns it into :class:`Run` s, each a
fully resolved :class:`~asymloss.train.TrainConfig` named by ``TrainConfig.config_hash()``::

    >>> from asymloss.sweep import build_grid, expand_grid
    >>> grid = build_grid(protocol="paper-mnist", losses="ce,agce", noise="clean,symmetric:0.6",
    ...                   seeds="0,1", overrides={"epochs": 2})
    >>> runs = expand_grid(grid)
    >>> len(runs), runs[0].config.loss, runs[0].config.epochs
    (8, 'ce', 2)

Grids come from the command line, from YAML/TOML files, or by name (:func:`list_grids`)::

    protocol: paper-mnist
    losses: [ce, gce, {loss: agce, params: {a: 1.0, q: 0.5}}]
    noise: [clean, "symmetric:0.6", "asymmetric:0.4"]
    seeds: [0, 1, 2]
    overrides: {epochs: 10, subset: 5000}
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from .._validation import check_number, plain_scalar, unknown_name_error

__all__ = [
    "LossSpec",
    "Grid",
    "Run",
    "PAPER_NOISES",
    "PAPER_TABLE_LOSSES",
    "GRIDS",
    "list_grids",
    "get_grid",
    "load_grid",
    "build_grid",
    "expand_grid",
    "loss_label",
]

#: The paper's noise grid (docs/protocols.md, 'Paper grids'), in the paper's column order.
PAPER_NOISES: tuple[str, ...] = (
    "clean",
    "symmetric:0.2",
    "symmetric:0.4",
    "symmetric:0.6",
    "symmetric:0.8",
    "asymmetric:0.1",
    "asymmetric:0.2",
    "asymmetric:0.3",
    "asymmetric:0.4",
)

#: The losses of the paper's tables (docs/losses.md, 'Baselines' and 'Presets'), each run with the dataset's ``paper:`` preset.
#: NLNL is left out (not implemented; docs/losses.md, 'Baselines'). On MNIST the NCE+ALF presets have α = 0, so they
#: equal the ALF alone (kept as in the reference code).
PAPER_TABLE_LOSSES: tuple[str, ...] = (
    "ce", "focal", "gce", "sce", "nfl+rce", "nce+mae", "nce+rce",
    "agce", "aul", "ael", "nce+agce", "nce+aul", "nce+ael",
)

_GRID_KEYS = ("name", "protocol", "losses", "noise", "seeds", "overrides")
_DISPLAY = {"focal": "FL"}


def loss_label(name: str, params: Optional[Mapping[str, Any]] = None) -> str:
    """A display label: ``"nce+agce"`` → ``"NCE+AGCE"``; explicit params are appended.

    >>> loss_label("agce", {"a": 1, "q": 0.5})
    'AGCE(a=1, q=0.5)'
    """
    base = "+".join(_DISPLAY.get(p, p.upper()) for p in name.split("+"))
    if params:
        base += "(" + ", ".join(f"{k}={v}" for k, v in sorted(params.items())) + ")"
    return base


@dataclass(frozen=True)
class LossSpec:
    """A loss of a grid: a registry name, explicit hyperparameters (over the preset) and, optionally,
    the preset it takes its hyperparameters from (default: the protocol's)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    preset: Optional[str] = None

    @classmethod
    def parse(cls, item: Union[str, Mapping[str, Any], "LossSpec"]) -> "LossSpec":
        if isinstance(item, LossSpec):
            return item
        if isinstance(item, str):
            name = item.strip().lower()
            if not name:
                raise ValueError("losses: an empty loss name is not allowed.")
            return cls(name)
        if isinstance(item, Mapping):
            unknown = sorted(set(item) - {"loss", "name", "params", "preset"})
            if unknown:
                raise unknown_name_error("loss entry key", unknown[0], ("loss", "params", "preset"))
            name = item.get("loss", item.get("name"))
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"losses: each mapping needs a 'loss' name; got {dict(item)!r}.")
            params = item.get("params") or {}
            if not isinstance(params, Mapping):
                raise TypeError(f"losses: 'params' of {name!r} must be a mapping; got {params!r}.")
            preset = item.get("preset")
            if preset is not None and not isinstance(preset, str):
                raise TypeError(f"losses: 'preset' of {name!r} must be a preset name; got {preset!r}.")
            return cls(name.strip().lower(), dict(params), preset.strip().lower() if preset else None)
        raise TypeError(f"losses: each entry must be a name or a mapping; got {item!r}.")

    @property
    def label(self) -> str:
        return loss_label(self.name, self.params)

    def to_obj(self) -> Union[str, dict]:
        if not self.params and self.preset is None:
            return self.name
        out = {"loss": self.name, "params": dict(self.params)}
        if self.preset is not None:
            out["preset"] = self.preset
        return out

    def apply(self, base):
        """``base`` (a TrainConfig) with this loss, its parameters and its preset."""
        kw = {"loss": self.name, "loss_params": {**base.loss_params, **self.params}}
        if self.preset is not None:
            kw["loss_preset"] = self.preset
        return base.replace(**kw)


@dataclass(frozen=True)
class Grid:
    """Losses × noise settings × seeds on one protocol, with config overrides for every run."""

    protocol: str
    losses: tuple[LossSpec, ...]
    noise: tuple[str, ...] = ("clean",)
    seeds: tuple[int, ...] = (0,)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    name: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the inverse of :func:`build_grid` on a mapping)."""
        return {
            "name": self.name,
            "protocol": self.protocol,
            "losses": [l.to_obj() for l in self.losses],
            "noise": list(self.noise),
            "seeds": list(self.seeds),
            "overrides": dict(self.overrides),
        }

    def __len__(self) -> int:
        return len(self.losses) * len(self.noise) * len(self.seeds)


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its id (the config hash) and its resolved config."""

    id: str
    config: Any  # TrainConfig (imported lazily)

    @property
    def label(self) -> str:
        return loss_label(self.config.loss, self.config.loss_params)


def _paper_grid(protocol: str, name: str) -> Grid:
    return Grid(
        protocol=protocol,
        losses=tuple(LossSpec(l) for l in PAPER_TABLE_LOSSES),
        noise=PAPER_NOISES,
        seeds=(0, 1, 2),
        name=name,
    )


#: The later robust losses (docs/losses.md, 'Later losses') beside the paper's references: each
#: loss with the published preset of its method for the dataset (``family:dataset``) when there is
#: one, else its declared defaults; the paper's losses with the protocol's ``paper:`` preset.
LATER_TABLE_LOSSES: tuple[tuple[str, Optional[str]], ...] = (
    ("ce", None), ("gce", None), ("nce+rce", None), ("agce", None), ("aul", None), ("ael", None),
    ("nce+agce", None),
    ("taylor_ce", None), ("poly1_ce", None), ("bi_tempered", None),
    ("anl_ce", "anl"), ("anl_fl", "anl"), ("jal_ce", "jal"), ("jal_fl", "jal"),
    ("ce_eps+mae", "eps"), ("fl_eps+mae", "eps"), ("js", "js"), ("ldr_kl", "ldr"), ("ce_lc", "lc"),
    # with training mechanics (docs/training-mechanics.md)
    ("ce_sr", "sr"), ("fl_sr", "sr"), ("gce_sr", "sr"), ("gjs", "gjs"), ("aldr_kl", "aldr"), ("nlnl", None),
)


def _later_grid(protocol: str, dataset: str, name: str) -> Grid:
    from ..losses import list_presets, presets_defining

    presets = set(list_presets())
    specs = []
    for loss, family in LATER_TABLE_LOSSES:
        preset = f"{family}:{dataset}" if family else None
        if preset is not None and (preset not in presets or preset not in presets_defining(loss)):
            # the method publishes no value for this dataset: its CIFAR-10 one, else its defaults
            preset = f"{family}:cifar10" if f"{family}:cifar10" in presets_defining(loss) else None
        specs.append(LossSpec(loss, {}, preset))
    return Grid(protocol=protocol, losses=tuple(specs), noise=("clean", "symmetric:0.8", "asymmetric:0.4"),
                seeds=(0, 1), name=name)


#: Named grids reproducing the paper's tables (13 losses × 9 noise settings × 3 seeds = 351 runs),
#: and the later losses under the same protocols (``later-losses-*``).
GRIDS: dict[str, Grid] = {
    "paper-mnist-table": _paper_grid("paper-mnist", "paper-mnist-table"),
    "paper-cifar10-table": _paper_grid("paper-cifar10", "paper-cifar10-table"),
    "paper-cifar100-table": _paper_grid("paper-cifar100", "paper-cifar100-table"),
    "later-losses-mnist": _later_grid("paper-mnist", "mnist", "later-losses-mnist"),
    "later-losses-cifar10": _later_grid("paper-cifar10", "cifar10", "later-losses-cifar10"),
    "later-losses-cifar100": _later_grid("paper-cifar100", "cifar100", "later-losses-cifar100"),
}


def list_grids() -> list[str]:
    """Names of the built-in grids."""
    return sorted(GRIDS)


def get_grid(name: str) -> Grid:
    """The named grid ``name``; unknown names suggest the closest."""
    if name not in GRIDS:
        raise unknown_name_error("grid", name, GRIDS)
    return GRIDS[name]


def load_grid(path: Union[str, os.PathLike]) -> Grid:
    """Read a grid from a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file (keys as :func:`build_grid`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"grid file {str(path)!r} not found (expected a YAML, TOML or JSON file, or a named grid: {', '.join(list_grids())}).")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"grid file {str(path)!r} is not UTF-8 text ({e}).") from e
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
            raise ValueError(f"grid file {str(path)!r}{where}: not valid YAML ({what}).") from None
    elif suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ImportError as e:  # pragma: no cover
                raise ImportError("reading TOML grids on Python 3.10 needs 'tomli' (pip install tomli)") from e
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"grid file {str(path)!r}: not valid TOML ({e}).") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"grid file {str(path)!r}, line {e.lineno}, column {e.colno}: not valid JSON ({e.msg}).") from None
    else:
        raise ValueError(f"grid file {str(path)!r}: suffix must be one of '.yaml', '.yml', '.toml', '.json'; got {suffix!r}.")
    if not isinstance(data, Mapping):
        raise ValueError(f"grid file {str(path)!r} must hold a mapping with keys {', '.join(_GRID_KEYS)}.")
    data = dict(data)
    data.setdefault("name", path.stem)
    return _grid_from_mapping(data, source=str(path))


def _split(value: Union[str, Iterable[Any], None]) -> Optional[list]:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Mapping):
        return [value]
    return list(value)


def _parse_seeds(value: Any) -> tuple[int, ...]:
    value = plain_scalar(value)
    items = [value] if isinstance(value, int) else _split(value)
    seeds = []
    for s in items or []:
        if isinstance(s, str):
            try:
                s = int(s)
            except ValueError:
                raise ValueError(f"seeds must be non-negative integers; got {s!r}.") from None
        seeds.append(check_number("seeds", s, ge=0, integer=True))
    if not seeds:
        raise ValueError("seeds: at least one seed is needed.")
    return tuple(dict.fromkeys(seeds))


def _grid_from_mapping(data: Mapping[str, Any], source: str = "grid") -> Grid:
    unknown = sorted(set(data) - set(_GRID_KEYS))
    if unknown:
        raise unknown_name_error(f"key in {source}:", unknown[0], _GRID_KEYS)
    if not data.get("protocol"):
        raise ValueError(f"{source}: 'protocol' is required (one of the protocols, e.g. 'paper-mnist').")
    return build_grid(
        protocol=data["protocol"],
        losses=data.get("losses"),
        noise=data.get("noise", "clean"),
        seeds=data.get("seeds", [0]),
        overrides=data.get("overrides") or {},
        name=data.get("name"),
    )


def build_grid(
    grid: Union[str, os.PathLike, Grid, Mapping[str, Any], None] = None,
    *,
    protocol: Optional[str] = None,
    losses: Union[str, Sequence[Any], None] = None,
    noise: Union[str, Sequence[str], None] = None,
    seeds: Union[str, Sequence[int], None] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    name: Optional[str] = None,
) -> Grid:
    """Build a :class:`Grid` from a base (named grid, file, mapping or Grid) and explicit values.

    Explicit ``protocol``/``losses``/``noise``/``seeds`` replace the base's; ``overrides`` update
    the base's overrides. Lists may be given as comma-separated strings (``"ce,agce"``).

    >>> build_grid("paper-mnist-table", seeds="0", overrides={"epochs": 1}).seeds
    (0,)
    """
    base: Optional[Grid] = None
    if isinstance(grid, Grid):
        base = grid
    elif isinstance(grid, Mapping):
        base = _grid_from_mapping(grid)
    elif grid is not None:
        g = str(grid)
        if g in GRIDS:
            base = GRIDS[g]
        elif Path(g).suffix.lower() in (".yaml", ".yml", ".toml", ".json") or Path(g).exists():
            base = load_grid(g)
        else:
            raise unknown_name_error("grid (a named grid or a .yaml/.toml/.json file)", g, GRIDS)
    protocol = protocol or (base.protocol if base else None)
    if not protocol:
        raise ValueError("protocol is required: pass --protocol (e.g. paper-mnist) or a grid that names one.")
    loss_items = _split(losses)
    if loss_items is None:
        if base is None:
            raise ValueError("losses are required: pass --losses (e.g. ce,agce,nce+agce) or a grid.")
        loss_specs = base.losses
    else:
        loss_specs = tuple(LossSpec.parse(l) for l in loss_items)
    if not loss_specs:
        raise ValueError("losses: at least one loss is needed.")
    noise_items = _split(noise)
    if noise_items is None:
        noise_t = base.noise if base else ("clean",)
    else:
        for n in noise_items:
            if not isinstance(n, str):
                raise TypeError(f"noise settings must be strings like 'symmetric:0.6'; got {n!r}.")
        noise_t = tuple(n.strip() for n in noise_items)
    if not noise_t:
        raise ValueError("noise: at least one noise setting is needed (use 'clean' for none).")
    seeds_t = _parse_seeds(seeds) if seeds is not None else (base.seeds if base else (0,))
    merged = dict(base.overrides) if base else {}
    if overrides:
        if not isinstance(overrides, Mapping):
            raise TypeError(f"overrides must be a mapping of config fields; got {overrides!r}.")
        merged.update(overrides)
    for key in ("protocol", "loss", "noise", "seed"):
        if key in merged:
            raise ValueError(f"overrides: {key!r} is set by the grid itself; use the grid's {key} entry instead.")
    return Grid(
        protocol=str(protocol),
        losses=_dedupe(loss_specs),
        noise=tuple(dict.fromkeys(noise_t)),
        seeds=seeds_t,
        overrides=merged,
        name=name if name is not None else (base.name if base else None),
    )


def _dedupe(specs: Sequence[LossSpec]) -> tuple[LossSpec, ...]:
    seen: dict[str, LossSpec] = {}
    for s in specs:
        seen.setdefault(s.name + json.dumps(dict(s.params), sort_keys=True, default=str), s)
    return tuple(seen.values())


def _validate_loss(config: Any) -> None:
    """Build the run's loss as the engine will, so a bad name or parameter fails before any run."""
    from ..train.checks import check_loss

    check_loss(config, label=loss_label(config.loss, config.loss_params))


def _validate_noise(spec: str, config: Any) -> None:
    """Parse the spec and, for matrix noise, build its transition matrix for the run's dataset."""
    from ..train.checks import check_noise

    check_noise(config.replace(noise=spec))


def expand_grid(grid: Grid, *, validate: bool = True) -> list["Run"]:
    """Expand ``grid`` into runs (loss-major, then noise, then seed), duplicates removed.

    Every config is resolved and validated as the CLI's ``train`` validates one (settings the
    engine refuses, the model, loss names and parameters, noise specs against the dataset) before
    anything runs; errors name the offending entry. Only the loss and the noise differ between the
    runs of a grid, so each distinct one is checked once. The device and the data are checked by
    :func:`asymloss.sweep.check_sweep` (they depend on where the runs execute).
    """
    from ..train import get_protocol
    from ..train.checks import check_model, check_supported

    base = get_protocol(grid.protocol)
    if grid.overrides:
        base = base.replace(**dict(grid.overrides))
    if validate:
        check_supported(base)
        check_model(base)
        for n in grid.noise:
            _validate_noise(n, base)
        for spec in grid.losses:
            _validate_loss(spec.apply(base))
    runs: dict[str, Run] = {}
    for spec in grid.losses:
        for n in grid.noise:
            for seed in grid.seeds:
                cfg = spec.apply(base).replace(noise=n, seed=seed)
                rid = cfg.config_hash()
                runs.setdefault(rid, Run(rid, cfg))
    return list(runs.values())
