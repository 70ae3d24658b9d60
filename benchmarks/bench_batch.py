"""Batch throughput and memory: a serial loop against 2 Dask workers.

Builds one synthetic visit (G235M, 3 nods x NRS1/NRS2, ``--slitlets`` slitlets
per visit, 20% noise, +/-1% drift) and processes the first ``--exposures``
rate files twice, each time in a fresh subprocess:

* ``serial``: one process calls
  `~jwst_mbkg_plus.batch.runner.process_exposure` (the very function a Dask
  task runs) on each exposure in turn;
* ``dask``: :func:`~jwst_mbkg_plus.batch.run_batch` with a 2-worker
  LocalCluster (one thread each), cluster start-up included.

Throughput is exposures per wall-clock second of the whole run; the ratio is
dask / serial. Peak memory is ``VmHWM`` (``ru_maxrss`` survives ``exec`` and
reported the parent's peak): of the serial process, and of each worker process
(reported by its last task); the ratio is the largest worker's over the serial
process's. The LocalCluster's workers run without Dask's profiler
(:func:`~jwst_mbkg_plus.batch.run_batch`).

Command (from the project folder; about 5 minutes on 2 cores)::

    python benchmarks/bench_batch.py --exposures 6 --work /tmp/mbkg_bench_batch \
        --out benchmarks/results_batch.json
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def _build(work, slitlets, seed):
    from jwst_mbkg_plus.offline import configure_offline_crds

    configure_offline_crds()
    from jwst_mbkg_plus.synthetic import Scene, build_instrument, default_instrument_path
    from jwst_mbkg_plus.synthetic.visit import make_visit

    inst = build_instrument(default_instrument_path())
    n_bkg = slitlets // 2
    n_src = slitlets - n_bkg
    scene = Scene(n_background=n_bkg, n_point=n_src // 2, n_extended=n_src - n_src // 2,
                  detectors=("NRS1", "NRS2"), noise_fraction=0.2, seed=seed)
    visit = make_visit(scene, Path(work) / "visit", instrument=inst, n_nods=3, drift=0.01)
    return inst, [visit.rate_paths[k] for k in sorted(visit.rate_paths)]


def _serial(paths, out, crds):
    from jwst_mbkg_plus.batch.inputs import Exposure, header_key
    from jwst_mbkg_plus.batch.runner import peak_rss_mb, process_exposure

    env = {"_local_context_path": crds}
    t0 = time.perf_counter()
    records = [process_exposure(Exposure(Path(p), *header_key(p)), out, env=env)
               for p in paths]
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "records": records,
            "peak_rss_mb": peak_rss_mb()}


def _dask(paths, out, crds, workers):
    from jwst_mbkg_plus.batch import run_batch
    from jwst_mbkg_plus.batch.runner import peak_rss_mb

    t0 = time.perf_counter()
    result = run_batch(paths, out, workers=workers, crds=crds, force=True, plot=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "records": result.records,
            "client_peak_rss_mb": peak_rss_mb()}


def _child(args):
    paths = json.loads(args.paths)
    if args.mode == "serial":
        out = _serial(paths, args.outdir, args.crds)
    else:
        out = _dask(paths, args.outdir, args.crds, args.workers)
    print("RESULT " + json.dumps(out, default=str))


def _run_child(mode, paths, outdir, crds, workers):
    cmd = [sys.executable, __file__, "--_child", mode, "--paths", json.dumps([str(p) for p in
                                                                                  paths]),
           "--outdir", str(outdir), "--crds", str(crds), "--workers", str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _load():
    return [float(v) for v in os.getloadavg()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=6)
    parser.add_argument("--slitlets", type=int, default=16, help="slitlets in the visit")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--work", default="/tmp/mbkg_bench_batch")
    parser.add_argument("--out", default=None)
    parser.add_argument("--_child", dest="mode", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--paths", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--outdir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--crds", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        _child(args)
        return
    work = Path(args.work)
    inst, paths = _build(work, args.slitlets, args.seed)
    if args.exposures > len(paths):
        raise SystemExit(f"the visit has {len(paths)} exposures")
    paths = paths[: args.exposures]
    load_before = _load()
    print(f"load average before: {load_before}", flush=True)
    serial = _run_child("serial", paths, work / "serial", inst.crds_path, 1)
    print(f"serial: {serial['seconds']:.1f} s, peak {serial['peak_rss_mb']:.0f} MB",
          flush=True)
    load_mid = _load()
    parallel = _run_child("dask", paths, work / "dask", inst.crds_path, args.workers)
    load_after = _load()
    bad = [r for r in serial["records"] + parallel["records"] if r["status"] != "done"]
    if bad:
        raise SystemExit(f"failed exposures: {[r['error'] for r in bad]}")
    worker_peaks = {}
    for r in parallel["records"]:
        worker_peaks[str(r["pid"])] = max(worker_peaks.get(str(r["pid"]), 0.0),
                                          float(r["peak_rss_mb"]))
    n = len(paths)
    result = {
        "exposures": n,
        "slitlets_per_visit": args.slitlets,
        "workers": args.workers,
        "serial_seconds": serial["seconds"],
        "dask_seconds": parallel["seconds"],
        "serial_throughput_per_min": 60 * n / serial["seconds"],
        "dask_throughput_per_min": 60 * n / parallel["seconds"],
        "throughput_ratio": serial["seconds"] / parallel["seconds"],
        "serial_peak_rss_mb": serial["peak_rss_mb"],
        "worker_peak_rss_mb": worker_peaks,
        "worker_over_serial_peak": max(worker_peaks.values()) / serial["peak_rss_mb"],
        "client_peak_rss_mb": parallel["client_peak_rss_mb"],
        "per_exposure_seconds_serial": [r["seconds"] for r in serial["records"]],
        "per_exposure_seconds_dask": [r["seconds"] for r in parallel["records"]],
        "load_average_before": load_before,
        "load_average_between": load_mid,
        "load_average_after": load_after,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python benchmarks/bench_batch.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
