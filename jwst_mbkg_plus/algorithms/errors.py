r"""Variance propagation helpers, and the master background's correlated error.

Every function here works on variances (unit squared), never on standard
deviations, and treats non-finite variances as missing data.

Elementary rules used throughout the package
--------------------------------------------
* Weighted mean of independent values: ``var = sum(w**2 var_i) / sum(w)**2``
  (`mean_variance`); inverse-variance weights give ``1 / sum(1 / var_i)``.
* Median of ``n`` independent Gaussian values of standard deviations
  ``sigma_i``: ``var ~ f(n) / (n * mean(1 / sigma_i)**2)``
  (`median_variance`), with ``f(n)`` the Gaussian efficiency factor
  (`median_variance_factor`): 1 for n <= 2, 1.35 for n = 3, 1.20 for n = 4,
  ... tending to pi/2 = 1.571. For equal variances this is ``f(n) var / n``;
  for unequal ones ``mean(1 / sigma_i)`` is the large-n density of the
  mixture at its centre (so ``var`` reflects that the median follows the
  precise values), which is what makes the pulls right (tested with
  sigma_i spread over a factor 3).
* Linear interpolation with weights ``(1 - t, t)``:
  ``(1 - t)**2 v0 + t**2 v1`` (`interpolation_variance`).
* Subtraction of an independent background: ``var + bkg_var``
  (`subtraction_variance`).

The master background's error is correlated
-------------------------------------------
One master spectrum ``B(lambda)`` with variance ``var_B(lambda)`` is expanded
to every pixel and subtracted. For one pixel, ``var_pix + var_B`` is correct.
But the error of ``B`` is the *same* realisation in every pixel at that
wavelength, so it is fully correlated along the spatial direction (and, after
interpolation or median smoothing, partially correlated along wavelength over
~ the smoothing kernel). For a column sum over ``N`` pixels (a box extraction):

.. math::

    \mathrm{var}_\mathrm{true} = \sum_i \mathrm{var}_{\mathrm{pix},i} + N^2\,\mathrm{var}_B
    \qquad\text{vs}\qquad
    \mathrm{var}_\mathrm{naive} = \sum_i \mathrm{var}_{\mathrm{pix},i} + N\,\mathrm{var}_B,

so a pipeline that adds ``var_B`` to each pixel and then sums variances
(jwst ``extract_1d`` does) underestimates the background term by a factor N.
The master is usually averaged over many pixels, so ``var_B << var_pix`` and the
effect is small per pixel, but for wide extractions of faint sources it is not:
with N = 5 and ``var_B = var_pix / 20`` the naive column error is 9 % too small.

Strategies (implemented here)
-----------------------------
A. *Per-pixel correct + separate array (recommended).* Add ``var_B`` once to
   each pixel's variance and keep the expanded ``var_B`` as a separate array.
   Extraction code that knows about it uses `column_sum_variance` (or
   `weighted_sum_variance`), which adds the correlated part as
   ``(sum_i w_i sqrt(var_B,i))**2`` after removing the independent
   ``sum_i w_i**2 var_B,i`` already in the pixel variances. Pulls are right per
   pixel *and* per column. Cost: one more array to carry; downstream code that
   ignores it is back to the naive (slightly small) column errors.
B. *Inflate for a nominal extraction width.* Store
   ``var_pix + N_ext var_B`` per pixel (`inflated_background_variance`), with
   ``N_ext`` the expected extraction height. Any column sum over exactly
   ``N_ext`` pixels then gets the right variance with unmodified extraction
   code. Trade-off: per-pixel variances are overestimated by
   ``(N_ext - 1) var_B`` (per-pixel pulls below 1; outlier detection becomes
   slightly less sensitive; inverse-variance weights slightly biased towards
   pixels with a smaller background term), and sums over a different number
   ``N`` of pixels are right only if ``N == N_ext`` (error on the correlated
   term ~ ``N / N_ext``).

C. *Balanced inflation (what the MOS plus step uses).* Multiply ``var_B`` by
   ``k = (sqrt((1 + r)(1 + N r)) - 1) / r`` with ``r = var_B / var_pix``
   (`balanced_background_inflation`). The per-pixel variance is then too large
   and the ``N``-pixel column-sum variance too small by the same factor, so
   both pulls are off by the least that one array allows; ``k -> (N + 1) / 2``
   as ``r -> 0``.

The correlation along wavelength (from smoothing the master with a running
median of ``k`` samples) matters only when summing over wavelength (e.g.
photometry on the extracted spectrum); it is not modelled here.
"""

import logging

import numpy as np

__all__ = [
    "balanced_background_inflation",
    "column_sum_variance",
    "inflated_background_variance",
    "interpolation_variance",
    "mean_variance",
    "median_variance",
    "median_variance_factor",
    "median_variance_from_sums",
    "pixel_variance_from_inflated",
    "pooled_scatter_scale",
    "subtraction_variance",
    "weighted_sum_variance",
]

log = logging.getLogger(__name__)

# Monte-Carlo (4e5 draws) of n * var(median) / sigma**2 for n = 1..25 Gaussian
# values; n = 1 and 2 are exactly 1 (the median is the mean).
_MEDIAN_FACTOR = np.array([
    1.0, 1.0, 1.344, 1.198, 1.430, 1.288, 1.472, 1.347, 1.494, 1.379, 1.517, 1.405,
    1.522, 1.426, 1.526, 1.444, 1.529, 1.456, 1.538, 1.469, 1.541, 1.477, 1.542,
    1.486, 1.539,
])


def median_variance_factor(n):
    """Gaussian efficiency factor ``f(n) = n var(median) / sigma**2``.

    Parameters
    ----------
    n : int or array_like of int
        Number of values the median is taken over.

    Returns
    -------
    factor : float or ndarray
        Tabulated for n <= 25 (Monte Carlo, +-0.3 %); beyond,
        ``pi/2 (1 - c/n)`` with c = 0.5 for odd and 1.3 for even n (within
        ~1 % of simulation). NaN for n < 1.
    """
    n = np.asarray(n)
    nn = np.clip(n, 1, None).astype(np.int64)
    big = np.pi / 2 * (1 - np.where(nn % 2 == 1, 0.5, 1.3) / np.maximum(nn, 1))
    small = _MEDIAN_FACTOR[np.clip(nn, 1, _MEDIAN_FACTOR.size) - 1]
    out = np.where(nn <= _MEDIAN_FACTOR.size, small, big)
    out = np.where(n >= 1, out, np.nan)
    return out if out.ndim else float(out)


def mean_variance(var, weights=None, axis=0):
    """Variance of a weighted mean of independent values, ``sum w^2 v / (sum w)^2``.

    Parameters
    ----------
    var : ndarray
        Variances of the averaged values; non-finite entries are excluded
        (weight set to 0).
    weights : ndarray or None, optional
        Non-negative weights broadcastable to ``var``; 1 if None.
    axis : int, optional
        Axis averaged over.

    Returns
    -------
    var_mean : ndarray
        NaN where the total weight is zero.
    """
    var = np.asarray(var, dtype=np.float64)
    w = np.ones_like(var) if weights is None else np.broadcast_to(weights, var.shape)
    ok = np.isfinite(var) & np.isfinite(w)
    w = np.where(ok, w, 0.0)
    sw = np.sum(w, axis=axis)
    num = np.sum(w**2 * np.where(ok, var, 0.0), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sw > 0, num / np.where(sw > 0, sw, 1.0) ** 2, np.nan)


def median_variance(var, axis=0):
    """Approximate variance of the median of independent Gaussian values.

    ``median_variance_factor(n) / (n * mean(1 / sqrt(var))**2)`` over the
    finite variances along ``axis`` (``f(n) var / n`` for equal variances).

    Parameters
    ----------
    var : ndarray
        Variances of the values the median is taken over (non-finite =
        not part of the median).
    axis : int, optional
        Axis of the median.

    Returns
    -------
    var_median : ndarray
        NaN where no variance is finite; 0 if any variance is 0.
    """
    var = np.asarray(var, dtype=np.float64)
    ok = np.isfinite(var) & (var >= 0)
    n = np.sum(ok, axis=axis)
    with np.errstate(divide="ignore"):
        inv_sig = np.where(ok, 1.0 / np.sqrt(np.where(ok, var, 1.0)), 0.0)
    return median_variance_from_sums(n, np.sum(inv_sig, axis=axis))


def median_variance_from_sums(n, sum_inv_sigma):
    """`median_variance` from the count and the sum of ``1 / sigma_i``.

    For callers that accumulate these in windows or bins.

    Parameters
    ----------
    n : array_like of int
        Number of values.
    sum_inv_sigma : array_like
        ``sum_i 1 / sqrt(var_i)`` (may be inf if a variance is 0).

    Returns
    -------
    var_median : ndarray
        ``f(n) n / sum_inv_sigma**2``; NaN where ``n == 0``.
    """
    n = np.asarray(n)
    nn = np.maximum(n, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = median_variance_factor(nn) * nn / np.asarray(sum_inv_sigma, dtype=np.float64) ** 2
    return np.where(n > 0, out, np.nan)


def interpolation_variance(var0, var1, t):
    """Variance of ``(1 - t) y0 + t y1`` for independent ``y0``, ``y1``.

    Parameters
    ----------
    var0, var1 : array_like
        Variances of the two neighbours.
    t : array_like
        Interpolation weight of ``y1`` (outside [0, 1] for extrapolation).

    Returns
    -------
    var : ndarray
        ``(1 - t)**2 var0 + t**2 var1``.
    """
    t = np.asarray(t, dtype=np.float64)
    return (1 - t) ** 2 * np.asarray(var0) + t**2 * np.asarray(var1)


def subtraction_variance(var, bkg_var):
    """Variance of ``data - bkg`` for independent data and background.

    Parameters
    ----------
    var : array_like
        Variance of the data.
    bkg_var : array_like or None
        Variance of the subtracted background (broadcastable); None means 0.

    Returns
    -------
    var_out : ndarray
        New array ``var + bkg_var``.
    """
    var = np.array(var, dtype=np.float64, copy=True)
    if bkg_var is None:
        return var
    return var + np.asarray(bkg_var, dtype=np.float64)


def balanced_background_inflation(bkg_var, pixel_var, n_extract):
    """
    Strategy C: factor ``k`` for the background variance term, balanced.

    With ``r = bkg_var / pixel_var`` and ``N = n_extract``,
    ``k = (sqrt((1 + r)(1 + N r)) - 1) / r`` makes the per-pixel variance
    ``v + k b`` and the ``N``-pixel column-sum variance ``N v + N k b`` wrong by
    the same factor in opposite directions (the true ones are ``v + b`` and
    ``N v + N**2 b``).

    Parameters
    ----------
    bkg_var : array_like
        Per-pixel variance of the expanded master background.
    pixel_var : array_like
        Per-pixel variance of the data (before the background term).
    n_extract : float
        Expected number of pixels summed per column in extraction (>= 1).

    Returns
    -------
    ndarray
        ``k`` per pixel; ``(N + 1) / 2`` where ``r`` is 0 or undefined.
    """
    if not n_extract >= 1:
        raise ValueError(f"n_extract must be >= 1, got {n_extract!r}")
    bkg_var = np.asarray(bkg_var, dtype=np.float64)
    pixel_var = np.asarray(pixel_var, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = bkg_var / pixel_var
        k = (np.sqrt((1 + r) * (1 + n_extract * r)) - 1) / r
    return np.where(np.isfinite(k) & (r > 0), k, 0.5 * (n_extract + 1))


def pixel_variance_from_inflated(total_var, bkg_var, n_extract):
    """
    Undo `balanced_background_inflation`: the data's own variance from ``ERR**2``.

    ``ERR**2 = v + k b`` with ``k`` from `balanced_background_inflation`
    simplifies to ``ERR**4 = (v + b)(v + N b)``, whose positive root is
    ``v = (sqrt((N - 1)**2 b**2 + 4 ERR**4) - (N + 1) b) / 2``. With it, the
    error model's own per-pixel variance ``v + b`` and column-sum variance
    ``sum v + (sum sqrt(b))**2`` can be checked against the residuals.

    Parameters
    ----------
    total_var : array_like
        ``ERR**2`` after the inflated background term was added.
    bkg_var : array_like
        Per-pixel variance of the expanded master background (``b``).
    n_extract : float
        The ``N`` the inflation used (>= 1).

    Returns
    -------
    ndarray
        ``v``, the variance before the background term (``total_var`` where
        ``bkg_var`` is 0).
    """
    if not n_extract >= 1:
        raise ValueError(f"n_extract must be >= 1, got {n_extract!r}")
    total = np.asarray(total_var, dtype=np.float64)
    b = np.asarray(bkg_var, dtype=np.float64)
    root = np.sqrt((n_extract - 1) ** 2 * b**2 + 4 * total**2)
    return 0.5 * (root - (n_extract + 1) * b)


def inflated_background_variance(bkg_var, n_extract):
    """Strategy B: background variance term scaled for an ``n_extract``-pixel sum.

    Parameters
    ----------
    bkg_var : array_like
        Per-pixel variance of the expanded master background.
    n_extract : float
        Expected number of pixels summed per column in extraction (>= 1).

    Returns
    -------
    bkg_var_inflated : ndarray
        ``n_extract * bkg_var``; add it to the pixel variance instead of
        ``bkg_var``. A sum over exactly ``n_extract`` pixels then has the
        correct variance ``sum var_pix + n_extract**2 var_B``.
    """
    if not n_extract >= 1:
        raise ValueError(f"n_extract must be >= 1, got {n_extract!r}")
    return n_extract * np.asarray(bkg_var, dtype=np.float64)


def weighted_sum_variance(pixel_var, bkg_var, weights=None, *, axis=0,
                          includes_background=True):
    r"""Variance of ``sum_i w_i (d_i - B_i)`` with a fully correlated background error.

    ``var = sum_i w_i^2 var_pix,i + (sum_i w_i sqrt(var_B,i))^2``

    Parameters
    ----------
    pixel_var : ndarray
        Per-pixel variance of the background-subtracted data.
    bkg_var : ndarray
        Per-pixel variance of the subtracted master background (same shape);
        its errors are assumed fully correlated along ``axis``.
    weights : ndarray or None, optional
        Extraction weights broadcastable to ``pixel_var`` (1 = box sum).
    axis : int, optional
        Spatial axis summed over (0 for a (ny, nx) slit with dispersion along x).
    includes_background : bool, optional
        True (strategy A) if ``pixel_var`` already contains ``bkg_var`` once
        per pixel: that independent part is replaced by the correlated one.
        False if ``pixel_var`` excludes the background term.

    Returns
    -------
    var_sum : ndarray
        Variance of the weighted sum; pixels where either variance is
        non-finite are left out of the sum (as an extraction would skip them).
    """
    pixel_var = np.asarray(pixel_var, dtype=np.float64)
    bkg_var = np.asarray(bkg_var, dtype=np.float64)
    if pixel_var.shape != bkg_var.shape:
        raise ValueError(f"pixel_var {pixel_var.shape} and bkg_var {bkg_var.shape} differ")
    w = np.ones_like(pixel_var) if weights is None else np.broadcast_to(weights, pixel_var.shape)
    ok = np.isfinite(pixel_var) & np.isfinite(bkg_var) & np.isfinite(w)
    w = np.where(ok, w, 0.0)
    pv = np.where(ok, pixel_var, 0.0)
    bv = np.where(ok, bkg_var, 0.0)
    indep = np.sum(w**2 * pv, axis=axis)
    if includes_background:
        indep = indep - np.sum(w**2 * bv, axis=axis)
    corr = np.sum(w * np.sqrt(bv), axis=axis) ** 2
    return indep + corr


def column_sum_variance(pixel_var, bkg_var, *, axis=0, includes_background=True):
    """Strategy A: variance of a box (unweighted) column sum, correlated background.

    Shorthand for `weighted_sum_variance` with unit weights: for ``N``
    pixels of equal background variance this is
    ``sum var_pix + N**2 var_B``.

    Parameters
    ----------
    pixel_var : ndarray
        Per-pixel variances (see ``includes_background``).
    bkg_var : ndarray
        Per-pixel master background variance, same shape.
    axis : int, optional
        Axis summed over.
    includes_background : bool, optional
        Whether ``pixel_var`` already contains ``bkg_var`` once.

    Returns
    -------
    var_sum : ndarray
        Variance of the column sum.
    """
    return weighted_sum_variance(pixel_var, bkg_var, None, axis=axis,
                                 includes_background=includes_background)


def pooled_scatter_scale(flux, var, centre, used, *, window=51):
    """
    How much more the spectra scatter than their variances say, pooled over wavelength.

    The variance of a master made from a few spectra cannot come from their
    scatter at each wavelength (2 or 3 values: a chi-square of 1 or 2 degrees
    of freedom, so the error itself is uncertain by 70-100 %), and the
    propagated variance is right only if the inputs' variances are. Here the
    reduced chi-square of the spectra about the combined value is pooled over
    ``window`` adjacent wavelengths (``window * (n - 1)`` degrees of freedom:
    about +/-20 % for 2 spectra and 51 wavelengths), giving a factor by which
    the propagated variance is scaled where the spectra scatter more than their
    variances allow (calibration residuals, underestimated pixel variances).
    It is never below 1: scatter smaller than the propagated noise is chance.

    Parameters
    ----------
    flux, var : ndarray, shape (n_spectra, n_wave)
        Spectra and variances.
    centre : ndarray, shape (n_wave,)
        The combined value.
    used : ndarray of bool, shape (n_spectra, n_wave)
        Points that entered the combination.
    window : int, optional
        Wavelengths pooled (odd; truncated at the ends).

    Returns
    -------
    scale : ndarray, shape (n_wave,)
        Factor >= 1 for the propagated variance (1 where fewer than 2 spectra
        were used anywhere in the window).
    """
    flux = np.asarray(flux, dtype=float)
    var = np.asarray(var, dtype=float)
    used = np.asarray(used, dtype=bool) & np.isfinite(flux) & np.isfinite(var) & (var > 0)
    used &= np.isfinite(centre)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        z2 = np.where(used, (flux - centre) ** 2 / np.where(used, var, 1.0), 0.0)
    n = used.sum(axis=0)
    chi2 = z2.sum(axis=0)
    dof = np.clip(n - 1, 0, None).astype(float)
    half = max(int(window) // 2, 0)
    kernel = np.ones(2 * half + 1)
    pooled_chi2 = np.convolve(chi2, kernel, mode="same")
    pooled_dof = np.convolve(dof, kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(pooled_dof > 0, pooled_chi2 / pooled_dof, 1.0)
    return np.maximum(scale, 1.0)
