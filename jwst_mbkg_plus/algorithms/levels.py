"""Each background spectrum's level relative to the master: the data the spatial models fit."""

import logging

import numpy as np

from jwst_mbkg_plus.algorithms.stats import MAD_TO_SIGMA

__all__ = [
    "level_ratios",
]

log = logging.getLogger(__name__)


def level_ratios(flux, var, master, *, sigma=3.0, maxiters=5):
    """
    Level of each spectrum relative to a master, with its error.

    The ratio is the inverse-variance weighted least-squares scale ``r`` of
    ``flux ~ r * master`` over wavelength, with wavelengths more than
    ``sigma`` robust standard deviations from it clipped (emission-line
    residuals, a stray bad bin). Its error is scaled up by the reduced
    chi-square of the spectrum about ``r * master`` when that exceeds one.

    Parameters
    ----------
    flux, var : ndarray, shape (n_spectra, n_wave)
        Spectra and their variances on the master's grid; NaN = no data.
    master : ndarray, shape (n_wave,)
        The master spectrum.
    sigma : float, optional
        Clipping threshold.
    maxiters : int, optional
        Clipping iterations.

    Returns
    -------
    ratio, error : ndarray, shape (n_spectra,)
        NaN for spectra with fewer than 5 usable wavelengths.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=float))
    var = np.atleast_2d(np.asarray(var, dtype=float))
    master = np.asarray(master, dtype=float)
    n = flux.shape[0]
    ratio = np.full(n, np.nan)
    error = np.full(n, np.nan)
    for k in range(n):
        ok = np.isfinite(flux[k]) & np.isfinite(var[k]) & (var[k] > 0) & np.isfinite(master)
        ok &= master > 0
        for _ in range(maxiters):
            if ok.sum() < 5:
                break
            w = master[ok] ** 2 / var[k, ok]
            r = np.sum(flux[k, ok] * master[ok] / var[k, ok]) / np.sum(w)
            z = (flux[k] - r * master) / np.sqrt(np.where(var[k] > 0, var[k], np.nan))
            spread = MAD_TO_SIGMA * np.median(np.abs(z[ok] - np.median(z[ok])))
            keep = ok & (np.abs(z) <= sigma * max(spread, 1.0))
            if keep.sum() == ok.sum():
                break
            ok = keep
        if ok.sum() < 5:
            continue
        w = master[ok] ** 2 / var[k, ok]
        r = np.sum(flux[k, ok] * master[ok] / var[k, ok]) / np.sum(w)
        chi2 = np.sum((flux[k, ok] - r * master[ok]) ** 2 / var[k, ok]) / (ok.sum() - 1)
        ratio[k] = r
        error[k] = np.sqrt(max(chi2, 1.0) / np.sum(w))
    return ratio, error
