"""MasterBackgroundMosPlusStep on synthetic NIRSpec MOS exposures with a known background.

The slits come from jwst's real AssignWcs -> MSAFlagOpen -> Extract2d -> SrcType
chain on the project's synthetic instrument; the step runs its real nested
flat_field, pathloss, barshadow and photom through the local CRDS context.
"""

import asdf
import numpy as np
import pytest
from comparisons import max_plain_relative_difference
from scipy.ndimage import binary_dilation
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus import (
    JWST_EQUIVALENT_SETTINGS,
    MasterBackgroundMosPlusStep,
    Spec2PipelinePlus,
)
from jwst_mbkg_plus.jwst_internals import STATUS_FAILED
from jwst_mbkg_plus.synthetic import extract_slits


def _true_rate(truth, slit):
    return truth.cutout(slit.name, "background", slit) / truth.cutout(slit.name, "factor", slit)


@pytest.fixture(scope="module")
def uniform_exposure(synthetic_instrument, tmp_path_factory):
    """A noiseless exposure whose background is the same everywhere on the MSA."""
    from jwst_mbkg_plus.synthetic import Scene, make_exposure

    scene = Scene(n_background=4, n_point=1, n_extended=1, detectors=("NRS1",), seed=21)
    folder = tmp_path_factory.mktemp("uniform_mos")
    return make_exposure(scene, folder, instrument=synthetic_instrument)


@pytest.fixture(scope="module")
def noiseless(synthetic_instrument, uniform_exposure):
    """Extracted slits of the noiseless exposure, the plus result and the truth."""
    from jwst_mbkg_plus.synthetic import load_truth, local_crds_context

    exposure = uniform_exposure
    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_path)
        before = slits.copy()
        result = MasterBackgroundMosPlusStep.call(slits)
    return {
        "slits": slits,
        "before": before,
        "result": result,
        "truth": load_truth(exposure.truth_path),
    }


@pytest.fixture(scope="module")
def noisy(synthetic_instrument, noisy_mos_exposure, tmp_path_factory):
    """The noisy exposure with hot pixels and a contaminated background slitlet."""
    from jwst_mbkg_plus.synthetic import load_truth, local_crds_context

    _, exposure = noisy_mos_exposure
    out = tmp_path_factory.mktemp("noisy_products")
    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_path)
        result = MasterBackgroundMosPlusStep.call(
            slits, save_background=True, output_dir=str(out)
        )
    with asdf.open(next(out.glob("*_mbkgqa.asdf"))) as af:
        qa = af["master_background_qa"]
        qa = {k: qa[k] for k in qa}
    return {
        "slits": slits,
        "result": result,
        "truth": load_truth(exposure.truth_path),
        "qa": qa,
        "out": out,
    }


def test_noiseless_background_recovered_in_every_slit(noiseless):
    truth = noiseless["truth"]
    assert noiseless["result"].meta.cal_step.master_background == "COMPLETE"
    for before, after in zip(noiseless["slits"].slits, noiseless["result"].slits, strict=True):
        true_rate = _true_rate(truth, before)
        subtracted = before.data - after.data
        good = np.isfinite(subtracted) & np.isfinite(true_rate) & (true_rate > 0)
        assert good.sum() > 1000
        residual = np.median(np.abs(subtracted[good] / true_rate[good] - 1))
        assert residual < 1e-3, (before.name, residual)


def test_input_model_untouched(noiseless):
    for a, b in zip(noiseless["slits"].slits, noiseless["before"].slits, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.err, b.err)
        np.testing.assert_array_equal(a.dq, b.dq)
    assert noiseless["slits"].meta.cal_step.master_background is None


def test_no_science_pixel_turned_nan(noiseless):
    for before, after in zip(noiseless["slits"].slits, noiseless["result"].slits, strict=True):
        turned = np.isfinite(before.data) & ~np.isfinite(after.data)
        assert not turned.any(), before.name


def test_contaminated_slit_rejected_and_bias_small(noisy):
    truth = noisy["truth"]
    rejected = noisy["qa"]["vetting"]["rejected"]
    rejected_ids = {int(label.split(":")[0]) for label in rejected}
    assert rejected_ids == set(truth.contaminated)
    with datamodels.open(next(noisy["out"].glob("*_masterbg1d.fits"))) as master:
        table = master.spec[0].spec_table
        wave, sb = np.asarray(table["WAVELENGTH"]), np.asarray(table["SURF_BRIGHT"])
        assert np.all(np.asarray(table["N_INPUT"]) >= 1)
    wave_t, sb_t = truth.background_1d()
    bias = np.median(sb / np.interp(wave, wave_t, sb_t) - 1)
    assert abs(bias) < 0.005


def test_hot_pixels_do_not_leak_into_science(noisy):
    truth = noisy["truth"]
    assert sum(len(truth.hot_pixel_positions(n)) for n in truth.background_names()) > 0
    for before, after in zip(noisy["slits"].slits, noisy["result"].slits, strict=True):
        if truth.slit(before.name)["kind"] == "background":
            continue
        true_rate = _true_rate(truth, before)
        subtracted = before.data - after.data
        with np.errstate(divide="ignore", invalid="ignore"):
            over = (subtracted - true_rate) / after.err
        good = np.isfinite(over)
        assert np.max(over[good]) < 5, before.name


def test_errors_include_master_background(noisy):
    truth = noisy["truth"]
    pulls, col_pulls = [], []
    for before, after in zip(noisy["slits"].slits, noisy["result"].slits, strict=True):
        finite = np.isfinite(after.err)
        assert np.all(after.err[finite] >= before.err[finite] * (1 - 1e-6))
        if truth.slit(before.name)["kind"] != "background":
            continue
        if int(before.name) in truth.contaminated:
            continue
        use = np.isfinite(after.data) & np.isfinite(_true_rate(truth, before))
        # Each hot pixel and its 8 neighbours.
        use &= ~binary_dilation(truth.hot_pixel_mask(before), np.ones((3, 3), bool))
        pulls.append(after.data[use] / after.err[use])
        column = np.where(use, after.data, 0.0).sum(axis=0)
        column_var = np.where(use, after.err.astype(float) ** 2, 0.0).sum(axis=0)
        has = use.sum(axis=0) >= 3
        col_pulls.append(column[has] / np.sqrt(column_var[has]))
    assert np.std(np.concatenate(pulls)) == pytest.approx(1.0, abs=0.05)
    assert np.std(np.concatenate(col_pulls)) == pytest.approx(1.0, abs=0.08)


def test_background_slit_beyond_its_leave_one_out_master(noisy):
    """
    A background slitlet reaching past the other slitlets' wavelengths gets the
    full master there (subtracted, as jwst does), and the QA leaves those pixels out.
    """
    from jwst_mbkg_plus.mos.options import REJECTED_DQ

    qa, truth = noisy["qa"], noisy["truth"]
    beyond = dict(qa["beyond_leave_one_out"])
    assert beyond and all(n > 0 for n in beyond.values())
    names = {label.split(":")[0] for label in beyond}
    for before, after in zip(noisy["slits"].slits, noisy["result"].slits, strict=True):
        if before.name not in names:
            continue
        true_rate = _true_rate(truth, before)
        valid = np.isfinite(before.data) & np.isfinite(true_rate) & ((before.dq & 1) == 0)
        # Nothing of the slitlet is left unsubtracted and flagged (but rejected pixels).
        rejected = (after.dq & REJECTED_DQ) == REJECTED_DQ
        assert not np.any(valid & ~rejected & ((after.dq & 1) != 0)), before.name
        valid &= ~rejected
        rel = (before.data - after.data)[valid] / true_rate[valid] - 1
        assert abs(np.median(rel)) < 0.01, before.name
    residuals = qa["residuals"]
    counted = sum(residuals[label]["n_pixels"] for label in beyond if label in residuals)
    assert counted > 0


def test_products_saved(noisy):
    # The QA record is in the product's metadata too.
    in_meta = noisy["result"].meta.master_background_qa.instance
    assert set(in_meta["vetting"]["rejected"]) == set(noisy["qa"]["vetting"]["rejected"])
    names = sorted(p.name for p in noisy["out"].iterdir())
    for suffix in ("masterbg1d.fits", "masterbg2d.fits", "mbkgqa.asdf"):
        assert any(n.endswith(suffix) for n in names), names
    residuals = noisy["qa"]["residuals"]
    assert residuals
    assert all(abs(r["median_relative"]) < 0.05 for r in residuals.values())


def test_bkg_slits_and_unknown_ids(synthetic_instrument, noiseless):
    from jwst_mbkg_plus.synthetic import local_crds_context

    truth = noiseless["truth"]
    names = [str(n) for n in truth.background_names()]
    with local_crds_context(synthetic_instrument):
        failed = MasterBackgroundMosPlusStep.call(noiseless["slits"], bkg_slits=["no_such_slit"])
        assert failed.meta.cal_step.master_background == STATUS_FAILED
        np.testing.assert_array_equal(failed.slits[0].data, noiseless["slits"].slits[0].data)
        only_two = MasterBackgroundMosPlusStep.call(
            noiseless["slits"], bkg_slits=names[:2], vet_spectra=False
        )
    assert only_two.meta.cal_step.master_background == "COMPLETE"
    # Noiseless and uniform: two background slitlets recover the background too.
    for slit_in, slit_out in zip(noiseless["slits"].slits, only_two.slits, strict=True):
        true_rate = _true_rate(truth, slit_in)
        subtracted = slit_in.data - slit_out.data
        good = np.isfinite(subtracted) & (true_rate > 0) & ((slit_out.dq & 1) == 0)
        assert np.median(np.abs(subtracted[good] / true_rate[good] - 1)) < 1e-3


def test_user_background_from_truth_csv(synthetic_instrument, noiseless, tmp_path):
    from jwst_mbkg_plus.synthetic import local_crds_context

    wave, sb = noiseless["truth"].background_1d()
    csv = tmp_path / "sky.csv"
    rows = [f"{w:.8f},{s:.8e}" for w, s in zip(wave, sb, strict=True)]
    csv.write_text("wave[um],flux[MJy/sr]\n" + "\n".join(rows))
    before = csv.read_bytes()
    with local_crds_context(synthetic_instrument):
        result = MasterBackgroundMosPlusStep.call(noiseless["slits"], user_background=str(csv))
    assert csv.read_bytes() == before
    assert result.meta.background.master_background_file == "sky.csv"
    truth = noiseless["truth"]
    for slit_in, slit_out in zip(noiseless["slits"].slits, result.slits, strict=True):
        true_rate = _true_rate(truth, slit_in)
        subtracted = slit_in.data - slit_out.data
        good = np.isfinite(subtracted) & np.isfinite(true_rate) & (true_rate > 0)
        assert np.median(np.abs(subtracted[good] / true_rate[good] - 1)) < 1e-3


def test_user_background_read_once_with_the_step_overlap(
    synthetic_instrument, noiseless, tmp_path, caplog
):
    """A user spectrum is read once (its warnings logged once), and user_background_min_overlap
    alone decides its coverage: a file covering ~40 % of the range passes at 0.3."""
    from jwst_mbkg_plus.synthetic import local_crds_context

    wave, sb = noiseless["truth"].background_1d()
    keep = wave <= wave.min() + 0.4 * (wave.max() - wave.min())
    text = tmp_path / "sky_no_units.txt"
    text.write_text("\n".join(f"{w:.8f} {s:.8e}" for w, s in zip(wave[keep], sb[keep],
                                                                   strict=True)))
    with local_crds_context(synthetic_instrument), caplog.at_level("WARNING"):
        partial = MasterBackgroundMosPlusStep.call(
            noiseless["slits"], user_background=str(text), user_background_min_overlap=0.3)
    assert partial.meta.cal_step.master_background == "COMPLETE"
    warned = [r.getMessage() for r in caplog.records if "sky_no_units.txt" in r.getMessage()
              and "has no unit" in r.getMessage()]
    assert len(warned) == 2 and len(set(warned)) == 2, warned  # wavelength, surf_bright
    # Where the spectrum covers the slits, it is the truth; elsewhere nothing is subtracted.
    truth = noiseless["truth"]
    recovered = 0
    for slit_in, slit_out in zip(noiseless["slits"].slits, partial.slits, strict=True):
        true_rate = _true_rate(truth, slit_in)
        subtracted = slit_in.data - slit_out.data
        good = (np.isfinite(subtracted) & np.isfinite(true_rate) & (true_rate > 0)
                & ((slit_out.dq & 1) == 0))
        if good.sum() > 100:
            assert np.median(np.abs(subtracted[good] / true_rate[good] - 1)) < 1e-3
            recovered += 1
    assert recovered > 0


@pytest.mark.compat
def test_jwst_equivalent_settings_match_stock(synthetic_instrument, noiseless):
    """
    With jwst-equivalent settings the output and the subtracted background are jwst's.

    Plain relative differences, no tolerance relative to the background: the
    master is un-calibrated with jwst's own float32 arithmetic, so even pixels
    whose background-subtracted value is near zero agree. With
    ``outside_range='nan'`` the NaN pixels and DQ are jwst's too; with 'flag'
    the pixels outside the master's range keep their data (DO_NOT_USE).
    """
    from jwst.master_background import MasterBackgroundMosStep

    from jwst_mbkg_plus.synthetic import local_crds_context

    assert JWST_EQUIVALENT_SETTINGS["outside_range"] == "nan"
    raw = noiseless["slits"]
    with local_crds_context(synthetic_instrument):
        stock = MasterBackgroundMosStep.call(raw)
        plus = MasterBackgroundMosPlusStep.call(raw, **JWST_EQUIVALENT_SETTINGS)
        flagged = MasterBackgroundMosPlusStep.call(
            raw, **{**JWST_EQUIVALENT_SETTINGS, "outside_range": "flag"}
        )
    compared = 0
    for s, p, f, r in zip(stock.slits, plus.slits, flagged.slits, raw.slits, strict=True):
        for out in (p, f):
            assert max_plain_relative_difference(s.data, out.data) <= 1e-5, s.name
            assert max_plain_relative_difference(r.data - s.data, r.data - out.data) <= 1e-5
        np.testing.assert_array_equal(np.isfinite(p.data), np.isfinite(s.data))
        # Bit-identical to the installed jwst's own step (every supported version).
        np.testing.assert_array_equal(p.data, s.data)
        np.testing.assert_array_equal(p.dq, s.dq)
        only_flagged = np.isfinite(f.data) & ~np.isfinite(s.data)
        assert np.all(f.dq[only_flagged] & 1), s.name
        # Background-subtracted values near zero (the background slitlets) included.
        compared += int(np.isfinite(s.data).sum())
    assert compared > 1000


@pytest.mark.compat
def test_spec2_pipeline_plus_notebook_dict(
    synthetic_instrument, small_mos_exposure, tmp_path, monkeypatch
):
    """The whole real chain, with the notebook's steps dict and a parameter file."""
    from jwst_mbkg_plus.synthetic import local_crds_context

    _, exposure = small_mos_exposure
    # export_config writes input_dir: '' (jwst's own pipelines too), so the MSA
    # file is then looked up in the current directory: run from the data folder.
    monkeypatch.chdir(exposure.folder)
    steps = {
        "master_background_mos": {"skip": False, "save_background": True},
        "resample_spec": {"skip": True},
        "extract_1d": {"skip": True},
    }
    params = tmp_path / "spec2_plus.asdf"
    Spec2PipelinePlus(steps=steps).export_config(params)
    with local_crds_context(synthetic_instrument):
        result = Spec2PipelinePlus.call(
            str(exposure.rate_paths["NRS1"]), config_file=str(params), output_dir=str(tmp_path)
        )
    model = result[0] if isinstance(result, list) else result
    assert model.meta.cal_step.master_background == "COMPLETE"
    assert any(p.name.endswith("_masterbg1d.fits") for p in tmp_path.iterdir())
    assert any(p.name.endswith("_mbkgqa.asdf") for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("wave[um],flux[Jy]\n" + "\n".join(f"{2 + i / 10},{1 + i}" for i in range(10)),
         "point-source flux density"),
        ("wave,flux\n" + "\n".join(f"{0.5 + i / 100},1.0" for i in range(10)),
         "of the science range"),
        ("lambda,other\n1,2\n3,4\n", "no surface-brightness column"),
    ],
)
def test_bad_user_background_fails_cleanly(
    synthetic_instrument, noiseless, tmp_path, caplog, content, message
):
    from jwst_mbkg_plus.synthetic import local_crds_context

    path = tmp_path / "bad_sky.csv"
    path.write_text(content)
    before = path.read_bytes()
    with local_crds_context(synthetic_instrument):
        result = MasterBackgroundMosPlusStep.call(noiseless["slits"], user_background=str(path))
    assert result.meta.cal_step.master_background == STATUS_FAILED
    assert message in caplog.text and "bad_sky.csv" in caplog.text
    assert path.read_bytes() == before
    for a, b in zip(result.slits, noiseless["before"].slits, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


# --------------------------------------------------------------------------- QA and DQ flags


def _vetted_out(qa):
    return {int(label.split(":")[0]) for label in qa["vetting"]["rejected"]}


def test_qa_pulls_are_robust_and_count_the_hot_pixels(noisy):
    """The recorded pull spread measures the error model, not the hot pixels left in."""
    qa, truth = noisy["qa"], noisy["truth"]
    assert qa["pulls"]["pixels"].startswith("valid pixels not rejected")
    residuals = qa["residuals"]
    used = [s for s in noisy["result"].slits
            if truth.slit(s.name)["kind"] == "background"
            and int(s.name) not in _vetted_out(qa)]
    assert len(used) == 5
    for slit_in, slit in zip(noisy["slits"].slits, noisy["result"].slits, strict=True):
        if slit not in used:
            continue
        record = next(v for k, v in residuals.items() if k.split(":")[0] == slit.name)
        # The error model, per pixel and per column sum (the master's samples'
        # covariance along the column), and ERR against what it is when right.
        assert record["pull_spread"] == pytest.approx(1.0, abs=0.05), slit.name
        # One slitlet's column spread is known to its standard error (0.058 for
        # 400 columns); the pooled one below is held to 1 +/- 0.05.
        assert abs(record["column_pull_spread"] - 1) < max(
            0.05, 3 * record["column_pull_spread_error"]), slit.name
        assert record["pull_outlier_fraction"] < 1e-3
        assert record["err_pull_spread"] / record["expected_err_pull_spread"] == pytest.approx(
            1.0, abs=0.05), slit.name
        assert (record["err_column_pull_spread"] / record["expected_err_column_pull_spread"]
                == pytest.approx(1.0, abs=0.05)), slit.name
        # Every injected hot pixel with data was rejected (and counted).
        hot = truth.hot_pixel_mask(slit) & np.isfinite(slit_in.data) & ((slit_in.dq & 1) == 0)
        assert hot.sum() >= 2
        assert record["rejected_pixels"] >= hot.sum()
        # The plain std over the same slit with its hot pixels is far from 1:
        # the record would measure them, had it used the plain std on all pixels.
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = slit.data / slit.err
        everything = np.isfinite(pull) & ((slit_in.dq & 1) == 0)
        assert np.std(pull[everything]) > 2.0
    assert qa["pull_summary"]["n_groups"] == 5
    assert qa["pull_summary"]["pull_spread"] == pytest.approx(1.0, abs=0.05)
    assert qa["column_pull_summary"]["pull_spread"] == pytest.approx(1.0, abs=0.05)
    assert qa["err_pull_summary"]["n_pixels"] == qa["pull_summary"]["n_pixels"]


def test_rejected_hot_pixels_flagged_in_dq(noisy):
    """flag_rejected (default): rejected hot pixels carry OUTLIER + DO_NOT_USE, nothing else."""
    from jwst_mbkg_plus.mos.options import REJECTED_DQ

    qa, truth = noisy["qa"], noisy["truth"]
    n_hot = n_clean = n_clean_flagged = n_flagged = 0
    for slit_in, slit in zip(noisy["slits"].slits, noisy["result"].slits, strict=True):
        new = ((slit.dq & REJECTED_DQ) == REJECTED_DQ) & ((slit_in.dq & REJECTED_DQ) != REJECTED_DQ)
        n_flagged += int(new.sum())
        if truth.slit(slit.name)["kind"] != "background" or int(slit.name) in _vetted_out(qa):
            # Source slitlets and a background slitlet rejected as a whole: not flagged.
            assert not new.any(), slit.name
            continue
        valid = np.isfinite(slit_in.data) & ((slit_in.dq & 1) == 0)
        hot = truth.hot_pixel_mask(slit) & valid
        assert new[hot].all(), slit.name
        n_hot += int(hot.sum())
        n_clean += int((valid & ~hot).sum())
        n_clean_flagged += int((new & ~hot).sum())
    assert n_hot >= 10
    assert n_clean_flagged / n_clean < 1e-4
    assert qa["flagged_pixels"]["applied"] is True
    assert qa["flagged_pixels"]["total"] == n_flagged
    assert qa["flagged_pixels"]["dq_value"] == REJECTED_DQ


def test_flag_rejected_off_leaves_dq(synthetic_instrument, noisy):
    from jwst_mbkg_plus.mos.options import REJECTED_DQ
    from jwst_mbkg_plus.synthetic import local_crds_context

    with local_crds_context(synthetic_instrument):
        result = MasterBackgroundMosPlusStep.call(noisy["slits"], flag_rejected=False)
    qa = result.meta.master_background_qa.instance
    assert qa["flagged_pixels"]["applied"] is False and qa["flagged_pixels"]["total"] == 0
    for slit_in, slit, flagged in zip(noisy["slits"].slits, result.slits,
                                      noisy["result"].slits, strict=True):
        new = ((slit.dq & REJECTED_DQ) == REJECTED_DQ) & ((slit_in.dq & REJECTED_DQ) == 0)
        assert not new.any()
        # Only the DQ differs: data and errors are those of the flagged run.
        np.testing.assert_array_equal(slit.data, flagged.data)
        np.testing.assert_array_equal(slit.err, flagged.err)


@pytest.fixture(scope="module")
def pipeline_flags(synthetic_instrument, noisy_mos_exposure, tmp_path_factory):
    """calwebb_spec2_plus on the noisy exposure, with flag_rejected on and off."""
    from jwst_mbkg_plus.synthetic import load_truth, local_crds_context

    _, exposure = noisy_mos_exposure
    products = {}
    for flag in (True, False):
        out = tmp_path_factory.mktemp(f"spec2_flag_{flag}")
        with local_crds_context(synthetic_instrument):
            Spec2PipelinePlus.call(
                str(exposure.rate_path),
                steps={"master_background_mos": {"skip": False, "flag_rejected": flag}},
                output_dir=str(out), save_results=True,
            )
        products[flag] = {
            "cal": datamodels.open(next(out.glob("*_cal.fits"))),
            "x1d": datamodels.open(next(out.glob("*_x1d.fits"))),
        }
    yield {"truth": load_truth(exposure.truth_path), **products}
    for models in products.values():
        for model in models.values():
            model.close()


def test_flagged_pixels_reach_cal_and_x1d(pipeline_flags, noisy):
    """
    In the _cal product the rejected hot pixels carry the flag; the 1-D spectra
    of source slitlets are unchanged, those of the background slitlets lose the
    hot pixels' spikes.
    """
    from jwst_mbkg_plus.mos.options import REJECTED_DQ

    truth = pipeline_flags["truth"]
    on, off = pipeline_flags[True], pipeline_flags[False]
    vetted_out = _vetted_out(noisy["qa"])
    n_hot = n_clean = n_clean_flagged = 0
    for s_on, s_off in zip(on["cal"].slits, off["cal"].slits, strict=True):
        new = ((s_on.dq & REJECTED_DQ) == REJECTED_DQ) & ((s_off.dq & REJECTED_DQ) != REJECTED_DQ)
        if truth.slit(s_on.name)["kind"] != "background" or int(s_on.name) in vetted_out:
            assert not new.any(), s_on.name
            continue
        valid = np.isfinite(s_off.data) & ((s_off.dq & 1) == 0)
        hot = truth.hot_pixel_mask(s_on) & valid
        assert new[hot].all(), s_on.name
        n_hot += int(hot.sum())
        n_clean += int((valid & ~hot).sum())
        n_clean_flagged += int((new & ~hot).sum())
    assert n_hot >= 10
    assert n_clean_flagged / n_clean < 1e-4

    spikes = {True: 0, False: 0}
    for spec_on, spec_off in zip(on["x1d"].spec, off["x1d"].spec, strict=True):
        assert spec_on.name == spec_off.name
        t_on, t_off = spec_on.spec_table, spec_off.spec_table
        if truth.slit(spec_on.name)["kind"] != "background":
            np.testing.assert_array_equal(t_on["FLUX"], t_off["FLUX"])
            np.testing.assert_array_equal(t_on["SURF_BRIGHT"], t_off["SURF_BRIGHT"])
            continue
        if int(spec_on.name) in vetted_out:
            continue
        for flag, table in ((True, t_on), (False, t_off)):
            with np.errstate(divide="ignore", invalid="ignore"):
                pull = np.asarray(table["SURF_BRIGHT"]) / np.asarray(table["SB_ERROR"])
            spikes[flag] += int((np.abs(pull[np.isfinite(pull)]) > 5).sum())
    print("x1d points beyond 5 sigma, flag on / off:", spikes)  # noqa: T201
    assert spikes[True] < spikes[False]
    assert spikes[True] == 0


def test_bkg_slits_naming_sources_are_caught_by_evidence(synthetic_instrument, noiseless, caplog):
    from jwst_mbkg_plus.synthetic import local_crds_context

    slits = noiseless["slits"]
    sources = [s.name for s in slits.slits if "BKG" not in str(s.source_name)]
    backgrounds = [s.name for s in slits.slits if "BKG" in str(s.source_name)]
    with local_crds_context(synthetic_instrument):
        only_sources = MasterBackgroundMosPlusStep.call(slits, bkg_slits=sources)
        assert only_sources.meta.cal_step.master_background == STATUS_FAILED
        assert "Every slitlet named in bkg_slits is a source slitlet" in caplog.text
        mixed = MasterBackgroundMosPlusStep.call(slits, bkg_slits=[*backgrounds, sources[0]])
    assert mixed.meta.cal_step.master_background == "COMPLETE"
    rejected = mixed.meta.master_background_qa.instance["vetting"]["rejected"]
    assert any(sources[0] in label and "source slitlet in the MSA file" in reason
               for label, reason in rejected.items()), rejected
    # The master is the background's: the background slitlets are left at zero.
    levels = {s.name: np.nanmedian(s.data) for s in noiseless["before"].slits}
    for slit in mixed.slits:
        if slit.name in backgrounds:
            assert abs(np.nanmedian(slit.data)) < 0.01 * abs(levels[slit.name])
    for a, b in zip(slits.slits, noiseless["before"].slits, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_no_valid_background_pixel_fails_with_the_reason(synthetic_instrument, noiseless, caplog):
    from jwst_mbkg_plus.synthetic import local_crds_context

    slits = noiseless["slits"].copy()
    for slit in slits.slits:
        if "BKG" in str(slit.source_name):
            slit.dq = slit.dq | 1
    with local_crds_context(synthetic_instrument):
        result = MasterBackgroundMosPlusStep.call(slits)
    assert result.meta.cal_step.master_background == STATUS_FAILED
    assert "no valid calibrated pixel" in caplog.text
