"""NaN-aware running median of a spectrum, with correct ends and variance.

Replaces ``scipy.signal.medfilt`` as used by jwst's master background steps,
which zero-pads the ends (pulling the first and last ``kernel // 2`` samples
towards 0), is not NaN-aware, and is not applied to the error array.

Policies
--------
* Kernel: a positive integer number of samples. Even kernels are either
  rounded up to the next odd number (``even="round_up"``, the default, logged
  at INFO) or rejected (``even="raise"``). The caller's value is never changed;
  the kernel actually used is available from `effective_kernel`.
* Ends: ``ends="shrink"`` (default) uses only the samples that exist (the
  window is truncated, so the first output is the median of the first
  ``kernel // 2 + 1`` samples); ``ends="reflect"`` mirrors the spectrum about
  its end samples (``numpy.pad(mode="reflect")``). Never zero padding.
* NaN: non-finite samples are ignored inside each window; an output is NaN
  only if its window has no finite sample (or, with ``keep_nan=True``, if the
  input sample itself is NaN, so gaps are not filled).
* Variance: the median of ``n`` independent samples has variance
  ``f(n) / (n mean(1/sigma)^2)`` (``f(n) var / n`` for equal variances) with
  ``f(n)`` -> pi/2 (`~jwst_mbkg_plus.algorithms.errors.median_variance`);
  ``n`` and ``sigma`` are taken over the finite samples of the *truncated* window
  (reflected duplicates are not independent and are not counted). This is
  the Gaussian, locally-flat approximation; outputs within ``kernel`` of each
  other are strongly correlated, so summing smoothed samples over wavelength
  does not average their errors down.
"""

import logging

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from jwst_mbkg_plus.algorithms.errors import median_variance_from_sums
from jwst_mbkg_plus.algorithms.stats import nanmedian

__all__ = ["effective_kernel", "median_filter_nan"]

log = logging.getLogger(__name__)


def effective_kernel(kernel, even="round_up"):
    """Kernel size that `median_filter_nan` will use.

    Parameters
    ----------
    kernel : int
        Requested number of samples (>= 1).
    even : {"round_up", "raise"}, optional
        Rule for even kernels.

    Returns
    -------
    k : int
        Odd kernel size.

    Raises
    ------
    ValueError
        If ``kernel`` is not a positive integer, or even with ``even="raise"``.
    """
    if isinstance(kernel, bool) or not isinstance(kernel, int | np.integer) or kernel < 1:
        raise ValueError(f"kernel must be a positive integer, got {kernel!r}")
    if even not in ("round_up", "raise"):
        raise ValueError(f"even must be 'round_up' or 'raise', got {even!r}")
    k = int(kernel)
    if k % 2 == 0:
        if even == "raise":
            raise ValueError(f"kernel must be odd, got {kernel}")
        log.info("median kernel %d is even; using %d", k, k + 1)
        k += 1
    return k


def median_filter_nan(flux, var=None, *, kernel, ends="shrink", even="round_up",
                      keep_nan=False):
    """Compute a NaN-aware running median along the last axis, with explicit ends.

    Parameters
    ----------
    flux : array_like, shape (..., n_wave)
        Spectrum or spectra (any unit); filtered along the last axis.
    var : array_like, shape (..., n_wave), or None, optional
        Variance of ``flux`` (unit squared).
    kernel : int
        Window length in samples (see `effective_kernel` for even values).
        1 returns copies of the inputs.
    ends : {"shrink", "reflect"}, optional
        End policy for the flux (see module docstring).
    even : {"round_up", "raise"}, optional
        Rule for even kernels.
    keep_nan : bool, optional
        If True, outputs are NaN where the input flux is NaN.

    Returns
    -------
    smoothed : ndarray, shape (..., n_wave)
        Running median (new array).
    smoothed_var : ndarray, shape (..., n_wave), or None
        ``f(n) / (n mean(1/sigma)^2)`` over the finite samples of the
        truncated window (None if ``var`` is None).

    Raises
    ------
    ValueError
        For bad kernel, options or shapes.

    Examples
    --------
    >>> import numpy as np
    >>> median_filter_nan(np.array([1.0, 2.0, 30.0, 4.0, 5.0]), kernel=3)[0]
    array([1.5, 2. , 4. , 5. , 4.5])
    """
    k = effective_kernel(kernel, even)
    if ends not in ("shrink", "reflect"):
        raise ValueError(f"ends must be 'shrink' or 'reflect', got {ends!r}")
    flux = np.asarray(flux, dtype=np.float64)
    if flux.ndim < 1 or flux.shape[-1] == 0:
        raise ValueError(f"flux must have at least one sample along the last axis, "
                         f"got shape {flux.shape}")
    if var is not None:
        var = np.asarray(var, dtype=np.float64)
        if var.shape != flux.shape:
            raise ValueError(f"var shape {var.shape} differs from flux shape {flux.shape}")
    n = flux.shape[-1]
    h = k // 2
    f = np.where(np.isfinite(flux), flux, np.nan)
    pad = [(0, 0)] * (flux.ndim - 1) + [(h, h)]
    if ends == "reflect" and n > 1:
        # numpy's reflect needs h < n: repeat the reflection as numpy does for
        # long pads (mode="reflect" handles that itself).
        fp = np.pad(f, pad, mode="reflect")
    else:
        fp = np.pad(f, pad, constant_values=np.nan)
    out = nanmedian(sliding_window_view(fp, k, axis=-1), axis=-1)
    if keep_nan:
        out = np.where(np.isfinite(f), out, np.nan)

    out_var = None
    if var is not None:
        v = np.where(np.isfinite(var) & np.isfinite(f), var, np.nan)
        vp = np.pad(v, pad, constant_values=np.nan)
        win = sliding_window_view(vp, k, axis=-1)
        ok = np.isfinite(win) & (win >= 0)
        cnt = ok.sum(axis=-1)
        with np.errstate(divide="ignore"):
            inv = np.where(ok, 1.0 / np.sqrt(np.where(ok, win, 1.0)), 0.0)
        out_var = median_variance_from_sums(cnt, inv.sum(axis=-1))
        out_var = np.where(np.isfinite(out), out_var, np.nan)
    return out, out_var
