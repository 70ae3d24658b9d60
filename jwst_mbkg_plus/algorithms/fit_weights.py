"""Fit weights that do not depend on each pixel's own noise.

Ramp fitting estimates a pixel's VAR_POISSON from its own count rate, so a pixel that
fluctuated low gets a smaller variance and, as an inverse-variance weight, counts for
more. A weighted fit of a sky factor on such pixels is biased low by about the
Poisson variance over the mean of the fitted pixels (photon-counting sky of 100
electrons with 6 electrons read noise: -0.7 %), which leaves that much sky in
every rescaled slitlet or exposure. `variance_by_wavelength` replaces each pixel's
variance by the median variance of the usable pixels near its wavelength: the
weights keep how the noise changes along the spectrum, and no pixel's own
fluctuation enters its weight.
"""

import logging

import numpy as np

__all__ = ["variance_by_group", "variance_by_wavelength"]

log = logging.getLogger(__name__)

#: Usable pixels per wavelength bin of `variance_by_wavelength`: each pixel's own
#: variance moves its bin's median by about 1/200 of its deviation.
PIXELS_PER_BIN = 200


def variance_by_wavelength(wavelength, var, valid=None, *, pixels_per_bin=PIXELS_PER_BIN):
    """
    Median variance of the usable pixels near each pixel's wavelength.

    Parameters
    ----------
    wavelength, var : array_like
        Pixel wavelengths and variances; any shape, both the same.
    valid : array_like of bool, optional
        Pixels whose variances enter the medians (default: all with finite
        wavelength and a finite, positive variance).
    pixels_per_bin : int, optional
        Usable pixels per wavelength bin (equal-count bins).

    Returns
    -------
    ndarray
        Float64 array of the shape of ``var``: the bins' median variances
        interpolated linearly in wavelength to every pixel with a finite
        wavelength (NaN elsewhere). ``var`` itself (as float64) if fewer than
        ``pixels_per_bin`` pixels are usable.
    """
    wave = np.asarray(wavelength, dtype=float)
    v = np.asarray(var, dtype=float)
    if wave.shape != v.shape:
        raise ValueError(f"wavelength and var must have one shape, got {wave.shape} and "
                         f"{v.shape}")
    ok = np.isfinite(wave) & np.isfinite(v) & (v > 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    n_ok = int(ok.sum())
    if n_ok < pixels_per_bin:
        return v.copy()
    order = np.argsort(wave[ok], kind="stable")
    w_sorted, v_sorted = wave[ok][order], v[ok][order]
    n_bins = n_ok // pixels_per_bin
    groups = np.array_split(np.arange(n_ok), n_bins)
    centres = np.array([np.median(w_sorted[g]) for g in groups])
    medians = np.array([np.median(v_sorted[g]) for g in groups])
    out = np.full(v.shape, np.nan)
    has_wave = np.isfinite(wave)
    if n_bins == 1:
        out[has_wave] = medians[0]
    else:
        out[has_wave] = np.interp(wave[has_wave], centres, medians)
    return out


def variance_by_group(wavelength, var, valid, groups):
    """
    `variance_by_wavelength`, times each group's median ratio of own to binned variance.

    Rows near a source hold its light as well as the sky, and are noisier: the
    binned variance of all the pixels at a wavelength would over-weight them. A
    group (e.g. a band of distance from the source) gets the median, over its
    usable pixels, of each pixel's variance over the binned one: hundreds of
    pixels, so no pixel's own fluctuation moves its weight.

    Parameters
    ----------
    wavelength, var : array_like
        Pixel wavelengths and variances.
    valid : array_like of bool
        Pixels whose variances enter the medians.
    groups : array_like of int
        Group of each pixel (same shape).

    Returns
    -------
    ndarray
        The variances to weight a fit with.
    """
    binned = variance_by_wavelength(wavelength, var, valid)
    v = np.asarray(var, dtype=float)
    groups = np.asarray(groups)
    ok = np.asarray(valid, dtype=bool) & np.isfinite(v) & (v > 0) & np.isfinite(binned) & (
        binned > 0)
    out = binned.copy()
    for g in np.unique(groups[ok]):
        member = groups == g
        ratio = np.median(v[ok & member] / binned[ok & member])
        out[member] = binned[member] * ratio
    return out
