"""Tests for jwst_mbkg_plus.algorithms.chromatic: a spatial factor that changes with wavelength."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms import chromatic, levels, spatial

pytestmark = pytest.mark.filterwarnings("error")

WAVE = np.linspace(1.7, 3.1, 1200)
MASTER = 1.0 + 0.5 * np.exp(-0.5 * ((WAVE - 2.2) / 0.004) ** 2)


def _layout(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    y = rng.uniform(-1, 1, n)
    q = np.where(np.arange(n) % 2, 3, 4)
    return x, y, q


def _chromatic_truth(x, y, q):
    # msaexp-like: quadrant 3 from 0.92 to 0.98 across the band, quadrant 4
    # from 1.01 to 1.00, and a y gradient from +2 % to -1 %.
    u = (WAVE - WAVE[0]) / np.ptp(WAVE)
    level = np.where(q[:, None] == 3, 0.92 + 0.06 * u, 1.01 - 0.01 * u)
    return level + (0.02 - 0.03 * u) * y[:, None]


def _fit(truth, x, y, q, seed, noise=0.05):
    rng = np.random.default_rng(seed + 100)
    flux = truth * MASTER * (1 + noise * rng.standard_normal(truth.shape))
    var = np.broadcast_to((noise * MASTER) ** 2 * truth.mean(), truth.shape).copy()
    ratio, err = levels.level_ratios(flux, var, MASTER)
    base = spatial.fit_spatial_factor(x, y, q, ratio, err, model="auto")
    bands = chromatic.band_levels(WAVE, flux, var, MASTER)
    fit = chromatic.fit_chromatic_factor(base, x, y, q, *bands,
                                         wave_range=(WAVE[0], WAVE[-1]))
    return base, fit


def test_chromatic_quadrant_map_recovered():
    x, y, q = _layout(9, 1)
    truth = _chromatic_truth(x, y, q)
    base, fit = _fit(truth, x, y, q, seed=1)
    assert base.model == "plane_quadrant"
    assert fit is not None and fit.order >= 1
    factor, error = fit.predict(x, y, q, WAVE)
    expected = truth / truth.mean(axis=0)
    # The grey factor misses the 6 % change of quadrant 3 across the band.
    grey, _ = base.predict(x, y, q)
    assert np.max(np.abs(grey[:, None] - expected)) > 0.02
    assert np.max(np.abs(factor - expected)) < 0.005
    assert np.all(error > 0) and np.median(error) < 0.003


def test_grey_map_gives_no_chromatic_fit_in_most_seeds():
    x, y, q = _layout(9, 2)
    grey_truth = np.where(q == 3, 0.97, 1.03)[:, None] + 0.02 * y[:, None] + 0 * WAVE
    chosen = [_fit(grey_truth, x, y, q, seed)[1] for seed in range(20)]
    assert sum(fit is not None for fit in chosen) <= 3


def test_uniform_sky_has_no_wavelength_dependence():
    # A constant model has nothing to vary; whatever auto picks on a uniform
    # sky, no chromatic term is found.
    for seed in range(3, 8):
        x, y, q = _layout(9, seed)
        base, fit = _fit(np.ones((9, WAVE.size)), x, y, q, seed=seed)
        assert fit is None, (seed, base.model)
    assert chromatic.fit_chromatic_factor(None, x, y, q, WAVE[:6], np.ones((9, 6)),
                                          np.ones((9, 6))) is None


def test_refit_with_fixed_order_and_record():
    x, y, q = _layout(9, 4)
    truth = _chromatic_truth(x, y, q)
    base, fit = _fit(truth, x, y, q, seed=4)
    rng = np.random.default_rng(5)
    flux = truth * MASTER * (1 + 0.05 * rng.standard_normal(truth.shape))
    var = np.full(truth.shape, 0.05**2)
    bands = chromatic.band_levels(WAVE, flux, var, MASTER)
    again = chromatic.fit_chromatic_factor(base, x, y, q, *bands, order=fit.order)
    assert again.order == fit.order
    record = fit.to_record()
    assert record["order"] == fit.order
    assert set(record["coefficients"]) == set(base.columns)
