"""The jwst-mbkg-plus command: the demo runs the real pipeline and reports residuals."""

import math

import pytest

from jwst_mbkg_plus.cli import handle_args, run_demo


def test_demo_plus_only_recovers_background(tmp_path, capsys):
    results = run_demo(tmp_path / "demo", n_background=3, noise=0.05, n_contaminated=0,
                       stock=False, seed=3)
    out = capsys.readouterr().out
    # Without the stock run: instrument, exposure, plus pipeline, residuals.
    assert "[1/4]" in out and "[3/4] Running Spec2PipelinePlus" in out and "[4/4]" in out
    plus = results["plus"]
    assert any(p.name.endswith("_cal.fits") for p in plus["folder"].iterdir())
    residuals = [value for kind, value in plus["residuals"].values()]
    assert len(residuals) == 6  # 3 background, 2 point, 1 extended
    assert all(math.isfinite(r) and abs(r) < 0.5 for r in residuals)


def test_cli_rejects_unknown_command(capsys):
    with pytest.raises(SystemExit) as err:
        handle_args(["nope"])
    assert err.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
