"""Tests for jwst_mbkg_plus.algorithms.grid: common grid and resampling."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.grid import (
    common_wavelength_grid,
    grid_edges,
    native_step_ratio,
    resample_spectra,
    resample_spectrum,
)

pytestmark = pytest.mark.filterwarnings("error")


def test_union_grid_spacing_and_range():
    waves = [np.linspace(1.0, 3.0, 201), np.linspace(2.0, 4.0, 201), np.linspace(2.5, 5.0, 251)]
    grid = common_wavelength_grid(waves)
    assert grid[0] == 1.0
    assert 5.0 - 0.01 < grid[-1] <= 5.0
    np.testing.assert_allclose(np.diff(grid), 0.01, rtol=1e-9)


def test_min_spectra_coverage():
    waves = [np.linspace(1.0, 3.0, 201), np.linspace(2.0, 4.0, 201), np.linspace(2.5, 5.0, 251)]
    g2 = common_wavelength_grid(waves, min_spectra=2)
    assert g2[0] == 2.0 and 4.0 - 0.01 < g2[-1] <= 4.0
    g3 = common_wavelength_grid(waves, min_spectra=3, spacing=0.05, oversample=2)
    assert g3[0] == 2.5 and 3.0 - 0.025 < g3[-1] <= 3.0
    np.testing.assert_allclose(np.diff(g3), 0.025)
    with pytest.raises(ValueError, match="min_spectra must be between"):
        common_wavelength_grid(waves, min_spectra=4)
    with pytest.raises(ValueError, match="no wavelength is covered"):
        common_wavelength_grid([[1.0, 2.0], [3.0, 4.0]], min_spectra=2)


def test_grid_ignores_nan_and_order():
    w = np.linspace(1.0, 2.0, 101)
    w_desc = w[::-1].copy()
    w_nan = w.copy()
    w_nan[[0, 50]] = np.nan
    grid = common_wavelength_grid([w_desc, w_nan])
    assert grid[0] == 1.0
    np.testing.assert_allclose(np.diff(grid), 0.01)
    with pytest.raises(ValueError, match="two distinct finite"):
        common_wavelength_grid([[np.nan, 1.0]])


def test_native_sampling_follows_local_step():
    # prism-like: step grows 10x across the band
    u = np.linspace(0.0, 1.0, 400)
    w = 0.6 + 4.7 * (u + 2.0 * u**2) / 3.0
    grid = common_wavelength_grid([w, w + 0.001], sampling="native")
    local_native = np.interp(grid[:-1], 0.5 * (w[1:] + w[:-1]), np.diff(w))
    np.testing.assert_allclose(np.diff(grid), local_native, rtol=0.03)
    assert np.all(np.diff(grid) > 0)


def test_resample_linear_exact_and_variance_formula():
    wave = np.linspace(1.0, 2.0, 11)
    flux = 3.0 + 2.0 * wave
    var = np.linspace(1.0, 2.0, 11)
    grid = np.array([1.0, 1.025, 1.05, 1.5, 2.0])
    f, v = resample_spectrum(wave, flux, var, grid)
    np.testing.assert_allclose(f, 3.0 + 2.0 * grid)
    t = np.array([0.0, 0.25, 0.5, 0.0, 0.0])
    i = np.array([0, 0, 0, 5, 10])
    expect = (1 - t) ** 2 * var[i] + t**2 * var[np.minimum(i + 1, 10)] * (t > 0)
    np.testing.assert_allclose(v, expect)


def test_resample_variance_monte_carlo():
    rng = np.random.default_rng(1)
    wave = np.linspace(1.0, 2.0, 21)
    sig = np.linspace(0.5, 1.5, 21)
    grid = np.linspace(1.0, 2.0, 57)
    draws = np.stack([
        resample_spectrum(wave, rng.normal(size=21) * sig, None, grid)[0] for _ in range(4000)
    ])
    _, v = resample_spectrum(wave, np.zeros(21), sig**2, grid)
    np.testing.assert_allclose(draws.var(axis=0), v, rtol=0.1)


def test_resample_nan_policy():
    wave = np.array([1.0, 2.0, 3.0, 4.0])
    flux = np.array([1.0, np.nan, 3.0, 4.0])
    grid = np.array([0.5, 1.0, 1.5, 2.5, 3.0, 3.5, 4.0, 4.5, np.nan])
    f, v = resample_spectrum(wave, flux, None, grid)
    assert v is None
    expect = [np.nan, 1.0, np.nan, np.nan, 3.0, 3.5, 4.0, np.nan, np.nan]
    np.testing.assert_array_equal(f, expect)


def test_resample_rejects_unsorted_and_bad_shapes():
    with pytest.raises(ValueError, match="strictly increasing.*reverse"):
        resample_spectrum([3.0, 2.0, 1.0], [1.0, 2.0, 3.0], None, [2.0])
    with pytest.raises(ValueError, match="strictly increasing; first violation"):
        resample_spectrum([1.0, 3.0, 2.0], [1.0, 2.0, 3.0], None, [2.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        resample_spectrum([1.0, 1.0, 2.0], [1.0, 2.0, 3.0], None, [2.0])
    with pytest.raises(ValueError, match="equal length"):
        resample_spectrum([1.0, 2.0], [1.0], None, [2.0])
    with pytest.raises(ValueError, match="var shape"):
        resample_spectrum([1.0, 2.0], [1.0, 2.0], [1.0], [2.0])


def test_resample_does_not_modify_inputs_and_stacks():
    rng = np.random.default_rng(2)
    waves = [np.linspace(1, 2, 50), np.linspace(1.5, 3, 80)]
    fluxes = [rng.normal(size=50), rng.normal(size=80)]
    variances = [np.ones(50), np.ones(80)]
    copies = [a.copy() for a in waves + fluxes + variances]
    grid = common_wavelength_grid(waves)
    f, v = resample_spectra(waves, fluxes, variances, grid)
    assert f.shape == v.shape == (2, grid.size)
    assert np.isnan(f[0, grid > 2.0]).all() and np.isnan(f[1, grid < 1.5]).all()
    for a, c in zip(waves + fluxes + variances, copies, strict=True):
        np.testing.assert_array_equal(a, c)


def test_grid_edges():
    g = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(grid_edges(g), [0.5, 1.5, 3.0, 5.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        grid_edges([2.0, 1.0])


def test_native_step_ratio_tells_prism_from_grating():
    lam = np.linspace(0.6, 5.3, 400)
    prism_like = np.cumsum(0.0044 + 0.016 * np.exp(-0.5 * ((lam - 1.54) / 0.9) ** 2))
    grating_like = 1.66 + 0.0011 * np.arange(1380) * (1 + 0.1 * np.linspace(0, 1, 1380))
    assert native_step_ratio([prism_like, prism_like + 0.001]) > 3
    assert native_step_ratio([grating_like]) < 1.3
    assert np.isnan(native_step_ratio([np.array([1.0])]))
