"""Variance of a column sum of an expanded 1-D master: the master's own covariance.

Every pixel of a slit column sits at nearly the same wavelength, so the pixels
share the master's error; but not all of it. A column of a tilted trace spans a
fraction of a master sample or more, and the master's samples are independent
(each calibrated pixel is binned once), so neighbouring pixels of one column
interpolate partly different samples. The summed background of column ``c`` is
linear in the samples, ``S_c = sum_j a_cj M_j``, and its variance is
``sum_j a_cj**2 var_j``: between the independent ``sum_p b_p`` and the fully
correlated ``(sum_p sqrt(b_p))**2``.

The weights ``a_cj`` come from the expansion itself, probed with combs of unit
samples (`probed_sample_weights`), so that the cubic spline, the linear
fall-back next to gaps and the edge policy are those the step subtracts with.
"""

import logging

import numpy as np

__all__ = [
    "column_sum_background_variance",
    "probed_sample_weights",
]

log = logging.getLogger(__name__)

# A cubic spline's weight on a sample falls by 2 - sqrt(3) = 0.268 per sample;
# combs of impulses PERIOD apart credit a pixel with at most 0.268**4 = 5e-3 of another
# sample's weight: column variances within 0.3% of period 32's (tested scene), at half
# the cost of period 16.
PERIOD = 8


def probed_sample_weights(expand, n_samples, defined, position, *, period=PERIOD):
    """
    Each pixel's weight on the sample nearest its wavelength, and its neighbours.

    Parameters
    ----------
    expand : callable
        ``expand(flux)`` with ``flux`` of shape ``(n_samples,)`` returns the
        expanded background (any shape); it must be linear in ``flux``.
    n_samples : int
        Number of master samples.
    defined : ndarray of bool, shape (n_samples,)
        Samples the master defines; the others stay NaN in every probe, so the
        expansion takes the same path as for the master itself.
    position : ndarray
        Each pixel's fractional sample index (shape of ``expand``'s output).
    period : int, optional
        Spacing of the impulses of one probe (``>= 2``).

    Returns
    -------
    index : ndarray of int, shape ``(period,) + position.shape``
        For probe ``m``, the sample each pixel's response is credited to: the
        impulse of that probe nearest the pixel.
    weight : ndarray, same shape
        The response (the expansion's weight on that sample); 0 where undefined.
    """
    if period < 2:
        raise ValueError(f"period must be >= 2, got {period!r}")
    defined = np.asarray(defined, dtype=bool)
    position = np.asarray(position, dtype=np.float64)
    centre = np.where(np.isfinite(position), position, 0.0)
    index = np.empty((period,) + position.shape, dtype=np.int64)
    weight = np.empty((period,) + position.shape, dtype=np.float64)
    for m in range(period):
        flux = np.where(defined, 0.0, np.nan)
        flux[m::period] = np.where(defined[m::period], 1.0, np.nan)
        # The impulse of this comb nearest each pixel: the one it responds to.
        last = m + period * ((n_samples - 1 - m) // period)
        nearest = m + period * np.rint((centre - m) / period)
        index[m] = np.clip(nearest, m, max(last, m)).astype(np.int64)
        response = np.asarray(expand(flux), dtype=np.float64)
        weight[m] = np.where(np.isfinite(response), response, 0.0)
    return index, weight


def column_sum_background_variance(expand, sample_var, position, scale, good, *,
                                   period=PERIOD):
    """
    Variance of each column's sum of the expanded master, samples independent.

    Parameters
    ----------
    expand : callable
        ``expand(flux) -> (ny, nx)``: the master's expansion to the slit's
        pixels, linear in ``flux`` (calibrated units).
    sample_var : ndarray, shape (n,)
        Variance of each master sample; NaN where the master has no sample.
    position : ndarray, shape (ny, nx)
        Each pixel's fractional sample index (NaN where it has no wavelength).
    scale : ndarray, shape (ny, nx)
        Factor from the expanded master to the subtracted background of each
        pixel (the inverse calibration, times any spatial factor).
    good : ndarray of bool, shape (ny, nx)
        Pixels summed.

    Returns
    -------
    ndarray, shape (nx,)
        ``sum_j (sum_p scale_p w_pj)**2 var_j`` per column ``x``, over the
        ``good`` pixels of that column (0 where it has none).

    Examples
    --------
    Two pixels of one column half-way between the same two samples share
    them, so their sum's variance is that of ``M_0 + M_1``:

    >>> import numpy as np
    >>> expand = lambda f: np.interp(np.full((2, 1), 0.5), [0.0, 1.0], f)
    >>> column_sum_background_variance(expand, np.ones(2), np.full((2, 1), 0.5),
    ...                                np.ones((2, 1)), np.ones((2, 1), bool))
    array([2.])
    """
    sample_var = np.asarray(sample_var, dtype=np.float64)
    n = sample_var.size
    defined = np.isfinite(sample_var)
    index, weight = probed_sample_weights(expand, n, defined, position,
                                          period=min(period, max(n, 2)))
    scale = np.where(np.asarray(good, dtype=bool) & np.isfinite(scale), scale, 0.0)
    ny, nx = scale.shape
    column = np.broadcast_to(np.arange(nx), (index.shape[0], ny, nx))
    flat = (column * n + index).ravel()
    a = np.bincount(flat, (weight * scale).ravel(), minlength=nx * n).reshape(nx, n)
    return (a**2) @ np.where(defined, sample_var, 0.0)
