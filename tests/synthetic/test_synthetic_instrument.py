"""Synthetic instrument: reference files, local CRDS context and caching."""

import json

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.synthetic import build_instrument, local_crds_context
from jwst_mbkg_plus.synthetic.crds_context import NA_REFTYPES, RefRule, write_crds_context
from jwst_mbkg_plus.synthetic.instrument import (
    GRATINGS,
    N_COLUMNS,
    N_ROWS,
    is_prism,
    shutter_center_msa,
    spectrum_pixel_range,
)
from jwst_mbkg_plus.synthetic.instrument_refs import build_instrument_refs

_MODELS = {
    "fpa": datamodels.FPAModel,
    "camera": datamodels.CameraModel,
    "collimator": datamodels.CollimatorModel,
    "msa": datamodels.MSAModel,
    "ote": datamodels.OTEModel,
    "wavelengthrange": datamodels.WavelengthrangeModel,
}


@pytest.fixture(scope="module")
def wcs_refs(tmp_path_factory):
    return build_instrument_refs(tmp_path_factory.mktemp("wcs_refs"))


@pytest.mark.parametrize("reftype", sorted(_MODELS))
def test_wcs_reference_files_validate_strictly(wcs_refs, reftype):
    with _MODELS[reftype](wcs_refs[reftype], strict_validation=True) as model:
        assert model.meta.instrument.name == "NIRSPEC"
        assert model.meta.reftype == reftype


@pytest.mark.parametrize("grating", sorted(GRATINGS))
def test_disperser_and_fore_validate_strictly(wcs_refs, grating):
    with datamodels.DisperserModel(wcs_refs["disperser"][grating], strict_validation=True) as m:
        assert m.meta.instrument.grating == grating
        if is_prism(grating):
            assert m.angle == pytest.approx(GRATINGS[grating]["angle"])
            assert m.kcoef == pytest.approx(GRATINGS[grating]["kcoef"])
            assert m.tilt_y == pytest.approx(GRATINGS[grating]["tilt_y"])
        else:
            assert m.groovedensity == pytest.approx(GRATINGS[grating]["groovedensity"])
    filt = GRATINGS[grating]["filter"]
    with datamodels.FOREModel(wcs_refs["fore"][filt], strict_validation=True) as m:
        assert m.meta.instrument.filter == filt


def test_msa_table_matches_jwst_conventions(wcs_refs):
    """shutter_id - 1 = (column - 1) * 365 + (row - 1); XC/YC zero at row/column 1."""
    from jwst.assign_wcs.nirspec import get_msa_slit_scales

    scales = get_msa_slit_scales(str(wcs_refs["msa"]))
    for q in (1, 2, 3, 4):
        assert scales[q] == pytest.approx((1.35, 1.15))
    with datamodels.MSAModel(str(wcs_refs["msa"])) as msa:
        data = msa.Q3.data
        assert len(data) == N_ROWS * N_COLUMNS
        row, col = 200, 40
        entry = data[(col - 1) * N_ROWS + (row - 1)]
        x, y = msa.Q3.model(entry["XC"], entry["YC"])
        assert (x, y) == pytest.approx(shutter_center_msa(3, row, col))


def test_spectra_are_nirspec_like():
    # The medium-resolution gratings; G395H's spectra are longer than a detector
    # (tests/synthetic/test_synthetic_g395h.py).
    for grating in (g for g in GRATINGS if not is_prism(g) and g.endswith("M")):
        nrs1 = spectrum_pixel_range(3, 300, grating)["NRS1"]
        nrs2 = spectrum_pixel_range(1, 60, grating)["NRS2"]
        for lo, hi in (nrs1, nrs2):
            assert 1000 < hi - lo < 1500
            assert 0 <= lo and hi <= 2047


def _header(detector, filt, grating):
    return {
        "META.INSTRUMENT.NAME": "NIRSPEC",
        "META.INSTRUMENT.DETECTOR": detector,
        "META.INSTRUMENT.FILTER": filt,
        "META.INSTRUMENT.GRATING": grating,
        "META.EXPOSURE.TYPE": "NRS_MSASPEC",
        "META.OBSERVATION.DATE": "2023-02-25",
        "META.OBSERVATION.TIME": "00:00:00",
        "META.INSTRUMENT.LAMP_STATE": "NONE",
    }


@pytest.mark.parametrize(
    ("detector", "filt", "grating"), [("NRS1", "F170LP", "G235M"), ("NRS2", "F290LP", "G395M")]
)
def test_local_context_selects_the_right_files(synthetic_instrument, detector, filt, grating):
    import crds

    reftypes = [
        "disperser",
        "fore",
        "fpa",
        "msa",
        "dflat",
        "sflat",
        "fflat",
        "photom",
        "area",
        "pathloss",
        "barshadow",
        "wavelengthrange",
        "msaoper",
        "extract1d",
        "apcorr",
    ]
    with local_crds_context(synthetic_instrument):
        best = crds.getreferences(
            _header(detector, filt, grating),
            reftypes=reftypes + list(NA_REFTYPES[:4]),
            observatory="jwst",
        )
    inst = synthetic_instrument
    wcs = inst.wcs_refs_for(filter=filt, grating=grating)
    for reftype in ("disperser", "fore", "fpa", "msa", "wavelengthrange", "msaoper"):
        assert best[reftype] == str(wcs[reftype])
    cal = inst.cal_refs[(detector, filt, grating)]
    for reftype in (
        "dflat",
        "sflat",
        "fflat",
        "photom",
        "area",
        "pathloss",
        "barshadow",
        "extract1d",
        "apcorr",
    ):
        assert best[reftype] == str(cal[reftype]), reftype
    for reftype in NA_REFTYPES[:4]:
        # crds' spelling of 'N/A'; stpipe turns it into "N/A".
        assert best[reftype].upper() == "NOT FOUND N/A"


def test_instrument_is_cached(synthetic_instrument):
    again = build_instrument(synthetic_instrument.crds_path)
    assert again.build_seconds == 0.0
    assert again.wcs_refs == synthetic_instrument.wcs_refs
    stamp = json.loads((synthetic_instrument.crds_path / "synthetic_instrument.json").read_text())
    assert stamp["params"]["gratings"] == list(GRATINGS)


def test_build_refuses_a_foreign_crds_folder(tmp_path):
    (tmp_path / "mappings" / "jwst").mkdir(parents=True)
    (tmp_path / "mappings" / "jwst" / "jwst_1234.pmap").write_text("not ours")
    with pytest.raises(ValueError, match="not a synthetic instrument folder"):
        build_instrument(tmp_path)
    assert (tmp_path / "mappings" / "jwst" / "jwst_1234.pmap").exists()


def test_context_rules_are_checked(tmp_path):
    ref = tmp_path / "elsewhere.fits"
    ref.write_text("")
    with pytest.raises(ValueError, match="is not in"):
        write_crds_context(tmp_path, {"dflat": [RefRule(ref, DETECTOR="NRS1")]})
    with pytest.raises(ValueError, match="unsupported match keys"):
        RefRule(ref, PUPIL="CLEAR")


def test_wavelength_dispersion_matches_grating_equation():
    """Analytic placement helper: ~1.1 nm/px for G235M and ~1.8 nm/px for G395M."""
    for grating, expected in (("G235M", 1.1e-3), ("G395M", 1.8e-3)):
        lo, hi = spectrum_pixel_range(3, 300, grating)["NRS1"]
        wmin, wmax = (w * 1e6 for w in GRATINGS[grating]["wrange"])
        assert (wmax - wmin) / (hi - lo) == pytest.approx(expected, rel=0.25)
        assert np.isfinite(lo)


def test_geometry_is_anchored_to_real_nirspec(synthetic_instrument, shared_data, tmp_path):
    """Dispersion (G395M) and slit scale/orientation (NRS2) close to real NIRSpec data."""
    from jwst_mbkg_plus.synthetic import Scene
    from jwst_mbkg_plus.synthetic.exposure import load_synthetic_wcs, slit_geometry
    from jwst_mbkg_plus.synthetic.msa_file import write_msa_file

    real = shared_data / "pid2736_o007" / "jw02736-o007_s06355_nirspec_f290lp-g395m_x1d.fits"
    with datamodels.open(real) as x1d:
        real_dispersion = np.median(np.diff(x1d.spec[0].spec_table["WAVELENGTH"]))
    cutout = shared_data / "ceers_1345_o062_slit138"
    with datamodels.open(sorted(cutout.glob("*.fits"))[0]) as slit:
        x, y = np.meshgrid(*(np.arange(n) for n in slit.data.shape[::-1]))
        _, ys, _ = slit.meta.wcs.get_transform("detector", "slit_frame")(x, y)
        real_dslit_dy = np.nanmedian(np.diff(ys, axis=0))

    scene = Scene(n_background=2, n_point=0, n_extended=0, grating="G395M", detectors=("NRS2",))
    msa = write_msa_file(tmp_path / "msa.fits", scene.layout())
    refs = synthetic_instrument.wcs_refs_for(filter="F290LP", grating="G395M")
    model = load_synthetic_wcs(scene, detector="NRS2", refs=refs, msa_path=msa)
    slits = model.meta.wcs.get_transform("gwa", "slit_frame").slits
    for slit in slits:
        geo = slit_geometry(model, slit)
        dispersion = np.nanmedian(np.diff(geo["wavelength"], axis=1))
        dslit_dy = np.nanmedian(np.diff(geo["slit_y"], axis=0))
        assert dispersion == pytest.approx(real_dispersion, rel=0.15)
        assert dslit_dy == pytest.approx(real_dslit_dy, rel=0.15)  # same sign and scale
