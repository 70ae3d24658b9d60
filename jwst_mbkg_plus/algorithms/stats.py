"""NaN-aware order statistics shared by the algorithm modules.

These helpers avoid ``np.nanmedian``'s "All-NaN slice" warnings (an all-NaN
column is an expected, documented case here, not an error) and provide a
sorted-segment toolkit for per-bin statistics of large flattened pixel sets.
"""

import logging

import numpy as np

__all__ = [
    "GAUSS_IQR",
    "MAD_TO_SIGMA",
    "mad_small_n_factor",
    "nanmedian",
    "nan_mad_std",
    "sort_segments",
    "segment_quantile",
]

log = logging.getLogger(__name__)

#: Gaussian consistency factor of the median absolute deviation, 1 / Phi^-1(3/4).
MAD_TO_SIGMA = 1.482602218505602

#: Interquartile range of a unit Gaussian, 2 Phi^-1(3/4).
GAUSS_IQR = 1.3489795003921634


# Monte-Carlo (2e5 draws each) consistency factor of 1.4826 x MAD measured about
# the *sample* median of n Gaussian values (pooled over many draws), n = 1..40.
# n = 1 has MAD = 0 whatever the factor. Beyond 40: 1 + 1.2 / n.
_MAD_N_FACTOR = np.array([
    1.0, 1.409, 2.166, 1.397, 1.372, 1.277, 1.224, 1.195, 1.157, 1.153, 1.121, 1.117,
    1.099, 1.097, 1.090, 1.081, 1.073, 1.071, 1.063, 1.062, 1.056, 1.057, 1.052, 1.052,
    1.047, 1.046, 1.043, 1.045, 1.039, 1.039, 1.039, 1.035, 1.033, 1.036, 1.035, 1.032,
    1.030, 1.030, 1.029, 1.030,
])


def mad_small_n_factor(n):
    """Small-sample consistency factor for 1.4826 x MAD about the sample median.

    About the sample median of ``n`` Gaussian values, the absolute
    deviations are smaller than about the true centre (one or two of them are
    zero or tiny), so 1.4826 x MAD underestimates sigma: by 14 % for n = 9,
    6 % for n = 20. Multiply by this factor to make it median-unbiased.

    Parameters
    ----------
    n : array_like of int
        Number of values the MAD is taken over.

    Returns
    -------
    factor : ndarray
        Tabulated (Monte Carlo, +-0.5 %) for n <= 40, ``1 + 1.2 / n`` beyond.
    """
    n = np.clip(np.asarray(n), 1, None).astype(np.int64)
    table = _MAD_N_FACTOR[np.clip(n, 1, _MAD_N_FACTOR.size) - 1]
    return np.where(n <= _MAD_N_FACTOR.size, table, 1 + 1.2 / n)


def nanmedian(a, axis=0):
    """Median along ``axis`` ignoring non-finite values, NaN where none is finite.

    Parameters
    ----------
    a : ndarray
        Input values; ``inf`` is treated like NaN.
    axis : int, optional
        Axis to reduce.

    Returns
    -------
    median : ndarray
        ``a`` reduced along ``axis``; NaN where no finite value exists. No
        warning is emitted for all-NaN slices.
    """
    a = np.where(np.isfinite(a), a, np.nan)
    s = np.sort(a, axis=axis)  # NaN sorts last
    n = np.sum(np.isfinite(a), axis=axis, keepdims=True)
    lo = np.maximum((n - 1) // 2, 0)
    hi = np.maximum(n // 2, 0)
    hi = np.minimum(hi, a.shape[axis] - 1)
    med = 0.5 * (np.take_along_axis(s, lo, axis=axis) + np.take_along_axis(s, hi, axis=axis))
    med = np.where(n > 0, med, np.nan)
    return np.squeeze(med, axis=axis)


def nan_mad_std(a, axis=0, center=None):
    """Gaussian-consistent MAD (MAD x 1.4826) along ``axis``, ignoring non-finite values.

    Parameters
    ----------
    a : ndarray
        Input values.
    axis : int, optional
        Axis to reduce.
    center : ndarray or None, optional
        Centre to measure deviations from (broadcastable after
        ``np.expand_dims(center, axis)``); the NaN-aware median if None.

    Returns
    -------
    scale : ndarray
        Robust standard deviation; NaN where no finite value exists.
    """
    if center is None:
        center = nanmedian(a, axis=axis)
    dev = np.abs(a - np.expand_dims(center, axis))
    return MAD_TO_SIGMA * nanmedian(dev, axis=axis)


def sort_segments(values, labels):
    """Order that sorts by ``labels`` and, within equal labels, by ``values``.

    A value sort then a stable label sort (a radix sort when labels fit in
    16 bits) is ~4x faster than ``np.lexsort`` for 1e6 elements.

    Parameters
    ----------
    values : ndarray, shape (n,)
        Finite values.
    labels : ndarray of int, shape (n,)
        Non-negative segment labels.

    Returns
    -------
    order : ndarray of int, shape (n,)
        Permutation such that ``labels[order]`` is non-decreasing and
        ``values[order]`` is sorted within each label.
    """
    o1 = np.argsort(values, kind="quicksort")
    lab = labels[o1]
    if lab.size and 0 <= lab.min() and lab.max() < 65536:
        lab = lab.astype(np.uint16)  # numpy's stable sort is a radix sort here
    o2 = np.argsort(lab, kind="stable")
    return o1[o2]


def segment_quantile(sorted_values, starts, counts, q):
    """Linear-interpolated quantile of each sorted segment.

    Parameters
    ----------
    sorted_values : ndarray, shape (n,)
        Values sorted within each segment.
    starts : ndarray of int, shape (n_seg,)
        Start index of each segment in ``sorted_values``.
    counts : ndarray of int, shape (n_seg,)
        Length of each segment (may be 0).
    q : float
        Quantile in [0, 1] (0.5 is the median; same convention as
        ``np.quantile(method="linear")``).

    Returns
    -------
    quantile : ndarray, shape (n_seg,)
        NaN for empty segments.
    """
    out = np.full(starts.shape, np.nan)
    ok = counts > 0
    if not np.any(ok) or sorted_values.size == 0:
        return out
    pos = (counts[ok] - 1) * q
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    hi = np.minimum(lo + 1, counts[ok] - 1)
    vlo = sorted_values[starts[ok] + lo]
    vhi = sorted_values[starts[ok] + hi]
    out[ok] = vlo + frac * (vhi - vlo)
    return out
