"""Values inside a background spectrum that cannot be sky: fill values and absurd rows.

A column read as numbers may still hold a missing-data sentinel (-9999,
-999, 1e30, ...), a non-finite value, or a row far outside the spectrum's own
range. Such a row, interpolated onto a science slit, puts a "background"
thousands of times the sky into science pixels with DQ 0. These functions
find those rows, so that the reader drops them and names them.

The rule (:func:`absurd_rows`): a row is absurd if its magnitude reaches
``ABSURD_MAGNITUDE`` (no sky in MJy/sr, or in any unit of surface brightness
this package converts, comes near), or if it lies more than
``RANGE_FACTOR`` times the spectrum's robust range beyond that range. The
robust range is the ``ROBUST_PERCENTILES`` percentiles of the finite values,
widened to at least the magnitude of their median (a flat spectrum has a
range of zero), so up to 1% of the rows at either end may be absurd and
still be found.
"""

import numpy as np

__all__ = [
    "ABSURD_MAGNITUDE",
    "FILL_VALUES",
    "RANGE_FACTOR",
    "ROBUST_PERCENTILES",
    "absurd_rows",
    "describe_rows",
    "robust_limits",
]

#: Magnitude from which a value is a fill value whatever the spectrum (MJy/sr or the file's unit).
ABSURD_MAGNITUDE = 1e20
#: Common missing-data sentinels, named as such in messages.
FILL_VALUES = (-9999.0, -999.0, -99999.0, -999999.0, -32768.0, -1e10, 9999.0, 99999.0)
#: How many times its robust range beyond that range a value may lie.
RANGE_FACTOR = 10.0
#: The percentiles bounding the robust range.
ROBUST_PERCENTILES = (1.0, 99.0)


def robust_limits(values, factor=RANGE_FACTOR):
    """
    Return the interval outside which a value of ``values`` is absurd.

    Parameters
    ----------
    values : array_like
        The spectrum's values (non-finite ones are ignored).
    factor : float, optional
        How many robust ranges beyond the robust range a value may lie.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(-inf, inf)`` if no value is finite.
    """
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values) & (np.abs(values) < ABSURD_MAGNITUDE)]
    if finite.size == 0:
        return -np.inf, np.inf
    lo, hi = np.percentile(finite, ROBUST_PERCENTILES)
    width = max(hi - lo, abs(float(np.median(finite))), np.finfo(float).tiny)
    return float(lo - factor * width), float(hi + factor * width)


def absurd_rows(values):
    """
    Find the rows of a spectrum that cannot be its sky.

    Parameters
    ----------
    values : array_like
        Surface brightness (any unit), non-finite values allowed.

    Returns
    -------
    ndarray of bool
        True where a finite value is a fill value or lies far outside the
        spectrum's robust range (see the module's rule). Non-finite values
        are False (the reader counts them on their own).
    """
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    lo, hi = robust_limits(values)
    with np.errstate(invalid="ignore"):
        return finite & ((np.abs(values) >= ABSURD_MAGNITUDE) | (values < lo) | (values > hi))


def describe_rows(rows, values, limit=5):
    """
    Name rows and their values for a message: ``'rows 12 (-9999, a fill value), 40 (1e+30)'``.

    Parameters
    ----------
    rows : sequence of int
        Row numbers (as the user counts them: 1 is the first data row).
    values : sequence of float
        Their values.
    limit : int, optional
        How many to name before ``...``.

    Returns
    -------
    str
        The description.
    """
    parts = []
    for row, value in list(zip(rows, values, strict=True))[:limit]:
        note = ", a fill value" if float(value) in FILL_VALUES else ""
        parts.append(f"{int(row)} ({float(value):g}{note})")
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(parts) + more
