"""A point source modelled in a sky factor (wing_model): the MOS and spec3 steps' joint fit."""

import numpy as np

from jwst_mbkg_plus.algorithms.free_rows import source_free_mask
from jwst_mbkg_plus.algorithms.pooled_profile import pooled_shape, wings_with_error
from jwst_mbkg_plus.algorithms.sky_factor import SKY_CLIP, _design, _knots, fit_sky_factor
from jwst_mbkg_plus.algorithms.source_wings import PROFILE_BIN, source_wings
from jwst_mbkg_plus.algorithms.wing_model import (
    ProfileNuisance,
    joint_sky_factor,
    profile_sky_factor,
)
from jwst_mbkg_plus.algorithms.wing_profile import (
    plausible_shapes,
    profile_image,
    profile_shape,
    profile_width_floor,
    winged_or_gaussian,
)

N_COLS = 300
NOISE = 0.2


def test_projection_is_the_joint_least_squares_fit():
    """Eliminating a free amplitude per column gives the joint fit's factor and covariance."""
    rng = np.random.default_rng(3)
    ny, nx = 12, 40
    wave = np.linspace(1.0, 2.0, nx)[None, :] + 0.002 * np.arange(ny)[:, None]
    sky = 2.0 + np.sin(3 * wave)
    profile = np.exp(-0.5 * ((np.arange(ny)[:, None] - 5.3) / 1.5) ** 2) * np.ones((1, nx))
    var = rng.uniform(0.5, 1.5, (ny, nx)) * 0.01
    data = 1.02 * sky + rng.uniform(1, 3, nx)[None, :] * profile + rng.normal(
        0, np.sqrt(var))
    columns = np.broadcast_to(np.arange(nx)[None, :], (ny, nx))
    fit = fit_sky_factor(wave, data, var, sky, model="linear", apply=True, clip=(-50, 50),
                         nuisance=ProfileNuisance(profile, columns))
    knots, degree = _knots(wave.ravel(), "linear", 2)
    basis = _design(wave.ravel(), knots, degree) * sky.ravel()[:, None]
    amplitudes = (profile.ravel()[:, None] * (columns.ravel()[:, None] == np.arange(nx)))
    full = np.hstack([basis, amplitudes]) / np.sqrt(var.ravel())[:, None]
    params, *_ = np.linalg.lstsq(full, data.ravel() / np.sqrt(var.ravel()), rcond=None)
    cov = np.linalg.inv(full.T @ full)[:2, :2]
    chi2 = np.sum((full @ params - data.ravel() / np.sqrt(var.ravel())) ** 2)
    np.testing.assert_allclose(fit.params, params[:2], rtol=1e-10)
    np.testing.assert_allclose(fit.cov, cov * max(chi2 / (data.size - 2 - nx), 1.0),
                               rtol=1e-8)
    assert fit.dof == data.size - 2 - nx
    assert ProfileNuisance(profile, columns).n_free() == nx


def _exposure(rng, n_slits, beta):
    """Slitlets of 3 shutters (rows -2.2..2.2 about the source), each with its own sky factor."""
    offset = np.linspace(-2.2, 2.2, 20)[:, None] * np.ones((1, N_COLS))
    # FWHM 0.67 slit-frame units, as the synthetic scenes' point sources.
    alpha = 0.335 / np.sqrt(2 ** (1 / beta) - 1)
    wave = np.linspace(1.0, 5.0, N_COLS)[None, :] * np.ones((offset.shape[0], 1))
    slits = []
    for _ in range(n_slits):
        level = 1 + 0.03 * rng.standard_normal()
        # A spectrum with a line: the amplitude per column is free in the fit.
        spectrum = 3.0 * (np.linspace(0.6, 1.4, N_COLS) + 2.0 * np.exp(
            -0.5 * ((np.arange(N_COLS) - 140) / 2.0) ** 2))[None, :]
        clean = level + spectrum * (1 + (offset / alpha) ** 2) ** -beta
        data = clean * (1 + NOISE * rng.standard_normal(clean.shape))
        slits.append((wave, data, (NOISE * clean) ** 2, offset, level))
    return slits


def _fits(slits):
    """Masked (the common wings subtracted, rows beyond one shutter) and modelled levels."""
    model = np.ones(slits[0][1].shape)
    wings = {k: source_wings(s[1], model, s[3], return_profile=True)
             for k, s in enumerate(slits)}
    shape = pooled_shape({k: w[-1] for k, w in wings.items()})
    masked, modelled = [], []
    for k, (wave, data, var, offset, level) in enumerate(slits):
        assert shape.consistent[k]
        other = wings[k][1]
        common, _ = wings_with_error(offset, wings[k][-1], shape, k)
        free, _ = source_free_mask(data - common, model, np.abs(offset), ~other, guard=1.0)
        old = fit_sky_factor(wave, data - common, var, model, free, model="constant",
                             apply=True, clip=SKY_CLIP)
        masked.append((old.level - level, old.level_error, old.n_pixels))
        _, _, centre = shape.slit_params[k]
        theta, cov = winged_or_gaussian(centre, shape.width, shape.q,
                                        np.asarray(shape.slit_cov[k])[1:, 1:])
        new = profile_sky_factor(wave, data, var, model, ~other, offset, *theta, cov,
                                 width_floor=profile_width_floor(shape.width, PROFILE_BIN))
        modelled.append((new.fit.level - level, new.total, new.n_pixels, new.leak,
                         new.fit.level_error))
    return np.array(masked), np.array(modelled)


def _many(beta, exposures=2):
    # 18 point sources per exposure, as the calibration-scatter scenes: the common
    # shape's error (the leak) falls with their number.
    rng = np.random.default_rng(11)
    return [_fits(_exposure(rng, 18, beta)) for _ in range(exposures)]


def _check_levels(fits):
    """Each exposure's levels: scatter as stated, mean within the leak's bound.

    The shape is common to an exposure's slitlets, so its error moves all their
    levels alike: their mean may be off by the leak (2 standard errors,
    ``WING_COVERAGE``), not by their noise over sqrt(n) alone.
    """
    for _, modelled in fits:
        noise = modelled[:, 0] - np.mean(modelled[:, 0])
        assert 0.6 < np.std(noise / modelled[:, 4]) < 1.3
        bound = 2.0 * np.mean(modelled[:, 3]) + 3.0 * np.mean(modelled[:, 4]) / np.sqrt(
            modelled.shape[0])
        assert abs(np.mean(modelled[:, 0])) < bound


def test_modelled_source_gives_the_sky_factor_more_pixels_and_stays_unbiased():
    """Gaussian sources (the scenes' point sources) at 20 % noise, peak 3 times the sky.

    The masked fit has the rows beyond one shutter (60 % of the pixels); with the
    source modelled (free amplitude per column, the exposure's common shape) the
    factor gets the rows from half a shutter (the cut of least total error): more
    pixels (3600 -> 4800), a smaller error (noise 0.34 % -> 0.32 %, 0.33 % with twice
    the leak), and the levels stay within their stated error and the leak's bound.
    """
    fits = _many(1e6)
    masked = np.concatenate([f[0] for f in fits])
    modelled = np.concatenate([f[1] for f in fits])
    assert np.mean(modelled[:, 2]) > 1.25 * np.mean(masked[:, 2])
    assert np.mean(modelled[:, 1]) < np.mean(masked[:, 1])
    assert np.mean(modelled[:, 4]) < 0.96 * np.mean(masked[:, 1])
    _check_levels(fits)


def test_broad_moffat_wings_keep_the_masked_fit():
    """Moffat sources of index 2.5: wings of ~1 % of the peak over every sky row.

    Per column a free amplitude of so broad a profile is nearly a constant across
    the sky rows, i.e. the sky itself; and the index is poorly known. The modelled
    fit's total error is then above the masked fit's (which subtracts the wings
    with the source's measured flux), so the step keeps the mask; its levels are
    still within their stated error.
    """
    fits = _many(2.5)
    masked = np.concatenate([f[0] for f in fits])
    modelled = np.concatenate([f[1] for f in fits])
    assert np.mean(modelled[:, 1]) > np.mean(masked[:, 1])
    _check_levels(fits)


def _winged_column_scene(theta_true, ny=24, nx=200):
    """Noise-free sky 1.02 x B and a source of profile ``theta_true`` with a spectral line."""
    s = np.arange(ny, dtype=float)[:, None] * np.ones((1, nx))
    wave = np.linspace(1.0, 2.0, nx)[None, :] * np.ones((ny, 1))
    sky = 1.0 + 0.3 * wave
    spectrum = 4.0 * (1.0 + np.exp(-0.5 * ((np.arange(nx) - 90) / 3.0) ** 2))
    data = 1.02 * sky + spectrum[None, :] * profile_shape(s, *theta_true)
    return s, wave, sky, spectrum, data


def test_joint_fit_takes_a_profile_that_widens_with_wavelength():
    """spec3's use of the joint fit (`joint_sky_factor` with a profile of every pixel): a
    source whose width grows to the red, noise-free, gives the true factor with the true
    shape, and a one-sigma error of the width's slope moves it by the stated leak (the
    level of a constant factor, whose response the leak is)."""
    ny, nx = 24, 200
    s = np.arange(ny, dtype=float)
    tau = np.linspace(-0.5, 0.5, nx)
    wave = np.linspace(1.0, 2.0, nx)[None, :] * np.ones((ny, 1))
    sky = 1.0 + 0.3 * wave
    spectrum = 4.0 * (1.0 + np.exp(-0.5 * ((np.arange(nx) - 90) / 3.0) ** 2))
    theta = np.array([12.0, 1.3, 0.4, 0.4])  # centre, width, slope, 1 / beta
    cov = np.diag([0.0, 0.0, 0.05**2, 0.0])

    def profile(t):
        return profile_image(s, t, tau)

    distance = np.abs(s - 12.0)[:, None] * np.ones((1, nx))
    var = (0.05 * sky) ** 2
    usable = np.ones((ny, nx), bool)
    exact = joint_sky_factor(wave, 1.02 * sky + spectrum * profile(theta), var, sky, usable,
                             distance, theta, cov, profile, cuts=(0.0, 1.0, 2.0), coverage=1.0,
                             factor_model="constant")
    assert abs(exact.fit.level - 1.02) < 1e-9
    (moved,) = plausible_shapes(theta, cov)
    off = joint_sky_factor(wave, 1.02 * sky + spectrum * profile(moved), var, sky, usable,
                           distance, theta, cov, profile, cuts=(0.0, 1.0, 2.0), coverage=1.0,
                           factor_model="constant")
    assert abs(off.fit.level - 1.02) > 1e-5
    np.testing.assert_allclose(abs(off.fit.level - 1.02), off.leak, rtol=1e-6)


def test_joint_fit_leak_bounds_the_bias_of_a_one_sigma_shape_error():
    """The joint (MOS) fit's stated leak is the level's shift for a one-sigma error of the
    shape: noise-free data whose true width is one standard deviation off."""
    theta = np.array([0.0, 1.5, 0.0])  # centre and cuts about the source (row 12)
    cov = np.diag([0.0, 0.05**2, 0.0])
    (true,) = plausible_shapes(theta, cov)
    s, wave, sky, _, data = _winged_column_scene(true + [12.0, 0.0, 0.0])
    var = (0.05 * sky) ** 2
    fit = profile_sky_factor(wave, data, var, sky, np.ones(data.shape, bool), s - 12.0,
                             *theta, cov, cuts=(0.0, 1.0, 2.0), coverage=2.0)
    bias = fit.fit.level - 1.02
    assert abs(bias) > 1e-5
    np.testing.assert_allclose(abs(bias), fit.leak, rtol=1e-6)
