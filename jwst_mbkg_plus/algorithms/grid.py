"""Common wavelength grid for several spectra, and resampling onto it.

A master background is combined on one grid, but the background spectra of a
NIRSpec MOS exposure sample different, shifted wavelength ranges. This module
builds a monotonic grid whose spacing follows the native sampling, covering
either the union of the inputs or only the range where at least
``min_spectra`` of them contribute, and resamples spectra onto it by linear
interpolation with variance propagation.

Policies
--------
* Wavelength units are whatever the inputs use (micron in JWST products);
  the grid is returned in the same units.
* Non-finite wavelengths are ignored (with their flux).
* ``resample_spectrum`` requires strictly increasing input wavelengths and
  raises ``ValueError`` otherwise; it never extrapolates: outside the input
  range the output is NaN, and so is any output that would use a NaN sample.
* Linear interpolation correlates neighbouring output samples; the returned
  variance is the correct per-sample (marginal) variance,
  ``(1 - t)**2 v[i] + t**2 v[i + 1]``, not a covariance matrix. Averaging many
  resampled samples therefore underestimates the error slightly when the grid
  is finer than the native sampling.
"""

import logging

import numpy as np

from jwst_mbkg_plus.algorithms.interp import check_increasing, interp_linear
from jwst_mbkg_plus.algorithms.stats import nanmedian

__all__ = [
    "common_wavelength_grid",
    "grid_edges",
    "native_step_ratio",
    "resample_spectra",
    "resample_spectrum",
]

log = logging.getLogger(__name__)


def _finite_sorted(w):
    w = np.asarray(w, dtype=np.float64).ravel()
    return np.sort(w[np.isfinite(w)])


def _native_spacing(w):
    d = np.diff(w)
    return d[d > 0]


def common_wavelength_grid(waves, *, min_spectra=1, spacing=None, sampling="linear",
                           oversample=1.0):
    """Build a monotonic wavelength grid covering several spectra.

    Parameters
    ----------
    waves : sequence of array_like
        Wavelength arrays of the input spectra (ragged lengths allowed; any
        order; non-finite values ignored). Units are preserved.
    min_spectra : int, optional
        The grid covers the span from the first to the last wavelength where
        at least this many spectra contribute (1 = the union of all ranges).
        Holes of lower coverage inside that span are kept.
    spacing : float or None, optional
        Grid step in wavelength units for ``sampling="linear"``. If None, the
        median over spectra of each spectrum's median native step.
    sampling : {"linear", "native"}, optional
        ``"linear"``: uniform step. ``"native"``: the step follows the local
        native sampling (median over spectra of each spectrum's step,
        interpolated at that wavelength), useful for the NIRSpec prism whose
        dispersion changes ~10x across the band.
    oversample : float, optional
        Number of grid samples per native step (> 0); divides the step.

    Returns
    -------
    grid : ndarray, shape (n_grid,)
        Strictly increasing wavelengths; the first sample is the start of the
        covered span, the last is at or just inside its end.

    Raises
    ------
    ValueError
        If no spectrum has two finite distinct wavelengths, if ``min_spectra``
        exceeds the number of spectra or no wavelength reaches that coverage,
        or for invalid options.
    """
    if sampling not in ("linear", "native"):
        raise ValueError(f"sampling must be 'linear' or 'native', got {sampling!r}")
    if not oversample > 0:
        raise ValueError(f"oversample must be > 0, got {oversample!r}")
    ws = [_finite_sorted(w) for w in waves]
    ws = [w for w in ws if w.size >= 2 and w[-1] > w[0]]
    if not ws:
        raise ValueError("no input spectrum has at least two distinct finite wavelengths")
    if not 1 <= min_spectra <= len(ws):
        raise ValueError(
            f"min_spectra must be between 1 and the number of usable spectra ({len(ws)}), "
            f"got {min_spectra}"
        )
    lo_each = np.array([w[0] for w in ws])
    hi_each = np.array([w[-1] for w in ws])

    # Coverage count changes only at the range ends: sweep the sorted ends.
    ends = np.concatenate([lo_each, hi_each])
    steps = np.concatenate([np.ones(len(ws), int), -np.ones(len(ws), int)])
    order = np.lexsort((-steps, ends))  # at a tie, open (+1) before close (-1)
    cover = np.cumsum(steps[order])
    pos = ends[order]
    good = np.nonzero(cover >= min_spectra)[0]
    if good.size == 0:
        raise ValueError(f"no wavelength is covered by {min_spectra} spectra")
    lo = pos[good[0]]
    hi = pos[good[-1] + 1]
    if not hi > lo:
        raise ValueError(f"the range covered by {min_spectra} spectra has zero width")

    if sampling == "linear":
        if spacing is None:
            spacing = float(np.median([np.median(_native_spacing(w)) for w in ws]))
        if not spacing > 0:
            raise ValueError(f"spacing must be > 0, got {spacing!r}")
        step = spacing / oversample
        n = int(np.floor((hi - lo) / step * (1 + 1e-12))) + 1
        return lo + step * np.arange(n)

    # sampling == "native": local step d(lambda) = median over spectra of the
    # native step there; grid points at integer values of u = integral dl / d.
    fine = np.linspace(lo, hi, 20 * max(max(w.size for w in ws), 100))
    local = np.full((len(ws), fine.size), np.nan)
    for k, w in enumerate(ws):
        d = np.diff(w)
        mid = 0.5 * (w[1:] + w[:-1])
        ok = d > 0
        inside = (fine >= w[0]) & (fine <= w[-1])
        local[k, inside] = np.interp(fine[inside], mid[ok], d[ok])
    step = nanmedian(local, axis=0)
    # Coverage holes: bridge with the neighbouring steps.
    okstep = np.isfinite(step)
    step = np.interp(fine, fine[okstep], step[okstep]) / oversample
    u = np.concatenate([[0.0], np.cumsum(0.5 * (1 / step[1:] + 1 / step[:-1]) * np.diff(fine))])
    n = int(np.floor(u[-1] * (1 + 1e-12))) + 1
    return np.interp(np.arange(n, dtype=np.float64), u, fine)


def native_step_ratio(waves, *, percentiles=(5, 95)):
    """How much the native wavelength step varies across the spectra.

    Parameters
    ----------
    waves : sequence of array_like
        Wavelength arrays of the input spectra (any order; non-finite ignored).
    percentiles : tuple of float, optional
        The step's percentiles compared (robust to a few odd steps at gaps).

    Returns
    -------
    float
        High over low percentile of the positive native steps, pooled over the
        spectra (NIRSpec: ~4.7 for the prism, < 1.3 for the gratings); NaN if
        no spectrum has two distinct wavelengths.
    """
    steps = [_native_spacing(_finite_sorted(w)) for w in waves]
    steps = np.concatenate([s for s in steps if s.size] or [np.zeros(0)])
    if steps.size == 0:
        return float("nan")
    lo, hi = np.percentile(steps, percentiles)
    return float(hi / lo) if lo > 0 else float("nan")


def grid_edges(grid):
    """Bin edges around the samples of a monotonic grid (midpoints, ends mirrored).

    Parameters
    ----------
    grid : array_like, shape (n,)
        Strictly increasing sample wavelengths, n >= 2.

    Returns
    -------
    edges : ndarray, shape (n + 1,)
        ``edges[1:-1]`` are the midpoints; the outer edges are half a step
        outside the first and last samples.
    """
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size < 2:
        raise ValueError(f"grid must be 1-D with at least 2 samples, got shape {g.shape}")
    check_increasing(g, "grid")
    if not np.all(np.isfinite(g)):
        raise ValueError("grid must be finite")
    mid = 0.5 * (g[1:] + g[:-1])
    return np.concatenate([[g[0] - (mid[0] - g[0])], mid, [g[-1] + (g[-1] - mid[-1])]])


def resample_spectrum(wave, flux, var, grid):
    """Linearly interpolate one spectrum (and its variance) onto a grid.

    Parameters
    ----------
    wave : array_like, shape (n,)
        Input wavelengths; the finite ones must be strictly increasing.
        Samples with non-finite wavelength are dropped.
    flux : array_like, shape (n,)
        Flux or surface brightness (any unit, preserved).
    var : array_like, shape (n,), or None
        Variance of ``flux`` (unit squared), samples assumed independent.
    grid : array_like, any shape
        Output wavelengths (same unit as ``wave``); need not be sorted.

    Returns
    -------
    flux_out : ndarray, shape of ``grid``
        Interpolated values; NaN outside ``[wave[0], wave[-1]]`` (no
        extrapolation), where ``grid`` is NaN, and where a sample with
        non-zero weight is NaN.
    var_out : ndarray, shape of ``grid``, or None
        ``(1 - t)**2 var[i] + t**2 var[i + 1]`` (None if ``var`` is None).

    Raises
    ------
    ValueError
        If shapes differ or the finite wavelengths are not strictly increasing.
    """
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if wave.ndim != 1 or flux.shape != wave.shape:
        raise ValueError(
            f"wave and flux must be 1-D of equal length, got {wave.shape} and {flux.shape}"
        )
    if var is not None:
        var = np.asarray(var, dtype=np.float64)
        if var.shape != wave.shape:
            raise ValueError(f"var shape {var.shape} differs from wave shape {wave.shape}")
    check_increasing(wave, "wave")
    ok = np.isfinite(wave)
    return interp_linear(
        wave[ok], flux[ok], None if var is None else var[ok], np.asarray(grid), edge="nan"
    )


def resample_spectra(waves, fluxes, variances, grid):
    """Resample several spectra onto one grid and stack them.

    Parameters
    ----------
    waves, fluxes : sequence of array_like
        One 1-D array per spectrum (ragged lengths allowed); see
        `resample_spectrum`.
    variances : sequence of array_like or None
        Per-spectrum variances, or None for no variance at all.
    grid : array_like, shape (n_grid,)
        Output wavelengths.

    Returns
    -------
    flux : ndarray, shape (n_spectra, n_grid)
        Resampled spectra (NaN where a spectrum does not contribute).
    var : ndarray, shape (n_spectra, n_grid), or None
        Resampled variances (None if ``variances`` is None).
    """
    if len(waves) != len(fluxes) or (variances is not None and len(variances) != len(waves)):
        raise ValueError("waves, fluxes and variances must have the same number of spectra")
    grid = np.asarray(grid, dtype=np.float64)
    out_f = np.full((len(waves), grid.size), np.nan)
    out_v = None if variances is None else np.full((len(waves), grid.size), np.nan)
    for k in range(len(waves)):
        f, v = resample_spectrum(
            waves[k], fluxes[k], None if variances is None else variances[k], grid
        )
        out_f[k] = f
        if out_v is not None:
            out_v[k] = v
    return out_f, out_v
