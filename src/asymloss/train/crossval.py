"""Out-of-sample predicted probabilities by k-fold training, and the noise estimate built on them.

:func:`cross_val_predict` prepares the (noisy) training set exactly as a run of ``config`` would
(dataset, subset, noise), splits it into ``folds`` stratified folds (by noisy label, seeded by
``config.seed``), trains ``config`` with :func:`asymloss.train.train` on all folds but one and
predicts the held-out fold, for each fold in turn. Every example thus gets predicted probabilities
from a model that never saw its label.

:func:`estimate_noise` adds the confident-joint estimate of the transition matrix
(:func:`asymloss.noise.estimate_transition`, with the folds of the cross-validation as the measure
of its spread) and, because the noise here is simulated or its clean labels are known, compares
it with the true matrix. With ``out_dir`` it writes ``estimate.json`` (the record),
``pred_probs.npz`` and one engine run directory per fold (``folds/<K>-fold-<k>/``: the fold's
``record.json`` and ``checkpoint.pt``); calling it again resumes unfinished folds and reuses
finished ones. See ``docs/estimation.md``.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from .._io import atomic_path, atomic_write_json
from .._validation import check_number
from .config import TrainConfig
from .engine import CHECKPOINT, PreparedData, _Normalise, prepare_data, resolve_device, train
from .record import environment

__all__ = ["CrossValPredictions", "cross_val_predict", "estimate_noise", "fold_ids", "ESTIMATE_RECORD",
           "PRED_PROBS"]

ESTIMATE_RECORD = "estimate.json"
PRED_PROBS = "pred_probs.npz"


@dataclass(frozen=True, eq=False)
class CrossValPredictions:
    """Out-of-sample predictions of a k-fold cross-validation on a noisy training set.

    Attributes:
        pred_probs: (N, K) float64, row i from the model that did not train on example i.
        noisy_labels, clean_labels: (N,) int64 labels of the training set (after subset and noise).
        fold_ids: (N,) the fold of each example.
        fold_records: the engine's run record of each fold (its "test" set is the held-out fold,
            scored against the noisy labels).
        noise: the noise summary of the whole training set (``NoisyLabels.summary()``).
        config: the configuration each fold was trained with.
    """

    pred_probs: np.ndarray
    noisy_labels: np.ndarray
    clean_labels: np.ndarray
    fold_ids: np.ndarray
    fold_records: tuple
    noise: dict
    config: TrainConfig
    note: Optional[str] = None

    @property
    def num_folds(self) -> int:
        return int(self.fold_ids.max()) + 1


def fold_ids(labels, folds: int, seed: int) -> np.ndarray:
    """Stratified fold ids (by label) for ``folds`` folds, shuffled with ``seed``."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels)
    check_number("folds", folds, ge=2, integer=True)
    if folds > len(y):
        raise ValueError(f"folds must be at most the number of training examples ({len(y)}); got {folds}.")
    ids = np.empty(len(y), dtype=np.int64)
    with warnings.catch_warnings():  # a class smaller than the number of folds is allowed, if unusual
        warnings.simplefilter("ignore", UserWarning)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed % (2**32))
        for k, (_, held) in enumerate(splitter.split(np.zeros(len(y)), y)):
            ids[held] = k
    return ids


def _fold_data(data: PreparedData, ids: np.ndarray, k: int, folds: int) -> PreparedData:
    from ..noise import labels_sha256

    tr = torch.from_numpy(np.flatnonzero(ids != k))
    ho = torch.from_numpy(np.flatnonzero(ids == k))
    y_train = data.y_noisy[tr]
    noise = {**data.noise, "full_set_sha256": data.noise.get("sha256"),
             "sha256": labels_sha256(y_train.numpy()),
             "cross_validation": {"fold": k, "folds": folds, "train_size": len(tr), "held_out": len(ho),
                                  "test_set": "the held-out fold, scored against its noisy labels"}}
    return PreparedData(
        x_train=data.x_train[tr], y_noisy=y_train, y_clean=data.y_clean[tr],
        x_test=data.x_train[ho], y_test=data.y_noisy[ho], mean=data.mean, std=data.std,
        num_classes=data.num_classes, noise=noise, note=data.note,
    )


@torch.inference_mode()
def _predict(config: TrainConfig, checkpoint: Path, data: PreparedData, x: torch.Tensor) -> np.ndarray:
    """Softmax of the model saved in ``checkpoint`` on uint8 images ``x`` (normalised as in training)."""
    from ..models import create_model

    device = resolve_device(config.device)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = create_model(config.model, num_classes=data.num_classes, in_channels=x.shape[1], image_size=x.shape[-1])
    model.load_state_dict(state["model"])
    model = model.to(device).eval()
    prep = _Normalise(data.mean, data.std, device)
    out = []
    for i in range(0, len(x), config.eval_batch_size):
        logits = model(prep(x[i : i + config.eval_batch_size].to(device)))
        out.append(torch.softmax(logits.float(), dim=1).double().cpu())
    return torch.cat(out).numpy()


def cross_val_predict(config: TrainConfig, folds: int = 5, out_dir=None, *, progress: bool = True,
                      on_fold: Optional[Callable[[int, int, PreparedData], None]] = None,
                      data: Optional[PreparedData] = None) -> CrossValPredictions:
    """k-fold out-of-sample predicted probabilities on the noisy training set of ``config``.

    Args:
        config: the run to cross-validate (dataset, subset, noise, model, loss, schedule); each
            fold is trained with exactly this configuration on the other folds.
        folds: number of folds K ≥ 2 (stratified by noisy label, seeded by ``config.seed``).
        out_dir: directory of the fold runs (``folds/<K>-fold-<k>/``, resumable); a temporary
            directory when None.
        progress: the engine's progress bar for each fold.
        on_fold: called as ``on_fold(k, K, fold_data)`` before fold k is trained.
        data: the prepared training set (default ``prepare_data(config)``).

    Returns:
        :class:`CrossValPredictions`.
    """
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    check_number("folds", folds, ge=2, integer=True)
    data = prepare_data(config) if data is None else data
    y = data.y_noisy.numpy()
    ids = fold_ids(y, folds, config.seed)
    N, K = len(y), data.num_classes
    probs = np.zeros((N, K), dtype=np.float64)
    records = []
    with tempfile.TemporaryDirectory(prefix="asymloss-cv-") if out_dir is None else contextlib.nullcontext(out_dir) as root:
        for k in range(folds):
            fd = _fold_data(data, ids, k, folds)
            if on_fold is not None:
                on_fold(k, folds, fd)
            run_dir = Path(root) / "folds" / f"{folds}-fold-{k}"
            rec = train(config, run_dir, progress=progress, data=fd)
            records.append(rec)
            probs[ids == k] = _predict(config, run_dir / CHECKPOINT, fd, fd.x_test)
    return CrossValPredictions(
        pred_probs=probs, noisy_labels=y.astype(np.int64), clean_labels=data.y_clean.numpy().astype(np.int64),
        fold_ids=ids, fold_records=tuple(records), noise=data.noise, config=config, note=data.note,
    )


def _true_transition(cv: CrossValPredictions, K: int) -> dict[str, Any]:
    """The realised transition matrix of the training set (clean labels known) and the nominal one."""
    from .. import noise
    from ..noise import empirical_transition, noise_ratio

    T = empirical_transition(cv.clean_labels, cv.noisy_labels, K)
    out = {"realised": {"transition": T.tolist(), "noise_ratio": noise_ratio(T),
                        "rate": float(np.mean(cv.clean_labels != cv.noisy_labels))}, "nominal": None}
    spec = noise.parse_noise(cv.config.noise)
    if spec.kind in ("clean", "symmetric", "asymmetric", "pairflip", "uniform"):
        kind, rate = (("symmetric", 0.0) if spec.kind == "clean" else (spec.kind, spec.rate))
        ds = cv.config.dataset.split(":")[0]
        try:
            M = noise.transition_matrix(kind, rate, num_classes=K, dataset=ds if kind == "asymmetric" else None)
            out["nominal"] = {"spec": cv.config.noise, "transition": M.tolist(), "noise_ratio": noise_ratio(M)}
        except (KeyError, ValueError):  # pragma: no cover - a dataset without a map
            pass
    return out


def estimate_noise(config: TrainConfig, folds: int = 5, out_dir=None, *, progress: bool = True,
                   on_fold: Optional[Callable[[int, int, PreparedData], None]] = None,
                   calibrate: bool = True) -> dict[str, Any]:
    """Estimate the noise transition matrix of ``config``'s noisy training set by k-fold training
    and the confident joint; return the estimate record (also written to ``out_dir/estimate.json``).

    The record holds: ``kind`` ("noise-estimate"), ``status``, ``config``, ``folds``, versions,
    git revision and device, ``noise`` (the simulated noise's summary), ``estimate``
    (:meth:`asymloss.noise.TransitionEstimate.summary`: T̂, prior, per-class noise rates, r̃ and
    its spread over the folds), ``truth`` (the realised and the nominal transition matrix with their
    r̃), ``error`` (max |T̂ − T| against both, and r̃(T̂) − r̃(T)), ``fold_runs`` (per fold: sizes,
    held-out accuracy against the noisy and the clean labels, the run directory) and timings.

    Example::

        >>> from asymloss.train import get_protocol, estimate_noise
        >>> cfg = get_protocol("paper-mnist", loss="ce", noise="symmetric:0.6", epochs=5, subset=6000)
        >>> rec = estimate_noise(cfg, folds=5, out_dir="est/mnist-sym06")     # doctest: +SKIP
        >>> rec["estimate"]["noise_ratio"], rec["truth"]["realised"]["noise_ratio"]  # doctest: +SKIP
    """
    from ..noise import estimate_transition
    from ..noise._estimate import _cleanlab_count

    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    check_number("folds", folds, ge=2, integer=True)
    _cleanlab_count()  # fail before any training when cleanlab is missing
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    cv = cross_val_predict(config, folds, out, progress=progress, on_fold=on_fold)
    K = cv.pred_probs.shape[1]
    est = estimate_transition(cv.pred_probs, cv.noisy_labels, num_classes=K, folds=cv.fold_ids, calibrate=calibrate)
    truth = _true_transition(cv, K)
    error = {}
    for which in ("realised", "nominal"):
        if truth[which] is not None:
            T = np.asarray(truth[which]["transition"])
            error[which] = {"max_abs_error": est.max_abs_error(T),
                            "noise_ratio_error": est.noise_ratio - truth[which]["noise_ratio"]}
    fold_runs = []
    for k, rec in enumerate(cv.fold_records):
        m = cv.fold_ids == k
        pred = cv.pred_probs[m].argmax(1)
        fold_runs.append({
            "fold": k, "train_size": rec["data"]["train_size"], "held_out": int(m.sum()),
            "held_out_acc_noisy": float(np.mean(pred == cv.noisy_labels[m])),
            "held_out_acc_clean": float(np.mean(pred == cv.clean_labels[m])),
            "wall_time_s": rec["final"].get("wall_time_s"),
            "run_dir": f"folds/{folds}-fold-{k}",
        })
    device = resolve_device(config.device)
    record = {
        "kind": "noise-estimate",
        "status": "complete",
        "config": config.to_dict(),
        "folds": folds,
        **environment(device),
        "data": {"train_size": int(len(cv.noisy_labels)), "num_classes": K, "note": cv.note},
        "noise": cv.noise,
        "estimate": est.summary(),
        "truth": truth,
        "error": error,
        "fold_runs": fold_runs,
        "pred_probs": PRED_PROBS if out is not None else None,
        "wall_time_s": time.perf_counter() - t0,
    }
    if out is not None:
        with atomic_path(out / PRED_PROBS) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, pred_probs=cv.pred_probs.astype(np.float32), noisy_labels=cv.noisy_labels,
                                    clean_labels=cv.clean_labels, fold_ids=cv.fold_ids)
        atomic_write_json(out / ESTIMATE_RECORD, record)
    return record
