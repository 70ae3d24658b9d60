"""Kill every writing command with SIGKILL at random moments; check nothing is lost.

For each command (the tools ``flag-pixels``, ``msa-select``, ``master``,
``plot`` and the MOS step saving its product, ``masterbg1d``, ``masterbg2d``
and QA record), the script first runs it to completion, which leaves a good
output in a folder of its own. It then re-runs it with overwrite ``--kills``
times and sends ``kill -9`` at a random moment: a third of the moments uniform
over the whole run, two thirds during the writing (once a file in the folder
appears or changes, after a delay uniform over the time the writing took in
the uninterrupted run).
After each kill, every file under a final name in the folder must open
completely (FITS with every HDU's data, datamodels, ASDF, PNG, JSON), and
each output of the good run must still be there, either as it was or replaced
by a complete new version.

Usage::

    python validation/interrupted_writes.py [--kills 20] [--work /tmp/mbkg_kill]
        [--commands flag-pixels,msa-select,master,plot,mos-step]
        [--out validation/results_interrupted_writes.json]

It reuses the synthetic data of ``validation/bad_inputs.py`` (built in
``--data``, default ``/tmp/mbkg_bad_inputs``, if missing).
"""

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

PARTIAL = ".partial-"

_MOS_STEP = """
import sys
from jwst_mbkg_plus.offline import configure_offline_crds
configure_offline_crds(sys.argv[3])
from jwst_mbkg_plus import MasterBackgroundMosPlusStep
from jwst_mbkg_plus.synthetic import build_instrument, default_instrument_path, local_crds_context
with local_crds_context(build_instrument(default_instrument_path())):
    MasterBackgroundMosPlusStep.call(sys.argv[1], output_dir=sys.argv[2], save_results=True,
                                     save_background=True)
"""


def _commands(data):
    rate = next((data / "exposure").glob("*_rate.fits"))
    msa = next((data / "exposure").glob("*_msa.fits"))
    x1d = sorted((data / "spec3_NRS_FIXEDSLIT").glob("*x1d*.fits"))
    cli = [sys.executable, "-c", "import sys; from jwst_mbkg_plus.cli import handle_args; "
           "sys.exit(handle_args(sys.argv[1:]))"]
    return {
        "flag-pixels": lambda out: [*cli, "flag-pixels", str(rate), "-o",
                                    str(out / "flagged_rate.fits"), "--pixel", "10,10",
                                    "--overwrite"],
        "msa-select": lambda out: [*cli, "msa-select", str(msa), "-o", str(out / "new_msa.fits"),
                                   "--background", "5", "--overwrite"],
        "master": lambda out: [*cli, "master", *map(str, x1d), "-o",
                               str(out / "master_bkg.fits"), "--plot", str(out / "master.png"),
                               "--overwrite"],
        "plot": lambda out: [*cli, "plot", str(data / "mos_cal.fits"), "--outdir", str(out)],
        "mos-step": lambda out: [sys.executable, "-c", _MOS_STEP, str(data / "mos_slits.fits"),
                                 str(out), str(data / "crds")],
    }


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def readable(path):
    """Return '' if the file opens completely, else why not."""
    try:
        if path.suffix == ".fits":
            from astropy.io import fits
            from stdatamodels.jwst import datamodels

            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                for hdu in hdul:
                    _ = hdu.data
            with datamodels.open(path) as model:
                model.validate()
        elif path.suffix == ".asdf":
            import asdf

            with asdf.open(path, lazy_load=False, memmap=False) as af:
                _ = dict(af.tree)
        elif path.suffix == ".png":
            import matplotlib.image

            matplotlib.image.imread(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
    except Exception as exc:  # noqa: BLE001 - any failure means unreadable
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return ""


def _finals(folder):
    return {p.name: p for p in folder.iterdir() if p.is_file() and PARTIAL not in p.name
            and not p.name.startswith(".")}


def _state(folder):
    """Name -> (size, mtime) of every file in a folder."""
    state = {}
    for p in folder.iterdir():
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        state[p.name] = (st.st_size, st.st_mtime_ns)
    return state


def _calibrate(cmd, out, env):
    """Run once to the end (in an empty folder); time it and note when writing starts."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    first, last, state = None, None, {}
    while proc.poll() is None:
        # Writing starts when the first file (temporary or final) appears and ends
        # with the last change of any file's name or size.
        now = {p.name: p.stat().st_size for p in out.iterdir() if p.exists()}
        if now != state:
            last = time.perf_counter() - t0
            first = last if first is None else first
            state = now
        time.sleep(0.002)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[3:5]} failed: {proc.stderr.read()[-2000:]}")
    first = total if first is None else first
    return total, first, total if last is None else last


def run_command(name, make_cmd, work, kills, rng, env):
    """Kill ``name`` ``kills`` times; return the tally."""
    out = work / name
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        stale.unlink()
    cmd = make_cmd(out)
    total, write_start, write_end = _calibrate(cmd, out, env)
    good = {n: _sha(p) for n, p in _finals(out).items()}
    bad_good = {n: why for n, p in _finals(out).items() if (why := readable(p))}
    if bad_good:
        raise RuntimeError(f"{name}: the uninterrupted run wrote unreadable files {bad_good}")
    tally = {"outputs": sorted(good), "seconds": round(total, 2),
             "write_window_s": [round(write_start, 2), round(write_end, 2)], "kills": kills,
             "unreadable_final": 0, "lost_previous": 0, "kept_previous": 0, "replaced": 0,
             "partial_left": 0, "finished_before_kill": 0, "problems": []}
    for k in range(kills):
        baseline = _state(out)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        t0 = time.perf_counter()
        if k % 3 == 0:
            # Anywhere in the run (mostly before the writing).
            delay = rng.uniform(0.0, total)
            time.sleep(delay)
        else:
            # During the writing: once a file changes, within the writing's duration.
            while proc.poll() is None and _state(out) == baseline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, max(write_end - write_start, 0.05)))
            delay = time.perf_counter() - t0
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            tally["finished_before_kill"] += 1
        proc.wait()
        finals = _finals(out)
        partials = [p for p in out.iterdir() if PARTIAL in p.name]
        tally["partial_left"] += bool(partials)
        for p in partials:
            p.unlink()
        for fname, path in finals.items():
            why = readable(path)
            if why:
                tally["unreadable_final"] += 1
                tally["problems"].append(f"kill {k} at {delay:.2f} s: {fname} unreadable: {why}")
        for fname, sha in good.items():
            if fname not in finals:
                tally["lost_previous"] += 1
                tally["problems"].append(f"kill {k} at {delay:.2f} s: {fname} gone")
            elif _sha(finals[fname]) == sha:
                tally["kept_previous"] += 1
            else:
                tally["replaced"] += 1
                good[fname] = _sha(finals[fname])
    return tally


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--work", default="/tmp/mbkg_kill")
    parser.add_argument("--data", default="/tmp/mbkg_bad_inputs")
    parser.add_argument("--commands", default=None)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    data = Path(args.data).resolve()
    os.environ.setdefault("JWST_MBKG_PLUS_CACHE", str(data / "cache"))
    sys.path.insert(0, str(Path(__file__).parent))
    from bad_inputs import build_data

    build_data(data)
    work = Path(args.work).resolve()
    commands = _commands(data)
    names = args.commands.split(",") if args.commands else list(commands)
    rng = random.Random(args.seed)
    env = dict(os.environ)
    results = {}
    for name in names:
        results[name] = run_command(name, commands[name], work, args.kills, rng, env)
        print(f"{name}: " + json.dumps(results[name]), flush=True)  # noqa: T201
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    ok = all(r["unreadable_final"] == 0 and r["lost_previous"] == 0 for r in results.values())
    print("PASS" if ok else "FAIL", flush=True)  # noqa: T201
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
