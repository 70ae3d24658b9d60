"""Tests for jwst_mbkg_plus.algorithms.smoothing: NaN-aware running median."""

import numpy as np
import pytest
from scipy.signal import medfilt

from jwst_mbkg_plus.algorithms.errors import median_variance_factor
from jwst_mbkg_plus.algorithms.smoothing import effective_kernel, median_filter_nan

pytestmark = pytest.mark.filterwarnings("error")


def _reference(x, k, ends):
    """Brute-force loop reference (tests only)."""
    h = k // 2
    n = x.size
    out = np.empty(n)
    for i in range(n):
        if ends == "shrink":
            win = x[max(0, i - h): i + h + 1]
        else:
            idx = np.arange(i - h, i + h + 1)
            idx = np.abs(idx)
            idx = np.where(idx > n - 1, 2 * (n - 1) - idx, idx)
            win = x[idx]
        win = win[np.isfinite(win)]
        out[i] = np.median(win) if win.size else np.nan
    return out


@pytest.mark.parametrize("ends", ["shrink", "reflect"])
@pytest.mark.parametrize("k", [1, 3, 7, 15])
def test_matches_bruteforce_with_nans(ends, k):
    rng = np.random.default_rng(k)
    x = np.linspace(1.0, 20.0, 200) + rng.normal(size=200)
    x[rng.choice(200, 20, replace=False)] = np.nan
    out, _ = median_filter_nan(x, kernel=k, ends=ends)
    np.testing.assert_allclose(out, _reference(x, k, ends))


def test_no_zero_padding_bias_at_ends_and_interior_equals_medfilt():
    rng = np.random.default_rng(2)
    x = 50.0 + rng.normal(size=(500, 60))
    out, _ = median_filter_nan(x, kernel=9)
    ref = np.stack([medfilt(row, 9) for row in x])
    # medfilt's zero padding makes the first output the minimum of 5 samples
    assert ref[:, 0].mean() < 49.0
    assert abs(out[:, 0].mean() - 50.0) < 0.1 and abs(out[:, -1].mean() - 50.0) < 0.1
    np.testing.assert_allclose(out[:, 4:-4], ref[:, 4:-4])
    flat, _ = median_filter_nan(np.full(30, 3.0), kernel=11, ends="reflect")
    np.testing.assert_array_equal(flat, 3.0)


def test_nan_policy():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, np.nan, np.nan, np.nan, np.nan, 9.0])
    out, _ = median_filter_nan(x, kernel=3)
    assert out[2] == 3.0  # gap filled from finite neighbours
    assert np.isnan(out[6]) and np.isnan(out[7])  # no finite sample in window
    kept, _ = median_filter_nan(x, kernel=3, keep_nan=True)
    assert np.isnan(kept[2]) and kept[1] == 1.5


def test_even_kernel_rule_and_errors():
    x = np.arange(20.0) ** 1.5
    kernel = 4
    out4, _ = median_filter_nan(x, kernel=kernel)
    out5, _ = median_filter_nan(x, kernel=5)
    np.testing.assert_array_equal(out4, out5)
    assert kernel == 4 and effective_kernel(4) == 5 and effective_kernel(5) == 5
    with pytest.raises(ValueError, match="kernel must be odd"):
        median_filter_nan(x, kernel=4, even="raise")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            median_filter_nan(x, kernel=bad)
    with pytest.raises(ValueError, match="ends must be"):
        median_filter_nan(x, kernel=3, ends="zero")
    with pytest.raises(ValueError, match="var shape"):
        median_filter_nan(x, np.ones(3), kernel=3)


def test_variance_monte_carlo_interior_and_ends():
    rng = np.random.default_rng(0)
    k, n, sig = 11, 60, 2.0
    draws = np.stack([median_filter_nan(rng.normal(size=n) * sig, kernel=k)[0]
                      for _ in range(3000)])
    _, v = median_filter_nan(np.zeros(n), np.full(n, sig**2), kernel=k)
    emp = draws.var(axis=0)
    np.testing.assert_allclose(v[30], median_variance_factor(11) * sig**2 / 11)
    np.testing.assert_allclose(v[0], median_variance_factor(6) * sig**2 / 6)
    np.testing.assert_allclose(emp[20:40].mean(), v[30], rtol=0.05)
    np.testing.assert_allclose(emp[0], v[0], rtol=0.1)
    np.testing.assert_allclose(emp[2], v[2], rtol=0.1)


def test_nd_input_and_inputs_unchanged():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 80))
    x[1, 5] = np.nan
    v = rng.uniform(1, 2, size=(3, 80))
    xc, vc = x.copy(), v.copy()
    out, ov = median_filter_nan(x, v, kernel=7)
    for i in range(3):
        o1, v1 = median_filter_nan(x[i], v[i], kernel=7)
        np.testing.assert_array_equal(out[i], o1)
        np.testing.assert_array_equal(ov[i], v1)
    np.testing.assert_array_equal(x, xc)
    np.testing.assert_array_equal(v, vc)
