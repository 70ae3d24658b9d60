"""A per-target multiplicative sky factor: recover an injected one, and leave 1 alone."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.sky_factor import (
    SKY_CLIP,
    SkyFactor,
    dilution_corrected,
    fit_sky_factor,
    unit_factor,
)


def _pixels(rng, factor, *, noise=0.05, n_cols=600, n_rows=20, lo=1.7, hi=3.1):
    """A slitlet's free pixels: sky with lines times a factor, Gaussian noise."""
    wave = np.repeat(np.linspace(lo, hi, n_cols)[None, :], n_rows, axis=0)
    sky = 1.0 + 0.3 * np.exp(-0.5 * ((wave - 2.3) / 0.01) ** 2) + 0.2 * (wave - lo)
    true = sky * factor(wave)
    sigma = noise * true
    data = true + sigma * rng.standard_normal(wave.shape)
    return wave, data, sigma**2, sky


def test_recovers_level_and_tilt():
    rng = np.random.default_rng(1)
    truth = lambda w: 1.04 + 0.02 * (w - 2.4) / 0.7  # noqa: E731
    wave, data, var, sky = _pixels(rng, truth)
    fit = fit_sky_factor(wave, data, var, sky)
    assert fit.applied and fit.significant
    assert fit.model in ("linear", "spline")
    grid = np.linspace(1.7, 3.1, 50)
    f, e = fit.evaluate(grid)
    assert np.max(np.abs(f - truth(grid))) < 4 * np.max(e)
    assert np.max(np.abs(f - truth(grid))) < 0.003
    # Pulls of the recovered factor against the truth are of order one.
    assert np.sqrt(np.mean(((f - truth(grid)) / e) ** 2)) < 3


def test_constant_factor_chooses_constant():
    rng = np.random.default_rng(2)
    wave, data, var, sky = _pixels(rng, lambda w: np.full_like(w, 0.95))
    fit = fit_sky_factor(wave, data, var, sky)
    assert fit.model == "constant"
    assert fit.level == pytest.approx(0.95, abs=4 * fit.level_error)
    assert fit.applied


def test_curvature_needs_a_spline():
    rng = np.random.default_rng(3)
    truth = lambda w: 1.0 + 0.05 * ((w - 2.4) / 0.7) ** 2 - 0.02  # noqa: E731
    wave, data, var, sky = _pixels(rng, truth, noise=0.02)
    fit = fit_sky_factor(wave, data, var, sky)
    assert fit.model == "spline"
    grid = np.linspace(1.7, 3.1, 50)
    assert np.max(np.abs(fit.evaluate(grid)[0] - truth(grid))) < 0.004


def test_unit_factor_is_not_applied_at_the_false_alarm_rate():
    """On perfectly calibrated pixels the factor is consistent with 1 (and not applied)."""
    applied = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        wave, data, var, sky = _pixels(rng, lambda w: np.ones_like(w), n_cols=300)
        fit = fit_sky_factor(wave, data, var, sky)
        applied += fit.applied
        f, _ = fit.evaluate(np.array([2.0]))
        if not fit.applied:
            assert f[0] == 1.0
    # 3-sigma test: 0.27 % expected; a few of 40 would already be suspicious.
    assert applied <= 1


def test_apply_true_and_false():
    rng = np.random.default_rng(4)
    wave, data, var, sky = _pixels(rng, lambda w: np.full_like(w, 1.001), n_cols=200)
    forced = fit_sky_factor(wave, data, var, sky, apply=True)
    assert forced.applied
    measured = fit_sky_factor(wave, data, var, sky, apply=False)
    assert not measured.applied
    f, e = measured.evaluate([2.0])
    assert f[0] == 1.0 and e[0] == 0.0
    f, e = measured.evaluate([2.0], measured=True)
    assert f[0] == pytest.approx(1.001, abs=5 * e[0])


def test_positive_outliers_and_source_wings_are_clipped():
    """Cosmic rays / a bright unmasked row (positive) do not raise the factor."""
    rng = np.random.default_rng(5)
    wave, data, var, sky = _pixels(rng, lambda w: np.full_like(w, 1.02))
    data = data.copy()
    data[3, ::2] += 20 * np.sqrt(var[3, ::2])  # a row of strong positive outliers
    hits = rng.choice(data.size, 200, replace=False)
    data.ravel()[hits] += 50 * np.sqrt(var.ravel()[hits])
    fit = fit_sky_factor(wave, data, var, sky)
    assert fit.level == pytest.approx(1.02, abs=0.002)
    assert fit.n_rejected >= 200


def test_too_few_pixels_and_valid_mask():
    rng = np.random.default_rng(6)
    wave, data, var, sky = _pixels(rng, lambda w: np.full_like(w, 1.1), n_cols=100, n_rows=2)
    valid = np.zeros(wave.shape, dtype=bool)
    valid[0, :10] = True
    fit = fit_sky_factor(wave, data, var, sky, valid=valid)
    assert not fit.fitted and not fit.applied
    assert "fewer than" in fit.status
    f, e = fit.evaluate(np.linspace(1, 4, 5))
    assert np.all(f == 1) and np.all(e == 0)


def test_beyond_range_is_held_and_nan_propagates():
    rng = np.random.default_rng(7)
    truth = lambda w: 1.0 + 0.05 * (w - 2.4) / 0.7  # noqa: E731
    wave, data, var, sky = _pixels(rng, truth)
    fit = fit_sky_factor(wave, data, var, sky)
    f, _ = fit.evaluate(np.array([0.5, 1.7, 3.1, 9.0, np.nan]))
    assert f[0] == pytest.approx(f[1]) and f[3] == pytest.approx(f[2])
    assert np.isnan(f[4])


def test_record_round_trip():
    rng = np.random.default_rng(8)
    wave, data, var, sky = _pixels(rng, lambda w: 1.0 + 0.03 * (w - 2.4))
    fit = fit_sky_factor(wave, data, var, sky)
    back = SkyFactor.from_record(fit.to_record())
    grid = np.linspace(1.5, 3.3, 17)
    np.testing.assert_allclose(back.evaluate(grid)[0], fit.evaluate(grid)[0])
    np.testing.assert_allclose(back.evaluate(grid)[1], fit.evaluate(grid)[1])
    assert unit_factor("why").to_record()["status"] == "why"


def test_bad_arguments():
    with pytest.raises(ValueError, match="model"):
        fit_sky_factor([1.0], [1.0], [1.0], [1.0], model="quadratic")
    with pytest.raises(ValueError, match="same size"):
        fit_sky_factor([1.0, 2.0], [1.0], [1.0], [1.0])


def test_noisy_model_dilution_is_corrected():
    # The model is noisy itself (a master from few spectra, 15 % per point): least
    # squares on it returns f / (1 + r), r = 0.0225; scaling the data by 1 + r removes it.
    rng = np.random.default_rng(21)
    wave, data, var, sky = _pixels(rng, lambda w: np.full_like(w, 1.03), noise=0.02)
    r = 0.15**2
    model = sky * (1 + 0.15 * rng.standard_normal(sky.shape))
    model_var = r * model**2
    naive = fit_sky_factor(wave, data, var, model, model="constant", clip=SKY_CLIP)
    d, v = dilution_corrected(data, var, model, model_var)
    fixed = fit_sky_factor(wave, d, v, model, model="constant", clip=SKY_CLIP)
    assert naive.level < 1.03 / (1 + r) + 0.004  # diluted by ~2 %
    assert abs(fixed.level - 1.03) < max(4 * fixed.level_error, 0.003)
    assert dilution_corrected(data, var, model, None)[0] is data


def test_symmetric_clip_leaves_a_gaussian_sky_unbiased():
    # 20 % noise per pixel: the [-3, +5] clip raises the level by 0.0044 sigma per
    # pixel (+0.09 %); the symmetric clip does not.
    biased, unbiased = [], []
    for seed in range(6):
        rng = np.random.default_rng(40 + seed)
        wave, data, var, sky = _pixels(rng, lambda w: np.ones_like(w), noise=0.2,
                                       n_cols=1000, n_rows=40)
        biased.append(fit_sky_factor(wave, data, var, sky, model="constant").level)
        unbiased.append(fit_sky_factor(wave, data, var, sky, model="constant",
                                       clip=SKY_CLIP).level)
    # Same pixels: the difference is the clip's bias, 0.0044 x 20 % = 0.09 %.
    assert 0.0006 < np.mean(biased) - np.mean(unbiased) < 0.0012
    # 6 x 40000 pixels at 20 %: the mean level is known to 0.04 % (3 sigma).
    assert abs(np.mean(unbiased) - 1) < 0.0012


def test_min_params_keeps_at_least_a_line():
    """A tilt below the evidence for a line: 'auto' drops it, min_params=2 keeps it."""
    truth = lambda w: 1.0 + 0.0015 * (w - 2.4) / 0.7  # noqa: E731
    grid = np.linspace(1.7, 3.1, 50)
    for floor in (1, 2):
        wave, data, var, sky = _pixels(np.random.default_rng(7), truth, noise=0.2)
        fit = fit_sky_factor(wave, data, var, sky, apply=True, min_params=floor)
        assert fit.model == ("constant" if floor == 1 else "linear")
        f, e = fit.evaluate(grid)
        assert np.max(np.abs(f - truth(grid)) / e) < 4
    # Too few pixels for a line: the richest candidate they support.
    wave, data, var, sky = _pixels(np.random.default_rng(8), truth, n_cols=20, n_rows=2)
    fit = fit_sky_factor(wave, data, var, sky, min_params=2, min_pixels=20)
    assert fit.model == "constant" and fit.n_pixels == 40
