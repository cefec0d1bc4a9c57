"""Optional dependencies: each belongs to one part of asymloss and is installed with its extra.

=========  ============  ====================================================================
extra      installs      needed by
=========  ============  ====================================================================
sweep      pandas        sweeps and reports (results store, ``load_results``, tables, plots)
plot       matplotlib    ``asymloss plot`` / :mod:`asymloss.report.plots`
images     pillow        ``folder:<path>`` datasets (image files)
=========  ============  ====================================================================

``pip install 'asymloss[all]'`` installs all three. A missing one raises an ``ImportError`` that
names the extra.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require", "EXTRAS"]

#: import name -> (pip package, extra, what needs it)
EXTRAS = {
    "pandas": ("pandas", "sweep", "sweeps and reports"),
    "matplotlib": ("matplotlib", "plot", "plots"),
    "PIL": ("pillow", "images", "folder: datasets (image files)"),
}


def require(module: str) -> ModuleType:
    """Import ``module`` (a key of :data:`EXTRAS`); if it is missing, say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        package, extra, what = EXTRAS[module]
        raise ImportError(
            f"{what} need {package}, which is not installed: install it with `pip install 'asymloss[{extra}]'` "
            f"(or `pip install {package}`)."
        ) from e
