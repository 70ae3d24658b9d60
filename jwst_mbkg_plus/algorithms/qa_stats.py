"""QA statistics of a set of background spectra and their master: one definition each.

The MOS step, the spec3 step and ``jwst-mbkg-plus master`` write these under
the same QA keys, so each key means one thing wherever it appears.
"""

import logging

import numpy as np

from jwst_mbkg_plus.algorithms.stats import mad_small_n_factor, nan_mad_std

__all__ = [
    "clipped_fraction",
    "coefficient_of_variation",
    "finite_median",
    "median_coefficient_of_variation",
]

log = logging.getLogger(__name__)


def coefficient_of_variation(flux, master):
    """
    Per-wavelength robust scatter of spectra relative to their master.

    Parameters
    ----------
    flux : array_like, shape (n_spectra, n_wave)
        The spectra that went into the master, on its grid, with the points the
        per-wavelength clip rejected set to NaN.
    master : array_like, shape (n_wave,)
        The master (before any running median).

    Returns
    -------
    ndarray, shape (n_wave,)
        1.4826 x MAD of the finite values at each wavelength, with the
        small-sample correction for their number, over ``|master|``; NaN where
        fewer than 2 values are finite.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    n = np.isfinite(flux).sum(axis=0)
    if flux.shape[0] < 2:
        return np.full(flux.shape[1], np.nan)
    scatter = nan_mad_std(flux, axis=0) * mad_small_n_factor(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n >= 2, scatter / np.abs(master), np.nan)


def median_coefficient_of_variation(flux, master):
    """
    The QA key ``coefficient_of_variation``: median over wavelength of `coefficient_of_variation`.

    Parameters
    ----------
    flux : array_like, shape (n_spectra, n_wave)
        As for `coefficient_of_variation`.
    master : array_like, shape (n_wave,)
        As for `coefficient_of_variation`.

    Returns
    -------
    float
        The median of its finite values; NaN if there is none.
    """
    return finite_median(coefficient_of_variation(flux, master))


def finite_median(values):
    """
    Median of the finite values of an array.

    Parameters
    ----------
    values : array_like
        Values (NaN and inf are left out).

    Returns
    -------
    float
        NaN if no value is finite.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def clipped_fraction(flux, rejected_mask):
    """
    Fraction of the finite points of the combined spectra that the clip rejected.

    Parameters
    ----------
    flux : array_like, shape (n_spectra, n_wave)
        The spectra that went into the master (NaN = no data).
    rejected_mask : array_like of bool, same shape
        Points the per-wavelength combination rejected.

    Returns
    -------
    float
        0 if no point is finite.
    """
    n_valid = int(np.isfinite(flux).sum())
    return float(np.asarray(rejected_mask).sum() / n_valid) if n_valid else 0.0
