"""Visit master from a spec2 association: calwebb_spec2_plus with visit_companions='association'."""

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.input_checks import ParameterError
from jwst_mbkg_plus.mos.companions import (
    CompanionCache,
    companions_in_visit,
    is_association_keyword,
    resolve_companions,
)

#: Steps after the master background that the checks here do not need.
_FAST = {"resample_spec": {"skip": True}, "extract_1d": {"skip": True}}


def _header_file(path, *, visit="001", detector="NRS1", exposure="00001"):
    header = fits.Header({"PROGRAM": "09999", "OBSERVTN": "001", "VISIT": visit,
                          "VISITGRP": "01", "SEQ_ID": "1", "ACT_ID": "01",
                          "EXPOSURE": exposure, "DETECTOR": detector})
    fits.PrimaryHDU(header=header).writeto(path)
    return path


def _this_exposure():
    model = datamodels.MultiSlitModel()
    obs = model.meta.observation
    obs.program_number, obs.observation_number, obs.visit_number = "09999", "001", "001"
    obs.visit_group, obs.sequence_id, obs.activity_id = "01", "1", "01"
    obs.exposure_number = "00002"
    model.meta.instrument.detector = "NRS1"
    model.meta.filename = "jw09999001001_01101_00002_nrs1_srctype.fits"
    return model


def test_companions_in_visit_keeps_one_visit_and_detector(tmp_path):
    members = [
        _header_file(tmp_path / "a_rate.fits", exposure="00001"),
        _header_file(tmp_path / "self_rate.fits", exposure="00002"),  # this exposure
        _header_file(tmp_path / "c_rate.fits", exposure="00003"),
        _header_file(tmp_path / "d_rate.fits", detector="NRS2"),
        _header_file(tmp_path / "e_rate.fits", visit="002"),
    ]
    (tmp_path / "f_rate.fits").write_bytes(b"not a FITS file")
    members.append(tmp_path / "f_rate.fits")
    companions, ignored = companions_in_visit(members, _this_exposure())
    assert [p.name for p in companions] == ["a_rate.fits", "c_rate.fits"]
    reasons = {p.name: r for p, r in ignored}
    assert set(reasons) == {"d_rate.fits", "e_rate.fits", "f_rate.fits"}
    assert "detector NRS2" in reasons["d_rate.fits"]
    assert "visit jw09999001002" in reasons["e_rate.fits"]
    assert "no visit or detector" in reasons["f_rate.fits"]
    # An association file given by parameter: the same choice.
    asn = tmp_path / "x_asn.json"
    asn.write_text(json.dumps({"products": [
        {"name": p.stem, "members": [{"expname": p.name, "exptype": "science"}]}
        for p in members]}))
    paths, left = resolve_companions([str(asn)], _this_exposure())
    assert [p.name for p in paths] == ["a_rate.fits", "c_rate.fits"]
    assert len(left) == 3


def test_association_keyword():
    assert is_association_keyword(["association"])
    assert is_association_keyword(["Association "])
    assert not is_association_keyword(None)
    assert not is_association_keyword(["association", "a_rate.fits"])
    with pytest.raises(ValueError, match="needs the association"):
        resolve_companions(["association"], _this_exposure())
    with pytest.raises(ValueError, match="only entry"):
        resolve_companions(["a_rate.fits", "association"], _this_exposure())


def test_keyword_a_string_and_standalone_refusal():
    """A bare string is one entry (force_list); the standalone step refuses the keyword."""
    from jwst_mbkg_plus.mos.step import MasterBackgroundMosPlusStep

    step = MasterBackgroundMosPlusStep(visit_companions="association")
    assert step.visit_companions == ["association"]
    with pytest.raises(ParameterError, match="association file"):
        step.run(_this_exposure())
    step = MasterBackgroundMosPlusStep(visit_companions=["association", "a_rate.fits"])
    with pytest.raises(ParameterError, match="alone"):
        step.run(_this_exposure())


def test_cache_releases_finished_groups():
    class _Model:
        closed = False

        def close(self):
            self.closed = True

    cache = CompanionCache()
    kept, done = _Model(), _Model()
    cache._entries = {"a": (("v", "NRS1"), ("a", kept)), "b": (("v", "NRS2"), ("b", done))}
    cache.release({("v", "NRS1")})
    assert len(cache) == 1 and done.closed and not kept.closed
    cache.close()
    assert len(cache) == 0 and kept.closed


# ---------------------------------------------------------------------------
# The pipeline on a synthetic visit: one detector, 3 nods.
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nods(synthetic_instrument, tmp_path_factory):
    """3 nods on NRS1, 3 background slitlets, 5% noise, sky 0.99 / 1.00 / 1.01, and their asn."""
    from jwst.associations import asn_from_list
    from jwst.associations.lib.rules_level2_base import DMSLevel2bBase

    from jwst_mbkg_plus.synthetic import Scene
    from jwst_mbkg_plus.synthetic.visit import make_visit

    scene = Scene(n_background=3, n_point=1, n_extended=0, detectors=("NRS1",),
                  noise_fraction=0.05, seed=41)
    visit = make_visit(scene, tmp_path_factory.mktemp("asn_visit"),
                       instrument=synthetic_instrument, n_nods=3, drift=0.01)
    rates = [visit.rate_paths[(k, "NRS1")] for k in (1, 2, 3)]
    asn = asn_from_list.asn_from_list([p.name for p in rates], rule=DMSLevel2bBase,
                                      product_name="visit")
    _, serialized = asn.dump(format="json")
    asn_path = visit.folder / "jw09999-o001_spec2_00001_asn.json"
    asn_path.write_text(serialized)
    return visit, rates, asn_path


def _run(synthetic_instrument, data, out, companions):
    from jwst_mbkg_plus.pipelines import Spec2PipelinePlus
    from jwst_mbkg_plus.synthetic import local_crds_context

    steps = {**_FAST, "master_background_mos": {
        "skip": False, "visit_companions": companions, "save_background": True}}
    out.mkdir(exist_ok=True)
    with local_crds_context(synthetic_instrument):
        results = Spec2PipelinePlus.call(str(data), steps=steps, output_dir=str(out),
                                         save_results=False)
    return list(results)


@pytest.fixture(scope="module")
def association_run(nods, synthetic_instrument, tmp_path_factory):
    _, _, asn_path = nods
    out = tmp_path_factory.mktemp("asn_out")
    return _run(synthetic_instrument, asn_path, out, "association"), out


def _stem(rate):
    return rate.name.removesuffix("_rate.fits")


def _product(results, rate):
    return next(m for m in results if Path(m.meta.filename).name.startswith(_stem(rate)))


def test_association_qa_names_every_exposure(association_run, nods):
    visit, rates, _ = nods
    results, _ = association_run
    assert len(results) == 3
    stems = {_stem(p) for p in rates}
    mean_level = np.mean(visit.levels)
    for k, rate in enumerate(rates):
        model = _product(results, rate)
        assert model.meta.cal_step.master_background == "COMPLETE"
        qa = model.meta.master_background_qa.instance["visit"]
        assert qa["exposure"] == _stem(rate)
        assert qa["n_exposures"] == 3
        assert set(qa["exposures"]) == stems
        assert set(qa["slits_used"]) == stems
        assert all(len(v) == 3 for v in qa["slits_used"].values())
        assert qa["ignored"] == {}
        assert qa["level"] == pytest.approx(visit.levels[k] / mean_level, abs=0.002)


def test_association_master_matches_the_truth(association_run, nods):
    """Each nod's master against its injected (drifted) sky, to the master's own noise."""
    from jwst_mbkg_plus.synthetic import load_truth

    visit, rates, _ = nods
    results, out = association_run
    for k, rate in enumerate(rates, start=1):
        level_error = _product(results, rate).meta.master_background_qa.instance[
            "visit"]["level_error"]
        with datamodels.open(out / f"{_stem(rate)}_masterbg1d.fits") as m:
            table = m.spec[0].spec_table
            wave = np.asarray(table["WAVELENGTH"], float)
            sb = np.asarray(table["SURF_BRIGHT"], float)
            err = np.asarray(table["SB_ERROR"], float)
        twave, tsb = load_truth(visit.truth_paths[(k, "NRS1")]).background_1d()
        truth = np.interp(wave, twave, tsb)
        good = np.isfinite(sb) & np.isfinite(err) & (truth > 0)
        rel = sb[good] / truth[good] - 1
        # 5 sigma of: the median over n wavelengths of the master's own noise
        # (its SB_ERROR, about 0.4% per wavelength here: 0.012% for the median)
        # and the fitted level's error (about 0.02%), together about 0.12%.
        sigma_median = 1.2533 * np.median(err[good] / truth[good]) / np.sqrt(good.sum())
        tolerance = 5 * np.hypot(sigma_median, level_error)
        assert abs(np.median(rel)) < tolerance, (k, np.median(rel), tolerance)
        assert 0 < tolerance < 2e-3  # not vacuous: well inside the 1% drift between nods


def test_association_equals_companions_by_parameter(association_run, nods,
                                                    synthetic_instrument, tmp_path):
    """Nod 2 with nods 1 and 3 given by parameter: the same product as from the association."""
    _, rates, _ = nods
    results, out = association_run
    by_param = _run(synthetic_instrument, rates[1], tmp_path / "param",
                    [str(rates[0]), str(rates[2])])
    a, b = _product(results, rates[1]), _product(by_param, rates[1])
    qa_a = a.meta.master_background_qa.instance["visit"]
    qa_b = b.meta.master_background_qa.instance["visit"]
    assert qa_a["exposures"] == qa_b["exposures"]
    assert qa_a["level"] == pytest.approx(qa_b["level"], rel=1e-12)
    assert len(a.slits) == len(b.slits)
    for sa, sb in zip(a.slits, b.slits, strict=True):
        np.testing.assert_allclose(sa.data, sb.data, rtol=1e-6, atol=0, equal_nan=True)
        np.testing.assert_array_equal(sa.dq, sb.dq)
    name = f"{_stem(rates[1])}_masterbg1d.fits"
    with datamodels.open(out / name) as ma, datamodels.open(tmp_path / "param" / name) as mb:
        np.testing.assert_allclose(ma.spec[0].spec_table["SURF_BRIGHT"],
                                   mb.spec[0].spec_table["SURF_BRIGHT"], rtol=1e-6,
                                   equal_nan=True)


def test_standalone_step_with_an_association_file(association_run, nods, synthetic_instrument,
                                                  tmp_path):
    """The MOS plus step alone, given the association file: same companions, NRS2 left out."""
    from jwst_mbkg_plus.mos.step import MasterBackgroundMosPlusStep
    from jwst_mbkg_plus.synthetic import extract_slits, local_crds_context

    _, rates, _ = nods
    results, _ = association_run
    # A member of the other detector (a header is all the choice reads).
    other = _header_file(tmp_path / rates[0].name.replace("nrs1", "nrs2"), detector="NRS2")
    asn = tmp_path / "with_nrs2_asn.json"
    asn.write_text(json.dumps({"products": [
        {"name": _stem(p), "members": [{"expname": str(p), "exptype": "science"}]}
        for p in [*rates, other]]}))
    with local_crds_context(synthetic_instrument):
        slits = extract_slits(rates[1])
        out = MasterBackgroundMosPlusStep.call(slits, visit_companions=str(asn))
    qa = out.meta.master_background_qa.instance["visit"]
    expected = _product(results, rates[1]).meta.master_background_qa.instance["visit"]
    assert qa["exposures"] == expected["exposures"]
    assert qa["level"] == pytest.approx(expected["level"], rel=1e-9)
    assert list(qa["ignored"]) == [other.name]
    assert "detector NRS2" in qa["ignored"][other.name]


def test_a_companion_given_twice_joins_once(tmp_path, caplog, monkeypatch):
    a = _header_file(tmp_path / "a_rate.fits", exposure="00001")
    c = _header_file(tmp_path / "c_rate.fits", exposure="00003")
    asn = tmp_path / "x_asn.json"
    asn.write_text(json.dumps({"products": [
        {"name": "a", "members": [{"expname": "a_rate.fits", "exptype": "science"}]}]}))
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING"):
        paths, _ = resolve_companions([str(a), "a_rate.fits", str(asn), str(c)],
                                      _this_exposure())
    assert [p.name for p in paths] == ["a_rate.fits", "c_rate.fits"]
    assert "Visit companion" in caplog.text and "used once" in caplog.text
