"""MOS vetting with 1, 2 and 3 background slitlets: no majority needed.

Synthetic G235M exposures on NRS1 through jwst's real front end and the
plus step's real nested calibration, with one background slitlet holding an
undeclared source (30 % of the sky at its peak, Gaussian along the slit) or
all clean.
"""

import logging

import asdf
import numpy as np
import pytest

from jwst_mbkg_plus import MasterBackgroundMosPlusStep
from jwst_mbkg_plus.synthetic import extract_slits

SCENES = {
    # id: (background slitlets, contaminated, noise)
    "one_contaminated": (1, 1, 0.05),
    "one_clean": (1, 0, 0.05),
    "two_contaminated": (2, 1, 0.05),
    "two_contaminated_noisy": (2, 1, 0.2),
    "two_clean": (2, 0, 0.05),
    "three_contaminated": (3, 1, 0.05),
    "three_clean": (3, 0, 0.05),
}


@pytest.fixture(scope="module", params=list(SCENES))
def scene_run(request, synthetic_instrument, tmp_path_factory):
    """Build one scene, run the plus step, return its output, QA record, logs and truth."""
    from jwst_mbkg_plus.synthetic import Scene, load_truth, local_crds_context, make_exposure

    n_background, n_contaminated, noise = SCENES[request.param]
    scene = Scene(n_background=n_background, n_point=2, n_extended=1, detectors=("NRS1",),
                  noise_fraction=noise, n_contaminated=n_contaminated, seed=7)
    folder = tmp_path_factory.mktemp(request.param)
    exposure = make_exposure(scene, folder, instrument=synthetic_instrument)
    records = []
    handler = logging.Handler(level=logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("jwst_mbkg_plus")
    logger.addHandler(handler)
    try:
        with local_crds_context(synthetic_instrument):
            slits = extract_slits(exposure.rate_path)
            result = MasterBackgroundMosPlusStep.call(slits, save_qa=True,
                                                      output_dir=str(folder))
    finally:
        logger.removeHandler(handler)
    with asdf.open(next(folder.glob("*_mbkgqa.asdf"))) as af:
        qa = af["master_background_qa"]
        qa = {k: qa[k] for k in qa}
    return {
        "name": request.param,
        "slits": slits,
        "result": result,
        "qa": qa,
        "truth": load_truth(exposure.truth_path),
        "warnings": [r.getMessage() for r in records if r.levelno >= logging.WARNING],
    }


def _source_residuals(run):
    """Per source slitlet, the median of subtracted / true background - 1."""
    truth, out = run["truth"], []
    for before, after in zip(run["slits"].slits, run["result"].slits, strict=True):
        if truth.slit(before.name)["kind"] == "background":
            continue
        true_rate = truth.cutout(before.name, "background", before) / truth.cutout(
            before.name, "factor", before
        )
        subtracted = before.data - after.data
        ok = np.isfinite(subtracted) & np.isfinite(true_rate) & (true_rate > 0)
        out.append(float(np.median(subtracted[ok] / true_rate[ok] - 1)))
    return np.array(out)


def _label_ids(labels):
    return {int(str(label).split(":")[0]) for label in labels}


def test_status_complete(scene_run):
    assert scene_run["result"].meta.cal_step.master_background == "COMPLETE"


def test_contaminated_slitlet_rejected_or_flagged(scene_run):
    truth, vetting = scene_run["truth"], scene_run["qa"]["vetting"]
    rejected = _label_ids(vetting["rejected"])
    flagged = _label_ids(vetting.get("flagged", {}))
    n_background = SCENES[scene_run["name"]][0]
    if n_background == 1:
        # Nothing to replace it with: flagged by its profile, kept, and warned about.
        assert rejected == set()
        assert flagged == set(truth.contaminated)
        if truth.contaminated:
            assert any("source along the slit" in w and "exclude_slits" in w
                       for w in scene_run["warnings"])
            (rows,) = vetting["masked_rows"].values()
            slit = next(s for s in scene_run["slits"].slits if int(s.name) in truth.contaminated)
            assert 0 < len(rows) < 0.75 * slit.data.shape[0]
        else:
            assert "masked_rows" not in vetting
    else:
        assert rejected == set(truth.contaminated)
        assert flagged == set()
        for label in vetting["rejected"]:
            assert any(label in w and "Rejected" in w for w in scene_run["warnings"])
    # Every tested slitlet's row profile is recorded.
    assert set(vetting["profiles"]) <= set(scene_run["qa"]["slits"])


def test_source_slitlets_unbiased(scene_run):
    # With a single contaminated slitlet its source rows are left out (stock: +10 %).
    residuals = _source_residuals(scene_run)
    assert np.max(np.abs(residuals)) <= 0.003, residuals


def test_clean_pair_compared(scene_run):
    vetting = scene_run["qa"]["vetting"]
    if scene_run["name"] == "two_clean":
        assert vetting["method"] == "pair"
        assert vetting["pair"]["verdict"] == "consistent"
        assert not any("differ" in w for w in scene_run["warnings"])
    elif scene_run["name"] == "three_contaminated":
        # The source found, the two left are compared with each other.
        assert vetting["pair"]["verdict"] == "consistent"


def _two_spectra(level, contamination=0.0, seed=0, n=1500):
    """Two binned background spectra: a ramp with one line, 1 % noise per point."""
    rng = np.random.default_rng(seed)
    wave = np.linspace(1.7, 3.1, n)
    t = (wave - 1.7) / 1.4
    sky = (1 + 0.5 * t) * (1 + 0.3 * np.exp(-0.5 * ((t - 0.4) / 0.004) ** 2))
    flux = np.vstack([sky, sky * (1 + level)])
    flux[1] += contamination * (1 + 0.5 * t)
    sigma = 0.01 * sky
    return wave, flux + rng.normal(size=flux.shape) * sigma, np.vstack([sigma**2] * 2)


def test_pair_of_spectra_verdicts_in_the_record(caplog):
    """The MOS engine's pair vetting: rejected and named, undecided and warned, or agreed."""
    from jwst_mbkg_plus.mos import vetting
    from jwst_mbkg_plus.mos.options import MasterOptions

    options = MasterOptions()
    labels = ["1:a", "2:b"]
    wave, flux, var = _two_spectra(0.0, contamination=0.3)
    accepted, vet = vetting.vet_background_spectra(flux, var, labels, options, {}, wave)
    assert accepted.tolist() == [True, False]
    assert vet["pair"]["verdict"] == "contaminated"
    assert vet["pair"]["contaminated"] == "2:b"
    assert vet["rejected"]["2:b"].startswith("rejected: additive excess")

    for level, verdict in ((0.03, "consistent"), (0.12, "undecided")):
        wave, flux, var = _two_spectra(level, seed=1)
        accepted, vet = vetting.vet_background_spectra(flux, var, labels, options, {}, wave)
        assert accepted.all()
        assert vet["pair"]["verdict"] == verdict
        assert vet["pair"]["brighter"] == "2:b"
        assert vet["pair"]["level_difference"] == pytest.approx(level, abs=0.005)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="jwst_mbkg_plus"):
            vetting.report_vetting({"vetting": vet}, {}, {})
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        if verdict == "undecided":
            assert len(warnings) == 1
            assert "2:b is brighter by 12" in warnings[0]
            assert "exclude_slits" in warnings[0] and "bkg_slits" in warnings[0]
        else:
            assert warnings == []
