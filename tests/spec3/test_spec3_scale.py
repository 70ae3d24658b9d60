"""The spec3 master scaled to each science exposure's own sky (issue 26).

Pure-numpy tests of the sky region and the per-exposure decision, then the
real step (jwst's container handling, wavelength helpers and point-source
corrections) on the synthetic spec3 scenes with sky drift, against jwst's
stock step on the same inputs.
"""

import glob

import numpy as np
import pytest
from jwst.master_background import MasterBackgroundStep
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus import MasterBackgroundPlusStep
from jwst_mbkg_plus.io.products import read_qa
from jwst_mbkg_plus.spec3 import run
from jwst_mbkg_plus.spec3.exposure_scale import scale_one
from jwst_mbkg_plus.spec3.sky_region import dispersion_axis, find_sky_region
from jwst_mbkg_plus.synthetic.spec3_inputs import MODES, make_container, make_spec3_inputs
from jwst_mbkg_plus.synthetic.spec3_scenes import drift_factor, source_profile


def _slit_scene(rng, *, drift=(0.0, 0.0), noise=0.05, source=5.0, wings=True, ny=32, nx=400,
                centre=9.0):
    """A fixed slit (dispersion along x): sky x drift, a Moffat source, noise."""
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    wl = 1.7 + 1.4 * x / (nx - 1)
    t = x / (nx - 1)
    model = 1.0 + 0.4 * t
    sky = model * drift_factor(t, *drift)
    src = source * source_profile(y, centre, 3.0, wings=wings)
    sigma = noise * model
    data = sky + src + rng.normal(size=sky.shape) * sigma
    return data, sigma**2, model, wl, sky


# --------------------------------------------------------------------- pure numpy


def test_dispersion_axis_from_wavelengths():
    wl = np.add.outer(np.zeros(10), np.linspace(1, 2, 50))
    assert dispersion_axis(wl) == 1
    assert dispersion_axis(wl.T) == 0


def test_sky_region_masks_source_and_its_wings():
    data, var, model, wl, _ = _slit_scene(np.random.default_rng(1))
    region = find_sky_region(data, var, model, wl)
    assert region.usable
    src = set(region.source_lines.tolist())
    # The core and the wings brighter than ~1% of the sky (|d| <= 8) are masked.
    assert set(range(1, 18)) <= src
    # The far rows are sky.
    assert {25, 26, 27, 28, 29, 30, 31} <= set(np.flatnonzero(region.sky.any(axis=1)))


def test_sky_region_along_y_for_miri_layout():
    data, var, model, wl, _ = _slit_scene(np.random.default_rng(2))
    region = find_sky_region(data.T, var.T, model.T, wl.T)
    assert region.axis == 0
    assert set(range(3, 16)) <= set(region.source_lines.tolist())


def test_field_filled_by_extended_source_has_no_usable_sky():
    rng = np.random.default_rng(3)
    data, var, model, wl, _ = _slit_scene(rng, source=0.0)
    data = data + 0.3 * np.linspace(0.2, 1.0, data.shape[0])[:, None]  # fills every line
    region = find_sky_region(data, var, model, wl)
    assert not region.usable
    assert "no usable sky" in region.status
    scale = scale_one(data, var, None, wl, model, name="x")
    assert not scale.factor.applied
    assert "no usable sky" in scale.factor.status


@pytest.mark.parametrize("drift", [(0.03, 0.0), (0.05, 0.0), (0.0, 0.06)])
def test_factor_recovers_drift(drift):
    data, var, model, wl, sky = _slit_scene(np.random.default_rng(4), drift=drift)
    scale = scale_one(data, var, None, wl, model)
    assert scale.factor.applied
    f, err = scale.factor.evaluate(wl)
    truth = sky / model
    rows = scale.region.sky
    assert abs(np.median((f - truth)[rows] / truth[rows])) < 0.002
    assert np.all(err[rows] > 0)


def test_no_drift_factor_not_applied_in_95_of_100():
    applied = 0
    for seed in range(100):
        data, var, model, wl, _ = _slit_scene(np.random.default_rng(100 + seed))
        applied += scale_one(data, var, None, wl, model).factor.applied
    assert applied <= 5


# --------------------------------------------------------------------- the step


def _relative(inputs, result):
    rel = []
    for k, out in enumerate(result):
        before = inputs.science[k]
        tb, mask = inputs.true_background[k], inputs.background_mask[k]
        tbs, masks = (tb, mask) if isinstance(tb, list) else ([tb], [mask])
        split = (lambda m: list(m.slits)) if isinstance(before, datamodels.MultiSlitModel) \
            else (lambda m: [m])
        for a_in, a_out, t, m in zip(split(before), split(out), tbs, masks, strict=True):
            rel.append(((np.asarray(a_in.data, float) - a_out.data - t) / t)[m])
    return float(np.median(np.concatenate(rel)))


@pytest.mark.pipeline
@pytest.mark.parametrize("mode", MODES)
def test_drift_followed_in_every_mode(mode, tmp_path):
    inputs = make_spec3_inputs(mode, n_background=2, nodded=False, pixel_noise=0.05,
                               drift=0.05, seed=3)
    stock = _relative(inputs, MasterBackgroundStep.call(make_container(inputs)))
    plus = _relative(inputs, MasterBackgroundPlusStep.call(
        make_container(inputs), save_qa=True, output_dir=str(tmp_path)))
    assert stock == pytest.approx(-0.05 / 1.05, abs=0.002)
    assert abs(plus) < 0.003
    qa = read_qa(glob.glob(str(tmp_path / "*mbkgqa.asdf"))[0])
    assert qa["scale_master"] == "auto"
    assert len(qa["exposure_scale"]) == 2
    for rec in qa["exposure_scale"]:
        assert rec["applied"]
        assert rec["level"] == pytest.approx(1.05, abs=0.003)


@pytest.mark.pipeline
def test_scale_master_off_is_the_unscaled_master():
    inputs = make_spec3_inputs("MIR_LRS-FIXEDSLIT", n_background=2, nodded=False,
                               pixel_noise=0.05, drift=0.05, seed=3)
    off = _relative(inputs, MasterBackgroundPlusStep.call(make_container(inputs),
                                                          scale_master="off"))
    assert off == pytest.approx(-0.05 / 1.05, abs=0.002)


@pytest.mark.pipeline
def test_factor_variance_reaches_var_rnoise():
    inputs = make_spec3_inputs("MIR_MRS", n_background=2, nodded=False, pixel_noise=0.05,
                               drift=0.05, seed=5)
    science = [m.copy() for m in inputs.science]
    scaled = run.run_master_background(science, inputs.backgrounds)
    plain = run.run_master_background([m.copy() for m in inputs.science], inputs.backgrounds,
                                      scale_master="off")
    scale = scaled.scales[0]
    wl = run.science_wavelengths(inputs.science[0])[0]
    f, f_err = scale.factor.evaluate(wl)
    bkg0, var0, _ = plain.subtractions[0].backgrounds[0]
    bkg1, var1, _ = scaled.subtractions[0].backgrounds[0]
    ok = np.isfinite(bkg0)
    np.testing.assert_allclose(bkg1[ok], (bkg0 * f)[ok], rtol=1e-12)
    np.testing.assert_allclose(var1[ok], (var0 * f**2 + (bkg0 * f_err) ** 2)[ok], rtol=1e-9)
    added = np.asarray(science[0].var_rnoise, float) - inputs.science[0].var_rnoise
    np.testing.assert_allclose(added[ok], var1[ok], rtol=1e-4)


@pytest.mark.pipeline
def test_extended_source_filling_most_of_the_ifu_does_not_bias_the_factor():
    # 80 % of the field: no scaling, and the QA says why (the lines at the floor may be
    # the source's outskirts). Half the field: the factor follows the drift.
    for fraction, drift in ((0.8, 0.0), (0.8, 0.05), (0.5, 0.05)):
        inputs = make_spec3_inputs("NRS_IFU", n_background=2, nodded=False, pixel_noise=0.05,
                                   point_source=False, extended_fraction=fraction, drift=drift,
                                   seed=2)
        out = run.run_master_background([m.copy() for m in inputs.science],
                                        inputs.backgrounds)
        for s in out.scales:
            if fraction == 0.8:
                assert not s.factor.applied
                assert "extended source" in s.to_record()["status"]
            else:
                assert s.factor.applied
                assert s.factor.level == pytest.approx(1.0 + drift, rel=0.003)


@pytest.mark.pipeline
def test_nodded_same_sky_stays_unscaled():
    inputs = make_spec3_inputs("NRS_FIXEDSLIT", n_background=2, nodded=True, pixel_noise=0.05,
                               drift=0.03, seed=4)
    out = run.run_master_background([m.copy() for m in inputs.science], inputs.backgrounds)
    assert [s.factor.applied for s in out.scales] == [False, False]


def test_noisy_master_does_not_dilute_the_factor():
    """A master at 5 % per point: without the correction the factor is ~0.25 % low."""
    rng = np.random.default_rng(9)
    levels, raw = [], []
    for _ in range(60):
        data, var, model, wl, _ = _slit_scene(rng, noise=0.02, source=0.0, ny=8)
        # One master sample per column, noisy by 5 %, shared by every row.
        noisy = model * (1.0 + 0.05 * rng.normal(size=model.shape[1]))[None, :]
        bkg_var = (0.05 * model) ** 2
        scale = scale_one(data, var, None, wl, noisy, mode="always", model="constant",
                          bkg_var=bkg_var)
        levels.append(scale.factor.level)
        raw.append(scale_one(data, var, None, wl, noisy, mode="always",
                             model="constant").factor.level)
    # The master's level noise (5 % / sqrt(400) = 0.25 % per draw) averages to 0.03 %.
    assert np.mean(raw) < 1.0 - 0.0015
    assert np.mean(levels) == pytest.approx(1.0, abs=1e-3)
