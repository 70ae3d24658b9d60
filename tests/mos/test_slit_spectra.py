"""Binning slits onto the master's grid: the variance a level fit over wavelength needs."""

import numpy as np

from jwst_mbkg_plus.algorithms.levels import level_ratios
from jwst_mbkg_plus.mos.slit_spectra import bin_slits


def _slit(rng, phase, noise=0.2, ny=20, nx=300):
    """A flat unit sky; pixel wavelengths sit ``phase`` of a grid step off the samples."""
    wave = np.broadcast_to(np.arange(nx) + phase, (ny, nx)).astype(float)
    sb = 1 + noise * rng.standard_normal((ny, nx))
    var = np.full((ny, nx), noise**2)
    return wave, sb, var, np.ones((ny, nx), dtype=bool)


def test_level_errors_hold_for_bins_between_grid_samples():
    grid_wave = np.arange(300, dtype=float)
    z_sum, z_var = [], []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        arrays = [_slit(rng, 0.5)]
        flux, var, sum_var = bin_slits(arrays, [np.zeros((20, 300), bool)], grid_wave,
                                       sum_variance=True)
        ratio, error = level_ratios(flux, sum_var, np.ones(300))
        z_sum.append((ratio[0] - 1) / error[0])
        ratio, error = level_ratios(flux, var, np.ones(300))
        z_var.append((ratio[0] - 1) / error[0])
    # Half-way between bins each value averages two, so var is halved but its
    # neighbours share it: only sum_var gives levels' errors that match their scatter.
    assert 0.9 < np.std(z_sum) < 1.1
    assert np.std(z_var) > 1.25


def test_sum_variance_is_var_on_the_samples():
    rng = np.random.default_rng(1)
    grid_wave = np.arange(300, dtype=float)
    flux, var, sum_var = bin_slits([_slit(rng, 0.0)], [np.zeros((20, 300), bool)], grid_wave,
                                   sum_variance=True)
    both = np.isfinite(var)
    np.testing.assert_allclose(sum_var[both], var[both])
    plain = bin_slits([_slit(np.random.default_rng(1), 0.0)], [np.zeros((20, 300), bool)],
                      grid_wave)
    np.testing.assert_array_equal(plain[0], flux)
