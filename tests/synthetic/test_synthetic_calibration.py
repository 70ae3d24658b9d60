"""Synthetic MOS calibration files: validity, and jwst's steps against CalibrationTruth."""

import json
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.modeling import models
from gwcs import coordinate_frames as cf
from gwcs import wcs as gwcs_wcs
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.synthetic.calibration import (
    CALIBRATION_REFTYPES,
    SUPPORTED_MODES,
    build_calibration_refs,
)
from jwst_mbkg_plus.synthetic.calibration_truth import CalibrationTruth

RTOL = 1e-4

MODEL_CLASSES = {
    "dflat": datamodels.NirspecFlatModel,
    "sflat": datamodels.NirspecFlatModel,
    "fflat": datamodels.NirspecQuadFlatModel,
    "pathloss": datamodels.PathlossModel,
    "barshadow": datamodels.BarshadowModel,
    "photom": datamodels.NrsMosPhotomModel,
    "area": datamodels.NirspecMosAreaModel,
    "wavecorr": datamodels.WaveCorrModel,
    "apcorr": datamodels.NrsMosApcorrModel,
}


@pytest.fixture(scope="module")
def refs_nrs1(tmp_path_factory):
    """Reference files for NRS1, F170LP/G235M (and NRS2 in the same folder)."""
    folder = tmp_path_factory.mktemp("calib_refs")
    paths = build_calibration_refs(folder, detector="NRS1", filter="F170LP", grating="G235M")
    return folder, paths


# ------------------------------------------------------------- validity
@pytest.mark.parametrize("reftype", [r for r in CALIBRATION_REFTYPES if r != "extract1d"])
def test_file_validates_strictly_with_meta(refs_nrs1, reftype):
    _, paths = refs_nrs1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with MODEL_CLASSES[reftype](paths[reftype], strict_validation=True) as model:
            model.validate()
            meta = model.meta
            assert meta.instrument.name == "NIRSPEC"
            assert meta.reftype.upper() == reftype.upper()  # WaveCorrModel saves "wavecorr"
            assert meta.useafter == "2000-01-01T00:00:00"
            assert meta.pedigree == "DUMMY"
            assert meta.author and meta.description
            assert meta.telescope == "JWST"
            assert meta.filename == paths[reftype].name
            expected_det = "NRS1" if reftype in ("dflat", "sflat") else "ANY"
            assert meta.instrument.detector == expected_det
            if reftype != "fflat":  # the quad-flat schema has no EXP_TYPE
                assert meta.exposure.type == "NRS_MSASPEC"
            if reftype in ("sflat", "area"):
                assert (meta.instrument.filter, meta.instrument.grating) == ("F170LP", "G235M")
    # The generic opener also recognises and validates the file.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with datamodels.open(paths[reftype], strict_validation=True) as model:
            assert isinstance(model, MODEL_CLASSES[reftype])


def test_extract1d_json(refs_nrs1):
    _, paths = refs_nrs1
    content = json.loads(paths["extract1d"].read_text())
    assert content["instrument"] == "NIRSPEC"
    assert content["exp_type"] == "NRS_MSASPEC"
    (aperture,) = content["apertures"]
    assert aperture["id"] == "ANY"
    assert aperture["extract_width"] == 5


def test_apcorr_has_sizeunit_and_unity(refs_nrs1):
    _, paths = refs_nrs1
    with datamodels.NrsMosApcorrModel(paths["apcorr"]) as model:
        assert model.sizeunit == "pixels"
        row = model.apcorr_table[0]
        assert row["filter"].strip().upper() == "F170LP"
        assert np.all(row["apcorr"] == 1.0)


def test_build_reuses_and_shares_files(refs_nrs1):
    folder, paths = refs_nrs1
    assert set(paths) == set(CALIBRATION_REFTYPES)
    mtimes = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    again = build_calibration_refs(folder, detector="NRS1", filter="F170LP", grating="G235M")
    assert again == paths
    assert {k: p.stat().st_mtime_ns for k, p in again.items()} == mtimes
    nrs2 = build_calibration_refs(folder, detector="NRS2", filter="F170LP", grating="G235M")
    for reftype in CALIBRATION_REFTYPES:
        same = reftype not in ("dflat", "sflat")
        assert (nrs2[reftype] == paths[reftype]) is same, reftype
    with datamodels.NirspecFlatModel(nrs2["dflat"]) as model:
        assert model.meta.instrument.detector == "NRS2"


def test_unsupported_mode_raises(tmp_path):
    with pytest.raises(ValueError, match="unsupported mode"):
        build_calibration_refs(tmp_path, detector="NRS1", filter="F100LP", grating="G140M")
    with pytest.raises(ValueError, match="NRS1 or NRS2"):
        build_calibration_refs(tmp_path, detector="NRS3", filter="F170LP", grating="G235M")


def test_supported_modes_have_truth():
    for filter_name, grating in SUPPORTED_MODES:
        truth = CalibrationTruth(filter=filter_name, grating=grating)
        value = truth.extended_factor(
            wavelength=np.array([3.0]),
            x=100,
            y=200,
            detector="NRS2",
            quadrant=2,
            shutter_column=10,
            shutter_row=20,
            slit_y=0.0,
            shutter_config="1x1",
        )
        assert np.all(np.isfinite(value)) and np.all(value > 0)


# ------------------------------------------ jwst steps against the truth
NY, NX = 25, 160
XSTART, YSTART = 601, 811  # 1-based, full frame
Y_CENTER, PIX_PER_SLIT_Y = 12.3, 5.2


def _slit_transform(wave_offset=0.0):
    """Slit-local pixel -> (x_slit, y_slit, wavelength [micron]); tilted, sheared."""
    xslit = models.Polynomial2D(1, c0_0=0.01, c1_0=0.0, c0_1=0.0)
    yslit = models.Polynomial2D(
        1, c0_0=-Y_CENTER / PIX_PER_SLIT_Y, c1_0=2e-4, c0_1=1.0 / PIX_PER_SLIT_Y
    )
    lam = models.Polynomial2D(2, c0_0=2.05 + wave_offset, c1_0=1.1e-3, c0_1=2e-4, c2_0=1e-7)
    return models.Mapping((0, 1, 0, 1, 0, 1)) | xslit & yslit & lam


def _slit_wcs(wave_offset=0.0):
    """A slit WCS shaped like jwst's MOS one: slit_frame wavelengths in metres."""
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    spatial = cf.Frame2D(
        name="slit_spatial", axes_order=(0, 1), unit=("", ""), axes_names=("x_slit", "y_slit")
    )
    spectral = cf.SpectralFrame(
        name="spectral", axes_order=(2,), unit=(u.micron,), axes_names=("wavelength",)
    )
    slit_frame = cf.CompositeFrame([spatial, spectral], name="slit_frame")
    world = cf.CompositeFrame(
        [
            cf.Frame2D(name="w_spatial", axes_order=(0, 1), unit=("", "")),
            cf.SpectralFrame(name="w_spectral", axes_order=(2,), unit=(u.micron,)),
        ],
        name="world",
    )
    to_slit = _slit_transform(wave_offset) | models.Identity(2) & models.Scale(1e-6)
    to_world = models.Identity(2) & models.Scale(1e6)
    wcs = gwcs_wcs.WCS([(detector, to_slit), (slit_frame, to_world), (world, None)])
    wcs.bounding_box = ((-0.5, NX - 0.5), (-0.5, NY - 0.5))
    return wcs


def _make_input(
    shutter_state,
    *,
    source_type="EXTENDED",
    quadrant=3,
    xcen=123,
    ycen=45,
    detector="NRS1",
    filter_name="F170LP",
    grating="G235M",
    wave_offset=0.0,
):
    model = datamodels.MultiSlitModel()
    model.meta.instrument.name = "NIRSPEC"
    model.meta.instrument.detector = detector
    model.meta.instrument.filter = filter_name
    model.meta.instrument.grating = grating
    model.meta.exposure.type = "NRS_MSASPEC"
    model.meta.observation.date = "2024-01-01"
    model.meta.observation.time = "00:00:00"
    model.meta.subarray.name = "FULL"
    model.meta.subarray.xstart = 1
    model.meta.subarray.ystart = 1
    model.meta.subarray.xsize = 2048
    model.meta.subarray.ysize = 2048
    model.meta.cal_step.extract_2d = "COMPLETE"

    yy, xx = np.mgrid[0:NY, 0:NX].astype(np.float64)
    _, slit_y, wavelength = _slit_transform(wave_offset)(xx, yy)
    slit = datamodels.SlitModel(data=np.ones((NY, NX), dtype=np.float32))
    slit.dq = np.zeros((NY, NX), dtype=np.uint32)
    slit.err = np.full((NY, NX), 0.1, dtype=np.float32)
    slit.var_poisson = np.full((NY, NX), 0.01, dtype=np.float32)
    slit.var_rnoise = np.zeros((NY, NX), dtype=np.float32)
    slit.wavelength = wavelength.astype(np.float32)
    slit.name = "7"
    slit.slitlet_id = 7
    slit.source_id = 1
    slit.quadrant = quadrant
    slit.xcen = xcen
    slit.ycen = ycen
    slit.shutter_state = shutter_state
    slit.source_type = source_type
    # Off the pathloss grid nodes, so the bilinear interpolation is exercised.
    slit.source_xpos = 0.123
    slit.source_ypos = -0.071
    slit.slit_yscale = 1.15
    slit.xstart, slit.ystart, slit.xsize, slit.ysize = XSTART, YSTART, NX, NY
    slit.meta.wcs = _slit_wcs(wave_offset)
    slit.meta.wcsinfo.dispersion_direction = 1
    slit.meta.exposure.type = "NRS_MSASPEC"  # extract_2d copies it into each slit
    model.slits.append(slit)
    geometry = {
        "wavelength": slit.wavelength.astype(np.float64),
        "x": xx + XSTART - 1,
        "y": yy + YSTART - 1,
        "slit_y": slit_y,
    }
    return model, geometry


def _slit_kw(slit):
    return {
        "quadrant": slit.quadrant,
        "shutter_column": slit.xcen,
        "shutter_row": slit.ycen,
    }


def _run_flat(model, paths):
    from jwst.flatfield import FlatFieldStep

    return FlatFieldStep.call(
        model,
        override_flat="N/A",
        override_dflat=str(paths["dflat"]),
        override_sflat=str(paths["sflat"]),
        override_fflat=str(paths["fflat"]),
    )


def test_flat_field_matches_truth(refs_nrs1):
    _, paths = refs_nrs1
    model, geo = _make_input("1x1")
    result = _run_flat(model, paths)
    truth = CalibrationTruth(filter="F170LP", grating="G235M")
    expected = 1.0 / truth.flat(
        wavelength=geo["wavelength"],
        x=geo["x"],
        y=geo["y"],
        detector="NRS1",
        **_slit_kw(result.slits[0]),
    )
    np.testing.assert_allclose(result.slits[0].data, expected, rtol=RTOL)
    assert result.meta.cal_step.flat_field == "COMPLETE"


@pytest.mark.parametrize("shutter_state", ["x", "1x", "11x", "1x1", "x1", "1x01"])
def test_pathloss_uniform_matches_truth(refs_nrs1, shutter_state):
    from jwst.pathloss import PathLossStep

    _, paths = refs_nrs1
    model, geo = _make_input(shutter_state)
    result = PathLossStep.call(model, override_pathloss=str(paths["pathloss"]))
    truth = CalibrationTruth(filter="F170LP", grating="G235M")
    expected = 1.0 / truth.pathloss_uniform(
        wavelength=geo["wavelength"], shutter_config=shutter_state
    )
    np.testing.assert_allclose(result.slits[0].data, expected, rtol=RTOL)


@pytest.mark.parametrize("shutter_state", ["x", "11x", "1x1", "x1"])
def test_pathloss_point_matches_truth(refs_nrs1, shutter_state):
    from jwst.pathloss import PathLossStep

    _, paths = refs_nrs1
    model, geo = _make_input(shutter_state, source_type="POINT")
    slit = model.slits[0]
    result = PathLossStep.call(model, override_pathloss=str(paths["pathloss"]))
    truth = CalibrationTruth(filter="F170LP", grating="G235M")
    expected = 1.0 / truth.pathloss_point(
        wavelength=geo["wavelength"],
        xpos=slit.source_xpos,
        ypos=slit.source_ypos,
        shutter_config=shutter_state,
    )
    np.testing.assert_allclose(result.slits[0].data, expected, rtol=RTOL)


def test_pathloss_skipped_when_source_off_grid(refs_nrs1):
    from jwst.pathloss import PathLossStep

    _, paths = refs_nrs1
    model, _ = _make_input("1x1")
    model.slits[0].source_xpos = 0.6
    result = PathLossStep.call(model, override_pathloss=str(paths["pathloss"]))
    assert not CalibrationTruth.pathloss_applies(
        shutter_config="1x1", source_xpos=0.6, source_ypos=-0.071
    )
    np.testing.assert_array_equal(result.slits[0].data, 1.0)


@pytest.mark.parametrize("shutter_state", ["x", "1x", "11x", "1x1", "x1", "1x01", "10x", "1x00"])
def test_barshadow_matches_truth(refs_nrs1, shutter_state):
    from jwst.barshadow import BarShadowStep

    _, paths = refs_nrs1
    model, geo = _make_input(shutter_state)
    result = BarShadowStep.call(model, override_barshadow=str(paths["barshadow"]))
    truth = CalibrationTruth(filter="F170LP", grating="G235M")
    expected = 1.0 / truth.barshadow(
        wavelength=geo["wavelength"],
        slit_y=geo["slit_y"],
        shutter_config=shutter_state,
        slit_yscale=1.15,
    )
    np.testing.assert_allclose(result.slits[0].data, expected, rtol=RTOL)


@pytest.mark.parametrize("source_type", ["EXTENDED", "POINT"])
def test_photom_matches_truth(refs_nrs1, source_type):
    from jwst.photom import PhotomStep

    _, paths = refs_nrs1
    model, geo = _make_input("1x1", source_type=source_type)
    result = PhotomStep.call(
        model, override_photom=str(paths["photom"]), override_area=str(paths["area"])
    )
    slit = result.slits[0]
    truth = CalibrationTruth(filter="F170LP", grating="G235M")
    expected = truth.photom_conversion(
        wavelength=geo["wavelength"], **_slit_kw(slit), extended=source_type != "POINT"
    )
    np.testing.assert_allclose(slit.data, expected, rtol=RTOL)
    np.testing.assert_allclose(
        slit.meta.photometry.pixelarea_steradians,
        truth.pixel_area_sr(**_slit_kw(slit)),
        rtol=1e-12,
    )
    assert slit.meta.bunit_data == ("MJy" if source_type == "POINT" else "MJy/sr")


@pytest.mark.pipeline
@pytest.mark.parametrize(
    ("detector", "mode", "shutter_state"),
    [("NRS1", ("F170LP", "G235M"), "11x1"), ("NRS2", ("F290LP", "G395M"), "x1")],
)
def test_chain_matches_extended_factor(tmp_path, detector, mode, shutter_state):
    """flat_field -> pathloss -> barshadow -> photom on 1 DN/s gives extended_factor."""
    from jwst.barshadow import BarShadowStep
    from jwst.pathloss import PathLossStep
    from jwst.photom import PhotomStep

    filter_name, grating = mode
    paths = build_calibration_refs(tmp_path, detector=detector, filter=filter_name, grating=grating)
    model, geo = _make_input(
        shutter_state,
        detector=detector,
        filter_name=filter_name,
        grating=grating,
        quadrant=2,
        xcen=300,
        ycen=150,
        wave_offset=1.5 if grating == "G395M" else 0.0,
    )
    out = _run_flat(model, paths)
    out = PathLossStep.call(out, override_pathloss=str(paths["pathloss"]))
    out = BarShadowStep.call(out, override_barshadow=str(paths["barshadow"]))
    out = PhotomStep.call(
        out, override_photom=str(paths["photom"]), override_area=str(paths["area"])
    )
    slit = out.slits[0]
    truth = CalibrationTruth(filter=filter_name, grating=grating)
    expected = truth.extended_factor(
        wavelength=geo["wavelength"],
        x=geo["x"],
        y=geo["y"],
        detector=detector,
        **_slit_kw(slit),
        slit_y=geo["slit_y"],
        shutter_config=shutter_state,
        slit_yscale=slit.slit_yscale,
        source_xpos=slit.source_xpos,
        source_ypos=slit.source_ypos,
    )
    np.testing.assert_allclose(slit.data, expected, rtol=RTOL)
    for step in ("flat_field", "pathloss", "barshadow", "photom"):
        assert getattr(out.meta.cal_step, step) == "COMPLETE"


def test_point_chain_matches_point_factor(refs_nrs1):
    """wavecorr -> flat_field -> pathloss -> barshadow -> photom for a POINT source."""
    from jwst.barshadow import BarShadowStep
    from jwst.pathloss import PathLossStep
    from jwst.photom import PhotomStep
    from jwst.wavecorr import WavecorrStep

    _, paths = refs_nrs1
    model, geo = _make_input("11x", source_type="POINT")
    out = WavecorrStep.call(model, override_wavecorr=str(paths["wavecorr"]))
    assert out.meta.cal_step.wavecorr == "COMPLETE"
    # The synthetic zero-point offset is zero: wavelengths are unchanged.
    np.testing.assert_allclose(out.slits[0].wavelength, geo["wavelength"], rtol=1e-7)
    out = _run_flat(out, paths)
    out = PathLossStep.call(out, override_pathloss=str(paths["pathloss"]))
    out = BarShadowStep.call(out, override_barshadow=str(paths["barshadow"]))
    assert not out.slits[0].barshadow_corrected
    out = PhotomStep.call(
        out, override_photom=str(paths["photom"]), override_area=str(paths["area"])
    )
    slit = out.slits[0]
    truth = CalibrationTruth(filter="F170LP", grating="G235M")
    expected = truth.point_factor(
        wavelength=geo["wavelength"],
        x=geo["x"],
        y=geo["y"],
        detector="NRS1",
        **_slit_kw(slit),
        shutter_config="11x",
        source_xpos=slit.source_xpos,
        source_ypos=slit.source_ypos,
    )
    np.testing.assert_allclose(slit.data, expected, rtol=RTOL)
    assert slit.meta.bunit_data == "MJy"


def test_apcorr_usable_by_extract_1d(refs_nrs1):
    """jwst's ApCorrPhase builds its interpolator from the file and returns unity."""
    from jwst.extract_1d.apply_apcorr import ApCorrPhase, select_apcorr

    _, paths = refs_nrs1
    model, _ = _make_input("1x1", source_type="POINT")
    assert select_apcorr(model) is ApCorrPhase
    with datamodels.NrsMosApcorrModel(paths["apcorr"]) as ref:
        apcorr = ApCorrPhase(model, ref.apcorr_table, ref.sizeunit, location=None, slit_name="7")
    value = apcorr.apcorr_func(2.5, 5.0, 0.3)
    np.testing.assert_allclose(value, 1.0)
