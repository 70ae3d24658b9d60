"""Robust summary of pulls (residual / error): the QA numbers of an error model.

A pull is a residual divided by its propagated error. When the errors are
right, the pulls of background pixels are unit normal: their spread is 1.
The plain standard deviation is not a usable measure of that spread on
detector data: a handful of hot pixels or cosmic rays among thousands of
pixels sets it (one pixel at 100 sigma among 2000 raises it to 2.4).
`pull_statistics` reports instead:

- ``spread``: 1.4826 x the median absolute deviation about the median, which
  is 1 for unit-normal pulls and moves by less than 1 % when 1 % of the
  pixels are arbitrarily wrong;
- ``outlier_fraction``: the fraction of ``|pull| > threshold`` (default 5),
  5.7e-7 for unit-normal pulls; what is left of hot pixels and cosmic rays
  shows here, beside the spread rather than inside it;
- ``spread_error``: the standard error of ``spread`` for unit-normal pulls,
  ``sqrt(1.3605 / n)`` times it (the normalised MAD has 37 % of the standard
  deviation's efficiency): 0.058 for the ~400 column sums of one slitlet, so a
  single slitlet's column spread cannot tell 1.00 from 1.05;
- ``std``: the plain standard deviation, for comparison only.
"""

import logging

import numpy as np

from jwst_mbkg_plus.algorithms.stats import MAD_TO_SIGMA

__all__ = [
    "OUTLIER_THRESHOLD",
    "SPREAD_TOLERANCE",
    "pooled_summary",
    "pull_definition",
    "pull_statistics",
]

log = logging.getLogger(__name__)

#: ``|pull|`` above which a value counts as an outlier.
OUTLIER_THRESHOLD = 5.0

#: Asymptotic variance of the normalised MAD of n unit-normal values, times n.
MAD_SPREAD_VARIANCE = 1.3605

#: Half-width of the band around 1 within which a pull spread is consistent
#: with right errors (the reference band of the QA plots).
SPREAD_TOLERANCE = 0.05


def pull_statistics(pulls, *, threshold=OUTLIER_THRESHOLD):
    """
    Robust spread, centre and outlier fraction of a set of pulls.

    Parameters
    ----------
    pulls : array_like
        Residual / error values; non-finite values are ignored.
    threshold : float, optional
        ``|pull|`` above which a value is counted in ``outlier_fraction``.

    Returns
    -------
    dict
        ``n`` (finite values), ``median``, ``spread`` (1.4826 x MAD about the
        median), ``spread_error`` (its standard error for normal pulls),
        ``outlier_fraction`` (of ``|pull| > threshold``) and ``std`` (plain
        standard deviation); NaN statistics (``n`` 0) without a finite value.
    """
    values = np.asarray(pulls, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        nan = float("nan")
        return {"n": 0, "median": nan, "spread": nan, "spread_error": nan,
                "outlier_fraction": nan, "std": nan}
    center = float(np.median(values))
    spread = float(MAD_TO_SIGMA * np.median(np.abs(values - center)))
    return {
        "n": int(values.size),
        "median": center,
        "spread": spread,
        "spread_error": spread * float(np.sqrt(MAD_SPREAD_VARIANCE / values.size)),
        "outlier_fraction": float(np.mean(np.abs(values) > threshold)),
        "std": float(np.std(values)),
    }


def pull_definition(pixels, pull="residual / propagated error"):
    """
    Describe how pulls were computed, for a QA record.

    Parameters
    ----------
    pixels : str
        Which pixels (or points) the pulls are taken over.
    pull : str, optional
        What a pull divides by.

    Returns
    -------
    dict
        Plain-text definitions of the pull, its spread and outlier fraction,
        the outlier threshold and the target band of the spread.
    """
    return {
        "pull": pull,
        "pixels": pixels,
        "spread": "1.4826 x median absolute deviation about the median (1 for right errors)",
        "outlier_threshold": OUTLIER_THRESHOLD,
        "outlier_fraction": "fraction of |pull| > outlier_threshold (5.7e-7 if unit normal)",
        "target": [1.0 - SPREAD_TOLERANCE, 1.0 + SPREAD_TOLERANCE],
    }


def pooled_summary(groups, *, threshold=OUTLIER_THRESHOLD):
    """
    Spread and outlier fraction of several sets of pulls taken together.

    Parameters
    ----------
    groups : sequence of array_like
        Pulls of each slitlet or spectrum.
    threshold : float, optional
        ``|pull|`` above which a value is an outlier.

    Returns
    -------
    dict
        ``pull_spread``, ``pull_spread_error``, ``pull_outlier_fraction``,
        ``pull_std`` and ``n_pixels`` of all finite values, and ``n_groups``.
    """
    values = [np.asarray(g, dtype=np.float64).ravel() for g in groups]
    stats = pull_statistics(np.concatenate(values) if values else [], threshold=threshold)
    return {
        "pull_spread": stats["spread"],
        "pull_spread_error": stats["spread_error"],
        "pull_outlier_fraction": stats["outlier_fraction"],
        "pull_std": stats["std"],
        "n_pixels": stats["n"],
        "n_groups": len(values),
    }
