"""Spatial profiles of background slitlets: finding undeclared sources.

A source hiding in a "background" slitlet adds light to a few rows at every
wavelength. Divided by the expanded master background, a clean slitlet is flat
along the slit; a contaminated one shows a bump. Whole-spectrum vetting misses
such a source when the slitlet's spectrum averages all rows (the bump is
diluted by the clean rows), and per-pixel rejection misses it when it is faint
per pixel; the row profile adds up every column and sees it.
"""

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["ProfileResult", "find_profile_outliers", "row_profile"]

log = logging.getLogger(__name__)

# Efficiency of the median relative to the mean for Gaussian data: the median of
# n values has a standard error of about sqrt(pi / 2) times the mean's.
_MEDIAN_SE_FACTOR = np.sqrt(np.pi / 2)


@dataclass(frozen=True)
class ProfileResult:
    """
    Row profile of a slitlet relative to a model.

    Attributes
    ----------
    deviation : ndarray, shape (n_rows,)
        Median over the row's valid pixels of ``data / model - 1``; NaN for
        rows with fewer than ``min_pixels`` valid pixels.
    sigma : ndarray, shape (n_rows,)
        Standard error of ``deviation`` from the pixels' noise.
    n : ndarray of int, shape (n_rows,)
        Valid pixels per row.
    """

    deviation: np.ndarray
    sigma: np.ndarray
    n: np.ndarray


def _column_trend(ratio, *, degree=3, n_iter=3):
    """Smooth trend along the columns (wavelength) of the column medians of ``1 + ratio``."""
    n_valid = np.sum(np.isfinite(ratio), axis=0)
    cols = np.flatnonzero(n_valid >= 3)
    if cols.size < 4 * (degree + 1):
        return np.ones(ratio.shape[1])
    med = np.nanmedian(ratio[:, cols], axis=0) + 1.0
    x = np.linspace(-1.0, 1.0, ratio.shape[1])
    keep = np.isfinite(med)
    coef = None
    for _ in range(n_iter):
        coef = np.polynomial.polynomial.polyfit(x[cols][keep], med[keep], degree)
        resid = med - np.polynomial.polynomial.polyval(x[cols], coef)
        spread = 1.4826 * np.median(np.abs(resid[keep])) or np.inf
        new = np.isfinite(med) & (np.abs(resid) <= 3 * spread)
        if new.sum() < 2 * (degree + 1) or np.array_equal(new, keep):
            break
        keep = new
    trend = np.polynomial.polynomial.polyval(x, coef)
    return np.where(trend > 0, trend, 1.0)


def row_profile(data, var, model, valid=None, *, min_pixels=20, detrend=False):
    """
    Measure how each row of a 2-D slitlet departs from a model.

    Parameters
    ----------
    data : ndarray, shape (n_rows, n_cols)
        Surface brightness.
    var : ndarray, shape (n_rows, n_cols)
        Variance of ``data``.
    model : ndarray, shape (n_rows, n_cols)
        Expected surface brightness (e.g. the expanded master background).
    valid : ndarray of bool, optional
        Pixels to use; all finite pixels with a positive model if None.
    min_pixels : int, optional
        Fewest valid pixels for a row to get a value.
    detrend : bool, optional
        Divide ``data / model`` by a smooth trend along the columns (a cubic in
        column of the column medians) first. A slitlet whose own calibration
        tilts its level in wavelength, relative to the model, then shows no
        structure along the slit in its rows that cover only part of the band
        (at the slit's ends); a source in a few rows barely moves the column
        medians.

    Returns
    -------
    ProfileResult
        Per-row deviation, its noise and the pixel counts.

    Raises
    ------
    ValueError
        If the shapes differ or the arrays are not 2-D.
    """
    data, var, model = (np.asarray(a, dtype=np.float64) for a in (data, var, model))
    if data.ndim != 2 or data.shape != var.shape or data.shape != model.shape:
        raise ValueError(
            f"data, var and model must be 2-D of one shape, got {data.shape}, "
            f"{var.shape}, {model.shape}"
        )
    use = np.isfinite(data) & np.isfinite(var) & (var > 0) & np.isfinite(model) & (model > 0)
    if valid is not None:
        use &= np.asarray(valid, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(use, data / model - 1.0, np.nan)
        rel_sigma = np.where(use, np.sqrt(var) / model, np.nan)
    if detrend:
        trend = _column_trend(ratio)
        ratio = (ratio + 1.0) / trend[None, :] - 1.0
        rel_sigma = rel_sigma / trend[None, :]
    n = use.sum(axis=1)
    has = n >= min_pixels
    deviation = np.full(data.shape[0], np.nan)
    sigma = np.full(data.shape[0], np.nan)
    if has.any():
        deviation[has] = np.nanmedian(ratio[has], axis=1)
        # Root-mean-square relative noise of the row, scaled to the median's error.
        rms = np.sqrt(np.nanmean(rel_sigma[has] ** 2, axis=1))
        sigma[has] = _MEDIAN_SE_FACTOR * rms / np.sqrt(n[has])
    return ProfileResult(deviation=deviation, sigma=sigma, n=n)


def find_profile_outliers(profile, *, threshold=5.0, min_deviation=0.02):
    """
    Flag rows whose deviation is both significant and large.

    The profile is first centred on its own median, so a slitlet whose level
    differs from the master as a whole (a spatial gradient of the background)
    is not flagged; only structure along the slit is.

    Parameters
    ----------
    profile : ProfileResult
        Output of `row_profile`.
    threshold : float, optional
        Significance, in units of the row's noise.
    min_deviation : float, optional
        Smallest relative deviation flagged, whatever its significance; guards
        against tiny calibration residuals in rows of very many pixels.

    Returns
    -------
    ndarray of bool, shape (n_rows,)
        True for outlying rows.
    """
    dev = profile.deviation
    finite = np.isfinite(dev) & np.isfinite(profile.sigma)
    if finite.sum() < 3:
        return np.zeros(dev.shape, dtype=bool)
    centred = dev - np.median(dev[finite])
    with np.errstate(invalid="ignore"):
        return finite & (np.abs(centred) > threshold * profile.sigma) & (
            np.abs(centred) > min_deviation
        )
