"""Expand a 1-D master background to 2-D by pixel wavelength, and subtract it.

Differences from ``jwst.master_background.expand_to_2d``: the variance of the
master is propagated to every pixel (linear-interpolation weights, see
`jwst_mbkg_plus.algorithms.errors.interpolation_variance`), and pixels
outside the master's wavelength range follow an explicit ``edge`` policy
instead of silently getting 0 plus DO_NOT_USE (jwst issue #8244).

Edge policy (``edge``)
----------------------
The master's range is that of its first and last *finite* samples (leading
and trailing NaN are trimmed). Outside it:

* ``"nan"`` (default): NaN; the caller decides on DQ flags.
* ``"nearest"``: the end value and its variance.
* ``"extrapolate_linear"``: the line through the two end samples, with
  variance ``(1 - t)**2 v0 + t**2 v1`` (t < 0 or > 1 grows quickly).

``edge_limit`` (wavelength units) bounds the last two: beyond it the result
is NaN. Interior NaN samples of the master give NaN wherever they would be
used; NaN pixel wavelengths give NaN.

Correlated error: every pixel at a given wavelength receives the same master
error; see `jwst_mbkg_plus.algorithms.errors` for how to propagate it into
extracted column sums.
"""

import functools
import logging

import numpy as np
from scipy.interpolate import CubicSpline

from jwst_mbkg_plus.algorithms.interp import check_increasing, interp_linear

__all__ = ["EDGE_POLICIES", "INTERPOLATIONS", "expand_to_2d", "sample_range",
           "subtract_background"]

log = logging.getLogger(__name__)

EDGE_POLICIES = ("nan", "nearest", "extrapolate_linear")
INTERPOLATIONS = ("linear", "cubic")


def expand_to_2d(wavelength_2d, master_wave, master_flux, master_var=None, *, edge="nan",
                 edge_limit=None, interpolation="linear"):
    """Evaluate a 1-D master background at each pixel's wavelength.

    Parameters
    ----------
    wavelength_2d : array_like, any shape (typically (ny, nx))
        Pixel wavelengths (same unit as ``master_wave``, e.g. micron); NaN
        for pixels without a wavelength.
    master_wave : array_like, shape (n,)
        Master wavelengths; the finite ones must be strictly increasing.
    master_flux : array_like, shape (n,)
        Master surface brightness (e.g. MJy/sr).
    master_var : array_like, shape (n,), or None, optional
        Variance of ``master_flux``.
    edge : {"nan", "nearest", "extrapolate_linear"}, optional
        Policy outside the master's finite range (see module docstring).
    edge_limit : float or None, optional
        Maximum distance beyond the range for ``"nearest"`` /
        ``"extrapolate_linear"`` (None = unlimited).
    interpolation : {"linear", "cubic"}, optional
        Between master samples: straight lines, or a cubic spline through the
        finite samples (`scipy.interpolate.CubicSpline`, not-a-knot ends). Linear
        interpolation cuts the peak of a line only ~2 samples wide (He I 1.083
        micron on the prism) by ~t(1 - t)/2 of its curvature times the step
        squared, a few tenths of a percent of the background; the cubic's error
        is of fourth order. Outside the range and next to NaN samples the
        result is the linear one (NaN where that is NaN). The variance is the
        spline's noise gain for independent samples on a locally uniform grid
        (the sum of its squared weights: 1 at a sample, 0.756 half-way, where
        a straight line gives 0.5) times the local sample variance.

    Returns
    -------
    bkg2d : ndarray, shape of ``wavelength_2d``
        Background at each pixel.
    var2d : ndarray, shape of ``wavelength_2d``, or None
        Its variance (None if ``master_var`` is None).

    Raises
    ------
    ValueError
        For bad shapes, unsorted ``master_wave``, unknown ``edge``, negative
        ``edge_limit``, or a master with no finite sample.
    """
    if edge not in EDGE_POLICIES:
        raise ValueError(f"edge must be one of {EDGE_POLICIES}, got {edge!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if edge_limit is not None and not edge_limit >= 0:
        raise ValueError(f"edge_limit must be >= 0 or None, got {edge_limit!r}")
    mw = np.asarray(master_wave, dtype=np.float64)
    mf = np.asarray(master_flux, dtype=np.float64)
    if mw.ndim != 1 or mf.shape != mw.shape:
        raise ValueError(f"master_wave and master_flux must be 1-D of equal length, got "
                         f"{mw.shape} and {mf.shape}")
    mv = None
    if master_var is not None:
        mv = np.asarray(master_var, dtype=np.float64)
        if mv.shape != mw.shape:
            raise ValueError(f"master_var shape {mv.shape} differs from master_wave {mw.shape}")
    mw, mf, mv = _trimmed(mw, mf, mv)
    wave = np.asarray(wavelength_2d, dtype=np.float64)
    bkg, var = interp_linear(mw, mf, mv, wave, edge=edge, edge_limit=edge_limit)
    if interpolation == "cubic":
        bkg = _cubic_inside(mw, mf, wave, bkg)
        if var is not None:
            var = _cubic_variance(mw, mv, wave, var)
    log.debug("expand_to_2d: %d of %d pixels defined (edge=%s)", int(np.isfinite(bkg).sum()),
              bkg.size, edge)
    return bkg, var


def sample_range(master_wave, master_flux, master_var=None):
    """
    The wavelengths beyond which `expand_to_2d`'s ``edge`` policy applies.

    Parameters
    ----------
    master_wave, master_flux, master_var : array_like, shape (n,)
        As `expand_to_2d` takes them.

    Returns
    -------
    low, high : float
        The master's first and last finite samples (leading and trailing NaN
        trimmed): pixels at ``low <= wavelength <= high`` get the same value
        whatever ``edge`` is; the others follow it.

    Raises
    ------
    ValueError
        For unsorted ``master_wave`` or a master with no finite sample.
    """
    mw, _, _ = _trimmed(np.asarray(master_wave, dtype=np.float64),
                        np.asarray(master_flux, dtype=np.float64),
                        None if master_var is None else np.asarray(master_var, dtype=np.float64))
    return float(mw[0]), float(mw[-1])


def _trimmed(mw, mf, mv):
    """The master's samples from its first to its last finite one (float64 arrays)."""
    check_increasing(mw, "master_wave")
    ok = np.isfinite(mw)
    mw, mf = mw[ok], mf[ok]
    mv = None if mv is None else mv[ok]
    good = np.isfinite(mf) if mv is None else np.isfinite(mf) & np.isfinite(mv)
    if not good.any():
        raise ValueError("master background has no finite sample")
    first, last = np.nonzero(good)[0][[0, -1]]
    sl = slice(first, last + 1)
    mw, mf = mw[sl], mf[sl]
    if mv is not None:
        mv = np.where(np.isfinite(mf), mv[sl], np.nan)
        mf = np.where(np.isfinite(mv), mf, np.nan)
    return mw, mf, mv


def _cubic_inside(mw, mf, wave, linear):
    """Cubic-spline values where the linear ones are finite and inside the samples."""
    good = np.isfinite(mf)
    if good.sum() < 4:
        return linear
    spline = CubicSpline(mw[good], mf[good], extrapolate=False)
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(linear) & (wave >= mw[0]) & (wave <= mw[-1])
    out = linear.copy()
    out[inside] = spline(wave[inside])
    return out


@functools.cache
def _spline_noise_gain():
    """Sum of squared cubic-spline weights at fraction t between two samples.

    For independent samples of equal variance ``v`` on a uniform grid, the
    spline's value at ``t`` has variance ``gain(t) * v``: 1 at the samples,
    0.756 half-way (a straight line gives ``(1 - t)**2 + t**2``, 0.5). Computed
    once from the splines of unit impulses on an interior stretch of grid.
    """
    n = 41
    grid = np.arange(n, dtype=np.float64)
    t = np.linspace(0.0, 1.0, 201)
    weights = CubicSpline(grid, np.eye(n), axis=0)(n // 2 + t)  # (t, impulse)
    return t, np.sum(weights**2, axis=1)


def _cubic_variance(mw, mv, wave, linear_var):
    """Variance of the spline's value: its noise gain times the local sample variance."""
    out = linear_var.copy()
    inside = np.isfinite(linear_var) & (wave >= mw[0]) & (wave <= mw[-1])
    x = wave[inside]
    i = np.clip(np.searchsorted(mw, x, side="right") - 1, 0, mw.size - 2)
    t = (x - mw[i]) / (mw[i + 1] - mw[i])
    level = (1 - t) * mv[i] + t * mv[i + 1]
    tt, gain = _spline_noise_gain()
    out[inside] = np.interp(t, tt, gain) * level
    return out


def subtract_background(data, var, bkg, bkg_var=None):
    """Subtract a background and add its variance, returning new arrays.

    Parameters
    ----------
    data : array_like
        Data (e.g. SCI in MJy/sr).
    var : array_like or None
        Variance of ``data``; None gives None.
    bkg : array_like
        Background, broadcastable to ``data``; NaN gives NaN.
    bkg_var : array_like or None, optional
        Background variance, broadcastable; None means 0. Add it once per
        pixel (see `jwst_mbkg_plus.algorithms.errors` for column sums).

    Returns
    -------
    new_data : ndarray
        ``data - bkg`` (new array, shape of ``data``).
    new_var : ndarray or None
        ``var + bkg_var`` (new array), or None if ``var`` is None.

    Raises
    ------
    ValueError
        If the arrays do not broadcast to the shape of ``data``.
    """
    data = np.asarray(data, dtype=np.float64)
    for name, arr in (("var", var), ("bkg", bkg), ("bkg_var", bkg_var)):
        if arr is None:
            continue
        try:
            ok = np.broadcast_shapes(np.shape(arr), data.shape) == data.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{name} shape {np.shape(arr)} does not broadcast to data shape "
                             f"{data.shape}")
    new_data = data - np.asarray(bkg, dtype=np.float64)
    if var is None:
        return new_data, None
    new_var = np.array(np.broadcast_to(var, data.shape), dtype=np.float64)
    if bkg_var is not None:
        new_var = new_var + np.asarray(bkg_var, dtype=np.float64)
    return new_data, new_var
