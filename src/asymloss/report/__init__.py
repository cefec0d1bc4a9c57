"""Reports from sweep results: paper-style tables and plots. Reports read run records only.

    >>> from asymloss.report import results_table, plot_results
    >>> print(results_table("store", metric="last", fmt="markdown"))   # doctest: +SKIP
    >>> plot_results("store", "figures", fmt="png")                    # doctest: +SKIP
"""
from .plots import (ASYMMETRIC_LOSSES, PLOT_FORMATS, loss_shape, plot_curves, plot_loss_shapes,
                    plot_ratio, plot_results, ratio_table)
from ._advice import plot_advice, save_figure
from ._meta import plot_meta_trajectory
from .table import FORMATS, METRICS, loss_order, noise_label, noise_order, results_table, summarise

__all__ = [
    "results_table", "summarise", "noise_label", "noise_order", "loss_order", "METRICS", "FORMATS",
    "plot_results", "plot_curves", "plot_ratio", "ratio_table", "plot_loss_shapes", "loss_shape", "PLOT_FORMATS",
    "ASYMMETRIC_LOSSES",
]
__all__ += ["plot_advice", "save_figure"]  # the advice figure (asymloss advise)
__all__ += ["plot_meta_trajectory"]  # meta-learned hyperparameters over the epochs
