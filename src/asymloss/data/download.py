"""Verified downloads: streamed to a temporary file, checksum checked, then renamed into place.

A download goes through :func:`asymloss._io.atomic_path`, so the destination either holds the
complete file with the published checksum or is left as it was. Mirrors are tried in order; when
all fail the error says which files to put where instead (the usual case offline).

``$ASYMLOSS_MIRROR`` (or the ``mirrors`` argument) replaces the canonical sources with your own
server: a mirror is a base URL laid out like the data root, i.e. file ``F`` of dataset folder ``D``
is fetched from ``<mirror>/D/F`` (``D`` is ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``).
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .._io import atomic_path

__all__ = ["Resource", "ChecksumError", "DownloadError", "DatasetNotFoundError", "md5sum", "verify_md5", "fetch", "MIRROR_ENV"]

MIRROR_ENV = "ASYMLOSS_MIRROR"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Resource:
    """One published file: its name and the MD5 its publisher lists."""

    filename: str
    md5: str


class ChecksumError(ValueError):
    """A file's checksum differs from the published one (the message names file, expected, actual)."""


class DownloadError(ConnectionError):
    """No mirror delivered a file (typically: no network). The message says where to put it instead."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not in the data root; the message lists what to put where."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def md5sum(path: str | os.PathLike) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks (MD5 because that is what the publishers list)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_md5(path: str | os.PathLike, expected: str) -> None:
    """Raise :class:`ChecksumError` naming the file, the expected and the actual MD5 on a mismatch."""
    actual = md5sum(path)
    if actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {path}: expected md5 {expected}, got {actual}. The file is "
            "corrupt or not the published one; delete it and download it again."
        )


def mirror_urls(default: Sequence[str], folder: str, mirrors: Sequence[str] | None = None) -> list[str]:
    """The base URLs to try, in order: ``mirrors`` if given, else ``$ASYMLOSS_MIRROR`` (+ ``/folder``),
    else the canonical ``default`` list."""
    if mirrors is not None:
        return [m.rstrip("/") + "/" + folder for m in mirrors]
    env = os.environ.get(MIRROR_ENV)
    if env:
        return [env.rstrip("/") + "/" + folder]
    return [d.rstrip("/") for d in default]


def _stream(url: str, dest: Path, md5: str, progress, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - http(s) URLs we build
        total = resp.headers.get("Content-Length")
        task = None
        if progress is not None:
            task = progress.add_task("download", filename=dest.name, total=int(total) if total else None)
        h = hashlib.md5(usedforsecurity=False)
        try:
            with atomic_path(dest) as tmp:
                with open(tmp, "wb") as f:
                    for chunk in iter(lambda: resp.read(_CHUNK), b""):
                        f.write(chunk)
                        h.update(chunk)
                        if task is not None:
                            progress.advance(task, len(chunk))
                actual = h.hexdigest()
                if actual != md5:  # checked BEFORE the rename: a bad download never lands at dest
                    raise ChecksumError(
                        f"checksum mismatch for {url}: expected md5 {md5}, got {actual}; the download was discarded."
                    )
        finally:
            if task is not None:
                progress.remove_task(task)


def _progress_bar():
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.fields[filename]}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )


def fetch(
    resources: Sequence[Resource],
    dest_dir: str | os.PathLike,
    bases: Sequence[str],
    *,
    progress: bool = True,
    timeout: float = 30.0,
    instead: str = "",
) -> list[Path]:
    """Download each resource into ``dest_dir`` from the first base URL that delivers it intact.

    Files already present with the right MD5 are kept; a present file with a wrong MD5 raises
    :class:`ChecksumError` (it is never silently replaced). When every base fails for a file,
    :class:`DownloadError` lists the attempts and ``instead`` (what to put where by hand).
    """
    dest_dir = Path(dest_dir)
    paths = []
    bar = _progress_bar() if progress else None
    if bar is not None:
        bar.start()
    try:
        for res in resources:
            dest = dest_dir / res.filename
            if dest.exists():
                verify_md5(dest, res.md5)
                paths.append(dest)
                continue
            errors, mismatches = [], 0
            for base in bases:
                url = f"{base}/{res.filename}"
                try:
                    _stream(url, dest, res.md5, bar, timeout)
                    break
                except ChecksumError as e:
                    errors.append(str(e))
                    mismatches += 1
                except (urllib.error.URLError, OSError, ValueError) as e:  # HTTPError, refused, timeout, bad URL
                    errors.append(f"{url}: {getattr(e, 'reason', None) or e}")
            else:
                if mismatches == len(errors):  # reachable, but every copy was wrong: not an offline problem
                    raise ChecksumError(" ".join(errors) + f" Nothing was written to {dest}.")
                raise DownloadError(
                    f"could not download {res.filename} from any mirror ({'; '.join(errors)}). "
                    f"If this machine is offline: {instead}"
                )
            paths.append(dest)
    finally:
        if bar is not None:
            bar.stop()
    return paths
