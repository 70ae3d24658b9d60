"""The jwst-mbkg-plus command: the demo runs the real pipeline and reports residuals."""

import math
import re

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
    # Slits listed in numeric order; the QA line reports the robust pull spread.
    rows = re.findall(r"^\s+(\d+) (?:background|point|extended)", out, flags=re.MULTILINE)
    assert [int(r) for r in rows] == sorted(int(r) for r in rows) and len(rows) == 6
    spread = re.search(r"residual / error spread (\d\.\d+) \(1\.4826 MAD", out)
    # 3 background slitlets: each leave-one-out master is made of 2, whose
    # error is overestimated (0.950 measured; 0.974 with the demo's 6).
    assert spread and abs(float(spread.group(1)) - 1) < 0.1
    assert re.search(r"; (\d+) rejected pixels flagged OUTLIER \+ DO_NOT_USE", out)


def test_cli_rejects_unknown_command(capsys):
    with pytest.raises(SystemExit) as err:
        handle_args(["nope"])
    assert err.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
