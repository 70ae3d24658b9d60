"""Comparisons shared by the tests that hold the plus step against jwst's step."""

import numpy as np


def max_plain_relative_difference(stock, plus):
    """Largest ``|plus - stock| / |stock|`` where both are finite (equal values: 0)."""
    stock, plus = np.asarray(stock, dtype=np.float64), np.asarray(plus, dtype=np.float64)
    differ = np.isfinite(stock) & np.isfinite(plus) & (plus != stock)
    if not differ.any():
        return 0.0
    with np.errstate(divide="ignore"):
        return float(np.max(np.abs(plus[differ] - stock[differ]) / np.abs(stock[differ])))
