"""Noise shared by neighbouring samples of a spectrum, and what it does to a smooth sum.

A master binned from pixels onto a grid finer than the pixels (and resampled
from bins at each slit's own phase) has per-sample variances that are right
for one sample, while neighbouring samples share noise. A smoother that sums
many samples (`~jwst_mbkg_plus.algorithms.adaptive_smoothing.adaptive_smooth`)
then understates its own variance, and its choices, judged by that variance,
are made on noise. `neighbour_correlation` measures the correlation at a few
lags from the normalised departures of the samples from a first smoothing.
"""

import logging

import numpy as np

__all__ = ["MIN_HALF_WIDTH", "neighbour_correlation"]

log = logging.getLogger(__name__)

#: Smallest half-width (samples) of a first smoothing whose departures are used:
#: narrower, a sample's own weight in its estimate lowers its departure.
MIN_HALF_WIDTH = 4


def neighbour_correlation(flux, var, smoothed, *, max_lag=2, clip=4.0, min_pairs=50):
    """
    How much neighbouring samples' noise is shared: the variance factor of a smooth sum.

    A kernel spanning many samples has the variance ``sum_i l_i**2 var_i``
    times ``1 + 2 sum_k rho_k`` (``rho_k`` the correlation at lag ``k``).
    ``rho_k = mean(z_i z_{i+k}) / mean(z**2)`` of the normalised residuals
    ``z = (flux - smoothed) / sqrt(var)`` of a first smoothing, where it took
    at least `MIN_HALF_WIDTH` (there the residual is the sample's noise, not
    structure); pairs beyond ``clip`` are left out, and a ``rho_k`` counts only
    beyond twice its noise (``2 / sqrt(pairs)``), so white noise gives 1.

    Parameters
    ----------
    flux, var : array_like, shape (n,)
        The spectrum and its per-sample variance.
    smoothed : AdaptiveSmoothing
        A first smoothing of it (its ``flux`` and ``half_width``).
    max_lag : int, optional
        Largest lag measured.
    clip : float, optional
        Pairs with a ``|z|`` beyond this are left out (a hot sample, a line).
    min_pairs : int, optional
        Fewest usable pairs at a lag to measure it; fewer give 0.

    Returns
    -------
    factor : float
        ``1 + 2 sum_k rho_k`` (>= 1).
    rho : list of float
        The correlations at lags 1 .. ``max_lag``.
    """
    flux, var = np.asarray(flux, dtype=float), np.asarray(var, dtype=float)
    use = (np.isfinite(flux) & np.isfinite(var) & (var > 0) & np.isfinite(smoothed.flux)
           & (smoothed.half_width >= MIN_HALF_WIDTH))
    z = np.where(use, (flux - smoothed.flux) / np.sqrt(np.where(use, var, 1.0)), 0.0)
    use &= np.abs(z) <= clip
    if use.sum() < min_pairs:
        return 1.0, [0.0] * max_lag
    scale = np.mean(z[use] ** 2)
    rho = []
    for k in range(1, max_lag + 1):
        pair = use[:-k] & use[k:]
        if pair.sum() < min_pairs or scale <= 0:
            rho.append(0.0)
            continue
        r = float(np.mean(z[:-k][pair] * z[k:][pair]) / scale)
        # Only a correlation beyond twice its noise counts: white noise stays as it is.
        rho.append(r if r > 2.0 / np.sqrt(pair.sum()) else 0.0)
    return float(1.0 + 2.0 * sum(rho)), rho
