"""Bad input, degenerate scenes and interrupted writes: a clear status every time, nothing lost.

One test per case of issue 16 and the classes they stand for: malformed and
unreadable files wherever a file is read, numeric parameters at and beyond
their bounds, degenerate scenes, interrupted writes. These run no jwst
calibration chain: the steps refuse before any work, and the spec3 inputs are
synthetic models with their own WCS. The MOS cases that need calibrated slits
are in test_mos_step.py.
"""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_models import fake_mos_model as _mos_model
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus import (
    MasterBackgroundMosPlusStep,
    MasterBackgroundPlusStep,
    Spec2PipelinePlus,
    input_checks,
)
from jwst_mbkg_plus.algorithms import source_evidence
from jwst_mbkg_plus.cli import handle_args
from jwst_mbkg_plus.input_checks import ParameterError
from jwst_mbkg_plus.io.user_background import (
    UserBackgroundFileNotFoundError,
    UserBackgroundFormatError,
    UserBackgroundUnreadableError,
    read_user_background,
    write_user_background,
)
from jwst_mbkg_plus.jwst_internals import STATUS_FAILED
from jwst_mbkg_plus.safe_io import (
    PARTIAL_TAG,
    InputFileError,
    OutputFolderError,
    atomic_output,
    atomic_save_model,
    check_output_folder,
    reading,
)
from jwst_mbkg_plus.spec3 import collect
from jwst_mbkg_plus.spec3 import master as spec3_master
from jwst_mbkg_plus.synthetic.spec3_inputs import (
    make_container,
    make_spec3_inputs,
    write_association,
)
from jwst_mbkg_plus.tools import ToolInputError


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _truncate(src, dst, fraction):
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


@pytest.fixture
def masterbg1d(tmp_path):
    """A good user background (masterbg1d format) of 400 points, 1.6-3.2 um."""
    wave = np.linspace(1.6, 3.2, 400)
    return write_user_background(tmp_path / "sky_masterbg1d.fits", wave, 1 + 0.1 * wave,
                                 0.01 * np.ones_like(wave))


@pytest.fixture
def deny_read(monkeypatch):
    """Make opening chosen paths raise PermissionError (chmod does not stop root)."""
    denied = set()
    real_open = Path.open

    def guarded(self, *args, **kwargs):
        if str(self) in denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    return denied



# --------------------------------------------------------------------------- the read guard


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.9])
def test_reading_names_a_truncated_fits_file(masterbg1d, tmp_path, fraction):
    bad = _truncate(masterbg1d, tmp_path / "cut.fits", fraction)
    with pytest.raises(InputFileError, match=r"cut\.fits: .*truncated or corrupted.*Re-create"):
        with reading(bad, "test file"):
            with datamodels.open(bad) as model:
                _ = model.spec[0].spec_table
    assert bad.stat().st_size == int(masterbg1d.stat().st_size * fraction)


def test_reading_names_folder_missing_and_unreadable_files(tmp_path, deny_read):
    with pytest.raises(InputFileError, match="is a folder, not a file"):
        with reading(tmp_path):
            pass
    with pytest.raises(InputFileError, match="does not exist"):
        with reading(tmp_path / "nothing.fits"):
            pass
    locked = tmp_path / "locked.fits"
    locked.write_bytes(b"SIMPLE  =")
    deny_read.add(str(locked))
    with pytest.raises(InputFileError, match="permission denied.*chmod"):
        with reading(locked):
            pass


def test_reading_passes_the_package_errors_through(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("x")
    with pytest.raises(ToolInputError, match="mine"), reading(path):
        raise ToolInputError(path, "mine")
    with pytest.raises(InputFileError, match=r"cannot be read \(KeyError"), reading(path):
        raise KeyError("deep inside astropy")


# --------------------------------------------------------------------------- user_background


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7])
def test_truncated_user_background_names_the_file(masterbg1d, tmp_path, fraction):
    bad = _truncate(masterbg1d, tmp_path / "half_masterbg1d.fits", fraction)
    before = _sha(bad)
    match = r"half_masterbg1d\.fits.*(truncated|corrupt)"
    with pytest.raises(UserBackgroundFormatError, match=match):
        read_user_background(bad)
    assert _sha(bad) == before


def test_user_background_cut_in_its_metadata_reads_the_whole_table(masterbg1d, tmp_path):
    # Cut inside the trailing ASDF extension: the table is whole, a warning says so.
    bad = _truncate(masterbg1d, tmp_path / "tail_masterbg1d.fits", 0.95)
    bkg = read_user_background(bad)
    assert bkg.n_points == 400


def test_user_background_folder_unreadable_and_missing(tmp_path, masterbg1d, deny_read):
    with pytest.raises(UserBackgroundUnreadableError, match="is a folder, not a file"):
        read_user_background(tmp_path)
    with pytest.raises(UserBackgroundFileNotFoundError, match="file not found"):
        read_user_background(tmp_path / "nope.fits")
    deny_read.add(str(masterbg1d))
    with pytest.raises(UserBackgroundUnreadableError, match="permission denied"):
        read_user_background(masterbg1d)


def test_truncated_csv_user_background_is_read_or_refused_clearly(tmp_path):
    path = tmp_path / "sky.csv"
    path.write_text("wavelength,surf_bright\n" + "".join(
        f"{w:.4f},{1 + w:.4f}\n" for w in np.linspace(1.6, 3.2, 50)))
    cut = _truncate(path, tmp_path / "cut.csv", 0.55)
    try:
        bkg = read_user_background(cut)
    except UserBackgroundFormatError as err:
        assert "cut.csv" in str(err)
    else:
        assert 20 < bkg.n_points < 50


# --------------------------------------------------------------------------- MOS step: input


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: datamodels.MultiCombinedSpecModel(), "1-D spectrum product.*user_background"),
        (lambda: _with_exp(datamodels.ImageModel(np.ones((8, 8))), "NRS_MSASPEC"),
         "not extracted slits.*calwebb_spec2_plus"),
        (lambda: _mos_model(exp_type="NRS_FIXEDSLIT"), "NRS_FIXEDSLIT data.*spec3"),
        (lambda: _with_exp(datamodels.IFUImageModel(np.ones((8, 8))), "NRS_IFU"),
         "NRS_IFU data"),
        (lambda: _with_exp(datamodels.ImageModel(np.ones((8, 8))), "MIR_LRS-FIXEDSLIT"),
         "MIR_LRS-FIXEDSLIT data"),
        (lambda: _mos_model(n_slits=0), "holds no slits.*MSA metadata"),
    ],
    ids=["masterbg1d", "rate", "fixed_slit", "ifu", "miri_lrs", "zero_slits"],
)
def test_mos_step_refuses_what_it_cannot_use(make, message, caplog):
    model = make()
    result = MasterBackgroundMosPlusStep.call(model)
    assert result.meta.cal_step.master_background == STATUS_FAILED
    assert input_checks.mos_input_problem(model)
    assert any(r.levelname == "ERROR" for r in caplog.records)
    import re

    assert re.search(message, caplog.text), caplog.text


def _with_exp(model, exp_type):
    model.meta.exposure.type = exp_type
    return model


def test_masterbg1d_marked_complete_is_refused_not_skipped():
    model = datamodels.MultiCombinedSpecModel()
    model.meta.cal_step.master_background = "COMPLETE"
    result = MasterBackgroundMosPlusStep.call(model)
    assert result.meta.cal_step.master_background == STATUS_FAILED


def test_already_calibrated_slits_are_refused(caplog):
    model = _mos_model()
    model.meta.cal_step.photom = "COMPLETE"
    result = MasterBackgroundMosPlusStep.call(model)
    assert result.meta.cal_step.master_background == STATUS_FAILED
    assert "runs before flat_field" in caplog.text


def test_truncated_input_file_is_named(tmp_path):
    path = tmp_path / "slits.fits"
    _mos_model().save(path)
    bad = _truncate(path, tmp_path / "half_slits.fits", 0.5)
    with pytest.raises(InputFileError, match=r"half_slits\.fits.*truncated"):
        MasterBackgroundMosPlusStep.call(str(bad))


# --------------------------------------------------------------------------- MOS step: parameters

_MOS_BAD = [
    ({"pixel_sigma": 0}, "pixel_sigma=0 would reject every"),
    ({"pixel_sigma": 0, "reject_pixels": False}, None),
    ({"sigma_clip": 0}, "sigma_clip=0 would clip every point"),
    ({"sigma_clip": -1}, "sigma_clip=-1"),
    ({"vet_threshold": 0}, "vet_threshold=0"),
    ({"vet_threshold": 0, "vet_spectra": False}, None),
    ({"median_kernel": 0}, "median_kernel=0 must be >= 1"),
    ({"median_kernel": 300}, "longer than the longest slit spectrum"),
    ({"median_kernel": 2001}, "longer than the longest slit spectrum"),
    ({"median_kernel": 299}, None),
    ({"bkg_slits": []}, r"bkg_slits=\[\] names no slitlet"),
    ({"bkg_slits": ["no_such"]}, "names slits not in this exposure"),
    ({"exclude_slits": ["1"]}, "No background slitlets remain"),
    ({"sigma_clip": 0, "combine_method": "median"}, None),
    ({"pixel_sigma": 0, "user_background": "sky.fits"}, None),
    ({"median_kernel": 0, "user_background": "sky.fits"}, "median_kernel=0"),
]


def _step(**overrides):
    pars = {"median_kernel": 1, "sigma_clip": 3.0, "reject_pixels": True, "pixel_sigma": 5.0,
            "vet_spectra": True, "vet_threshold": 5.0, "bkg_slits": None, "exclude_slits": None,
            "user_background": None, "min_spectra": 2, "combine_method": "clipped_mean"}
    return SimpleNamespace(**{**pars, **overrides})


@pytest.mark.parametrize(("pars", "message"), _MOS_BAD, ids=[str(p) for p, _ in _MOS_BAD])
def test_mos_parameters_at_and_beyond_their_bounds(pars, message):
    problem = input_checks.mos_parameter_problem(_step(**pars), _mos_model(n_slits=2))
    if message is None:
        assert problem == ""
    else:
        import re

        assert re.search(message, problem), problem


@pytest.mark.parametrize("pars", [{"pixel_sigma": 0}, {"sigma_clip": 0}, {"bkg_slits": []},
                                  {"median_kernel": 2001}])
def test_mos_step_fails_before_any_work(pars, caplog):
    # No CRDS context is active: any calibration attempt would fail loudly.
    result = MasterBackgroundMosPlusStep.call(_mos_model(), **pars)
    assert result.meta.cal_step.master_background == STATUS_FAILED
    assert "Step failed." in caplog.text


@pytest.mark.parametrize(
    ("name", "value"),
    [("min_spectra", 0), ("vet_threshold", -1), ("pixel_sigma", -0.5), ("pixel_maxiters", 0),
     ("error_extraction_height", 0), ("slit_scale_guard", -1)],
)
def test_mos_spec_refuses_values_beyond_bounds(name, value):
    from jwst_mbkg_plus.jwst_internals import ParameterValidationError as ValidationError

    with pytest.raises(ValidationError, match=name):
        MasterBackgroundMosPlusStep(**{name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [("sigma_clip", -1), ("maxiters", 0), ("min_spectra", 0), ("vet_threshold", -1),
     ("vet_min_deviation", -0.1), ("user_background_min_overlap", 1.5)],
)
def test_spec3_spec_refuses_values_beyond_bounds(name, value):
    from jwst_mbkg_plus.jwst_internals import ParameterValidationError as ValidationError

    with pytest.raises(ValidationError, match=name):
        MasterBackgroundPlusStep(**{name: value})


def test_min_spectra_above_the_count_warns_and_follows_the_docs(caplog):
    assert input_checks.mos_parameter_problem(_step(min_spectra=10), _mos_model(n_slits=4)) == ""
    assert "min_spectra=10 but only 2 background spectra" in caplog.text
    assert "plain mean" in caplog.text


def test_contradictory_parameters_raise():
    model = _mos_model()
    with pytest.raises(ParameterError, match="bkg_method='extract_1d'"):
        MasterBackgroundMosPlusStep.call(model, combine_method="jwst")
    with pytest.raises(ParameterError, match="spatial_model='none'"):
        MasterBackgroundMosPlusStep.call(model, combine_method="jwst", bkg_method="extract_1d",
                                         spatial_model="plane")


def test_bad_user_background_fails_before_any_work(tmp_path, masterbg1d, deny_read, caplog):
    bad = _truncate(masterbg1d, tmp_path / "half.fits", 0.5)
    for path, message in [(bad, "truncated"), (tmp_path, "is a folder"),
                          (tmp_path / "none.fits", "file not found")]:
        result = MasterBackgroundMosPlusStep.call(_mos_model(), user_background=str(path))
        assert result.meta.cal_step.master_background == STATUS_FAILED
        assert message in caplog.text
    deny_read.add(str(masterbg1d))
    result = MasterBackgroundMosPlusStep.call(_mos_model(), user_background=str(masterbg1d))
    assert result.meta.cal_step.master_background == STATUS_FAILED
    assert "permission denied" in caplog.text


# --------------------------------------------------------------------------- output folders


def test_check_output_folder(tmp_path, monkeypatch):
    assert check_output_folder(tmp_path) == tmp_path
    with pytest.raises(OutputFolderError, match="does not exist"):
        check_output_folder(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="is not a folder"):
        check_output_folder(tmp_path / "file")

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    with pytest.raises(OutputFolderError, match="cannot be written to"):
        check_output_folder(tmp_path)


@pytest.fixture
def read_only_folders(monkeypatch):
    """Make the write probe fail as in a read-only folder (chmod does not stop root)."""
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args, prefix=None, **kwargs):
        if prefix == ".write-test-":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_unwritable_output_dir_fails_the_mos_step_first(tmp_path, caplog, read_only_folders):
    result = MasterBackgroundMosPlusStep.call(_mos_model(), save_background=True,
                                              output_dir=str(tmp_path))
    assert result.meta.cal_step.master_background == STATUS_FAILED
    assert "cannot be written to (Permission denied)" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_dir_stops_the_pipeline_first(tmp_path, read_only_folders):
    pipeline = Spec2PipelinePlus(output_dir=str(tmp_path), save_results=True)
    with pytest.raises(OutputFolderError, match="cannot be written to"):
        pipeline.run(_mos_model())


# --------------------------------------------------------------------------- atomic writes


def test_atomic_output_keeps_the_previous_file_on_failure(tmp_path):
    path = tmp_path / "out.fits"
    path.write_text("good")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fits"]
    with atomic_output(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".fits" and PARTIAL_TAG in tmp.name
        tmp.write_text("new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fits"]


def test_kill_9_during_a_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "product.fits"
    path.write_text("previous good output")
    child = textwrap.dedent(f"""
        import os, signal
        from jwst_mbkg_plus.safe_io import atomic_output
        with atomic_output({str(path)!r}) as tmp:
            tmp.write_text("half of a file")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", child], env=dict(os.environ), check=False)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_text() == "previous good output"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "product.fits"]
    assert all(name.startswith(".product") and PARTIAL_TAG in name for name in leftovers)


def test_atomic_save_model_keeps_the_final_name(tmp_path):
    model = datamodels.ImageModel(np.ones((4, 4), dtype=np.float32))
    path = Path(atomic_save_model(model, tmp_path / "image_rate.fits"))
    assert model.meta.filename == "image_rate.fits"
    with datamodels.open(path) as back:
        assert back.meta.filename == "image_rate.fits"
        np.testing.assert_array_equal(back.data, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["image_rate.fits"]


def test_step_products_are_written_atomically(tmp_path, monkeypatch):
    step = MasterBackgroundMosPlusStep(output_dir=str(tmp_path))
    model = _mos_model()
    model.meta.filename = "x_cal.fits"
    good = Path(step.save_model(model, suffix="masterbg2d", force=True))
    before = _sha(good)

    def broken(self, init, *args, **kwargs):
        init.write(b"SIMPLE  = half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(datamodels.MultiSlitModel, "to_fits", broken)
    with pytest.raises(OSError, match="No space"):
        step.save_model(model, suffix="masterbg2d", force=True)
    assert _sha(good) == before
    assert [p.name for p in tmp_path.iterdir()] == [good.name]


# --------------------------------------------------------------------------- spec3


@pytest.fixture
def fs_inputs():
    return make_spec3_inputs("NRS_FIXEDSLIT", n_science=1, n_background=3, seed=3)


def _nan_member(model):
    for spec in model.spec:
        for col in ("SURF_BRIGHT", "BACKGROUND", "FLUX"):
            spec.spec_table[col] = np.nan


def test_spec3_one_all_nan_member_is_ignored(fs_inputs, caplog):
    container = make_container(fs_inputs)
    _nan_member(container[1])
    result = MasterBackgroundPlusStep.call(container)
    assert result[0].meta.cal_step.master_background == "COMPLETE"
    assert "fewer than 2 usable samples; ignored" in caplog.text


def test_spec3_all_nan_members_fail(fs_inputs, caplog):
    container = make_container(fs_inputs)
    for model in list(container)[1:]:
        _nan_member(model)
    result = MasterBackgroundPlusStep.call(container)
    assert result[0].meta.cal_step.master_background == STATUS_FAILED
    assert "no background member has a usable spectrum" in caplog.text


def test_spec3_truncated_member_is_named(fs_inputs, tmp_path):
    asn = write_association(fs_inputs, tmp_path)
    member = fs_inputs.backgrounds[1].meta.filename
    _truncate(tmp_path / member, tmp_path / member, 0.5)
    before = {p.name: _sha(p) for p in tmp_path.iterdir()}
    with pytest.raises(InputFileError, match=rf"member of association .*{member}.*truncated"):
        MasterBackgroundPlusStep.call(str(asn))
    assert {p.name: _sha(p) for p in tmp_path.iterdir()} == before


def test_spec3_refuses_mos_data(fs_inputs, caplog):
    from jwst.datamodels import ModelContainer

    science = _mos_model()
    science.meta.asn.exptype = "science"
    backgrounds = [m.copy() for m in fs_inputs.backgrounds]
    for m in backgrounds:
        m.meta.asn.exptype = "background"
    result = MasterBackgroundPlusStep.call(ModelContainer([science, *backgrounds]))
    assert all(m.meta.cal_step.master_background == STATUS_FAILED for m in result)
    assert "master_background_mos_plus" in caplog.text


@pytest.mark.parametrize(
    ("pars", "message"),
    [({"min_spectra": 10}, "min_spectra=10 but only 3"),
     ({"median_kernel": 100000}, "median_kernel=100000 is not shorter"),
     ({"median_kernel": 0}, "median_kernel=0 must be >= 1")],
)
def test_spec3_parameters_that_cannot_work_fail(fs_inputs, pars, message, caplog):
    result = MasterBackgroundPlusStep.call(make_container(fs_inputs), **pars)
    assert result[0].meta.cal_step.master_background == STATUS_FAILED
    assert message in caplog.text


def test_spec3_no_wavelength_overlap_fails(fs_inputs, caplog):
    container = make_container(fs_inputs)
    for model in list(container)[1:]:
        for spec in model.spec:
            spec.spec_table["WAVELENGTH"] = spec.spec_table["WAVELENGTH"] + 20.0
    result = MasterBackgroundPlusStep.call(container)
    assert result[0].meta.cal_step.master_background == STATUS_FAILED
    assert "no overlap" in caplog.text


def test_spec3_unreadable_user_background_fails(fs_inputs, masterbg1d, deny_read, caplog):
    deny_read.add(str(masterbg1d))
    science = fs_inputs.science[0].copy()
    result = MasterBackgroundPlusStep.call(science, user_background=str(masterbg1d))
    assert result.meta.cal_step.master_background == STATUS_FAILED
    assert "permission denied" in caplog.text


def test_spec3_engine_degenerate_spectra():
    spectrum = collect.BackgroundSpectrum("a", np.array([]), np.array([]), None, "SURF_BRIGHT", 1)
    assert spectrum.wavelength.size == 0
    with pytest.raises(ValueError, match="no background member has a usable spectrum"):
        spec3_master.build_master_background([])


# --------------------------------------------------------------------------- source evidence


def _slit(rng, source_rows=(), amplitude=1.0, level=1.0, noise=0.02, shape=(25, 400)):
    sb = level * (1 + noise * rng.standard_normal(shape))
    sb[list(source_rows), :] += amplitude
    var = np.full(shape, (noise * level) ** 2)
    return sb, var, np.ones(shape, dtype=bool)


def test_row_profile_evidence_finds_a_point_source_only():
    rng = np.random.default_rng(1)
    assert not source_evidence.row_profile_evidence(*_slit(rng)).has_source
    found = source_evidence.row_profile_evidence(*_slit(rng, source_rows=(11, 12, 13)))
    assert found.has_source and "rows 11-13" in found.reason
    faint = source_evidence.row_profile_evidence(*_slit(rng, source_rows=(12,), amplitude=0.01))
    assert not faint.has_source


def test_level_excess_finds_a_slitlet_filling_source():
    rng = np.random.default_rng(2)
    reference = 1 + 0.01 * rng.standard_normal((4, 300))
    assert not source_evidence.level_excess(reference[0] * 1.01, reference).has_source
    excess = source_evidence.level_excess(reference[0] * 1.5, reference)
    assert excess.has_source and "+50%" in excess.reason
    assert not source_evidence.level_excess(reference[0] * 1.5, np.empty((0, 300))).has_source


# --------------------------------------------------------------------------- tools


def test_flag_pixels_truncated_and_folder_inputs(tmp_path, capsys):
    rate = tmp_path / "x_rate.fits"
    datamodels.ImageModel(np.ones((64, 64), dtype=np.float32)).save(rate)
    bad = _truncate(rate, tmp_path / "half_rate.fits", 0.5)
    out = tmp_path / "flagged.fits"
    assert handle_args(["flag-pixels", str(bad), "-o", str(out), "--pixel", "3,3"]) == 2
    assert "half_rate.fits" in capsys.readouterr().err and not out.exists()
    assert handle_args(["flag-pixels", str(tmp_path), "-o", str(out), "--pixel", "3,3"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_flag_pixels_interrupted_write_keeps_previous_output(tmp_path, monkeypatch):
    rate = tmp_path / "x_rate.fits"
    datamodels.ImageModel(np.ones((64, 64), dtype=np.float32)).save(rate)
    out = tmp_path / "flagged.fits"
    assert handle_args(["flag-pixels", str(rate), "-o", str(out), "--pixel", "3,3"]) == 0
    before = _sha(out)

    def broken(self, init, *args, **kwargs):
        init.write(b"SIMPLE  =")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(datamodels.ImageModel, "to_fits", broken)
    assert handle_args(["flag-pixels", str(rate), "-o", str(out), "--pixel", "4,4",
                        "--overwrite"]) == 2
    assert _sha(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flagged.fits", "x_rate.fits"]


def test_msa_select_truncated_input(tmp_path, capsys):
    from astropy.io import fits

    hdul = fits.HDUList([fits.PrimaryHDU(),
                         fits.BinTableHDU.from_columns([fits.Column("slitlet_id", "J",
                                                                    array=np.arange(5000))],
                                                       name="SHUTTER_INFO")])
    msa = tmp_path / "x_msa.fits"
    hdul.writeto(msa)
    bad = _truncate(msa, tmp_path / "half_msa.fits", 0.6)
    rc = handle_args(["msa-select", str(bad), "-o", str(tmp_path / "new.fits"),
                      "--background", "5"])
    assert rc == 2
    assert "half_msa.fits" in capsys.readouterr().err


def test_master_refuses_subtracted_products(tmp_path, capsys):
    cal = tmp_path / "done_cal.fits"
    model = _mos_model()
    model.meta.cal_step.master_background = "COMPLETE"
    model.save(cal)
    out = tmp_path / "master.fits"
    assert handle_args(["master", str(cal), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already subtracted" in err and not out.exists()


@pytest.mark.parametrize(("args", "message"),
                         [(["--sigma", "0"], "--sigma 0.0 would clip"),
                          (["--vet-threshold", "0"], "--vet-threshold 0.0"),
                          (["--median-kernel", "0"], "--median-kernel 0")])
def test_master_refuses_impossible_options(tmp_path, capsys, args, message):
    x1d = tmp_path / "a_x1d.fits"
    x1d.write_text("unused")
    assert handle_args(["master", str(x1d), "-o", str(tmp_path / "m.fits"), *args]) == 2
    assert message in capsys.readouterr().err


def test_plot_folder_input(tmp_path, capsys):
    assert handle_args(["plot", str(tmp_path), "--outdir", str(tmp_path / "png")]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_demo_with_a_bad_folder_says_so(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert handle_args(["demo", "--workdir", str(blocker), "--no-stock"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert handle_args(["demo", "--workdir", str(blocker / "sub"), "--no-stock"]) == 2
    assert "cannot be created" in capsys.readouterr().err


# --------------------------------------------------------------------------- synthetic cache


@pytest.mark.pipeline
def test_concurrent_first_use_of_a_new_cache(tmp_path):
    """Three processes build the same fresh synthetic instrument at once."""
    child = textwrap.dedent("""
        from jwst_mbkg_plus.offline import configure_offline_crds
        configure_offline_crds()
        from jwst_mbkg_plus.synthetic import build_instrument, default_instrument_path
        inst = build_instrument(default_instrument_path(gratings=("G235M",),
                                                        detectors=("NRS1",)))
        print("BUILT", inst.build_seconds > 0)
    """)
    env = dict(os.environ, JWST_MBKG_PLUS_CACHE=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", child], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-500:] for _, err in outputs]
    built = [out.split()[-1] for out, _ in outputs]
    assert built.count("True") == 1, built  # one built, the others reused
    crds = tmp_path / "cache" / "crds"
    assert all((crds / "references/jwst" / d).is_dir() for d in ("nirspec", "miri", "system"))
    stamp = next((tmp_path / "cache" / "synthetic_instrument").glob("*/synthetic_instrument.json"))
    assert json.loads(stamp.read_text())["digest"]


def test_truncated_input_stops_the_pipeline_first(tmp_path):
    rate = tmp_path / "x_rate.fits"
    datamodels.ImageModel(np.ones((256, 256), dtype=np.float32)).save(rate)
    bad = _truncate(rate, tmp_path / "half_rate.fits", 0.5)
    with pytest.raises(InputFileError, match=r"half_rate\.fits.*truncated"):
        Spec2PipelinePlus(output_dir=str(tmp_path)).run(str(bad))
