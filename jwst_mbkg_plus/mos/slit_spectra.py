"""Background slitlets as 1-D spectra: every valid calibrated pixel binned in wavelength.

The ``bkg_method='full_slitlet'`` path of the MOS master background, and of
``jwst-mbkg-plus master`` on cal files: one definition of a valid pixel
(finite wavelength, value and variance, variance > 0, not DO_NOT_USE) and of the
grid that follows the detector columns.
"""


import logging

import numpy as np
from jwst.lib.wcs_utils import get_wavelengths

from jwst_mbkg_plus.algorithms import (
    binning,
    grid,
)
from jwst_mbkg_plus.io.slits import (
    DO_NOT_USE,
    slit_variance,
)

__all__ = [
    "DISPERSION_VARIES",
    "VARYING_DISPERSION_OVERSAMPLE",
    "bin_slits",
    "column_wavelengths",
    "grid_policy",
    "slit_grid",
    "slit_arrays",
    "wavelength_range",
]

log = logging.getLogger(__name__)


#: Native-step ratio (largest / smallest) above which the master's grid follows
#: the local dispersion (the prism: 4.7x; the gratings: < 1.3x).
DISPERSION_VARIES = 1.5
#: Grid samples per native pixel where the dispersion varies: He I 1.083 micron
#: is only ~2 prism pixels wide, and bins of one pixel smooth it by ~1%.
VARYING_DISPERSION_OVERSAMPLE = 2


def slit_arrays(slit, exp_type):
    """
    Wavelength, surface brightness, variance and validity of one calibrated slit.

    A pixel is valid where its wavelength, value and variance are finite, the
    variance is positive and DQ has no DO_NOT_USE.

    Parameters
    ----------
    slit : `~stdatamodels.jwst.datamodels.SlitModel`
        The slit, calibrated as extended (MJy/sr).
    exp_type : str
        EXP_TYPE, for ``get_wavelengths``.

    Returns
    -------
    wave, sb, var : ndarray
        float64 arrays of the slit's shape.
    valid : ndarray of bool
        The valid pixels.
    """
    wave = np.asarray(get_wavelengths(slit, exp_type), dtype=np.float64)
    sb = slit.data.astype(np.float64)
    var = slit_variance(slit)
    valid = (
        np.isfinite(wave)
        & np.isfinite(sb)
        & np.isfinite(var)
        & (var > 0)
        & ((slit.dq & DO_NOT_USE) == 0)
    )
    return wave, sb, var, valid


def wavelength_range(model):
    """
    Wavelength range (micron) of all the slits of a model.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The slits.

    Returns
    -------
    tuple of float or None
        (lowest, highest); None if no slit has a wavelength.
    """
    lo, hi = np.inf, -np.inf
    for slit in model.slits:
        wave = get_wavelengths(slit, model.meta.exposure.type)
        if wave is not None and np.isfinite(wave).any():
            lo = min(lo, float(np.nanmin(wave)))
            hi = max(hi, float(np.nanmax(wave)))
    return (lo, hi) if np.isfinite(lo) else None


def column_wavelengths(wave, valid):
    """
    Median wavelength of the valid pixels of each column, sorted.

    Parameters
    ----------
    wave : ndarray, shape (ny, nx)
        Pixel wavelengths (micron).
    valid : ndarray of bool, same shape
        Valid pixels.

    Returns
    -------
    ndarray
        One wavelength per column with a valid pixel, increasing.
    """
    with np.errstate(invalid="ignore"):
        masked = np.where(valid, wave, np.nan)
    counts = valid.sum(axis=0)
    columns = np.full(wave.shape[1], np.nan)
    has = counts > 0
    if has.any():
        columns[has] = np.nanmedian(masked[:, has], axis=0)
    return np.sort(columns[np.isfinite(columns)])


def grid_policy(columns):
    """
    How the master is sampled and expanded, from the native sampling of the columns.

    Where the dispersion varies across the band (the prism), the grid follows
    the local native step with `VARYING_DISPERSION_OVERSAMPLE` samples per
    pixel and the master is interpolated with a cubic spline, so a line ~2
    pixels wide keeps the accuracy of the continuum. Elsewhere a uniform grid
    at the median native step and linear interpolation.

    Parameters
    ----------
    columns : list of ndarray
        `column_wavelengths` of each slit.

    Returns
    -------
    dict
        ``sampling``, ``oversample``, ``interpolation`` and ``native_step_ratio``
        (recorded in the QA record as ``grid``).
    """
    ratio = grid.native_step_ratio(columns)
    if np.isfinite(ratio) and ratio > DISPERSION_VARIES:
        log.info(
            "Native sampling varies %.1fx across the band: the master's grid follows the "
            "local dispersion (%d samples per pixel), expanded with a cubic spline.",
            ratio,
            VARYING_DISPERSION_OVERSAMPLE,
        )
        return {"sampling": "native", "oversample": VARYING_DISPERSION_OVERSAMPLE,
                "interpolation": "cubic", "native_step_ratio": float(ratio)}
    return {"sampling": "linear", "oversample": 1, "interpolation": "linear",
            "native_step_ratio": float(ratio)}


def slit_grid(arrays):
    """
    The master's wavelength grid for some slits, and how it was chosen.

    Parameters
    ----------
    arrays : list of tuple
        `slit_arrays` of each slit.

    Returns
    -------
    grid_wave : ndarray
        The grid (micron).
    grid_qa : dict
        `grid_policy`, with ``n_samples``.
    """
    columns = [column_wavelengths(a[0], a[3]) for a in arrays]
    grid_qa = grid_policy(columns)
    grid_wave = grid.common_wavelength_grid(
        columns, sampling=grid_qa["sampling"], oversample=grid_qa["oversample"]
    )
    grid_qa["n_samples"] = int(grid_wave.size)
    return grid_wave, grid_qa


def bin_slits(arrays, masks, grid_wave, *, sum_variance=False):
    """
    One 1-D spectrum per slit from all of its valid, unmasked pixels.

    Each bin's value sits at the mean wavelength of its pixels and is
    interpolated linearly onto the grid, so neighbouring grid values share
    bins: ``var`` (``(1 - t)**2 v0 + t**2 v1``) is right for one value, but a
    sum over many values has the variance of ``sum_var`` (``(1 - t) v0 + t v1``,
    the same bins counted once), up to twice ``var`` half-way between bins.
    Levels fitted over wavelength (`~jwst_mbkg_plus.algorithms.levels.level_ratios`)
    need ``sum_var``: with ``var`` their errors were 0.82x the scatter of the
    levels of a uniform sky (measured on 90 PRISM slitlets at 20% noise).

    Parameters
    ----------
    arrays : list of tuple
        `slit_arrays` of each slit.
    masks : list of ndarray of bool
        Pixels to leave out of each slit.
    grid_wave : ndarray
        The grid (micron), from `slit_grid`.
    sum_variance : bool, optional
        Also return ``sum_var``.

    Returns
    -------
    flux, var : ndarray, shape (n_slits, n_wave)
        The spectra and their variances; NaN where a slit has no pixel.
    sum_var : ndarray, shape (n_slits, n_wave)
        Only with ``sum_variance``: each value's share of the variance of a sum
        over wavelength.
    """
    edges = grid.grid_edges(grid_wave)
    flux = np.full((len(arrays), grid_wave.size), np.nan)
    var = np.full_like(flux, np.nan)
    sum_var = np.full_like(flux, np.nan)
    for k, ((wave, sb, pix_var, valid), mask) in enumerate(zip(arrays, masks, strict=True)):
        use = valid & ~mask
        if not use.any():
            continue
        # 4 sigma: a 3-sigma clip of photon-counting noise (skewed) biases low
        # by ~0.1 % (algorithms.binning); outliers go in the pixel rejection.
        binned = binning.bin_pixels(
            wave[use], sb[use], pix_var[use], edges, method="clipped_mean", sigma=4.0
        )
        # A bin's value belongs at the mean wavelength of its pixels, which sits
        # off the bin centre by a slit-dependent phase: resample from there.
        keep = np.isfinite(binned.flux) & np.isfinite(binned.wavelength)
        w, f, v = binned.wavelength[keep], binned.flux[keep], binned.var[keep]
        increasing = np.concatenate([[True], np.diff(w) > 0])
        if increasing.sum() < 2:
            continue
        flux[k], var[k] = grid.resample_spectrum(
            w[increasing], f[increasing], v[increasing], grid_wave
        )
        if sum_variance:
            # Linear (not squared) weights: each bin's variance counted once in a sum.
            sum_var[k], _ = grid.resample_spectrum(w[increasing], v[increasing], None,
                                                   grid_wave)

    if sum_variance:
        return flux, var, sum_var
    return flux, var


