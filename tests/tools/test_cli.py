"""The jwst-mbkg-plus command: the demo runs the real pipeline and reports residuals."""

import math
import re

import numpy as np
import pytest

from jwst_mbkg_plus.cli import handle_args
from jwst_mbkg_plus.synthetic.demo import run_demo


@pytest.mark.pipeline
def test_demo_plus_only_recovers_background(tmp_path, capsys):
    # The notebook's mode, with few background slitlets: each leave-one-out master
    # is made of 2, so the master's variance is a visible part of ERR.
    # Perfectly calibrated slitlets (the default paints per-slitlet calibration errors).
    results = run_demo(tmp_path / "demo", grating="PRISM", n_background=3, noise=0.05,
                       n_contaminated=0, stock=False, seed=3, calibration_error=())
    out = capsys.readouterr().out
    # Without the stock run: instrument, exposure, plus pipeline, residuals.
    assert "[1/4]" in out and "[3/4] Running Spec2PipelinePlus" in out and "[4/4]" in out
    plus = results["plus"]
    assert any(p.name.endswith("_cal.fits") for p in plus["folder"].iterdir())
    residuals = [value for kind, value in plus["residuals"].values()]
    assert len(residuals) == 6  # 3 background, 2 point, 1 extended
    assert all(math.isfinite(r) and abs(r) < 0.5 for r in residuals)
    # Slits listed in numeric order; the QA line reports the robust pull spread.
    rows = re.findall(r"^\s+(\d+) (?:background|point|extended)", out, flags=re.MULTILINE)
    assert [int(r) for r in rows] == sorted(int(r) for r in rows) and len(rows) == 6
    # The error model is right (1 +/- 0.05) per pixel and per column; residual / ERR
    # per pixel is below 1 by design (ERR is raised for column sums) and matches
    # its expected value.
    model = re.search(r"error-model pull spread (\d\.\d+) per pixel, (\d\.\d+) per column", out)
    assert model, out
    assert abs(float(model.group(1)) - 1) < 0.05 and abs(float(model.group(2)) - 1) < 0.05, out
    err = re.search(r"residual / ERR (\d\.\d+) per pixel \(expected (\d\.\d+)", out)
    assert err and abs(float(err.group(1)) / float(err.group(2)) - 1) < 0.05, out
    assert re.search(r"; (\d+) rejected pixels flagged OUTLIER \+ DO_NOT_USE", out)


@pytest.mark.pipeline
def test_demo_takes_a_sky_csv_on_a_grating(tmp_path, capsys):
    """`demo --sky FILE --grating G235M`: any (wave, flux) CSV is the injected background."""
    from jwst_mbkg_plus.synthetic.sky import builtin_sky

    wave, flux = builtin_sky()
    sky = tmp_path / "my_sky.csv"
    rows = "".join(f"{w},{2 * f}\n" for w, f in zip(wave, flux, strict=True))
    sky.write_text("wave,flux\n" + rows)
    status = handle_args(["demo", "--workdir", str(tmp_path / "demo"), "--grating", "G235M",
                          "--sky", str(sky), "--no-stock", "--background-slitlets", "3",
                          "--noise", "0.05", "--contaminated", "0", "--seed", "4",
                          "--calibration-error", "0"])
    out = capsys.readouterr().out
    assert status == 0
    assert "Painting a G235M exposure" in out and "my_sky.csv" in out
    from jwst_mbkg_plus.synthetic import load_truth

    truth = load_truth(next((tmp_path / "demo" / "exposure").glob("*_truth.asdf")))
    lam, sb = truth.background_1d()
    np.testing.assert_allclose(sb, 2 * np.interp(lam, wave, flux), rtol=1e-5)
    rows = [line.split() for line in out.splitlines() if line.strip().endswith("%")]
    residuals = [float(r[-1].rstrip("%")) for r in rows if r[0].isdigit()]
    assert len(residuals) == 6 and all(abs(r) < 0.5 for r in residuals)


def test_demo_reports_a_bad_calibration_error(tmp_path, capsys):
    assert handle_args(["demo", "--workdir", str(tmp_path), "--calibration-error", "x"]) == 2
    assert "--calibration-error" in capsys.readouterr().err
    assert handle_args(["demo", "--workdir", str(tmp_path), "--calibration-error", "0.9"]) == 2


def test_demo_reports_a_bad_sky_file(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert handle_args(["demo", "--sky", str(bad), "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {bad}: needs columns 'wave'" in err
    assert handle_args(["demo", "--sky", str(tmp_path / "none.csv")]) == 2
    assert "no such sky file" in capsys.readouterr().err


def test_cli_rejects_unknown_command(capsys):
    with pytest.raises(SystemExit) as err:
        handle_args(["nope"])
    assert err.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_demo_default_calibration_error_is_the_cli_default_and_a_valid_scene():
    """`run_demo()` from Python paints what `jwst-mbkg-plus demo` paints by default."""
    from jwst_mbkg_plus.cli import _calibration_error
    from jwst_mbkg_plus.synthetic import Scene
    from jwst_mbkg_plus.synthetic.calib_error import check_calibration_error
    from jwst_mbkg_plus.synthetic.demo import DEMO_CALIBRATION_ERROR

    # (0.03, 0.02) alone was refused by Scene (it needs 3 or 4 values).
    scene = Scene(calibration_error=DEMO_CALIBRATION_ERROR)
    assert scene.calibration_error[:2] == (0.03, 0.02)
    assert check_calibration_error(DEMO_CALIBRATION_ERROR) == check_calibration_error(
        _calibration_error("0.03,0.02"))
