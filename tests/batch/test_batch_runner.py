"""The Dask batch runner on a synthetic visit: products, failures, skips, summary."""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from jwst_mbkg_plus.batch import collect_exposures, group_exposures, run_batch
from jwst_mbkg_plus.batch.summary import read_summary

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def visit(synthetic_instrument, tmp_path_factory):
    """3 nods x NRS1/NRS2, 2 background slitlets per detector, 5% noise, +/-1% drift."""
    from jwst_mbkg_plus.synthetic import Scene
    from jwst_mbkg_plus.synthetic.visit import make_visit

    scene = Scene(n_background=4, n_point=1, n_extended=1, detectors=("NRS1", "NRS2"),
                  noise_fraction=0.05, seed=31)
    return make_visit(scene, tmp_path_factory.mktemp("batch_visit"),
                      instrument=synthetic_instrument, n_nods=3, drift=0.01)


@pytest.fixture(scope="module")
def corrupt_batch(visit, synthetic_instrument, tmp_path_factory):
    """5 good exposures and 1 truncated copy of the 6th, run once with 2 workers."""
    bad_dir = tmp_path_factory.mktemp("corrupt")
    last = visit.rate_paths[(3, "NRS2")]
    bad = bad_dir / last.name.replace("00003", "00004")
    bad.write_bytes(last.read_bytes()[: 2880 * 40])
    inputs = [p for key, p in sorted(visit.rate_paths.items()) if key != (3, "NRS2")]
    inputs.append(bad)
    out = tmp_path_factory.mktemp("corrupt_out")
    lines = []
    result = run_batch(inputs, out, workers=2, crds=synthetic_instrument.crds_path,
                       memory_limit="4GB", progress=lines.append)
    return inputs, bad, out, result, lines


def test_collect_and_group(visit, tmp_path):
    exposures = collect_exposures([visit.folder])
    assert len(exposures) == 6
    groups = group_exposures(exposures)
    assert sorted(groups) == [("jw09999001001", "NRS1"), ("jw09999001001", "NRS2")]
    assert all(len(v) == 3 for v in groups.values())
    asn = tmp_path / "asn.json"
    members = [{"expname": str(p), "exptype": "science"} for p in visit.rate_paths.values()]
    asn.write_text(json.dumps({"products": [{"name": "x", "members": members}]}))
    assert len(collect_exposures(asn)) == 6
    with pytest.raises(ValueError, match="no such file"):
        collect_exposures(tmp_path / "missing_rate.fits")


def test_failure_recorded_and_others_done(corrupt_batch, visit):
    inputs, bad, out, result, lines = corrupt_batch
    assert result.count("done") == 5
    assert result.count("failed") == 1
    failed = [r for r in result.records if r["status"] == "failed"]
    assert failed[0]["file"] == bad.name
    assert bad.name in failed[0]["error"]
    for path in inputs[:-1]:
        stem = path.name.removesuffix("_rate.fits")
        for suffix in ("_cal.fits", "_x1d.fits", "_s2d.fits", "_mbkgqa.asdf"):
            assert (out / f"{stem}{suffix}").is_file()
    # Each exposure ran in a worker process, not in the client.
    assert {r["pid"] for r in result.records if r["status"] == "done"} - {os.getpid()}
    assert any("Dask scheduler tcp://127.0.0.1" in line for line in lines)


def test_science_of_the_products(corrupt_batch, visit):
    """Residual QA near 0, right errors, and the master follows each nod's sky level."""
    from stdatamodels.jwst import datamodels

    from jwst_mbkg_plus.synthetic import load_truth

    _, _, out, result, _ = corrupt_batch
    done = [r for r in result.records if r["status"] == "done"]
    for r in done:
        assert abs(r["residual_median"]) < 0.01
        assert 0.8 < r["pull_spread"] < 1.2
        assert r["rejected_slitlets"] == []
    # The master of each exposure against that nod's true (drifted) sky.
    for (nod, det), rate in visit.rate_paths.items():
        stem = rate.name.removesuffix("_rate.fits")
        master = out / f"{stem}_masterbg1d.fits"
        if not master.is_file():
            continue
        with datamodels.open(master) as m:
            table = m.spec[0].spec_table
            wave = np.asarray(table["WAVELENGTH"], float)
            sb = np.asarray(table["SURF_BRIGHT"], float)
        twave, tsb = load_truth(visit.truth_paths[(nod, det)]).background_1d()
        truth = np.interp(wave, twave, tsb)
        good = np.isfinite(sb) & np.isfinite(truth) & (truth > 0)
        assert np.median(sb[good] / truth[good]) == pytest.approx(1.0, abs=0.003)


def test_rerun_skips_finished_and_writes_summary(corrupt_batch, synthetic_instrument, capsys):
    from jwst_mbkg_plus.cli import handle_args

    inputs, bad, out, first, _ = corrupt_batch
    assert first.summary_ecsv.is_file() and first.summary_png.is_file()
    assert first.summary_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = handle_args(["batch", *map(str, inputs), "--output-dir", str(out), "--workers", "1",
                        "--crds", str(synthetic_instrument.crds_path)])
    assert code == 1  # the corrupt file fails again
    captured = capsys.readouterr()
    assert "5 already done (skipped)" in captured.out
    assert bad.name in captured.err
    table = read_summary(out / "summary.ecsv")
    assert len(table) == 6
    assert sorted(table["status"]) == ["failed"] + ["skipped"] * 5
    row = table[table["file"] == bad.name][0]
    assert bad.name in row["error"]
    skipped = table[table["status"] == "skipped"]
    assert np.all(np.isfinite(skipped["pull_spread"]))
    assert np.all(np.isfinite(skipped["master_median"]))


def _wait_for(path, timeout=60):
    t0 = time.time()
    while not path.is_file():
        if time.time() - t0 > timeout:
            raise TimeoutError(f"{path} not written in {timeout} s")
        time.sleep(0.2)


def test_existing_scheduler_and_worker_processes(visit, synthetic_instrument, tmp_path):
    """A scheduler and a worker started as separate processes on 127.0.0.1."""
    bindir = os.path.dirname(sys.executable)
    dask = shutil.which("dask", path=bindir) or shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    sched_file = tmp_path / "scheduler.json"
    logs = [open(tmp_path / name, "w") for name in ("scheduler.log", "worker.log")]  # noqa: SIM115
    procs = []
    try:
        procs.append(subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(sched_file)], stdout=logs[0], stderr=logs[0]))
        _wait_for(sched_file)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen(
            [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
             "--nworkers", "1", "--memory-limit", "4GB", "--no-dashboard"],
            stdout=logs[1], stderr=logs[1]))
        from dask.distributed import Client

        with Client(address) as client:
            client.wait_for_workers(1, timeout=60)
        rate = visit.rate_paths[(2, "NRS1")]
        result = run_batch([rate], tmp_path / "out", scheduler=address,
                           crds=synthetic_instrument.crds_path)
        assert result.scheduler == address
        record = result.records[0]
        assert record["status"] == "done", record["error"]
        assert record["pid"] not in (os.getpid(), procs[0].pid)
        assert abs(record["residual_median"]) < 0.01
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for fh in logs:
            fh.close()


def test_visit_master_batch(visit, synthetic_instrument, tmp_path):
    """--visit-master: each exposure's master from its 3 nods, with the drift fitted."""
    from jwst_mbkg_plus.io.products import read_qa

    out = tmp_path / "vm"
    # One detector's three nods: a visit group (NRS2's is the same code on other files).
    nrs1 = {key: rate for key, rate in visit.rate_paths.items() if key[1] == "NRS1"}
    result = run_batch(sorted(nrs1.values()), out, workers=2,
                       crds=synthetic_instrument.crds_path, memory_limit="4GB",
                       visit_master=True)
    assert result.count("done") == 3, [r["error"] for r in result.records]
    mean_level = np.mean(visit.levels)
    for (nod, det), rate in nrs1.items():
        stem = rate.name.removesuffix("_rate.fits")
        record = next(r for r in result.records if r["file"] == rate.name)
        assert len(record["companions"]) == 2
        assert record["master_level"] == pytest.approx(visit.levels[nod - 1] / mean_level,
                                                       abs=0.002)
        assert (out / f"{stem}_bkgcal.fits").is_file()
        qa = read_qa(out / f"{stem}_mbkgqa.asdf")["visit"]
        assert qa["exposure"] == stem
        assert qa["n_exposures"] == 3
        others = {visit.rate_paths[(k, det)].name.removesuffix("_rate.fits")
                  for k in (1, 2, 3)}
        assert set(qa["exposures"]) == others
        assert set(qa["slits_used"]) == others
        assert all(len(v) == 2 for v in qa["slits_used"].values())
        assert abs(record["residual_median"]) < 0.01
