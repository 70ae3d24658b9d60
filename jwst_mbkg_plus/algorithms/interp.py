"""Private linear interpolation with variance propagation (shared by grid and expand)."""

import logging

import numpy as np

__all__ = ["check_increasing", "interp_linear"]

log = logging.getLogger(__name__)


def check_increasing(wave, name="wavelength"):
    """Raise ValueError unless the finite part of ``wave`` is strictly increasing.

    Parameters
    ----------
    wave : ndarray, shape (n,)
        Sample positions; non-finite entries are ignored for the check.
    name : str, optional
        Name used in the error message.
    """
    w = wave[np.isfinite(wave)]
    if w.size > 1:
        d = np.diff(w)
        if np.any(d <= 0):
            k = int(np.argmax(d <= 0))
            hint = " (it is decreasing: reverse the arrays)" if np.all(d < 0) else ""
            msg = (
                f"{name} must be strictly increasing{hint}; first violation at finite "
                f"index {k + 1}: {w[k + 1]!r} after {w[k]!r}"
            )
            raise ValueError(msg)


def interp_linear(x, y, var, xnew, *, edge="nan", edge_limit=None):
    """Linear interpolation of ``y`` (and its variance) at ``xnew``.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Strictly increasing finite sample positions (caller checks).
    y : ndarray, shape (n,)
        Values; NaN propagates to every output that uses that sample.
    var : ndarray, shape (n,), or None
        Variance of ``y`` (independent samples assumed).
    xnew : ndarray, any shape
        Positions to evaluate; NaN gives NaN.
    edge : {"nan", "nearest", "extrapolate_linear"}, optional
        Outside ``[x[0], x[-1]]``: NaN, the end value, or the line through the
        two end samples.
    edge_limit : float or None, optional
        If set, outputs further than this (in ``x`` units) beyond the ends are
        NaN whatever ``edge`` says.

    Returns
    -------
    ynew, varnew : ndarray, same shape as ``xnew``
        ``varnew`` is None when ``var`` is None. For weights ``(1 - t, t)``,
        ``varnew = (1 - t)**2 var[i] + t**2 var[i + 1]``.
    """
    xnew = np.asarray(xnew, dtype=np.float64)
    n = x.size
    ynew = np.full(xnew.shape, np.nan)
    varnew = None if var is None else np.full(xnew.shape, np.nan)
    if n == 0:
        return ynew, varnew
    finite = np.isfinite(xnew)
    if n == 1:
        sel = finite & (xnew == x[0])
        if edge != "nan":
            sel = finite.copy()
            if edge_limit is not None:
                sel &= np.abs(xnew - x[0]) <= edge_limit
        ynew[sel] = y[0]
        if var is not None:
            varnew[sel] = var[0]
        return ynew, varnew

    xf = np.where(finite, xnew, x[0])
    i = np.clip(np.searchsorted(x, xf, side="right") - 1, 0, n - 2)
    below = xf < x[0]
    above = xf > x[-1]
    if edge == "nearest":
        t = np.where(below, 0.0, np.where(above, 1.0, (xf - x[i]) / (x[i + 1] - x[i])))
    else:
        t = (xf - x[i]) / (x[i + 1] - x[i])
    w0 = 1.0 - t
    # Use a neighbour only if its weight is non-zero, so that an exact hit on a
    # sample whose neighbour is NaN still returns the sample.
    use0 = w0 != 0
    use1 = t != 0
    with np.errstate(invalid="ignore"):
        yv = np.where(use0, w0 * y[i], 0.0) + np.where(use1, t * y[i + 1], 0.0)
        if var is not None:
            vv = np.where(use0, w0**2 * var[i], 0.0) + np.where(use1, t**2 * var[i + 1], 0.0)
    keep = finite.copy()
    if edge == "nan":
        keep &= ~below & ~above
    elif edge_limit is not None:
        dist = np.where(below, x[0] - xf, np.where(above, xf - x[-1], 0.0))
        keep &= dist <= edge_limit
    ynew[keep] = yv[keep]
    if var is not None:
        varnew[keep] = vv[keep]
    return ynew, varnew
