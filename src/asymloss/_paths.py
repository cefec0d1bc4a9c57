"""Where asymloss looks for data: an explicit argument, else ``$ASYMLOSS_DATA``, else a per-user cache."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_root"]


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the data directory.

    Order: ``root`` if given, else the ``ASYMLOSS_DATA`` environment variable, else
    ``$XDG_CACHE_HOME/asymloss`` (``~/.cache/asymloss`` when ``XDG_CACHE_HOME`` is unset).
    The directory is not created here.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("ASYMLOSS_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "asymloss"
