"""Row profiles of background slitlets find undeclared sources, not noise."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.profiles import find_profile_outliers, row_profile


def _slit(rng, noise, *, source=0.0, row=12.0, level=1.0, shape=(25, 800)):
    ny, nx = shape
    model = np.full(shape, 2.0) * (1 + 0.5 * np.linspace(0, 1, nx))[None, :]
    truth = model * level
    rows = np.arange(ny)[:, None]
    truth = truth + source * model * np.exp(-0.5 * ((rows - row) / 1.5) ** 2)
    var = (noise * model) ** 2
    data = truth + rng.normal(0, 1, shape) * np.sqrt(var)
    return data, var, model


@pytest.mark.parametrize("noise", [0.02, 0.2])
def test_compact_source_found(noise):
    rng = np.random.default_rng(4)
    data, var, model = _slit(rng, noise, source=0.3, row=7.0)
    result = row_profile(data, var, model)
    flagged = find_profile_outliers(result)
    assert flagged[7]
    assert np.flatnonzero(flagged).min() >= 3 and np.flatnonzero(flagged).max() <= 11


@pytest.mark.parametrize("noise", [0.02, 0.2])
def test_clean_slits_and_level_offsets_not_flagged(noise):
    rng = np.random.default_rng(5)
    false = 0
    for _ in range(200):
        # A 4% level offset (a spatial gradient of the background) is not a source.
        data, var, model = _slit(rng, noise, level=1.04)
        false += find_profile_outliers(row_profile(data, var, model)).sum()
    assert false == 0


def test_noise_estimate_is_calibrated():
    rng = np.random.default_rng(6)
    devs = []
    for _ in range(100):
        data, var, model = _slit(rng, 0.2)
        result = row_profile(data, var, model)
        devs.append((result.deviation - np.median(result.deviation)) / result.sigma)
    assert np.std(np.concatenate(devs)) == pytest.approx(1.0, abs=0.1)


def test_bad_shapes_and_short_rows():
    with pytest.raises(ValueError, match="2-D of one shape"):
        row_profile(np.ones((3, 4)), np.ones((3, 5)), np.ones((3, 4)))
    result = row_profile(np.ones((3, 10)), np.ones((3, 10)), np.ones((3, 10)))
    assert np.all(np.isnan(result.deviation))
    assert not find_profile_outliers(result).any()
