"""The real jwst steps on the synthetic NIRSpec MOS exposure, with no overrides.

A noiseless scene is run through AssignWcs -> MSAFlagOpen -> Extract2d -> SrcType ->
FlatField -> PathLoss -> BarShadow -> Photom via the local CRDS context. Checks that the
geometry is where the scene put it and that the calibrated background equals the
injected truth, and that the analytic calibration model agrees with each jwst step.
"""

import numpy as np
import pytest

from jwst_mbkg_plus.synthetic import load_truth, local_crds_context
from jwst_mbkg_plus.synthetic.calibration_truth import CalibrationTruth
from jwst_mbkg_plus.synthetic.instrument import GRATINGS

DETECTORS = ("NRS1", "NRS2")


def _run_chain(rate_path):
    from jwst.assign_wcs import AssignWcsStep
    from jwst.barshadow import BarShadowStep
    from jwst.extract_2d import Extract2dStep
    from jwst.flatfield import FlatFieldStep
    from jwst.msaflagopen import MSAFlagOpenStep
    from jwst.pathloss import PathLossStep
    from jwst.photom import PhotomStep
    from jwst.srctype import SourceTypeStep

    out = {}
    model = AssignWcsStep.call(rate_path)
    model = MSAFlagOpenStep.call(model)
    out["extract_2d"] = model = Extract2dStep.call(model)
    model = SourceTypeStep.call(model)
    out["flat_field"] = model = FlatFieldStep.call(model)
    out["pathloss"] = model = PathLossStep.call(model)
    out["barshadow"] = model = BarShadowStep.call(model)
    out["photom"] = PhotomStep.call(model)
    return out


@pytest.fixture(scope="module")
def chain(synthetic_instrument, small_mos_exposure):
    """Per detector: truth and the models after each step."""
    _, result = small_mos_exposure
    runs = {}
    with local_crds_context(synthetic_instrument):
        for det in DETECTORS:
            runs[det] = _run_chain(str(result.rate_paths[det]))
            runs[det]["truth"] = load_truth(result.truth_paths[det])
    return runs


@pytest.fixture(scope="module")
def calibration(small_mos_exposure):
    scene, _ = small_mos_exposure
    return CalibrationTruth(filter=scene.filter, grating=scene.grating)


def _background_slits(run):
    return [
        (i, s) for i, s in enumerate(run["photom"].slits) if "BKG" in str(s.source_name).upper()
    ]


@pytest.mark.parametrize("det", DETECTORS)
def test_slits_where_the_scene_put_them(chain, small_mos_exposure, det):
    scene, _ = small_mos_exposure
    layout = {s.slitlet_id: s for s in scene.layout() if s.detector == det}
    run = chain[det]
    slits = run["extract_2d"].slits
    assert sorted(int(s.name) for s in slits) == sorted(layout)
    truth = run["truth"]
    for slit in slits:
        planned = layout[int(slit.name)]
        # MSA position: quadrant, dispersion row (jwst's xcen) and centre column (ycen).
        assert slit.quadrant == planned.quadrant
        assert slit.xcen == planned.row
        assert planned.first_column <= slit.ycen < planned.first_column + planned.n_shutters
        assert ("BKG" in slit.source_name) == (planned.kind == "background")
        # The cutout is the painted footprint.
        t = truth.slit(slit.name)
        assert (slit.xstart, slit.ystart) == (t["xstart"], t["ystart"])
        assert slit.data.shape == t["background"].shape
        # Plausible NIRSpec: ~1100-1450 px long spectra, 3-shutter cutouts 20-80 px tall.
        ny, nx = slit.data.shape
        assert 1000 < nx < 1500
        assert 20 <= ny <= 80
        # The painted light is inside the cutout, nothing outside it on the slit rows.
        assert np.nanmax(slit.data) > 0


@pytest.mark.parametrize("det", DETECTORS)
def test_source_types(chain, small_mos_exposure, det):
    scene, _ = small_mos_exposure
    layout = {s.slitlet_id: s for s in scene.layout()}
    for slit in chain[det]["photom"].slits:
        kind = layout[int(slit.name)].kind
        expected = "POINT" if kind == "point" else "EXTENDED"
        assert slit.source_type == expected


@pytest.mark.parametrize("det", DETECTORS)
def test_wavelengths_in_range_and_monotonic(chain, small_mos_exposure, det):
    scene, _ = small_mos_exposure
    lo, hi = (w * 1e6 for w in GRATINGS[scene.grating]["wrange"])
    for slit in chain[det]["flat_field"].slits:
        wl = slit.wavelength
        finite = np.isfinite(wl)
        assert finite.sum() > 0.5 * wl.size / 2
        # Bounding boxes extend 10 px past the wavelength range (jwst's padding).
        assert np.nanmin(wl) > lo - 0.03
        assert np.nanmax(wl) < hi + 0.03
        assert np.nanmin(wl) < lo + 0.03 and np.nanmax(wl) > hi - 0.03
        dwl = np.diff(wl, axis=1)
        good = np.isfinite(dwl)
        assert np.all(dwl[good] > 0), "wavelength must grow along x"
        # ~1.1 nm / px for G235M
        assert 0.8e-3 < np.median(dwl[good]) < 1.6e-3


@pytest.mark.compat
@pytest.mark.parametrize("det", DETECTORS)
def test_calibrated_background_equals_truth(chain, det):
    run = chain[det]
    truth = run["truth"]
    bkg = _background_slits(run)
    assert len(bkg) == 2
    for _, slit in bkg:
        expected = truth.cutout(slit.name, "background", slit)
        ratio = slit.data / expected
        good = np.isfinite(ratio)
        assert good.sum() > 0.5 * np.isfinite(expected).sum()
        assert np.median(np.abs(ratio[good] - 1)) < 1e-3
        assert np.percentile(np.abs(ratio[good] - 1), 95) < 1e-2


@pytest.mark.parametrize("det", DETECTORS)
def test_analytic_calibration_matches_each_step(chain, calibration, det):
    """The independent analytic model agrees with what flat/pathloss/barshadow/photom did."""
    run = chain[det]
    truth = run["truth"]
    for i, slit in _background_slits(run):
        rate = run["extract_2d"].slits[i].data
        wl = run["flat_field"].slits[i].wavelength
        y, x = np.indices(slit.data.shape)
        x = x + slit.xstart - 1
        y = y + slit.ystart - 1
        common = dict(quadrant=slit.quadrant, shutter_column=slit.xcen, shutter_row=slit.ycen)
        flat = calibration.flat(wavelength=wl, x=x, y=y, detector=det, **common)
        pathloss = calibration.pathloss_uniform(wavelength=wl, shutter_config=slit.shutter_state)
        photom = calibration.photom_conversion(wavelength=wl, **common)
        slit_y = truth.cutout(slit.name, "slit_y", slit)
        bar = calibration.barshadow(
            wavelength=wl,
            slit_y=np.nan_to_num(slit_y),
            shutter_config=slit.shutter_state,
            slit_yscale=slit.slit_yscale,
        )
        steps = {
            "flat": (rate / run["flat_field"].slits[i].data, flat),
            "pathloss": (run["pathloss"].slits[i].pathloss_uniform, pathloss),
            "barshadow": (run["barshadow"].slits[i].barshadow, bar),
            "photom": (slit.data / run["barshadow"].slits[i].data, photom),
        }
        for name, (jwst_value, analytic) in steps.items():
            r = np.asarray(jwst_value, float) / np.where(np.isfinite(slit_y), analytic, np.nan)
            good = np.isfinite(r)
            assert good.sum() > 1000, name
            assert np.median(np.abs(r[good] - 1)) < 1e-4, name
        # And the painted factor is the analytic extended factor the chain reproduced.
        factor_chain = slit.data / rate
        factor_truth = truth.cutout(slit.name, "factor", slit)
        r = factor_chain / factor_truth
        good = np.isfinite(r)
        assert np.median(np.abs(r[good] - 1)) < 1e-3


def test_master_background_mos_runs(synthetic_instrument, small_mos_exposure):
    """The stock MasterBackgroundMosStep (real-chain anchor) runs and removes the background."""
    from jwst.assign_wcs import AssignWcsStep
    from jwst.extract_2d import Extract2dStep
    from jwst.master_background import MasterBackgroundMosStep
    from jwst.msaflagopen import MSAFlagOpenStep

    _, result = small_mos_exposure
    with local_crds_context(synthetic_instrument):
        model = AssignWcsStep.call(str(result.rate_paths["NRS1"]))
        model = MSAFlagOpenStep.call(model)
        model = Extract2dStep.call(model)
        out = MasterBackgroundMosStep.call(model)
    assert out.meta.cal_step.master_background == "COMPLETE"
    truth = load_truth(result.truth_paths["NRS1"])
    for before, after in zip(model.slits, out.slits, strict=True):
        if "BKG" not in before.source_name:
            continue
        # Background slits lose (nearly) all their count rate.
        valid = truth.cutout(before.name, "valid", before) > 0
        good = valid & np.isfinite(after.data) & (before.data > 0)
        residual = np.median(np.abs(after.data[good])) / np.median(before.data[good])
        assert residual < 0.05


def test_spec2_pipeline_runs(synthetic_instrument, small_mos_exposure, tmp_path):
    """The whole stock Spec2Pipeline with master background runs with no overrides."""
    from jwst.pipeline import Spec2Pipeline

    _, result = small_mos_exposure
    with local_crds_context(synthetic_instrument):
        Spec2Pipeline.call(
            str(result.rate_paths["NRS1"]),
            steps={"master_background_mos": {"skip": False}},
            output_dir=str(tmp_path),
            save_results=True,
        )
    from stdatamodels.jwst import datamodels

    cal = sorted(tmp_path.glob("*_cal.fits"))
    x1d = sorted(tmp_path.glob("*_x1d.fits"))
    assert cal and x1d
    with datamodels.open(cal[0]) as model:
        assert model.meta.cal_step.master_background == "COMPLETE"
        assert model.meta.cal_step.photom == "COMPLETE"
        assert len(model.slits) == 3


def test_g395m_on_nrs2_end_to_end(synthetic_instrument, tmp_path):
    """The second mode (F290LP/G395M) on NRS2: wavelengths and calibrated background."""
    from jwst_mbkg_plus.synthetic import Scene, make_exposure

    scene = Scene(
        n_background=2, n_point=1, n_extended=0, grating="G395M", detectors=("NRS2",), seed=31
    )
    result = make_exposure(scene, tmp_path, instrument=synthetic_instrument)
    with local_crds_context(synthetic_instrument):
        run = _run_chain(str(result.rate_paths["NRS2"]))
    truth = load_truth(result.truth_paths["NRS2"])
    lo, hi = (w * 1e6 for w in GRATINGS["G395M"]["wrange"])
    for i, slit in enumerate(run["photom"].slits):
        wl = run["flat_field"].slits[i].wavelength
        assert lo - 0.05 < np.nanmin(wl) < lo + 0.05
        assert hi - 0.05 < np.nanmax(wl) < hi + 0.05
        dwl = np.diff(wl, axis=1)
        assert 1.4e-3 < np.nanmedian(dwl) < 2.4e-3  # ~1.8 nm / px
        if "BKG" in slit.source_name:
            ratio = slit.data / truth.cutout(slit.name, "background", slit)
            good = np.isfinite(ratio)
            assert good.sum() > 10000
            assert np.median(np.abs(ratio[good] - 1)) < 1e-3


@pytest.mark.parametrize("n_shutters", [1, 5])
def test_other_slitlet_lengths(synthetic_instrument, tmp_path, n_shutters):
    """1- and 5-shutter background slitlets: cutout height and calibrated background."""
    from jwst_mbkg_plus.synthetic import Scene, make_exposure

    scene = Scene(n_background=2, n_point=0, n_extended=0, shutters_per_slitlet=n_shutters, seed=41)
    result = make_exposure(scene, tmp_path, instrument=synthetic_instrument)
    with local_crds_context(synthetic_instrument):
        run = _run_chain(str(result.rate_paths["NRS1"]))
    truth = load_truth(result.truth_paths["NRS1"])
    for slit in run["photom"].slits:
        assert len(slit.shutter_state) == n_shutters
        # ~4.2-4.5 px per open-shutter height, 1.15 of it per shutter, plus margins and curvature.
        min_height = 4.2 * 1.15 * (n_shutters - 1) + 4.2 * 2.1
        assert min_height < slit.data.shape[0] < min_height + 50
        ratio = slit.data / truth.cutout(slit.name, "background", slit)
        good = np.isfinite(ratio)
        assert good.sum() > 1000
        assert np.median(np.abs(ratio[good] - 1)) < 1e-3
