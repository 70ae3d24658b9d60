"""A point source's wings modelled in the spec3 sky factor; extended sources (issue 26).

Pure numpy: `scale_one` on a fixed slit of 32 rows and 400 columns with a Moffat
source (beta 2.5, FWHM 3 rows, 5 times the sky at its peak) 9 rows from one end,
whose wings reach every row.
"""

import numpy as np

from jwst_mbkg_plus.spec3.exposure_scale import scale_one
from jwst_mbkg_plus.spec3.sky_region import find_sky_region
from jwst_mbkg_plus.synthetic.spec3_scenes import extended_profile, source_profile

NY, NX = 32, 400
DRIFT = 1.03


def _scene(rng, noise, *, wings=True, source_spectrum=True):
    y, x = np.mgrid[0:NY, 0:NX].astype(float)
    wl = 1.7 + 1.4 * x / (NX - 1) + 0.0001 * (y - NY / 2)
    t = (wl - 1.7) / 1.4
    master = 1.0 + 0.4 * t + 0.1 * np.sin(3 * t)
    spectrum = (1.0 + 0.5 * np.sin(7 * t)) if source_spectrum else 1.0
    source = 5.0 * spectrum * source_profile(y, 9.0, 3.0, wings=wings)
    sigma = noise * master
    data = DRIFT * master + source
    if rng is not None:
        data = data + sigma * rng.normal(size=data.shape)
    return data, sigma**2, wl, master


def test_noise_free_wings_are_subtracted_not_left_in_the_sky():
    # Noise-free data with the variance of 20 % per pixel: the masked sky (rows whose
    # wing light is below the noise) holds the faint wings and the factor comes out
    # high; with the wings modelled it is the drift.
    data, var, wl, master = _scene(None, 0.2)
    masked = scale_one(data, var, None, wl, master, wings=False)
    modelled = scale_one(data, var, None, wl, master, wings=True)
    assert modelled.wings.used, modelled.wings.status
    assert masked.factor.level / DRIFT - 1 > 3e-4
    assert abs(modelled.factor.level / DRIFT - 1) < 5e-5
    assert modelled.factor.n_pixels > 1.4 * masked.factor.n_pixels


def test_wing_rows_narrow_the_factor_at_20_percent_noise():
    rng = np.random.default_rng(26)
    err_masked, err_modelled, pulls, used = [], [], [], 0
    for _ in range(40):
        data, var, wl, master = _scene(rng, 0.2)
        masked = scale_one(data, var, None, wl, master, wings=False)
        modelled = scale_one(data, var, None, wl, master, wings=True)
        used += modelled.wings.used
        err_masked.append(masked.factor.level / DRIFT - 1)
        err_modelled.append(modelled.factor.level / DRIFT - 1)
        pulls.append(err_modelled[-1] * DRIFT / modelled.factor.level_error)
    rms = lambda a: float(np.sqrt(np.mean(np.square(a))))  # noqa: E731
    assert used >= 36
    assert rms(err_modelled) < 0.92 * rms(err_masked)
    # Unbiased, and the propagated error (with the spectrum's noise and the
    # wings' plausible leak) describes the scatter.
    assert abs(np.mean(err_modelled)) < 3 * rms(err_modelled) / np.sqrt(40)
    assert 0.7 < rms(pulls) < 1.3


def test_a_profile_without_wings_keeps_the_masked_sky():
    # The cosine bump ends at 3 rows: no Moffat describes it, the wings are masked.
    rng = np.random.default_rng(3)
    data, var, wl, master = _scene(rng, 0.2, wings=False)
    masked = scale_one(data, var, None, wl, master, wings=False)
    modelled = scale_one(data, var, None, wl, master, wings=True)
    assert not modelled.wings.used
    assert "not a point source" in modelled.wings.status
    assert modelled.factor.level == masked.factor.level


def test_extended_source_filling_the_field_is_not_scaled():
    # 24 of 30 slices hold the source: the lines at the floor may be its outskirts.
    n_slices, rows = 30, 4
    line = np.repeat(np.arange(n_slices), rows).astype(float)
    wl = np.broadcast_to(np.linspace(1.7, 3.1, 300), (line.size, 300))
    master = np.ones(wl.shape)
    var = np.full(wl.shape, 0.05**2)
    for fraction, usable in ((0.8, False), (0.4, True)):
        src = 0.8 * extended_profile(line, n_slices, fraction)[:, None]
        region = find_sky_region(1.02 * master + src, var, master, wl)
        assert region.usable is usable, region.status
        if not usable:
            assert "extended source" in region.status


def _widening_scene(rng, noise, grow=0.3, shift=0.0):
    """The winged source with a FWHM ``grow`` wider at the red end than at the blue (and a
    centre moved by ``shift`` rows from blue to red)."""
    y, x = np.mgrid[0:NY, 0:NX].astype(float)
    wl = 1.7 + 1.4 * x / (NX - 1)
    t = (wl - 1.7) / 1.4
    master = 1.0 + 0.4 * t
    source = 5.0 * (1.0 + 0.5 * np.sin(7 * t)) * source_profile(
        y, 9.0 + shift * (t - 0.5), 3.0 * (1.0 + grow * (t - 0.5)), wings=True)
    data = DRIFT * master + source
    if rng is not None:
        data = data + noise * master * rng.normal(size=master.shape)
    return data, (noise * master) ** 2, wl, master


def test_a_profile_that_widens_to_the_red_is_modelled_with_a_width_linear_in_wavelength():
    # A point spread function 30 % wider at the red end than at the blue: one profile
    # for every wavelength would leave wing light in the red. The width's slope is
    # chosen by evidence, and the wings are subtracted at every wavelength's own width.
    data, var, wl, master = _widening_scene(None, 0.05)
    modelled = scale_one(data, var, None, wl, master, wings=True)
    masked = scale_one(data, var, None, wl, master, wings=False)
    assert modelled.wings.used, modelled.wings.status
    params = modelled.wings.params
    assert params["width_linear"] == 1.0
    assert 0.2 < params["width_slope"] / params["width_mid"] < 0.4
    assert abs(modelled.factor.level / DRIFT - 1) < 5e-5
    assert abs(masked.factor.level / DRIFT - 1) > 1e-4
    # With noise: unbiased, and the propagated error describes the scatter.
    rng = np.random.default_rng(11)
    err, pulls, err_masked = [], [], []
    for _ in range(20):
        data, var, wl, master = _widening_scene(rng, 0.05)
        modelled = scale_one(data, var, None, wl, master, wings=True)
        masked = scale_one(data, var, None, wl, master, wings=False)
        assert modelled.wings.used, modelled.wings.status
        err.append(modelled.factor.level / DRIFT - 1)
        err_masked.append(masked.factor.level / DRIFT - 1)
        pulls.append(err[-1] * DRIFT / modelled.factor.level_error)
    rms = lambda a: float(np.sqrt(np.mean(np.square(a))))  # noqa: E731
    assert rms(err) < 0.8 * rms(err_masked)
    assert abs(np.mean(err)) < 3 * rms(err) / np.sqrt(20)
    assert 0.6 < rms(pulls) < 1.4


def test_a_constant_profile_gets_no_width_slope():
    # The evidence for a slope is a 1 % false alarm: on a constant profile the wing
    # model keeps one width.
    rng = np.random.default_rng(5)
    slopes = 0
    for _ in range(20):
        data, var, wl, master = _widening_scene(rng, 0.05, grow=0.0)
        modelled = scale_one(data, var, None, wl, master, wings=True)
        assert modelled.wings.used, modelled.wings.status
        slopes += modelled.wings.params["width_linear"] == 1.0
    assert slopes <= 1


def test_a_profile_whose_centre_moves_along_the_band_keeps_the_masked_sky():
    # A tilted trace (the centre 0.6 rows lower at the blue end than at the red) is no
    # width that changes with wavelength: the halves' centres disagree.
    rng = np.random.default_rng(11)
    data, var, wl, master = _widening_scene(rng, 0.05, grow=0.0, shift=0.6)
    modelled = scale_one(data, var, None, wl, master, wings=True)
    assert not modelled.wings.used
    assert "changes along the band" in modelled.wings.status
    assert "centre, width and index" in modelled.wings.status
