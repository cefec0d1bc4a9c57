"""The ``asymloss`` command line. It only parses arguments and calls the library.

Built with Typer. Each command below belongs to one area of the library; keep parsing here and the
work in the library.
"""
from __future__ import annotations

import sys
from typing import List, Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="asymloss",
    help="Robust losses for learning with noisy labels (Zhou et al., ICML 2021) and beyond.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()


@app.callback()
def _root() -> None:
    """Robust losses for learning with noisy labels (Zhou et al., ICML 2021) and beyond."""
    global console
    console = Console()  # one per invocation: it sees this invocation's terminal and $COLUMNS


#: What a user's mistake or a damaged file raises (the library's messages name the argument or
#: file, the problem and what to do); printed as one ``error:`` line, exit status 2.
_USER_ERRORS = (KeyError, ValueError, TypeError, OSError, RuntimeError, ImportError)


def _fail(message: str) -> None:
    """Print a clear error and exit with status 2 (bad usage) before any work starts."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def _message(exc: BaseException) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


_interrupt_handled = False


def _interrupted(message: str) -> None:
    """After Ctrl-C: say what happened and how to go on; exit status 130 (as a shell does)."""
    global _interrupt_handled
    from rich.markup import escape

    _interrupt_handled = True
    console.print(f"[bold yellow]interrupted:[/] {escape(message)}")
    raise typer.Exit(code=130)


@app.command()
def version() -> None:
    """Print the versions of asymloss and PyTorch."""
    import torch

    from . import __version__

    console.print(f"asymloss {__version__} (torch {torch.__version__})")


# ---------------------------------------------------------------------------------------------
# losses and theory
# ---------------------------------------------------------------------------------------------

@app.command("losses")
def losses_cmd(
    name: Optional[str] = typer.Argument(None, help="One loss (any spelling): its hyperparameters, "
                                         "their allowed values, and what the theory knows of it."),
    preset: Optional[str] = typer.Option(
        None, "--preset", "-p", help="Show the hyperparameters this preset gives (e.g. paper:cifar10)."
    ),
) -> None:
    """List every loss with its hyperparameters (defaults) and the presets that define it."""
    from rich.table import Table

    from .losses import describe_loss, get_preset, list_losses, list_presets

    if name is not None:
        _describe_one_loss(name, preset)
        return
    if preset is not None and preset.strip().lower() not in list_presets():
        from ._validation import unknown_name_error

        _fail(str(unknown_name_error("preset", preset, list_presets())))
    title = "asymloss losses" + (f" — values of preset {preset}" if preset else " — defaults")
    rows = []
    for name in list_losses():
        info = describe_loss(name)
        values = dict(info["hparams"])
        if preset is not None:
            try:
                values.update(get_preset(preset, name))
            except ValueError:
                values = None
        hp = "—" if values is None else (
            ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()) or "(none)")
        where = ", ".join(info["presets"]) or ("any (nothing to set)" if not info["hparams"] else "—")
        rows.append((name, info["class"], info["kind"], hp, where))
    table = Table(title=title)
    for col in ("name", "class", "role", "hyperparameters", "presets"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    if not _fits(table):  # a narrow terminal: class and role share a column, values and presets another
        table = Table(title=title, show_lines=True)
        table.add_column("name", no_wrap=True)
        table.add_column("class\nrole", no_wrap=True)
        table.add_column("hyperparameters\n[dim]presets[/]", overflow="fold")
        for name, cls, kind, hp, where in rows:
            table.add_row(name, f"{cls}\n{kind}", f"{hp}\n[dim]{where}[/]")
    console.print(table)
    console.print(
        "Presets: " + ", ".join(list_presets())
        + ". Use: asymloss.create_loss(name, preset=..., **overrides)."
    )


@app.command("theory")
def theory_cmd(
    loss: str = typer.Argument(..., help="Loss name (see `asymloss losses`), e.g. agce, ael, nce+agce."),
    a: Optional[float] = typer.Option(None, "--a", help="Parameter a (AGCE, AUL, AEL, ...)."),
    q: Optional[float] = typer.Option(None, "--q", help="Parameter q (AGCE, AUL, GCE, ...)."),
    param: List[str] = typer.Option([], "--param", help="Other hyperparameter key=value, e.g. --param alpha=1 (repeatable)."),
    preset: Optional[str] = typer.Option(None, help="Loss preset, e.g. paper:cifar10 (--a/--q/--param win)."),
    noise: str = typer.Option(..., help="Noise spec: symmetric:0.8, pairflip:0.45, asymmetric:0.4 (with --dataset), uniform:0.5, clean."),
    classes: Optional[int] = typer.Option(None, "--classes", help="Number of classes K (optional with --dataset)."),
    dataset: Optional[str] = typer.Option(None, help="Dataset of asymmetric noise: mnist, cifar10, cifar100."),
    method: str = typer.Option("auto", help="auto, ratio (the paper's condition) or simplex (numerical minimisation)."),
) -> None:
    """Is a loss asymmetric (noise-tolerant) under a noise? Asymmetry ratio, noise ratio, verdict
    and the smallest parameter values that would make it asymmetric (docs/theory.md, 'Smallest parameters')."""
    from rich.markup import escape
    from rich.table import Table

    from . import theory

    params = _parse_overrides(param, "--param")
    params.update({k: v for k, v in (("a", a), ("q", q)) if v is not None})
    try:  # every argument is checked before any numerical work
        module = theory._resolve.registry().create_loss(loss, preset=preset, **params)
        T = theory.as_transition_matrix(noise, classes, dataset)
        if method not in ("auto", "ratio", "simplex"):
            raise ValueError(f"--method must be one of 'auto', 'ratio', 'simplex'; got {method!r}.")
        verdict = theory.is_asymmetric(module, T, method=method)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        _fail(str(exc))
        return
    rt = verdict.noise_ratio
    K = T.shape[0]
    table = Table(title=escape(f"{verdict.loss} under {noise} (K = {K})"), title_justify="left")
    table.add_column("quantity", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    table.add_column("how", overflow="fold")
    resolved = theory._resolve.resolve_loss(module, {})
    if verdict.asymmetry_ratio is not None:
        how = "closed form" if resolved.closed_form else "numerical infimum"
        table.add_row("asymmetry ratio r", f"{verdict.asymmetry_ratio:.6f}", how)
    else:
        table.add_row("asymmetry ratio r", "—", "not of the form ℓ(p_y)")
    table.add_row("noise ratio r̃", f"{rt:.6f}", "clean labels dominant" if rt < 1 else "clean labels NOT dominant")
    word = "[bold green]asymmetric[/]" if verdict.asymmetric else "[bold red]not asymmetric[/]"
    how = {"closed-form": "closed form: r̃ ≤ r?",
           "ratio": "numerical r: r̃ ≤ r (sufficient)",
           "simplex": "numerical: argmin = e_y?",
           "noise-ratio": "r̃ ≥ 1: none is"}[verdict.method]
    table.add_row("verdict", word, how)
    from .theory._closed import BOUNDED_PARAMETERS

    name = resolved.name
    if name in BOUNDED_PARAMETERS:
        for p in BOUNDED_PARAMETERS[name]:
            fixed = {k: v for k, v in module.hparams().items() if k in BOUNDED_PARAMETERS[name] and k != p}
            b = theory.min_parameter(name, p, T, **fixed)
            value = {"min": f"{p} ≥ {b.value or 0:.4g}", "max": f"{p} ≤ {b.value or 0:.4g}",
                     "any": f"any {b.domain}", "none": "no value"}[b.kind]
            held = ", ".join(f"{k} = {v:g}" for k, v in fixed.items())
            label = {"min": f"smallest {p}", "max": f"largest {p}"}.get(b.kind, p)
            table.add_row(label, value, f"closed form{', ' + held if held else ''}")
    else:
        table.add_row("smallest parameter", "—", f"no closed form for {name or 'this loss'}")
    console.print(table)
    console.print(escape(verdict.reason))


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------

def _describe_one_loss(name: str, preset: Optional[str]) -> None:
    """``asymloss losses NAME``: the declaration of one loss."""
    from rich.markup import escape
    from rich.table import Table

    from .losses import describe_loss, get_preset

    try:
        info = describe_loss(name)
        given = get_preset(preset, info["name"]) if preset is not None else {}
    except (KeyError, ValueError, TypeError) as exc:
        _fail(str(exc))
        return
    console.print(f"[bold]{escape(info['name'])}[/] ({info['class']}, {info['kind']}): {escape(info['summary'])}")
    if info["hparams"]:
        table = Table(title="hyperparameters", title_justify="left")
        for col in ("name", "default", "allowed") + (("preset",) if preset else ()):
            table.add_column(col, overflow="fold")
        for k, v in info["hparams"].items():
            cells = [k, f"{v:g}" if isinstance(v, float) else str(v), info["constraints"][k]]
            if preset:
                cells.append(str(given.get(k, "—")))
            table.add_row(*cells)
        console.print(table)
    else:
        console.print("no hyperparameters")
    form = "a function of p_y alone (the theory's form)" if info["pointwise"] else "depends on more than p_y"
    console.print(f"theory: {form}; presets: {', '.join(info['presets']) or 'none'}")


@app.command("protocols")
def protocols_cmd() -> None:
    """List the training protocols and their settings."""
    from rich.table import Table

    from .train import get_protocol, list_protocols

    rows = []
    for name in list_protocols():
        c = get_protocol(name)
        aug = ", ".join(a for a, on in (
            (f"crop pad {c.crop_padding}", c.crop_padding), (f"resized crop {c.random_resized_crop}", c.random_resized_crop),
            ("flip", c.hflip), (f"rotate {c.rotation:g}°", c.rotation), (f"colour jitter {c.color_jitter:g}", c.color_jitter),
        ) if on) or "none"
        sched = c.schedule + (f" ×{c.gamma:g} at {list(c.milestones)}" if c.schedule == "step" else f" ×{c.gamma:g}/epoch" if c.schedule == "exp" else "")
        rows.append((name, c.dataset, c.model, str(c.epochs), str(c.batch_size), f"{c.lr:g}", f"{c.weight_decay:g}",
                     sched, aug, str(c.loss_preset), c.noise_sampler))
    title = "Training protocols (docs/protocols.md)"
    table = Table(title=title)
    for col in ("protocol", "dataset", "model", "epochs", "batch", "lr", "wd", "schedule", "augmentation", "loss preset", "noise sampler"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    if not _fits(table):  # a narrow terminal: the settings stacked in five columns, nothing cut
        table = Table(title=title, show_lines=True)
        table.add_column("protocol", no_wrap=True)
        table.add_column("dataset\nmodel\nloss preset\nnoise sampler", no_wrap=True)
        table.add_column("optimisation", ratio=1)
        table.add_column("augmentation", ratio=1)
        for name, ds, model, ep, bs, lr, wd, sched, aug, preset, sampler in rows:
            table.add_row(name, f"{ds}\n{model}\n{preset}\n{sampler}",
                          f"{ep} epochs, batch {bs}, lr {lr}, wd {wd}, {sched}", aug)
    console.print(table)


def _fits(table) -> bool:
    """Whether ``table`` fits the terminal without wrapping or cutting any cell."""
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    return natural <= console.width


def _parse_overrides(items: List[str], option: str = "--set") -> dict:
    """``key=value`` pairs of a repeatable option; values parsed as YAML scalars (numbers, booleans, lists)."""
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            _fail(f"{option} expects key=value; got {item!r}.")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            _fail(f"{option} {item!r}: the value is not a number, boolean, list or plain word; quote it "
                  "if it is text.")
    return out


@app.command("train")
def train_cmd(
    protocol: str = typer.Option("paper-mnist", help="Named protocol (see `asymloss protocols`)."),
    loss: str = typer.Option("ce", help="Loss name (see `asymloss losses`), e.g. nce+agce."),
    noise: str = typer.Option("clean", help="Noise spec: clean, symmetric:0.8, asymmetric:0.4, pairflip:0.45, instance:0.4, cifar10n:worst, ..."),
    seed: int = typer.Option(0, help="Seed of model init, data order and augmentation."),
    noise_seed: Optional[int] = typer.Option(None, help="Seed of the label noise (default: --seed)."),
    epochs: Optional[int] = typer.Option(None, help="Override the protocol's number of epochs."),
    subset: Optional[int] = typer.Option(None, help="Train on a fixed random subset of this many images."),
    data_dir: Optional[str] = typer.Option(None, help="Dataset directory (default: $ASYMLOSS_DATA or ~/.cache/asymloss)."),
    device: str = typer.Option("auto", help="cpu, cuda or auto."),
    out: Optional[str] = typer.Option(None, help="Run directory for record.json and checkpoint.pt (resumes if present)."),
    loss_preset: Optional[str] = typer.Option(None, help="Loss preset (default: the protocol's), e.g. paper:cifar10."),
    param: List[str] = typer.Option([], "--param", help="Loss hyperparameter override key=value, e.g. --param a=0.6 (repeatable)."),
    set_: List[str] = typer.Option([], "--set", help="Any config field override key=value, e.g. --set lr=0.05 (repeatable)."),
    restart: bool = typer.Option(False, "--restart", help="Start the run in --out again from epoch 0 (e.g. when its checkpoint is unreadable); its old files are kept beside it."),
    meta_set: Optional[str] = typer.Option(None, "--meta-set", help="Meta-learn the loss's hyperparameters from N clean-labelled training images held out of training (class-balanced), or from the trusted training indices in a file (text or .npy). See docs/meta.md."),
    meta_lr: Optional[float] = typer.Option(None, "--meta-lr", help="Learning rate of the hyperparameters' optimiser (default 0.01)."),
    meta_every: Optional[int] = typer.Option(None, "--meta-every", help="One meta step every this many training steps (default 1)."),
    meta_param: List[str] = typer.Option([], "--meta-param", help="A hyperparameter to meta-learn (repeatable; default: every continuous one)."),
    meta_optimizer: Optional[str] = typer.Option(None, "--meta-optimizer", help="adam (default) or sgd."),
    meta_batch_size: Optional[int] = typer.Option(None, "--meta-batch-size", help="Trusted images per meta step (default: the batch size)."),
) -> None:
    """Train one model on noisy labels with a chosen loss under a protocol."""
    import warnings

    from .data import ChecksumError, DatasetNotFoundError, FormatError
    from .train import CheckpointError, RunDirError, check_config, get_protocol, inspect_run, restart_run, train
    from .train.checks import SmallSubsetWarning

    overrides = {"loss": loss, "noise": noise, "seed": seed, "device": device}
    for key, value in (("noise_seed", noise_seed), ("epochs", epochs), ("subset", subset),
                       ("data_dir", data_dir), ("loss_preset", loss_preset)):
        if value is not None:
            overrides[key] = value
    if param:
        overrides["loss_params"] = _parse_overrides(param, "--param")
    if meta_set is not None:
        overrides["meta_set"] = _parse_meta_set(meta_set)
    for key, value in (("meta_lr", meta_lr), ("meta_every", meta_every), ("meta_optimizer", meta_optimizer),
                       ("meta_batch_size", meta_batch_size), ("meta_params", meta_param or None)):
        if value is not None:
            overrides[key] = value
    overrides.update(_parse_overrides(set_))
    state, caught = None, []
    try:  # everything that can be checked is checked before any training
        cfg = get_protocol(protocol, **overrides)
        if out is not None:
            try:
                state = inspect_run(out, cfg)
            except CheckpointError:
                if not restart:
                    raise
        if state is not None and state.status == "complete" and not restart:
            console.print(f"This run is already complete ({state.epochs_done} of {state.epochs} epochs); its record is "
                          f"{out}/record.json (--restart trains it again).")
            _print_train_result(cfg, state.record, out)
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SmallSubsetWarning)
            check_config(cfg)
    except _USER_ERRORS as exc:
        _fail(_message(exc))
    except KeyboardInterrupt:
        _interrupted("before training started; nothing was changed.")
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
    try:  # from here on, Ctrl-C says what was kept
        if out is None:
            console.print("[dim]note: no --out, so nothing is saved (give --out DIR to keep the record and be able "
                          "to resume).[/]")
        elif restart:
            try:
                moved = restart_run(out, cfg)
            except _USER_ERRORS as exc:
                _fail(_message(exc))
            if moved:
                console.print(f"Restarting from epoch 0; the earlier files are kept in {out} as "
                              f"{', '.join(p.name for p in moved)}.")
        elif state is not None and state.status == "resumable":
            console.print(f"Resuming from epoch {state.epochs_done} of {state.epochs} ({out}/checkpoint.pt).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSubsetWarning)  # shown above
            record = train(cfg, out, progress=True)
    except KeyboardInterrupt:
        if out is None:
            _interrupted("nothing was saved (no --out).")
        done = _epochs_in(out)
        _interrupted(f"{out} holds {done} of {cfg.epochs} epochs; run the same command again to resume "
                     f"from epoch {done}." if done else f"no epoch had finished, so {out} holds nothing to "
                     "resume; run the same command again to start it.")
    except (RunDirError, ChecksumError, FormatError, DatasetNotFoundError) as exc:  # files changed since the checks
        _fail(_message(exc))
    _print_train_result(cfg, record, out)


def _parse_meta_set(value: str):
    """``--meta-set``: a count, or a file of trusted training indices (whitespace/comma separated, or .npy)."""
    import re
    from pathlib import Path

    import numpy as np

    text = value.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    path = Path(text)
    if not path.is_file():
        _fail(f"--meta-set {value!r} is neither a number of images nor a file of training indices.")
    try:
        if path.suffix == ".npy":
            idx = np.load(path, allow_pickle=False).ravel()
        else:
            idx = [tok for tok in re.split(r"[\s,]+", path.read_text(encoding="utf-8")) if tok]
        out = [int(i) for i in idx]
    except (OSError, ValueError, UnicodeDecodeError) as e:
        _fail(f"--meta-set {value!r}: cannot read training indices from it ({type(e).__name__}: {e}); give one "
              "integer index per line (or a .npy array of integers).")
    return out


def _print_meta(record: dict, out: Optional[str]) -> None:
    """The meta-learned hyperparameters, start → end, and the trajectory figure in ``out``."""
    from .train.meta import meta_trajectory

    meta = record.get("meta")
    if not meta:
        return
    traj = meta_trajectory(record)
    moves = ", ".join(f"{k} {v[0]:.4g} → {v[-1]:.4g}" for k, v in traj.items())
    console.print(f"meta-learned from {meta['size']} held-out clean images: {moves}", highlight=False)
    if out:
        try:
            from .report import plot_meta_trajectory, save_figure

            path = save_figure(plot_meta_trajectory(record), f"{out}/meta-trajectory.png")
            console.print(f"trajectory figure: {path}")
        except ImportError:
            pass  # matplotlib is an optional extra


def _epochs_in(out: str) -> int:
    import json
    from pathlib import Path

    try:
        return len(json.loads((Path(out) / "record.json").read_text()).get("epochs") or [])
    except (OSError, ValueError):
        return 0


def _print_train_result(cfg, record: dict, out: Optional[str]) -> None:
    from rich.markup import escape
    from rich.table import Table

    final = record["final"]
    table = Table(title=escape(f"{cfg.protocol}: {cfg.loss} under {cfg.noise} (seed {cfg.seed})"))
    for col in ("last test acc", "best test acc (epoch)", "realised noise", "images/s", "wall time"):
        table.add_column(col, overflow="fold")
    ips = final.get("images_per_s")
    table.add_row(f"{100 * final['last_test_acc']:.2f}%", f"{100 * final['best_test_acc']:.2f}% ({final['best_epoch']})",
                  f"{100 * record['noise'].get('subset_rate', record['noise']['rate']):.2f}%",
                  f"{ips:,.0f}" if ips else "–", f"{final['wall_time_s']:.1f} s")
    console.print(table)
    _print_meta(record, out)
    if record["data"].get("note"):
        console.print(f"[yellow]note:[/] {escape(record['data']['note'])}")
    if out:
        console.print(f"run record: {out}/record.json")


@app.command("demo")
def demo_cmd(
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds of the runs and their label noise; the table shows the mean over them."),
    seed: Optional[int] = typer.Option(None, help="One seed only (instead of --seeds)."),
    epochs: Optional[int] = typer.Option(None, help="Override the demo's number of epochs."),
    workers: Optional[int] = typer.Option(None, help="Worker processes (default: one per core, at most 4; 1 runs in this process). The numbers do not depend on it."),
) -> None:
    """Train CE, GCE, SCE, NCE+RCE and NCE+AGCE on real handwritten digits under clean,
    symmetric 0.6 and asymmetric 0.4 noise (no download), and print the test accuracies (mean ± std
    over seeds)."""
    import statistics
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table

    from ._validation import check_number
    from .train import check_config
    from .train.demo import DEMO_LOSSES, DEMO_NOISE, demo_accuracies, demo_configs, demo_workers

    overrides = {"epochs": epochs} if epochs is not None else {}
    try:  # validated like train's options, before anything runs
        if seed is not None:
            seed_list = [seed]
        else:
            try:
                seed_list = list(dict.fromkeys(int(x) for x in seeds.split(",") if x.strip()))
            except ValueError:
                raise ValueError(f"--seeds must be comma-separated integers; got {seeds!r}.") from None
            if not seed_list:
                raise ValueError("--seeds: at least one seed is needed.")
        if workers is not None:
            check_number("workers", workers, ge=1, integer=True)
        for s in seed_list:
            check_config(demo_configs(seed=s, **overrides)[0])
    except _USER_ERRORS as exc:
        _fail(_message(exc))
    settings = len(DEMO_LOSSES) * len(DEMO_NOISE)
    total = settings * len(seed_list)
    n_workers = demo_workers(total) if workers is None else min(workers, total)
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("demo", total=total)

        def on_run(done, total, cfg):
            bar.update(task, completed=done, description=f"{cfg.loss} / {cfg.noise} / seed {cfg.seed}")

        try:
            results = demo_accuracies(seeds=seed_list, workers=n_workers, on_run=on_run, **overrides)
        except KeyboardInterrupt:
            bar.stop()
            _interrupted("the demo saves nothing; run `asymloss demo` again to see its table.")
        bar.update(task, completed=total, description="done")
    many = len(seed_list) > 1
    which = f"mean ± std over seeds {', '.join(map(str, seed_list))}" if many else f"seed {seed_list[0]}"
    table = Table(title=f"Test accuracy (%) on handwritten digits, MLP, last of {epochs or 40} epochs, {which}")
    table.add_column("loss", no_wrap=True)
    for nz in DEMO_NOISE:
        table.add_column(nz, justify="right", no_wrap=True)
    mean = {k: statistics.fmean(v) for k, v in results.items()}
    col_best = {nz: max(round(100 * mean[(loss, nz)], 1) for loss in DEMO_LOSSES) for nz in DEMO_NOISE}
    for loss in DEMO_LOSSES:
        cells = []
        for nz in DEMO_NOISE:
            m = round(100 * mean[(loss, nz)], 1)
            text = f"{m:.1f}" + (f" ± {100 * statistics.stdev(results[(loss, nz)]):.1f}" if many else "")
            cells.append(f"[bold]{text}[/]" if m == col_best[nz] else text)
        table.add_row(loss, *cells)
    console.print(table)
    console.print(f"{settings} runs × {len(seed_list)} seed(s) in {time.perf_counter() - t0:.0f} s ({n_workers} worker "
                  f"process{'es' if n_workers > 1 else ''}). Best mean per column in bold.")


# ---------------------------------------------------------------------------------------------
# sweeps and reports
# ---------------------------------------------------------------------------------------------

@app.command("sweep")
def sweep_cmd(
    out: str = typer.Option(..., "--out", help="Results store directory (created; re-running resumes it)."),
    grid: Optional[str] = typer.Option(None, "--grid", help="A named grid (paper-mnist-table, paper-cifar10-table, paper-cifar100-table) or a YAML/TOML grid file."),
    protocol: Optional[str] = typer.Option(None, help="Named protocol (see `asymloss protocols`); replaces the grid's."),
    losses: Optional[str] = typer.Option(None, help="Comma-separated losses, e.g. ce,agce,nce+agce; replaces the grid's."),
    noise: Optional[str] = typer.Option(None, help="Comma-separated noise specs, e.g. clean,symmetric:0.6,asymmetric:0.4."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated seeds, e.g. 0,1,2."),
    epochs: Optional[int] = typer.Option(None, help="Override the number of epochs of every run."),
    subset: Optional[int] = typer.Option(None, help="Train every run on a fixed random subset of this many images."),
    data_dir: Optional[str] = typer.Option(None, help="Dataset directory (default: $ASYMLOSS_DATA or ~/.cache/asymloss)."),
    set_: List[str] = typer.Option([], "--set", help="Config override key=value for every run, e.g. --set lr=0.05 (repeatable)."),
    executor: str = typer.Option("local", help="local (process pool on this machine) or ray (an existing Ray cluster)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address for --executor ray: auto or HOST:PORT (default auto)."),
    max_workers: Optional[int] = typer.Option(None, help="Runs at once (default: sized to the machine / cluster)."),
    threads_per_run: Optional[int] = typer.Option(None, help="CPU threads per run (default: CPUs divided between the workers; Ray: 1)."),
    gpus_per_run: Optional[float] = typer.Option(None, help="Ray: fraction of a GPU per run when the cluster has GPUs (default 0.25)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed runs again (their error.json is removed)."),
    restart_unreadable: bool = typer.Option(False, "--restart-unreadable", help="Start unfinished runs whose checkpoint is unreadable again from epoch 0 (the damaged files are kept)."),
    pack: str = typer.Option("auto", "--pack", help="Train compatible runs together as packs of at most N runs (one process, one packed model; docs/packing.md); auto packs on CUDA only, 1 never."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and list the runs, run nothing."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the sweep's progress bar."),
) -> None:
    """Run a grid of losses × noise settings × seeds into a results store (resumable)."""
    from rich.table import Table

    from .sweep import (ResultsStore, SweepInterrupted, build_grid, check_store_dir, check_sweep, expand_grid,
                        list_executors, plan_sweep, run_sweep)

    if executor not in list_executors():
        _fail(f"--executor must be one of {', '.join(list_executors())}; got {executor!r}.")
    if address is not None and executor != "ray":
        _fail("--address is only used with --executor ray.")
    try:
        from .sweep.packs import check_pack

        pack_size = check_pack(pack)
    except (ValueError, TypeError) as exc:
        _fail(f"--pack: {exc}")
    overrides = {k: v for k, v in (("epochs", epochs), ("subset", subset), ("data_dir", data_dir)) if v is not None}
    overrides.update(_parse_overrides(set_))
    try:  # everything is validated before any run starts: each run's config, the device, each dataset once
        from ._extras import require

        require("pandas")
        store = ResultsStore(check_store_dir(out))
        g = build_grid(grid, protocol=protocol, losses=losses, noise=noise, seeds=seeds, overrides=overrides)
        runs = expand_grid(g)
        todo = plan_sweep(runs, store, retry_failed=retry_failed)["todo"]
        local = executor == "local"
        check_sweep(todo, store, load_data=local, check_device=local, restart_unreadable=restart_unreadable)
    except _USER_ERRORS as exc:
        _fail(_message(exc))
    if dry_run:
        table = Table(title=f"{len(runs)} runs of {g.name or g.protocol}")
        for col, kw in (("id", {"no_wrap": True}), ("loss", {"no_wrap": True}), ("noise", {}), ("seed", {}),
                        ("epochs", {}), ("status", {})):
            table.add_column(col, overflow="fold", **kw)
        for r in runs:
            table.add_row(r.id, r.label, r.config.noise, str(r.config.seed), str(r.config.epochs), store.status(r.id))
        console.print(table)
        return
    try:
        summary = run_sweep(g, out, executor=executor, max_workers=max_workers, threads_per_run=threads_per_run,
                            gpus_per_run=gpus_per_run, address=address, retry_failed=retry_failed,
                            progress=progress, console=console, runs=runs, pack=pack_size, check=False,
                            restart_unreadable=restart_unreadable)
    except SweepInterrupted as exc:
        sm = exc.summary
        _interrupted(f"{sm.completed} run(s) finished in this session ({sm.failed} failed), {sm.skipped} were "
                     f"complete or failed before; {exc.unfinished} unfinished run(s) keep their last checkpoint. Run the "
                     "same command again to continue.")
    except KeyboardInterrupt:
        _interrupted("before any run had started; nothing changed. Run the same command again to start.")
    except _USER_ERRORS as exc:
        _fail(_message(exc))
    console.print(f"{summary.completed} run(s) completed, {summary.failed} failed, {summary.skipped} skipped "
                  f"(already done or failed) in {summary.seconds:.1f} s. Store: {out}")
    if summary.failed_ids:
        console.print(f"[red]failed:[/] {', '.join(summary.failed_ids)} (tracebacks in {out}/runs/<id>/error.json; "
                      "re-run with --retry-failed)")
        raise typer.Exit(code=1)


@app.command("table")
def table_cmd(
    results: str = typer.Argument(..., help="A results store directory (or its results.sqlite)."),
    metric: str = typer.Option("last", help="last (last-epoch) or best (best-epoch) test accuracy."),
    fmt: str = typer.Option("markdown", "--format", help="markdown, csv or latex."),
    width: Optional[int] = typer.Option(None, "--width", help="Split a Markdown table wider than this many characters into several (default: the terminal's width when printing to one)."),
) -> None:
    """Paper-style table: losses × noise settings, mean ± std over seeds (accuracy %)."""
    import sys

    from .report import FORMATS, METRICS, results_table

    if metric not in METRICS:
        _fail(f"--metric must be one of {', '.join(METRICS)}; got {metric!r}.")
    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}.")
    try:
        if width is None and sys.stdout.isatty():
            width = console.width
        text = results_table(results, metric=metric, fmt=fmt, width=width)
    except _USER_ERRORS as exc:
        _fail(_message(exc))
    print(text)


@app.command("plot")
def plot_cmd(
    results: str = typer.Argument(..., help="A results store directory (or its results.sqlite)."),
    out: str = typer.Option(..., "--out", help="Directory for the figures."),
    fmt: str = typer.Option("png", "--format", help="png or svg."),
    metric: str = typer.Option("last", help="Accuracy of the ratio plot: last or best epoch."),
) -> None:
    """Plots: accuracy curves per noise setting, accuracy vs asymmetry ratio, loss shapes."""
    from .report import METRICS, PLOT_FORMATS, plot_results

    if fmt not in PLOT_FORMATS:
        _fail(f"--format must be one of {', '.join(PLOT_FORMATS)}; got {fmt!r}.")
    if metric not in METRICS:
        _fail(f"--metric must be one of {', '.join(METRICS)}; got {metric!r}.")
    try:
        written = plot_results(results, out, fmt=fmt, metric=metric)
    except _USER_ERRORS as exc:
        _fail(_message(exc))
    for name, path in written.items():
        console.print(f"{name}: {path}" if path else f"{name}: [dim]nothing to draw[/]")


# ---------------------------------------------------------------------------------------------


def _sigterm_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:  # console-script entry point
    import signal

    # a SIGTERM (a job scheduler, `kill`) ends a command like Ctrl-C: the same message, nothing lost
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        app()
    except SystemExit:
        if _interrupt_handled:
            # CPython (3.11) remembers a Ctrl-C that went through exec() (dataclasses, lazy imports) and,
            # although it was handled, would end the process by SIGINT instead of with status 130
            import os

            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()


# ---------------------------------------------------------------------------------------------
# noise estimation and advice from the theory (docs/estimation.md)
# ---------------------------------------------------------------------------------------------

def _fmt_cell(v: float) -> str:
    import math

    if not math.isfinite(v):
        return "∞"
    return "1" if v >= 0.995 else f"{v:.2f}".lstrip("0") if v >= 0.005 else "0"


def _print_matrix(title: str, T, se=None) -> None:
    """T (K ≤ 12) as a compact table (entries to 2 decimals); for larger K, the largest off-diagonal entries."""
    import numpy as np
    from rich import box
    from rich.table import Table

    T = np.asarray(T, dtype=float)
    K = T.shape[0]
    if K <= 12:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
        table.add_column("y\\k", justify="right", style="dim")
        for k in range(K):
            table.add_column(str(k), justify="right")
        for y in range(K):
            table.add_row(str(y), *[f"[bold]{_fmt_cell(T[y, k])}[/]" if y == k else _fmt_cell(T[y, k]) for k in range(K)])
        console.print(table)
    else:
        off = T - np.diag(np.diag(T))
        order = np.argsort(off, axis=None)[::-1][:8]
        console.print(f"{title}: K = {K}; diagonal from {np.diag(T).min():.2f} to {np.diag(T).max():.2f}; largest "
                      "off-diagonal entries: " + ", ".join(f"T[{i // K},{i % K}] = {T.flat[i]:.3f}" for i in order))
    if se is not None:
        se = np.asarray(se, dtype=float)
        console.print(f"[dim]standard error of an entry (jackknife over the folds): median {np.median(se):.3f}, "
                      f"max {np.max(se):.3f}[/]")


def _print_estimate(record: dict) -> None:
    from rich.markup import escape

    est, truth, err = record["estimate"], record["truth"], record["error"]
    cfg = record["config"]
    folds = est.get("folds") or {}
    console.print(escape(f"Noise estimate: {cfg['dataset']}, {cfg['noise']}, {record['data']['train_size']:,} "
                         f"images, {record['folds']} folds of {cfg['epochs']} epoch(s) of {cfg['loss']} "
                         f"({est['method']})"))
    _print_matrix("T̂ (rows: clean class y, columns: noisy label k)", est["transition"], folds.get("transition_se"))
    rt, se = est["noise_ratio"], folds.get("noise_ratio_se")
    line = f"r̃(T̂) = {'∞' if rt is None else f'{rt:.3f}'}" + (f" ± {se:.3f}" if se is not None else "")
    real = truth["realised"]
    line += f"; true: {real['noise_ratio']:.3f} realised"
    if truth.get("nominal"):
        line += f", {truth['nominal']['noise_ratio']:.3f} nominal"
    console.print(escape(line))
    console.print(f"noise rate: {est['rate']:.3f} estimated, {real['rate']:.3f} realised")
    parts = [f"{err[w]['max_abs_error']:.3f} ({w})" for w in ("realised", "nominal") if w in err]
    console.print("max |T̂ − T|: " + ", ".join(parts))
    acc = [r["held_out_acc_clean"] for r in record["fold_runs"]]
    console.print(f"held-out accuracy of the fold models against the clean labels: {min(acc):.3f}–{max(acc):.3f}")


def _estimation_config(protocol, loss, noise, seed, noise_seed, epochs, subset, data_dir, device, param, set_):
    from .train import check_config, get_protocol

    overrides = {"loss": loss, "noise": noise, "seed": seed, "device": device, "epochs": epochs}
    for key, value in (("noise_seed", noise_seed), ("subset", subset), ("data_dir", data_dir)):
        if value is not None:
            overrides[key] = value
    if param:
        overrides["loss_params"] = _parse_overrides(param, "--param")
    overrides.update(_parse_overrides(set_))
    cfg = get_protocol(protocol, **overrides)
    check_config(cfg)
    return cfg


def _run_estimate(cfg, folds: int, out: Optional[str]) -> dict:
    from .train import estimate_noise

    def on_fold(k, K, data):
        console.print(f"[dim]fold {k + 1}/{K}: training on {len(data.y_noisy):,} images, "
                      f"predicting {len(data.y_test):,} held-out ones[/]")

    return estimate_noise(cfg, folds, out, progress=True, on_fold=on_fold)


_EST_HELP = {
    "protocol": "Named protocol of the fold models (see `asymloss protocols`).",
    "noise": "Noise of the training set: symmetric:0.6, asymmetric:0.4, pairflip:0.4, cifar10n:worst, ...",
    "folds": "Number of cross-validation folds (>= 2).",
    "epochs": "Epochs of each fold model (a short schedule: the probabilities must not fit the noise).",
    "subset": "Use a fixed random subset of this many training images.",
}


@app.command("estimate-noise")
def estimate_noise_cmd(
    noise: str = typer.Option(..., help=_EST_HELP["noise"]),
    protocol: str = typer.Option("paper-mnist", help=_EST_HELP["protocol"]),
    loss: str = typer.Option("ce", help="Loss of the fold models."),
    folds: int = typer.Option(5, help=_EST_HELP["folds"]),
    epochs: int = typer.Option(10, help=_EST_HELP["epochs"]),
    subset: Optional[int] = typer.Option(None, help=_EST_HELP["subset"]),
    seed: int = typer.Option(0, help="Seed of the folds and of the fold models."),
    noise_seed: Optional[int] = typer.Option(None, help="Seed of the label noise (default: --seed)."),
    data_dir: Optional[str] = typer.Option(None, help="Dataset directory (default: $ASYMLOSS_DATA or ~/.cache/asymloss)."),
    device: str = typer.Option("auto", help="cpu, cuda or auto."),
    out: Optional[str] = typer.Option(None, help="Directory for estimate.json, pred_probs.npz and the fold runs (resumes if present)."),
    param: List[str] = typer.Option([], "--param", help="Loss hyperparameter of the fold models key=value (repeatable)."),
    set_: List[str] = typer.Option([], "--set", help="Any config field override key=value, e.g. --set lr=0.05 (repeatable)."),
) -> None:
    """Estimate the noise transition matrix T̂ of a noisy training set: k-fold training for
    out-of-sample predicted probabilities, then the confident joint (needs cleanlab: the 'estimate' extra)."""
    from .noise._estimate import _cleanlab_count

    try:
        if folds < 2:
            raise ValueError(f"--folds must be >= 2; got {folds}.")
        cfg = _estimation_config(protocol, loss, noise, seed, noise_seed, epochs, subset, data_dir, device, param, set_)
        _cleanlab_count()
    except (KeyError, ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError) as exc:
        _fail(str(exc))
    record = _run_estimate(cfg, folds, out)
    _print_estimate(record)
    if out:
        console.print(f"estimate record: {out}/estimate.json (pred_probs: {out}/pred_probs.npz); "
                      f"next: asymloss advise --estimate {out}")


def _print_advice(advice) -> None:
    import math

    from rich import box
    from rich.markup import escape
    from rich.table import Table

    rt, se = advice.noise_ratio, advice.noise_ratio_se
    _print_matrix("T̂ (rows: clean class y, columns: noisy label k)", advice.transition, advice.transition_se)
    rts = "∞" if not math.isfinite(rt) else f"{rt:.3f}"
    if se is None:
        unc = "no uncertainty (no folds)"
    else:
        lo, hi = advice.interval
        unc = (f"± {se:.3f} (fold jackknife), interval [{lo:.3f}, "
               f"{'∞' if not math.isfinite(hi) else f'{hi:.3f}'}]")
    console.print(escape(f"r̃(T̂) = {rts} {unc}"))
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False, title="Candidates", title_justify="left")
    table.add_column("loss", overflow="fold", min_width=18, max_width=24)
    table.add_column("from", overflow="fold", max_width=10)
    table.add_column("r", justify="right")
    table.add_column("r − r̃", justify="right")
    table.add_column("asym.?")
    table.add_column("smallest a (q)", overflow="fold", max_width=15)
    colours = {"yes": "green", "no": "red", "uncertain": "yellow"}
    for c in advice.candidates:
        src = ", ".join(s.replace("paper:", "") for s in c.sources)
        r = "—" if c.ratio is None else f"{c.ratio:.3f}"
        margin = "—" if c.margin is None or not math.isfinite(c.margin) else f"{c.margin:+.3f}"
        b = c.bound
        if b is None:
            smallest = "—"
        elif b.kind == "min":
            smallest = f"{c.param}≥{b.value:.3g}"
            if c.bound_range and all(isinstance(v, float) for v in c.bound_range):
                smallest += f" ({max(c.bound_range):.3g})"
        elif b.kind == "max":
            smallest = f"{c.param}≤{b.value:.3g}"
        else:
            smallest = {"any": "any", "none": "none"}[b.kind]
        table.add_row(escape(c.label), escape(src), r, margin, f"[{colours[c.verdict]}]{c.verdict}[/]", smallest)
    console.print(table)
    notes = ["r: asymmetry ratio; asymmetric iff r ≥ r̃ (ℓ(p_y) losses; others: simplex check)."]
    if se is not None:
        notes.append("(x): the bound at the upper end of r̃'s interval.")
    console.print("[dim]" + escape(" ".join(notes)) + "[/]")
    style = {"dominant": "", "not-dominant": "bold red", "uncertain": "bold yellow"}[advice.status]
    console.print((f"[{style}]" if style else "") + escape(advice.message) + ("[/]" if style else ""))


@app.command("advise")
def advise_cmd(
    estimate: Optional[str] = typer.Option(None, "--estimate", help="An estimate record (estimate.json of estimate-noise, or its directory)."),
    transition: Optional[str] = typer.Option(None, "--transition", help="T̂ as a file: .npy, .csv/.txt (K rows), .json (a matrix or a record)."),
    pred_probs: Optional[str] = typer.Option(None, "--pred-probs", help="Out-of-sample predicted probabilities: pred_probs.npz, or .npy with --labels."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Noisy labels (.npy or .txt) for --pred-probs."),
    noise: Optional[str] = typer.Option(None, help="Estimate first, as estimate-noise does: " + _EST_HELP["noise"]),
    protocol: str = typer.Option("paper-mnist", help=_EST_HELP["protocol"] + " With --noise."),
    train_loss: str = typer.Option("ce", help="Loss of the fold models (with --noise)."),
    folds: int = typer.Option(5, help=_EST_HELP["folds"] + " With --pred-probs without fold ids: random parts."),
    epochs: int = typer.Option(10, help=_EST_HELP["epochs"]),
    subset: Optional[int] = typer.Option(None, help=_EST_HELP["subset"]),
    seed: int = typer.Option(0, help="Seed of the folds, of the fold models and of the simplex checks."),
    data_dir: Optional[str] = typer.Option(None, help="Dataset directory (with --noise)."),
    device: str = typer.Option("auto", help="cpu, cuda or auto (with --noise)."),
    out: Optional[str] = typer.Option(None, help="Directory of the estimate (with --noise)."),
    candidate: List[str] = typer.Option([], "--candidate", "-c", help="Candidate loss (repeatable): agce,a=0.6,q=0.6 | ael@paper:mnist | nce+agce@paper:cifar10."),
    no_defaults: bool = typer.Option(False, "--no-defaults", help="Judge only the --candidate losses (default: also the paper's ALFs and the ℓ(p_y) losses)."),
    z: float = typer.Option(2.0, help="Width of r̃'s interval in standard errors."),
    figure: Optional[str] = typer.Option(None, "--figure", help="Write the figure (T̂ heatmap, ratios vs r̃) to this .png/.svg."),
    json_out: Optional[str] = typer.Option(None, "--json", help="Write the advice as JSON to this file."),
) -> None:
    """Which losses are asymmetric (noise-tolerant) on the noise of a dataset? T̂ and its noise ratio
    r̃ with an uncertainty, and for each candidate its ratio r, the margin r − r̃, the verdict and
    the smallest parameter that makes it asymmetric."""
    from . import theory
    from .noise import estimate_transition, read_pred_probs, read_transition

    given = [n for n, v in (("--estimate", estimate), ("--transition", transition), ("--pred-probs", pred_probs),
                            ("--noise", noise)) if v is not None]
    if len(given) != 1:
        _fail("give exactly one source of T̂: --estimate DIR, --transition FILE, --pred-probs FILE (with --labels) "
              f"or --noise SPEC (with --protocol ...); got {', '.join(given) or 'none'}.")
    if no_defaults and not candidate:
        _fail("--no-defaults needs at least one --candidate.")
    cands = ([] if no_defaults else theory.default_candidates()) + list(candidate)
    try:  # every argument is checked before any work
        for c in candidate:
            theory.parse_candidate(c)
        if z <= 0:
            raise ValueError(f"--z must be > 0; got {z}.")
        if figure is not None and not figure.lower().endswith((".png", ".svg", ".pdf")):
            raise ValueError(f"--figure must end in .png, .svg or .pdf; got {figure!r}.")
        if folds < 2:
            raise ValueError(f"--folds must be >= 2; got {folds}.")
        T = cfg = None
        if estimate is not None:
            from .noise import load_estimate

            T = load_estimate(estimate)
        elif transition is not None:
            T = read_transition(transition)
        elif pred_probs is not None:
            P, s, ids = read_pred_probs(pred_probs, labels)
            T = estimate_transition(P, s, folds=ids if ids is not None else folds, seed=seed)
        else:
            from .noise._estimate import _cleanlab_count

            cfg = _estimation_config(protocol, train_loss, noise, seed, None, epochs, subset, data_dir, device, [], [])
            _cleanlab_count()
        if T is not None:
            advice = theory.advise(T, cands, z=z, seed=seed)
    except (KeyError, ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError, OSError) as exc:
        _fail(str(exc))
    if cfg is not None:
        record = _run_estimate(cfg, folds, out)
        from .noise import TransitionEstimate

        T = TransitionEstimate.from_summary(record["estimate"])
        try:
            advice = theory.advise(T, cands, z=z, seed=seed, source=f"{cfg.dataset} {cfg.noise}, {folds}-fold {cfg.loss}")
        except (KeyError, ValueError, TypeError) as exc:
            _fail(str(exc))
    _print_advice(advice)
    if figure is not None:
        from .report import plot_advice, save_figure

        save_figure(plot_advice(advice), figure)
        console.print(f"figure: {figure}")
    if json_out is not None:
        from ._io import atomic_write_json

        atomic_write_json(json_out, advice.summary())
        console.print(f"advice: {json_out}")
