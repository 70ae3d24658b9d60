"""The column-sum variance of an expanded master, against Monte-Carlo draws."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.column_variance import (
    column_sum_background_variance,
    probed_sample_weights,
)
from jwst_mbkg_plus.algorithms.expand import expand_to_2d


def _scene(interpolation):
    rng = np.random.default_rng(3)
    master_wave = np.linspace(1.0, 3.0, 201)
    sample_var = 0.5 + rng.random(master_wave.size)
    sample_var[[40, 41]] = np.nan  # a gap: the expansion falls back to linear there
    ny, nx = 12, 60
    y, x = np.mgrid[:ny, :nx]
    # A tilted trace: one column spans about 1.5 master samples.
    wave = 1.2 + 0.012 * (x + 0.12 * (y - ny / 2)) + 0.0006 * rng.standard_normal((ny, nx))
    wave[0, 5] = np.nan
    scale = 0.5 + 1.5 * rng.random((ny, nx))
    good = rng.random((ny, nx)) > 0.1

    def expand(flux):
        return expand_to_2d(wave, master_wave, flux, edge="nearest",
                            interpolation=interpolation)[0]

    position = np.interp(wave, master_wave, np.arange(master_wave.size))
    return master_wave, sample_var, wave, scale, good, expand, position


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_column_variance_matches_monte_carlo(interpolation):
    master_wave, sample_var, wave, scale, good, expand, position = _scene(interpolation)
    predicted = column_sum_background_variance(expand, sample_var, position, scale, good)
    rng = np.random.default_rng(11)
    draws = 3000
    sums = np.empty((draws, wave.shape[1]))
    sigma = np.sqrt(np.where(np.isfinite(sample_var), sample_var, 0.0))
    for k in range(draws):
        noise = np.where(np.isfinite(sample_var), sigma * rng.standard_normal(sigma.size), np.nan)
        sums[k] = np.where(good, scale * np.nan_to_num(expand(noise)), 0.0).sum(axis=0)
    empirical = sums.var(axis=0)
    # Columns that only interpolate across the gap have no background at all.
    covered = predicted > 0
    assert covered.sum() >= 55
    np.testing.assert_array_equal(empirical[~covered], 0.0)
    ratio = empirical[covered] / predicted[covered]
    # 3000 draws: 2.6% per column; the mean over 60 columns to 0.5%.
    assert abs(ratio.mean() - 1) < 0.015
    assert np.all(np.abs(ratio - 1) < 0.12)
    # Between independent pixels and a fully shared error, and far from both.
    _, pixel_var = expand_to_2d(wave, master_wave, np.zeros_like(master_wave), sample_var,
                                edge="nearest", interpolation=interpolation)
    b = np.where(good, scale**2 * np.nan_to_num(pixel_var), 0.0)
    independent = b.sum(axis=0)
    shared = np.sqrt(b).sum(axis=0) ** 2
    assert np.all(predicted[covered] > 1.5 * independent[covered])
    assert np.median(predicted[covered] / shared[covered]) < 0.9


def test_column_variance_limits():
    master_wave = np.arange(10.0)
    sample_var = np.linspace(1, 2, 10)
    # Every pixel of column x exactly on sample x: the error is fully shared.
    wave = np.tile(np.arange(10.0), (4, 1))
    scale = np.arange(1.0, 5.0)[:, None] * np.ones((4, 10))
    good = np.ones((4, 10), bool)

    def expand(flux):
        return expand_to_2d(wave, master_wave, flux, interpolation="cubic")[0]

    got = column_sum_background_variance(expand, sample_var, wave, scale, good)
    np.testing.assert_allclose(got, 10.0**2 * sample_var, rtol=1e-9)
    # Pixels left out of the sum carry no weight.
    good[:2] = False
    got = column_sum_background_variance(expand, sample_var, wave, scale, good)
    np.testing.assert_allclose(got, 7.0**2 * sample_var, rtol=1e-9)


def test_probe_credits_each_pixel_to_its_own_sample():
    master_wave = np.arange(40.0)
    wave = np.array([[3.25, 17.5, 38.9]])
    defined = np.ones(40, bool)

    def expand(flux):
        return expand_to_2d(wave, master_wave, flux, interpolation="linear")[0]

    index, weight = probed_sample_weights(expand, 40, defined, wave)
    credited = {}
    for i, w in zip(index[:, 0, 0], weight[:, 0, 0], strict=True):
        credited[int(i)] = credited.get(int(i), 0.0) + w
    assert credited[3] == pytest.approx(0.75) and credited[4] == pytest.approx(0.25)
    assert sum(credited.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="period"):
        probed_sample_weights(expand, 40, defined, wave, period=1)
