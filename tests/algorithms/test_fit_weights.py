"""Sky factors weighted by the variance near each wavelength are unbiased on photon counts."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.fit_weights import variance_by_wavelength
from jwst_mbkg_plus.algorithms.sky_factor import SKY_CLIP, fit_sky_factor

pytestmark = pytest.mark.filterwarnings("error")


def _photon_sky(rng, factor=1.03, sky_e=100.0, read_e=6.0, shape=(12, 1500)):
    """Counts of a sky rising to the red, VAR_POISSON from each pixel's own count."""
    wave = np.broadcast_to(np.linspace(1.7, 3.1, shape[1]), shape)
    model = sky_e * (0.6 + 0.4 * (wave - 1.7) / 1.4)
    counts = rng.poisson(factor * model) + rng.normal(0.0, read_e, shape)
    var = np.clip(counts, 0, None) + read_e**2  # as ramp fitting: from the pixel itself
    return wave, counts, var, model


def test_own_count_variances_bias_the_factor_and_binned_ones_do_not():
    rng = np.random.default_rng(11)
    own, binned = [], []
    for _ in range(40):
        wave, counts, var, model = _photon_sky(rng)
        kw = {"model": "constant", "apply": True, "clip": SKY_CLIP}
        own.append(fit_sky_factor(wave, counts, var, model, **kw).level)
        smooth = variance_by_wavelength(wave, var)
        binned.append(fit_sky_factor(wave, counts, smooth, model, **kw).level)
    own, binned = np.array(own) / 1.03 - 1, np.array(binned) / 1.03 - 1
    err = np.std(binned) / np.sqrt(binned.size)
    # Pixel-own weights: low by ~ var / (mean + read^2) ~ 0.6 % here, far beyond the noise.
    assert np.mean(own) < -0.003
    assert abs(np.mean(binned)) < max(4 * err, 3e-4)


def test_keeps_the_variance_trend_and_shape():
    rng = np.random.default_rng(2)
    wave, counts, var, model = _photon_sky(rng)
    smooth = variance_by_wavelength(wave, var)
    assert smooth.shape == var.shape
    expected = model + 36.0  # mean of the own-count variance
    assert np.median(np.abs(smooth / expected - 1)) < 0.05
    # The same at every row of a column: no pixel's own count in it.
    np.testing.assert_allclose(smooth, np.broadcast_to(smooth[0], smooth.shape), rtol=1e-12)


def test_few_pixels_and_invalid_ones():
    wave = np.linspace(1.0, 2.0, 50)
    var = np.full(50, 2.0)
    np.testing.assert_array_equal(variance_by_wavelength(wave, var), var)
    wave = np.linspace(1.0, 2.0, 1000)
    var = np.where(wave < 1.5, 1.0, 4.0)
    valid = wave < 1.5  # only the low half enters the medians
    out = variance_by_wavelength(wave, var, valid)
    assert np.allclose(out, 1.0)
    with pytest.raises(ValueError, match="one shape"):
        variance_by_wavelength(wave, var[:10])
