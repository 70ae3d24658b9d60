"""Start N processes at once on a fresh synthetic cache; count how many succeed.

Each process is a first use of an empty ``JWST_MBKG_PLUS_CACHE``: it
configures offline CRDS in the default cache folder, builds (or waits for and
reuses) the synthetic instrument, paints a small exposure of its own and runs
jwst's ``assign_wcs`` on it through the local CRDS context, which makes crds
create its cache folders and look reference files up.

Usage::

    python validation/concurrent_cache.py [--processes 12] [--cache /tmp/new_cache]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import sys
from pathlib import Path
from jwst_mbkg_plus.offline import configure_offline_crds
configure_offline_crds()
from jwst_mbkg_plus.synthetic import (Scene, build_instrument, default_instrument_path,
                                      local_crds_context, make_exposure)
inst = build_instrument(default_instrument_path())
scene = Scene(n_background=2, n_point=1, n_extended=0, detectors=("NRS1",), seed=int(sys.argv[2]))
exposure = make_exposure(scene, Path(sys.argv[1]), instrument=inst)
from jwst.assign_wcs import AssignWcsStep
with local_crds_context(inst):
    model = AssignWcsStep.call(str(exposure.rate_path))
print("STATUS", model.meta.cal_step.assign_wcs)
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=12)
    parser.add_argument("--cache", default=None, help="new cache folder (default: a temp dir)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    cache = Path(args.cache or tempfile.mkdtemp(prefix="mbkg_cache_"))
    if cache.exists() and any(cache.iterdir()):
        parser.error(f"{cache} is not empty: give a new folder")
    work = Path(tempfile.mkdtemp(prefix="mbkg_concurrent_"))
    env = dict(os.environ, JWST_MBKG_PLUS_CACHE=str(cache))
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(work / f"p{i}"), str(i)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(args.processes)
    ]
    failures = []
    for i, proc in enumerate(procs):
        text, _ = proc.communicate()
        if proc.returncode != 0 or "STATUS COMPLETE" not in text:
            tail = [line for line in text.splitlines() if line.strip()][-3:]
            failures.append({"process": i, "exit": proc.returncode, "tail": tail})
    result = {"processes": args.processes, "succeeded": args.processes - len(failures),
              "failures": failures, "seconds": round(time.perf_counter() - t0, 1),
              "cache": str(cache)}
    print(json.dumps(result, indent=1))  # noqa: T201
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
