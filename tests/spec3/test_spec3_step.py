"""MasterBackgroundPlusStep (calwebb_spec3) on synthetic NIRSpec FS / IFU, MIRI LRS / MRS.

Everything runs jwst's real code paths: jwst's container splitting, its
wavelength helpers (slit ``wavelength`` arrays, ``get_wavelengths``,
``nrs_ifu_wcs`` on a coordinate-based IFU gwcs, the MIRI MRS gwcs), its
NIRSpec point-source corrections, and jwst's stock ``MasterBackgroundStep``
on the very same inputs for comparison. No reference files are needed.
"""

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from jwst.master_background import MasterBackgroundStep
from jwst.master_background.create_master_bkg import create_background
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus import MasterBackgroundPlusStep, Spec3PipelinePlus
from jwst_mbkg_plus.io.products import read_qa
from jwst_mbkg_plus.jwst_internals import STATUS_FAILED
from jwst_mbkg_plus.spec3 import collect, run, subtract
from jwst_mbkg_plus.spec3 import master as spec3_master
from jwst_mbkg_plus.synthetic.spec3_inputs import (
    MODES,
    injected_background,
    make_container,
    make_spec3_inputs,
    write_association,
)

#: jwst's calwebb_spec3 steps run on every test of this module.
pytestmark = pytest.mark.pipeline

#: Later calwebb_spec3 steps, skipped: they need reference files.
LATER_STEPS = (
    "outlier_detection",
    "adaptive_trace_model",
    "pixel_replace",
    "resample_spec",
    "cube_build",
    "extract_1d",
    "photom",
    "combine_1d",
    "spectral_leak",
)
CONTAMINATED = 1


def _arrays(model):
    """(data-holding object) list: the slits of a MultiSlitModel, else the model."""
    return list(model.slits) if isinstance(model, datamodels.MultiSlitModel) else [model]


def _truth(inputs, k):
    tb, mask = inputs.true_background[k], inputs.background_mask[k]
    return (tb, mask) if isinstance(tb, list) else ([tb], [mask])


def measure(inputs, result):
    """Median |recovered - injected| / injected and std of residual / ERR, over all models."""
    rel, pull = [], []
    for k, (before, after) in enumerate(zip(inputs.science, result, strict=True)):
        tbs, masks = _truth(inputs, k)
        for a_in, a_out, tb, mask in zip(_arrays(before), _arrays(after), tbs, masks,
                                         strict=True):
            recovered = np.asarray(a_in.data, float) - a_out.data
            rel.append(np.abs(recovered - tb)[mask] / tb[mask])
            # Background-dominated pixels hold no source: the residual is the data.
            pull.append((np.asarray(a_out.data, float) / a_out.err)[mask])
    rel, pull = np.concatenate(rel), np.concatenate(pull)
    assert np.isfinite(rel).all() and np.isfinite(pull).all()
    return float(np.median(rel)), float(np.std(pull))


def _snapshot(container):
    """Copies of every member's arrays (spectrum tables for x1d) and status."""
    out = []
    for model in container:
        if hasattr(model, "spec"):
            arrays = [np.array(s.spec_table, copy=True) for s in model.spec]
        else:
            arrays = [np.array(getattr(a, name), copy=True) for a in _arrays(model)
                      for name in ("data", "dq", "err", "var_rnoise")]
        out.append((arrays, model.meta.cal_step.master_background))
    return out


@pytest.fixture(scope="module", params=MODES)
def contaminated_run(request, tmp_path_factory):
    """One mode: inputs with member 1 of 4 contaminated (+30 %), plus and stock results."""
    mode = request.param
    inputs = make_spec3_inputs(mode, contaminate=CONTAMINATED, seed=11)
    outdir = tmp_path_factory.mktemp(f"qa_{mode}")
    container = make_container(inputs)
    before = _snapshot(container)
    plus = MasterBackgroundPlusStep.call(container, save_qa=True, output_dir=str(outdir))
    after = _snapshot(container)
    stock = MasterBackgroundStep.call(make_container(inputs))
    return {"inputs": inputs, "plus": plus, "stock": stock, "outdir": outdir,
            "before": before, "after": after}


# --------------------------------------------------------------------------- acceptance


def test_background_recovered_despite_contamination(contaminated_run):
    inputs, plus = contaminated_run["inputs"], contaminated_run["plus"]
    assert all(m.meta.cal_step.master_background == "COMPLETE" for m in plus)
    assert len(plus) == len(inputs.science)  # background members dropped, as in jwst
    median_rel, _ = measure(inputs, plus)
    assert median_rel <= 0.002, f"{inputs.mode}: median |res|/B = {median_rel:.5f}"


def test_contaminated_member_rejected_in_qa(contaminated_run):
    inputs = contaminated_run["inputs"]
    (qa_file,) = Path(contaminated_run["outdir"]).glob("*mbkgqa.asdf")
    qa = read_qa(qa_file)
    names = [m.meta.filename for m in inputs.backgrounds]
    accepted = {e["name"].split("[")[0]: e["accepted"] for e in qa["inputs"]}
    assert accepted == {n: i != CONTAMINATED for i, n in enumerate(names)}
    bad = qa["inputs"][CONTAMINATED]
    assert bad["reason"].startswith("rejected")
    assert bad["deviation"] == pytest.approx(0.3, abs=0.02)
    assert qa["n_accepted"] == 3
    # The column jwst would read.
    assert {e["column"] for e in qa["inputs"]} == {inputs.column}


def test_qa_record_is_asdf_with_mos_keys_and_robust_pulls(contaminated_run):
    """The spec3 record has the MOS keys; each background spectrum's pulls against the
    master made without it are unit normal, the contaminated one's are not."""
    inputs = contaminated_run["inputs"]
    (qa_file,) = Path(contaminated_run["outdir"]).glob("*mbkgqa.asdf")
    qa = read_qa(qa_file)
    assert qa["step"] == "master_background_plus"
    names = [e["name"] for e in qa["inputs"]]
    assert qa["slits"] == names
    bad = names[CONTAMINATED]
    assert set(qa["vetting"]["rejected"]) == {bad}
    assert set(qa["vetting"]["scores"]) == set(names)
    assert set(qa["residuals"]) == set(names)
    assert qa["residuals"][bad]["median_relative"] == pytest.approx(0.3, abs=0.02)
    assert qa["residuals"][bad]["pull_outlier_fraction"] > 0.9
    for name in names:
        if name != bad:
            assert qa["residuals"][name]["pull_outlier_fraction"] == 0.0
            assert abs(qa["residuals"][name]["median_relative"]) < 0.002
    # ~1000 resampled (neighbour-correlated) points: the MAD spread scatters by
    # ~0.04, so 0.15 is a 3-4 sigma band that a 20 % error misscale leaves.
    summary = qa["pull_summary"]
    assert summary["n_groups"] == 3 and summary["n_pixels"] > 600
    assert summary["pull_spread"] == pytest.approx(1.0, abs=0.15), inputs.mode


def _scaled_member(model, column, *, error_factor=1.0, spikes=()):
    """A copy of an x1d member with its errors scaled and spikes added at given samples."""
    out = model.copy()
    error = {"SURF_BRIGHT": "SB_ERROR", "BACKGROUND": "BKGD_ERROR"}[column]
    table = out.spec[0].spec_table
    for k in spikes:
        table[column][k] += 50 * table[error][k]
    table[error] *= error_factor
    return out


def test_spec3_pulls_measure_errors_not_spikes():
    """Spikes the clip rejected stay out of the pulls; errors off by 2 show as spread 2."""
    inputs = make_spec3_inputs("NRS_FIXEDSLIT", seed=21)
    column = inputs.column
    spiked = [_scaled_member(inputs.backgrounds[0], column, spikes=range(40, 400, 60))]
    spiked += inputs.backgrounds[1:]
    qa = run.run_master_background([m.copy() for m in inputs.science], spiked).master.qa
    first = qa["residuals"][qa["slits"][0]]
    assert first["rejected_pixels"] >= 6
    assert first["pull_outlier_fraction"] == 0.0
    assert qa["pull_summary"]["pull_spread"] == pytest.approx(1.0, abs=0.15)
    # All errors halved: the pulls double, and the record says so.
    halved = [_scaled_member(m, column, error_factor=0.5) for m in inputs.backgrounds]
    qa = run.run_master_background([m.copy() for m in inputs.science], halved).master.qa
    assert qa["pull_summary"]["pull_spread"] == pytest.approx(2.0, abs=0.3)


def test_single_slit_model_without_user_background_fails_saying_so(caplog):
    inputs = make_spec3_inputs("NRS_FIXEDSLIT", n_science=1, seed=3)
    slit = datamodels.SlitModel(inputs.science[0].slits[0].instance)
    result = MasterBackgroundPlusStep.call(slit)
    assert result.meta.cal_step.master_background == STATUS_FAILED
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("SlitModel cannot be handled without a user_background" in m for m in warnings)
    assert not any("skipped" in m.lower() for m in warnings)
    np.testing.assert_array_equal(result.data, slit.data)


def test_pull_is_unit_normal(contaminated_run):
    _, pull_std = measure(contaminated_run["inputs"], contaminated_run["plus"])
    assert pull_std == pytest.approx(1.0, abs=0.05)


def test_stock_jwst_is_visibly_worse(contaminated_run):
    inputs = contaminated_run["inputs"]
    plus_rel, plus_pull = measure(inputs, contaminated_run["plus"])
    stock_rel, stock_pull = measure(inputs, contaminated_run["stock"])
    # Figures for the record (pytest -s -k stock_jwst).
    print(f"\n{inputs.mode:18s} plus: median|res|/B={plus_rel:.5f} pull std={plus_pull:.4f}"
          f" | stock: median|res|/B={stock_rel:.5f} pull std={stock_pull:.4f}")
    # jwst's exposure-time mean keeps the contaminated member: ~ +30 % / 4.
    assert stock_rel > 0.05
    assert stock_rel > 20 * plus_rel


def test_inputs_are_unchanged(contaminated_run):
    before, after = contaminated_run["before"], contaminated_run["after"]
    assert len(before) == len(after)
    for (arr_b, status_b), (arr_a, status_a) in zip(before, after, strict=True):
        assert status_a == status_b
        for a, b in zip(arr_a, arr_b, strict=True):
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("mode", MODES)
def test_master_variance_reaches_err(mode):
    """With a noisy master (var ~ 1/3 of a pixel's), ERR must carry it to keep pulls at 1."""
    inputs = make_spec3_inputs(mode, spectrum_noise=0.03, pixel_noise=0.02, seed=5)
    with_err = MasterBackgroundPlusStep.call(make_container(inputs))
    without = MasterBackgroundPlusStep.call(make_container(inputs), propagate_errors=False)
    _, pull = measure(inputs, with_err)
    _, pull_without = measure(inputs, without)
    assert pull == pytest.approx(1.0, abs=0.05)
    assert pull_without > 1.1
    for after, before in zip(with_err, inputs.science, strict=True):
        for a_out, a_in in zip(_arrays(after), _arrays(before), strict=True):
            total = a_out.var_poisson.astype(float) + a_out.var_rnoise + a_out.var_flat
            np.testing.assert_allclose(a_out.err.astype(float) ** 2, total, rtol=1e-5)
            np.testing.assert_array_equal(a_out.var_poisson, a_in.var_poisson)
            assert np.nanmin(a_out.var_rnoise - a_in.var_rnoise) > 0


@pytest.mark.parametrize("mode", MODES)
def test_clean_inputs_nothing_rejected(mode):
    inputs = make_spec3_inputs(mode, seed=3)
    spectra = collect.collect_background_spectra(inputs.backgrounds)
    master = spec3_master.build_master_background(spectra)
    assert master.rejected == []
    assert all(e["column"] == inputs.column for e in master.qa["inputs"])
    # The master itself: bias and pull against the injected background.
    truth = injected_background(master.wavelength, mode=mode)
    ok = np.isfinite(master.surf_bright)
    rel = (master.surf_bright[ok] - truth[ok]) / truth[ok]
    assert abs(np.median(rel)) < 5e-4
    pull = (master.surf_bright[ok] - truth[ok]) / np.sqrt(master.var[ok])
    assert np.std(pull) == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("mode", MODES)
def test_vetting_finds_contamination_below_the_point_noise(mode):
    """+30 % at 20 % per-point noise: the per-wavelength clip alone keeps it, vetting does not."""
    inputs = make_spec3_inputs(mode, contaminate=CONTAMINATED, spectrum_noise=0.2, seed=0)
    spectra = collect.collect_background_spectra(inputs.backgrounds)
    vetted = spec3_master.build_master_background(spectra)
    clip_only = spec3_master.build_master_background(spectra, vet=False)
    assert vetted.rejected == [f"{inputs.backgrounds[CONTAMINATED].meta.filename}[0]"]

    def bias(master):
        truth = injected_background(master.wavelength, mode=mode)
        return np.nanmedian((master.surf_bright - truth) / truth)

    assert abs(bias(vetted)) < 0.015
    assert bias(clip_only) > 0.05


@pytest.mark.parametrize("method", ["clipped_mean", "median", "weighted_mean", "mean"])
def test_every_combine_method_runs(method):
    inputs = make_spec3_inputs("MIR_MRS", contaminate=2, seed=15)
    result = MasterBackgroundPlusStep.call(make_container(inputs), combine_method=method,
                                           median_kernel=5)
    assert result[0].meta.cal_step.master_background == "COMPLETE"
    median_rel, pull_std = measure(inputs, result)
    assert median_rel < 0.003
    assert pull_std == pytest.approx(1.0, abs=0.05)
    unvetted = MasterBackgroundPlusStep.call(make_container(inputs), combine_method=method,
                                             vet_spectra=False, scale_master="off")
    if method == "mean":  # no vetting, no clipping: the contamination stays, as in jwst
        assert measure(inputs, unvetted)[0] > 0.05


def test_background_column_is_jwsts():
    from jwst.master_background.master_background_step import copy_background_to_surf_bright

    for mode, nodded in [("NRS_FIXEDSLIT", True), ("NRS_FIXEDSLIT", False),
                         ("NRS_IFU", True), ("MIR_LRS-FIXEDSLIT", False), ("MIR_MRS", False)]:
        inputs = make_spec3_inputs(mode, nodded=nodded, n_science=1, n_background=1)
        x1d = inputs.backgrounds[0]
        ours = collect.collect_background_spectra([x1d])[0]
        # jwst's own choice, replayed on a copy.
        copy = x1d.copy()
        spec = copy.spec[0]
        ifu_ext = (mode == "NRS_IFU" and spec.source_type == "EXTENDED") or mode == "MIR_MRS"
        if copy.meta.observation.bkgdtarg is False or ifu_ext:
            copy_background_to_surf_bright(copy)
        np.testing.assert_array_equal(ours.surf_bright, copy.spec[0].spec_table["SURF_BRIGHT"])
        assert ours.column == inputs.column


# --------------------------------------------------------------------------- step behaviour


def test_user_background_on_single_model(tmp_path):
    inputs = make_spec3_inputs("MIR_LRS-FIXEDSLIT", n_science=1, seed=2)
    wave = np.linspace(4.8, 12.2, 800)
    sb = injected_background(wave, mode="MIR_LRS-FIXEDSLIT")
    path = tmp_path / "my_background.fits"
    create_background(wave, sb).save(path)  # jwst's own user-background format
    science = inputs.science[0]
    result = MasterBackgroundPlusStep.call(science, user_background=str(path))
    assert result.meta.cal_step.master_background == "COMPLETE"
    assert result.meta.background.master_background_file == "my_background.fits"
    assert science.meta.cal_step.master_background is None
    assert science.meta.background.master_background_file is None
    median_rel, pull = measure(inputs, [result])
    assert median_rel < 0.002
    assert pull == pytest.approx(1.0, abs=0.05)


def test_user_background_for_container_records_file(tmp_path):
    inputs = make_spec3_inputs("MIR_MRS", seed=4)
    wave = np.linspace(4.8, 5.8, 500)
    path = tmp_path / "mrs_bkg.fits"
    create_background(wave, injected_background(wave, mode="MIR_MRS")).save(path)
    result = MasterBackgroundPlusStep.call(make_container(inputs), user_background=str(path))
    assert len(result) == len(inputs.science)
    for model in result:
        assert model.meta.background.master_background_file == "mrs_bkg.fits"
    assert measure(inputs, result)[0] < 0.002


def test_saved_masterbg1d_works_as_user_background(tmp_path):
    inputs = make_spec3_inputs("NRS_FIXEDSLIT", contaminate=0, seed=14)
    first = MasterBackgroundPlusStep.call(make_container(inputs), save_background=True,
                                          output_dir=str(tmp_path))
    (master_file,) = tmp_path.glob("*masterbg1d.fits")
    assert len(list(tmp_path.glob("*masterbg2d.fits"))) == len(inputs.science)
    again = MasterBackgroundPlusStep.call(inputs.science[0], user_background=str(master_file))
    np.testing.assert_allclose(again.slits[0].data, first[0].slits[0].data, atol=1e-6)
    np.testing.assert_allclose(again.slits[0].err, first[0].slits[0].err, rtol=1e-5)
    # jwst's own step reads it too (without the error propagation).
    stock = MasterBackgroundStep.call(inputs.science[0], user_background=str(master_file))
    np.testing.assert_allclose(stock.slits[0].data, first[0].slits[0].data, atol=1e-5)


def test_skipped_when_already_subtracted_and_forced():
    inputs = make_spec3_inputs("NRS_IFU", n_science=1, seed=6)
    container = make_container(inputs)
    for model in container:
        model.meta.cal_step.bkg_subtract = "COMPLETE"
    skipped = MasterBackgroundPlusStep.call(container)
    assert all(m.meta.cal_step.master_background == "SKIPPED" for m in skipped)
    forced = MasterBackgroundPlusStep.call(container, force_subtract=True)
    assert forced[0].meta.cal_step.master_background == "COMPLETE"
    assert measure(inputs, forced)[0] < 0.002


def test_failed_without_background_members():
    inputs = make_spec3_inputs("MIR_MRS", n_science=1, seed=7)
    container = make_container(inputs)
    from jwst.datamodels import ModelContainer

    science_only = ModelContainer([m for m in container if m.meta.asn.exptype == "science"])
    science_only.asn_table = container.asn_table
    result = MasterBackgroundPlusStep.call(science_only)
    assert result[0].meta.cal_step.master_background == STATUS_FAILED
    np.testing.assert_array_equal(result[0].data, inputs.science[0].data)


def test_median_kernel_even_and_parameters_untouched():
    inputs = make_spec3_inputs("NRS_FIXEDSLIT", seed=8)
    step = MasterBackgroundPlusStep(median_kernel=4)
    result = step.run(make_container(inputs))
    assert step.median_kernel == 4  # jwst decrements it; we do not
    assert result[0].meta.cal_step.master_background == "COMPLETE"
    assert measure(inputs, result)[0] < 0.002


def test_pixels_outside_master_range_are_flagged():
    inputs = make_spec3_inputs("MIR_LRS-FIXEDSLIT", n_science=1, seed=9)
    for x1d in inputs.backgrounds:  # backgrounds stop 10 % short of the band end
        table = x1d.spec[0].spec_table
        x1d.spec[0].spec_table = table[table["WAVELENGTH"] < 11.3]
    result = MasterBackgroundPlusStep.call(make_container(inputs))[0]
    wl = subtract.pixel_wavelengths(result)
    beyond = wl > 11.31
    assert beyond.any()
    assert np.isnan(result.data[beyond]).all()
    assert (result.dq[beyond] & 1).all()
    inside = wl < 11.2
    assert np.isfinite(result.data[inside]).all()


def test_pixels_without_wavelength_left_alone():
    inputs = make_spec3_inputs("NRS_IFU", n_science=1, seed=10)
    science = inputs.science[0]
    gap = science.regions == 0  # between slices: no wavelength
    assert gap.any()
    for name in ("data", "err", "var_poisson", "var_rnoise", "var_flat"):
        getattr(science, name)[gap] = 1.0
    science.dq[gap] = 0
    result = MasterBackgroundPlusStep.call(make_container(inputs))[0]
    for name in ("data", "err", "var_poisson", "var_rnoise", "var_flat"):
        np.testing.assert_array_equal(getattr(result, name)[gap], 1.0)
    assert not result.dq[gap].any()
    assert measure(inputs, [result])[0] < 0.002


def test_point_source_factor_is_jwsts():
    from jwst.master_background.nirspec_utils import correct_nrs_fs_bkg

    inputs = make_spec3_inputs("NRS_FIXEDSLIT", n_science=1, n_background=1)
    slit = inputs.science[0].slits[0]
    factor = subtract.point_source_factor(inputs.science[0], slit)
    names = ("pathloss_point", "pathloss_uniform", "flatfield_point", "flatfield_uniform",
             "photom_point", "photom_uniform")
    standalone = datamodels.SlitModel(data=np.array(slit.data),
                                      **{n: np.array(getattr(slit, n)) for n in names})
    reference = correct_nrs_fs_bkg(standalone).data / slit.data
    np.testing.assert_allclose(factor, reference, rtol=1e-5)
    extended = make_spec3_inputs("NRS_FIXEDSLIT", n_science=1, n_background=1,
                                 point_source=False)
    assert subtract.point_source_factor(extended.science[0], extended.science[0].slits[0]) is None


# --------------------------------------------------------------------------- pipeline


def _skip_later():
    # adaptive_trace_model is new in jwst 3.0: name only the steps this jwst has.
    return {name: {"skip": True} for name in LATER_STEPS if name in Spec3PipelinePlus.step_defs}


@pytest.mark.compat
@pytest.mark.parametrize("mode", MODES)
def test_spec3_pipeline_plus_call_from_association(mode, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = make_spec3_inputs(mode, contaminate=CONTAMINATED, seed=12)
    asn = write_association(inputs, tmp_path)
    Spec3PipelinePlus.call(
        str(asn),
        output_dir=str(tmp_path),
        steps={
            "master_background": {"save_results": True, "save_background": True,
                                  "save_qa": True},
            **_skip_later(),
        },
    )
    results = []
    for model in inputs.science:
        stem = model.meta.filename.replace("_cal.fits", "")
        results.append(datamodels.open(tmp_path / f"{stem}_mbsub.fits"))
    assert all(r.meta.cal_step.master_background == "COMPLETE" for r in results)
    median_rel, pull_std = measure(inputs, results)
    assert median_rel <= 0.002
    assert pull_std == pytest.approx(1.0, abs=0.05)
    assert list(tmp_path.glob("*masterbg1d.fits"))
    assert len(list(tmp_path.glob("*masterbg2d.fits"))) == len(inputs.science)
    qa = read_qa(next(tmp_path.glob("*mbkgqa.asdf")))
    assert [e["accepted"] for e in qa["inputs"]] == [True, False, True, True]
    for r in results:
        r.close()


def test_strun_calwebb_spec3_plus(tmp_path):
    exe = shutil.which("strun", path=os.path.dirname(sys.executable))
    if exe is None:  # pragma: no cover - strun comes with stpipe
        pytest.skip("strun console script not found beside the interpreter")
    inputs = make_spec3_inputs("NRS_IFU", contaminate=CONTAMINATED, seed=13)
    asn = write_association(inputs, tmp_path)
    args = [exe, "calwebb_spec3_plus", asn.name, "--output_dir", str(tmp_path),
            "--steps.master_background.save_results=True",
            "--steps.master_background.sigma_clip=3.0",
            "--steps.master_background.combine_method=clipped_mean"]
    args += [f"--steps.{name}.skip=True" for name in LATER_STEPS]
    out = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path,
                         env=os.environ.copy(), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    log_text = out.stdout + out.stderr
    assert "MasterBackgroundPlusStep" in log_text
    assert "rejected" in log_text
    results = [datamodels.open(tmp_path / m.meta.filename.replace("_cal", "_mbsub"))
               for m in inputs.science]
    median_rel, pull_std = measure(inputs, results)
    assert median_rel <= 0.002
    assert pull_std == pytest.approx(1.0, abs=0.05)
    for r in results:
        r.close()
