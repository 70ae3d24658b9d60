"""Issue 27: values inside files, malformed models, what users type, files as users have them.

No jwst calibration chain runs here: the MOS cases are refused before any work,
the spec3 inputs are synthetic models with their own WCS. The end-to-end runs
of every case are in validation/bad_inputs.py (docs/failures.rst).
"""

import errno
import threading
import time

import asdf
import numpy as np
import pytest
from fake_models import fake_mos_model as _mos_model
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus import MasterBackgroundMosPlusStep, MasterBackgroundPlusStep, input_checks
from jwst_mbkg_plus import output_checks as oc
from jwst_mbkg_plus.batch.inputs import collect_exposures
from jwst_mbkg_plus.batch.lock import BatchFolderInUse, batch_lock
from jwst_mbkg_plus.io.user_background import (
    UserBackgroundFormatError,
    read_user_background,
)
from jwst_mbkg_plus.io.user_background.values import absurd_rows
from jwst_mbkg_plus.jwst_internals import STATUS_FAILED
from jwst_mbkg_plus.safe_io import OutputWriteError, atomic_output, describe_file, read_failure
from jwst_mbkg_plus.synthetic.spec3_inputs import make_container, make_spec3_inputs

WAVE = np.linspace(1.0, 5.0, 1173)
SKY = 0.2 + 0.05 * WAVE + 0.02 * np.sin(7 * WAVE)



def _csv(path, wave, sb, *, sep=",", decimal=".", newline="\n", bom=False):
    rows = [f"wave[um]{sep}surf_bright[MJy/sr]"]
    rows += [f"{w:.7g}{sep}{s:.7g}".replace(".", decimal) if decimal != "." else
             f"{w:.7g}{sep}{s:.7g}" for w, s in zip(wave, sb, strict=True)]
    text = newline.join(rows) + newline
    path.write_bytes((("\ufeff" if bom else "") + text).encode())
    return path


# --------------------------------------------------------------------------- list parameters


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("12", ["12"]), (12, ["12"]), ("12,", ["12"]), ("12, 13", ["12", "13"]),
     (["12", 13], ["12", "13"]), ([], []), (["5", "5", "6"], ["5", "6"])],
)
def test_list_parameter_takes_every_form(value, expected):
    assert input_checks.list_parameter(value, "bkg_slits") == expected


def test_repeated_slit_is_used_once_with_a_warning(caplog):
    assert input_checks.list_parameter(["3", "1", "3"], "bkg_slits") == ["3", "1"]
    assert "bkg_slits names 3 more than once" in caplog.text


@pytest.mark.parametrize(
    ("args", "bkg", "exclude"),
    [(["--bkg_slits=12"], ["12"], None), (["--bkg_slits=12,"], ["12"], None),
     (["--bkg_slits=12,13", "--exclude_slits=4"], ["12", "13"], ["4"])],
)
def test_strun_takes_one_value_for_a_list_parameter(tmp_path, args, bkg, exclude):
    path = tmp_path / "fs_slits.fits"
    _mos_model(n_slits=3, exp_type="NRS_FIXEDSLIT").save(path)  # refused fast, after parsing
    step = MasterBackgroundMosPlusStep.from_cmdline(
        ["master_background_mos_plus", str(path), *args, f"--output_dir={tmp_path}"])
    assert step.bkg_slits == bkg
    assert step.exclude_slits == exclude


def test_asdf_parameter_file_with_one_value(tmp_path):
    path = tmp_path / "fs_slits.fits"
    _mos_model(n_slits=3, exp_type="NRS_FIXEDSLIT").save(path)
    pars = tmp_path / "pars.asdf"
    asdf.AsdfFile({"class": "jwst_mbkg_plus.mos.step.MasterBackgroundMosPlusStep",
                   "name": "master_background_mos_plus",
                   "parameters": {"bkg_slits": "7", "exclude_slits": [3]}}).write_to(pars)
    step = MasterBackgroundMosPlusStep.from_cmdline([str(pars), str(path),
                                                      f"--output_dir={tmp_path}"])
    assert step.bkg_slits == ["7"]
    assert step.exclude_slits == ["3"]


def test_steps_dict_with_integers(caplog):
    step = MasterBackgroundMosPlusStep(bkg_slits=[1, 3], exclude_slits=2)
    step.run(_mos_model(n_slits=3, exp_type="NRS_FIXEDSLIT"))
    assert step.bkg_slits == ["1", "3"]
    assert step.exclude_slits == ["2"]


# --------------------------------------------------------------------------- values in files


def test_absurd_rows_finds_fill_values_and_keeps_real_spectra():
    sb = SKY.copy()
    sb[[100, 500]] = -9999.0
    sb[800] = 1e30
    found = absurd_rows(sb)
    assert np.flatnonzero(found).tolist() == [100, 500, 800]
    # A thermal sky rising 1000-fold across the band, noisy, with a line: nothing absurd.
    rng = np.random.default_rng(1)
    thermal = np.exp(np.linspace(0, np.log(1000), WAVE.size))
    thermal *= 1 + 0.05 * rng.standard_normal(WAVE.size)
    thermal[600:603] *= 5
    assert not absurd_rows(thermal).any()
    # A flat spectrum (zero range) with noise around zero: nothing absurd.
    assert not absurd_rows(1e-3 * rng.standard_normal(WAVE.size)).any()


@pytest.mark.parametrize("bad", [-9999.0, 1e30, -1e30])
def test_fill_rows_are_dropped_and_named(tmp_path, bad, caplog):
    sb = SKY.copy()
    sb[[10, 20, 30]] = bad
    bkg = read_user_background(_csv(tmp_path / "sky.csv", WAVE, sb))
    assert bkg.n_points == WAVE.size - 3
    np.testing.assert_allclose(bkg.surf_bright, np.delete(SKY, [10, 20, 30]), rtol=1e-6)
    assert "dropped rows 11" in caplog.text and "21" in caplog.text and "31" in caplog.text


def test_non_finite_rows_are_named(tmp_path, caplog):
    sb = SKY.copy()
    sb[[5, 6]] = [np.inf, np.nan]
    bkg = read_user_background(_csv(tmp_path / "sky.csv", WAVE, sb))
    assert bkg.n_points == WAVE.size - 2
    assert "(rows 6, 7)" in caplog.text


@pytest.mark.parametrize(
    "style",
    [{"bom": True}, {"newline": "\r\n"}, {"bom": True, "newline": "\r\n"},
     {"sep": ";", "decimal": ","}, {"sep": ";"}, {"newline": "\r"}],
    ids=["bom", "crlf", "bom_crlf", "semicolon_decimal_comma", "semicolon", "cr"],
)
def test_spreadsheet_csvs_are_read(tmp_path, style):
    bkg = read_user_background(_csv(tmp_path / "sky.csv", WAVE, SKY, **style))
    assert bkg.n_points == WAVE.size
    assert bkg.surf_bright_unit == "MJy / sr"
    np.testing.assert_allclose(bkg.surf_bright, SKY, rtol=1e-6)
    np.testing.assert_allclose(bkg.wavelength, WAVE, rtol=1e-6)


def test_no_advice_names_a_parameter_no_step_has(tmp_path):
    inputs = make_spec3_inputs("NRS_FIXEDSLIT", n_science=1, n_background=1, seed=3)
    model = inputs.backgrounds[0].copy()
    spec = datamodels.SpecModel()
    spec.spec_table = model.spec[0].spec_table.copy()
    model.spec.append(spec)
    path = tmp_path / "two_x1d.fits"
    model.save(path)
    for source in (path, model):
        bkg = read_user_background(source)
        text = " ".join(bkg.warnings)
        assert "using the first" in text
        assert "spectrum_index" not in text
        assert "jwst-mbkg-plus master" in text


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize(
    ("edit", "message"),
    [(lambda m: setattr(m.meta.exposure, "type", None), "has no exposure type"),
     (lambda m: None, r"3 of 3 slits cannot be calibrated: slit 1:9999_BKG1 has no WCS"),
     (lambda m: setattr(m.slits[1], "data", np.ones((0, 0), np.float32)),
      "holds no data")],
    ids=["exp_type_none", "no_wcs", "zero_size"],
)
def test_malformed_models_fail_before_any_work(edit, message, caplog):
    model = _mos_model(n_slits=3)
    edit(model)
    result = MasterBackgroundMosPlusStep.call(model)
    assert result.meta.cal_step.master_background == STATUS_FAILED
    import re

    assert re.search(message, caplog.text), caplog.text
    assert "Step failed." in caplog.text


def test_calibration_failure_names_the_jwst_module():
    try:
        from jwst.flatfield import flat_field

        flat_field.do_correction(None)
    except Exception as err:  # noqa: BLE001
        message = input_checks.calibration_failure(err)
    assert "jwst.flatfield.flat_field" in message
    assert "calibration pass" in message


# --------------------------------------------------------------------------- coverage, guards


def test_coverage_rule():
    wave = np.linspace(1.0, 5.0, 401)
    sb = np.where(wave <= 1.2 + 1e-9, 1.0, np.nan)
    problem = oc.coverage_problem(wave, sb, (1.0, 5.0), 0.5)
    assert "only 5.0% of the science range" in problem
    assert "user_background_min_overlap=0.5" in problem
    assert oc.coverage_problem(wave, np.ones_like(wave), (1.0, 5.0), 0.5) == ""
    assert oc.coverage_problem(wave, sb, (1.0, 5.0), 0.0) == ""


def _blue_only(container, fraction=0.05):
    for model in list(container)[1:]:
        for spec in model.spec:
            wave = np.array(spec.spec_table["WAVELENGTH"], dtype=float)
            cut = wave.min() + fraction * (wave.max() - wave.min())
            for col in ("SURF_BRIGHT", "BACKGROUND", "FLUX"):
                values = np.array(spec.spec_table[col], dtype=float)
                values[wave > cut] = np.nan
                spec.spec_table[col] = values


def test_spec3_master_covering_5_percent_fails(caplog):
    inputs = make_spec3_inputs("NRS_FIXEDSLIT", n_science=1, n_background=3, seed=3)
    container = make_container(inputs)
    _blue_only(container)
    result = MasterBackgroundPlusStep.call(container)
    assert result[0].meta.cal_step.master_background == STATUS_FAILED
    assert "of the science range" in caplog.text
    assert "user_background_min_overlap" in caplog.text
    # The same with the rule lowered: subtracted, and no DQ-0 pixel left NaN.
    container = make_container(inputs)
    _blue_only(container)
    result = MasterBackgroundPlusStep.call(container, user_background_min_overlap=0.0)
    assert result[0].meta.cal_step.master_background == "COMPLETE"
    for slit in result[0].slits:
        good = (slit.dq & 1) == 0
        assert np.isfinite(slit.data[good]).all()


def test_guard_flags_non_finite_and_absurd_pixels():
    rng = np.random.default_rng(2)
    slits = []
    backgrounds = []
    for _ in range(3):
        bkg = 1.0 + 0.1 * rng.standard_normal((20, 100))
        slit = type("S", (), {})()
        slit.data = rng.standard_normal((20, 100))
        slit.dq = np.zeros((20, 100), np.uint32)
        slits.append(slit)
        backgrounds.append(bkg)
    backgrounds[0][3, 4] = 1e5
    slits[1].data[5, 6] = np.inf
    slits[2].data[7, 8] = np.nan
    slits[2].dq[7, 8] = 1  # already DO_NOT_USE: left alone
    counts = oc.guard_science_pixels(slits, backgrounds, rejected_dq=1 | 16,
                                     background_indices={1})
    assert counts == {0: 1, 1: 1}
    assert slits[0].dq[3, 4] == 1 and np.isnan(slits[0].data[3, 4])
    assert slits[1].dq[5, 6] == 17
    assert slits[2].dq[7, 8] == 1


def test_pull_warning():
    bad = {"pull_summary": {"pull_spread": 2.0}, "column_pull_summary": {"pull_spread": 6.4}}
    message = oc.pull_warning(bad, n_background=4)
    assert "2.00 per pixel and 6.40 per column" in message
    assert "coherent along columns" in message
    assert "exclude_slits" in message
    good = {"pull_summary": {"pull_spread": 1.01}, "column_pull_summary": {"pull_spread": 1.03}}
    assert oc.pull_warning(good, n_background=4) == ""
    assert oc.pull_warning(bad, n_background=1) == ""
    bad["vetting"] = {"rejected": {"2:9999_BKG2": "median relative deviation +0.07"}}
    assert "vetting rejected 1 background slitlet as deviating (2:9999_BKG2), so the 3 kept" \
        in oc.pull_warning(bad, n_background=3)


# --------------------------------------------------------------------------- duplicates


def test_duplicate_background_member_counted_once(caplog):
    inputs = make_spec3_inputs("NRS_FIXEDSLIT", n_science=1, n_background=3, seed=3)
    container = make_container(inputs)
    twin = container[1].copy()
    twin.meta.asn.exptype = "background"
    container.append(twin)
    result = MasterBackgroundPlusStep.call(container, save_qa=False)
    assert result[0].meta.cal_step.master_background == "COMPLETE"
    assert "holds the same values as" in caplog.text
    kept = input_checks.unique_members([container[1], twin, container[2]])
    assert len(kept) == 2


def test_duplicate_files(tmp_path, caplog):
    a = tmp_path / "a.fits"
    a.write_bytes(b"x" * 100)
    b = tmp_path / "b.fits"
    b.write_bytes(b"x" * 100)
    c = tmp_path / "c.fits"
    c.write_bytes(b"y" * 100)
    assert input_checks.unique_files([a, a, b, c]) == [a, c]
    assert "is the same as" in caplog.text


# --------------------------------------------------------------------------- kinds of files


def test_describe_file_kinds(tmp_path):
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    qa = tmp_path / "x_mbkgqa.asdf"
    asdf.AsdfFile({"master_background_qa": {"step": "x"}}).write_to(qa)
    rate = tmp_path / "jw1_rate.fits"
    model = datamodels.ImageModel(np.ones((4, 4), np.float32))
    model.meta.exposure.type = "NRS_MSASPEC"
    model.save(rate)
    assert describe_file(png) == "a PNG image"
    assert describe_file(tmp_path) == "a folder"
    assert "master background QA record" in describe_file(qa)
    kind = describe_file(rate)
    assert "ImageModel" in kind and "NRS_MSASPEC" in kind and "a rate file" in kind
    problem, fix = read_failure(ValueError("unknown filetype"), png)
    assert problem == "is a PNG image, not a jwst product"


@pytest.mark.parametrize("kind", ["png", "qa", "rate"])
def test_user_background_of_the_wrong_kind(tmp_path, kind):
    if kind == "png":
        path = tmp_path / "sky.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
        expected = "is a PNG image. A user background is a 1-D spectrum"
    elif kind == "qa":
        path = tmp_path / "x_mbkgqa.asdf"
        asdf.AsdfFile({"master_background_qa": {"step": "x"}}).write_to(path)
        expected = "QA record"
    else:
        path = tmp_path / "jw1_rate.fits"
        model = datamodels.ImageModel(np.ones((4, 4), np.float32))
        model.save(path)
        expected = r"is a FITS file \(jwst ImageModel, a rate file\) with no table"
    with pytest.raises(UserBackgroundFormatError, match=expected):
        read_user_background(path)


# --------------------------------------------------------------------------- full disk


def test_full_disk_names_the_file(tmp_path, monkeypatch):
    from jwst_mbkg_plus import safe_io

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safe_io.os, "fsync", full)
    target = tmp_path / "product.fits"
    with pytest.raises(OutputWriteError, match=rf"could not write {target}.*ENOSPC.*Free space"):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"data")
    assert list(tmp_path.iterdir()) == []


def test_full_disk_during_save_background_fails_the_spec3_step(tmp_path, monkeypatch, caplog):
    from jwst_mbkg_plus import safe_io

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    inputs = make_spec3_inputs("NRS_FIXEDSLIT", n_science=1, n_background=3, seed=3)
    monkeypatch.setattr(safe_io.os, "fsync", full)
    result = MasterBackgroundPlusStep.call(make_container(inputs), save_background=True,
                                           output_dir=str(tmp_path))
    assert result[0].meta.cal_step.master_background == STATUS_FAILED
    assert "could not write" in caplog.text and "masterbg1d" in caplog.text
    assert "No space left on device" in caplog.text
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".fits"]


# --------------------------------------------------------------------------- batch


def test_unreadable_folder_entries_become_failed_rows(tmp_path):
    good = tmp_path / "jw01_rate.fits"
    model = datamodels.ImageModel(np.ones((4, 4), np.float32))
    model.save(good)
    (tmp_path / "jw02_rate.fits").mkdir()
    (tmp_path / "jw03_rate.fits").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    (tmp_path / "broken.json").write_text("{not json")
    exposures = collect_exposures([tmp_path, tmp_path / "broken.json"])
    problems = {e.path.name: e.problem for e in exposures}
    assert problems["jw01_rate.fits"] == ""
    assert "is a folder" in problems["jw02_rate.fits"]
    assert "is a PNG image" in problems["jw03_rate.fits"]
    assert "association cannot be read" in problems["broken.json"]


def test_second_batch_on_a_folder_is_refused_or_waits(tmp_path):
    with batch_lock(tmp_path):
        with pytest.raises(BatchFolderInUse, match=r"in use by the batch of process \d+"):
            with batch_lock(tmp_path):
                pass
    # Waits for the first to finish.
    said = []
    release = threading.Event()

    def first():
        with batch_lock(tmp_path):
            release.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    time.sleep(0.2)
    threading.Timer(0.5, release.set).start()
    with batch_lock(tmp_path, wait=10, poll=0.1, say=said.append):
        pass
    thread.join()
    assert said and "waiting up to 10 s" in said[0]


def test_batch_command_says_the_folder_is_in_use(tmp_path, capsys):
    from jwst_mbkg_plus.cli import handle_args

    rate = tmp_path / "jw01_rate.fits"
    datamodels.ImageModel(np.ones((4, 4), np.float32)).save(rate)
    out = tmp_path / "out"
    out.mkdir()
    with batch_lock(out):
        assert handle_args(["batch", str(rate), "-o", str(out), "--no-plot"]) == 2
    assert "is in use by" in capsys.readouterr().err


def test_mos_step_given_a_qa_record_says_what_it_is(tmp_path, caplog):
    qa = tmp_path / "x_mbkgqa.asdf"
    asdf.AsdfFile({"master_background_qa": {"step": "x"}}).write_to(qa)
    result = MasterBackgroundMosPlusStep.call(str(qa))
    assert result.meta.cal_step.master_background == STATUS_FAILED
    assert "master background QA record" in caplog.text
    assert "not extracted slits" in caplog.text


def test_fill_values_in_a_spec3_background_member_are_left_out(caplog):
    inputs = make_spec3_inputs("NRS_FIXEDSLIT", n_science=1, n_background=2, seed=3)
    clean = MasterBackgroundPlusStep.call(make_container(inputs))
    container = make_container(inputs)
    for spec in container[1].spec:
        for col in ("SURF_BRIGHT", "BACKGROUND"):
            values = np.array(spec.spec_table[col], dtype=float)
            values[[10, 40, 70]] = -9999.0
            spec.spec_table[col] = values
    result = MasterBackgroundPlusStep.call(container)
    assert result[0].meta.cal_step.master_background == "COMPLETE"
    assert "rows 11 (-9999, a fill value)" in caplog.text
    for slit, ref in zip(result[0].slits, clean[0].slits, strict=True):
        good = ((slit.dq & 1) == 0) & ((ref.dq & 1) == 0)
        # Two members, one with three rows left out: the same background within noise.
        assert np.nanmax(np.abs(slit.data[good] - ref.data[good])) < 0.2 * np.nanstd(ref.data)
