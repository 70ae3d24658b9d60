"""Tests for jwst_mbkg_plus.algorithms.errors, incl. the correlated background error."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.errors import (
    column_sum_variance,
    inflated_background_variance,
    interpolation_variance,
    mean_variance,
    median_variance,
    median_variance_factor,
    subtraction_variance,
    weighted_sum_variance,
)

pytestmark = pytest.mark.filterwarnings("error")


@pytest.mark.parametrize("n", [3, 4, 9, 30, 31])
def test_median_variance_factor_monte_carlo(n):
    rng = np.random.default_rng(n)
    med = np.median(rng.normal(size=(40000, n)), axis=1)
    assert n * med.var() == pytest.approx(median_variance_factor(n), rel=0.03)
    assert median_variance_factor(1) == 1.0 and np.isnan(median_variance_factor(0))


def test_median_variance_unequal_sigmas_monte_carlo():
    rng = np.random.default_rng(5)
    sig = np.array([0.5, 0.7, 1.0, 1.2, 1.5, 0.6, 0.9, 1.4, 1.1])
    med = np.median(rng.normal(size=(40000, 9)) * sig, axis=1)
    assert med.var() == pytest.approx(median_variance(sig**2), rel=0.05)
    assert np.isnan(median_variance(np.full(3, np.nan)))


def test_mean_interp_subtraction():
    v = np.array([[1.0, 2.0], [3.0, np.nan]])
    np.testing.assert_allclose(mean_variance(v), [1.0, 2.0])
    w = np.array([[1.0], [3.0]])
    np.testing.assert_allclose(mean_variance(v, w, axis=0), [(1 + 27) / 16, 2.0])
    np.testing.assert_allclose(interpolation_variance(1.0, 4.0, 0.5), 1.25)
    np.testing.assert_allclose(subtraction_variance(v, 1.0), v + 1.0)
    assert np.isnan(mean_variance(np.array([np.nan])))


def test_correlated_background_pulls():
    """Per-pixel and column-sum pulls of background-subtracted sky pixels.

    N = 6 pixels per column, pixel noise 1, master error 0.5 (var_B = var_pix / 4),
    common to the whole column. 20000 columns.
    """
    rng = np.random.default_rng(0)
    n_col, n_pix, sp, sb = 20000, 6, 1.0, 0.5
    sky = 10.0
    data = sky + rng.normal(size=(n_pix, n_col)) * sp
    master = sky + rng.normal(size=n_col) * sb  # one realisation per column
    resid = data - master[None, :]
    var_pix = np.full(resid.shape, sp**2)
    var_b = np.full(resid.shape, sb**2)

    # strategy A: per-pixel var + var_B; column sums via column_sum_variance
    var_a = var_pix + var_b
    assert np.std(resid / np.sqrt(var_a)) == pytest.approx(1.0, abs=0.02)
    csum = resid.sum(axis=0)
    naive = var_a.sum(axis=0)
    predicted_naive = np.sqrt((n_pix * sp**2 + n_pix**2 * sb**2) / (n_pix * (sp**2 + sb**2)))
    assert np.std(csum / np.sqrt(naive)) == pytest.approx(predicted_naive, rel=0.03)
    assert predicted_naive > 1.3
    correct = column_sum_variance(var_a, var_b, axis=0)
    np.testing.assert_allclose(correct, n_pix * sp**2 + n_pix**2 * sb**2)
    assert np.std(csum / np.sqrt(correct)) == pytest.approx(1.0, abs=0.02)
    raw = column_sum_variance(var_pix, var_b, axis=0, includes_background=False)
    np.testing.assert_allclose(raw, correct)

    # strategy B: inflate var_B by the extraction width
    var_bb = var_pix + inflated_background_variance(var_b, n_pix)
    assert np.std(csum / np.sqrt(var_bb.sum(axis=0))) == pytest.approx(1.0, abs=0.02)
    per_pixel_b = np.sqrt((sp**2 + sb**2) / (sp**2 + n_pix * sb**2))
    assert np.std(resid / np.sqrt(var_bb)) == pytest.approx(per_pixel_b, rel=0.03)
    assert per_pixel_b < 0.85  # the price: per-pixel errors overestimated

    # weighted (e.g. optimal) extraction
    wts = np.linspace(0.5, 1.5, n_pix)[:, None]
    wsum = (wts * resid).sum(axis=0)
    wvar = weighted_sum_variance(var_a, var_b, wts, axis=0)
    assert np.std(wsum / np.sqrt(wvar)) == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="n_extract"):
        inflated_background_variance(var_b, 0.5)


def test_balanced_inflation_splits_the_error_evenly():
    """Per-pixel and N-pixel column pulls are off by the same factor, in opposite ways."""
    from jwst_mbkg_plus.algorithms.errors import balanced_background_inflation

    rng = np.random.default_rng(3)
    n, v, b = 5, 1.0, 0.2
    k = float(balanced_background_inflation(b, v, n))
    pixels = rng.normal(0, np.sqrt(v), (200_000, n)) + rng.normal(0, np.sqrt(b), (200_000, 1))
    pixel_pull = np.std(pixels[:, 0]) / np.sqrt(v + k * b)
    column_pull = np.std(pixels.sum(axis=1)) / np.sqrt(n * v + n * k * b)
    assert pixel_pull < 1 < column_pull
    assert pixel_pull * column_pull == pytest.approx(1.0, abs=0.01)
    assert float(balanced_background_inflation(0.0, v, n)) == 3.0  # (N + 1) / 2
    with pytest.raises(ValueError, match="n_extract"):
        balanced_background_inflation(b, v, 0)


def test_pooled_scatter_scale_monte_carlo():
    # Three spectra: with honest variances the scale stays near 1 (it is never
    # below 1, so slightly above on average); with variances 2x too small it
    # restores master pulls of 1, which the per-wavelength scatter of three
    # values could not do reliably.
    from jwst_mbkg_plus.algorithms.errors import pooled_scatter_scale

    rng = np.random.default_rng(11)
    n_spec, n_wave = 3, 4000
    truth = 1.0 + 0.5 * np.sin(np.linspace(0, 20, n_wave))
    sigma = 0.1 * truth
    flux = truth + sigma * rng.standard_normal((n_spec, n_wave))
    used = np.ones(flux.shape, dtype=bool)
    centre = flux.mean(axis=0)
    honest = pooled_scatter_scale(flux, np.broadcast_to(sigma**2, flux.shape), centre, used)
    assert 1.0 <= np.median(honest) < 1.1
    small = pooled_scatter_scale(flux, np.broadcast_to(sigma**2 / 2, flux.shape), centre, used)
    assert abs(np.median(small) - 2.0) < 0.15
    master_var = small * (sigma**2 / 2) / n_spec
    pulls = (centre - truth) / np.sqrt(master_var)
    assert abs(np.std(pulls) - 1.0) < 0.05
