"""Re-run every validation scene of issue 24's regression line and print the regression tables.

Issue 24: "Every scene of docs/validation.rst (uniform, halves, quadrant,
chromatic, gradient, photon, 2 and 3 background slitlets, PRISM and G395H
tables): with the new defaults, no worse than today's figures beyond their
noise, and never worse than stock." This driver re-runs those scenes with the
commands and seeds of the committed tables (plus step with its defaults), writes
new results files ``validation/results_<family>_issue24_<tag>.json``, and prints
one table per family with ``validation/regression_table.py``: stock, the plus
step's committed figures, the plus step now, the seed-to-seed noise of one
seed's figure and a verdict (``worse than stock``, ``worse`` beyond 2 sigma,
``ok``). It also re-runs the source-flux scenes (``validate_source_flux.py``).

jwst's stock step is taken from the committed results of the same scenes and
seeds (it does not depend on this package and the exposures are identical;
checked on the 20 %-noise uniform scenes, seeds 7-9: identical to the last
digit), except where no committed stock figure exists (uniform_20 seeds 10-14),
where it runs beside plus. ``--stock`` re-runs it everywhere.

Families (``--families``, default all; ``--quick`` the subset most at risk,
<= 20 minutes on a quiet 2-core machine):

``conditions``
    ``validate_conditions.py``: uniform, halves, quadrant, chromatic, gradient
    with 9 and 4 background slitlets (seed 7), the uniform sky with 9 and 4 over
    seeds 8-11 (the noise of one seed's figure), photon counting (9).
``uniform20``
    The uniform sky at 20 % noise with 3 and 2 background slitlets, seeds 7-14,
    stock, plus and, for the diagnosis, plus with ``master_smoothing='none'``
    and with ``slit_scale=False``.
``spatial``
    ``validate_spatial.py``: flat, gradient_y, gradient_x, gradient_xy,
    quadrant, scatter at 5 % (seed 7).
``prism``, ``prism_seeds``
    ``validate_mos.py --grating PRISM``: clean and contaminated at 2 and 20 %
    (seed 7); at 20 % seeds 8-16.
``g395h``, ``g395h_seeds``
    ``validate_mos.py --grating G395H`` on NRS1 and NRS2: the same at seed 7;
    at 20 % seeds 8-11.
``source_flux``
    ``validate_source_flux.py``: 1 %, 5 % and 20 % (seed 1; stock's figures at
    1 % from the committed results), and the photon-counting scene (seeds 1, 2,
    jwst's default resample weights).

Usage (from the project folder)::

    python validation/regression_issue24.py            # everything
    python validation/regression_issue24.py --quick    # the scenes most at risk
    python validation/regression_issue24.py --families uniform20,prism --tag s12
    python validation/regression_issue24.py --tables-only   # tables of existing files

Each family's commands run one after the other (one heavy process at a time),
``nice -n 10``; the times of each command and family are printed at the end and
written to ``validation/results_regression_issue24_<tag>_times.json``.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PY = sys.executable
SEEDS_8_11 = "8,9,10,11"
SEEDS_8_16 = ",".join(str(s) for s in range(8, 17))
SEEDS_7_14 = ",".join(str(s) for s in range(7, 15))
FAMILIES = ("conditions", "uniform20", "spatial", "prism", "prism_seeds", "g395h",
            "g395h_seeds", "source_flux")


def _res(name):
    return str(HERE / name)


def commands(family, out, work, quick, stock):
    """The (label, argv) of each run of ``family``, writing to ``out``."""
    cond = [PY, str(HERE / "validate_conditions.py"), "--work", f"{work}/conditions",
            "--out", out]
    plus = "stock,plus" if stock else "plus"
    if family == "conditions":
        if quick:
            return [("uniform, 4 background, seeds 7-11",
                     [*cond, "--scenes", "uniform", "--backgrounds", "4",
                      "--seeds", "7," + SEEDS_8_11, "--settings", plus, "--no-plus-none"])]
        return [
            ("5 scenes x 9, 4 background, seed 7",
             [*cond, "--scenes", "uniform,halves,quadrant,chromatic,gradient",
              "--backgrounds", "9,4", "--seeds", "7", "--settings", plus]),
            ("uniform, 9 and 4 background, seeds 8-11",
             [*cond, "--scenes", "uniform", "--backgrounds", "9,4", "--seeds", SEEDS_8_11,
              "--settings", plus, "--no-plus-none"]),
            ("photon, 9 background",
             [*cond, "--scenes", "photon", "--backgrounds", "9", "--settings", plus]),
        ]
    if family == "uniform20":
        if quick:
            return [("uniform 20 %, 3 and 2 background, seeds 7-9",
                     [*cond, "--scenes", "uniform_20", "--backgrounds", "3,2",
                      "--seeds", "7,8,9", "--settings", plus, "--no-plus-none"])]
        # Stock has no committed figure beyond seed 9: it runs beside plus.
        return [("uniform 20 %, 3 and 2 background, seeds 7-14 (+ unsmoothed, no scale)",
                 [*cond, "--scenes", "uniform_20", "--backgrounds", "3,2", "--seeds", SEEDS_7_14,
                  "--settings", "stock,plus,plus_unsmoothed,plus_noscale"])]
    if family == "spatial":
        scenes = "scatter" if quick else "flat,gradient_y,gradient_x,gradient_xy,quadrant,scatter"
        return [(f"spatial {scenes}",
                 [PY, str(HERE / "validate_spatial.py"), "--scenes", scenes, "--noise", "0.05",
                  "--settings", plus, "--work", f"{work}/spatial", "--out", out])]
    mos = [PY, str(HERE / "validate_mos.py"), "--scenes", "clean,contaminated",
           "--settings", plus]
    if family == "prism":
        noise = "0.2" if quick else "0.02,0.2"
        return [(f"PRISM seed 7 at {noise}",
                 [*mos, "--grating", "PRISM", "--noise", noise, "--work", f"{work}/mos",
                  "--out", out])]
    if family == "prism_seeds":
        return [("PRISM 20 %, seeds 8-16",
                 [*mos, "--grating", "PRISM", "--noise", "0.2", "--seeds", SEEDS_8_16,
                  "--work", f"{work}/mos", "--out", out])]
    if family in ("g395h", "g395h_seeds"):
        runs = []
        for det in ("NRS1", "NRS2"):
            det_out = out.replace(".json", f"_{det.lower()}.json")
            if family == "g395h":
                noise = "0.2" if quick else "0.02,0.2"
                extra = ["--noise", noise]
                label = f"G395H {det} seed 7 at {noise}"
            else:
                extra = ["--noise", "0.2", "--seeds", SEEDS_8_11]
                label = f"G395H {det} 20 %, seeds 8-11"
            runs.append((label, [*mos, "--grating", "G395H", "--detector", det, *extra,
                                 "--work", f"{work}/g395h", "--out", det_out]))
        return runs
    if family == "source_flux":
        flux = [PY, str(HERE / "validate_source_flux.py"), "--work", f"{work}/source_flux",
                "--out", out]
        return [
            ("source flux 1, 5 and 20 %, seed 1",
             [*flux, "--noise", "0.01,0.05,0.2", "--seeds", "1"]
             + (["--stock"] if stock else [])),
            ("source flux photon counting, seeds 1, 2",
             [*flux, "--noise", "0", "--sky-electrons", "100", "--seeds", "1,2",
              "--weight-type", ""] + (["--stock"] if stock else [])),
        ]
    raise ValueError(family)


def out_file(family, tag, quick):
    """The results file a family writes (G395H: one per detector, ``_nrs1``/``_nrs2``)."""
    name = {"conditions": "conditions", "uniform20": "conditions_uniform20",
            "spatial": "spatial", "prism": "mos_prism", "prism_seeds": "mos_prism_seeds",
            "g395h": "mos_g395h", "g395h_seeds": "mos_g395h_seeds",
            "source_flux": "source_flux"}[family]
    return _res(f"results_{name}_issue24_{tag}{'_quick' if quick else ''}.json")


def _uniform_noise(conditions_file, n_background):
    """Seed-to-seed std of the plus figures (%) of the uniform sky, or None."""
    path = Path(conditions_file)
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    values = [[100 * e["plus"]["rms_residual_all"], 100 * e["plus"]["rms_residual_sources"]]
              for k, e in results.items() if k.startswith(f"uniform/{n_background}/")
              and isinstance(e, dict) and "plus" in e]
    if len(values) < 3:
        return None
    return [float(v) for v in np.std(values, axis=0, ddof=1)]


def table_args(family, tag, quick):
    """The ``regression_table.py`` arguments of each table of ``family``."""
    out = out_file(family, tag, quick)
    cond = _res("results_conditions.json")
    reg = _res("results_conditions_issue24_regression.json")
    if family in ("conditions", "uniform20"):
        # Session 9's code on the uniform_20 seeds 7-14 (the committed seeds 7-9 to the
        # last digit): PYTHONPATH=<git archive a3d54ff> validate_conditions.py ... --out
        # results_conditions_uniform20_issue24_s9code.json
        s9code = _res("results_conditions_uniform20_issue24_s9code.json")
        return [["--kind", "conditions", "--before", f"before={cond}",
                 "--before", f"s9={reg}+{s9code}",
                 "--before", f"s10={_res('results_conditions_smoothing.json')}",
                 "--after", out, "--noise-from"]]
    if family == "spatial":
        # One seed: the noise of the uniform sky's figure (9 slitlets, else 4: --quick).
        conditions = out_file("conditions", tag, quick)
        noise = _uniform_noise(conditions, 9) or _uniform_noise(conditions, 4)
        extra = ["--noise-value", ",".join(f"{v:.4f}" for v in noise)] if noise else []
        return [["--kind", "spatial",
                 "--before", f"before={_res('results_spatial.json')}:plus_auto",
                 "--before", f"s9={_res('results_spatial_issue24_regression.json')}",
                 "--after", out, *extra]]
    if family in ("prism", "prism_seeds"):
        if family == "prism_seeds" and Path(out_file("prism", tag, quick)).is_file():
            out = f"{out}+{out_file('prism', tag, quick)}"  # seed 7: pooled over 7-16
        return [["--kind", "mos",
                 "--before", f"before={_res('results_mos_prism.json')}+"
                             f"{_res('results_mos_prism_seeds.json')}",
                 "--before", f"s10={_res('results_mos_prism_twiced.json')}",
                 "--after", out, "--noise-from"]]
    if family in ("g395h", "g395h_seeds"):
        tables = []
        for det in ("nrs1", "nrs2"):
            after = out.replace(".json", f"_{det}.json")
            seed7 = out_file("g395h", tag, quick).replace(".json", f"_{det}.json")
            if family == "g395h_seeds" and Path(seed7).is_file():
                after = f"{after}+{seed7}"  # seed 7: pooled over 7-11
            tables.append([
                "--kind", "mos",
                "--before", f"before={_res(f'results_mos_g395h_{det}.json')}+"
                            f"{_res(f'results_mos_g395h_{det}_seeds.json')}",
                "--after", after, "--noise-from"])
        return tables
    if family == "source_flux":
        return [["--kind", "source_flux",
                 "--before", f"before={_res('results_source_flux.json')}+"
                             f"{_res('results_source_flux_photon_s10.json')}",
                 "--after", out]]
    raise ValueError(family)


def main(argv=None):
    """Run the families, print the tables and the times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the scenes most at risk (<= 20 minutes on a quiet 2-core machine)")
    parser.add_argument("--families", default=None,
                        help=f"comma-separated, of {', '.join(FAMILIES)} (default all; "
                             "--quick: conditions, uniform20, spatial, prism, g395h)")
    parser.add_argument("--tag", default="s11", help="results files' tag (default s11)")
    parser.add_argument("--work", default="/tmp/mbkg_regress_issue24",
                        help="work folder (exposures are reused when unchanged)")
    parser.add_argument("--stock", action="store_true",
                        help="re-run jwst's stock step everywhere instead of reusing its "
                             "committed figures")
    parser.add_argument("--tables-only", action="store_true",
                        help="run nothing, print the tables of the existing results files")
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args(argv)
    if args.families:
        families = args.families.split(",")
    elif args.quick:
        families = ["conditions", "uniform20", "spatial", "prism", "g395h"]
    else:
        families = list(FAMILIES)
    unknown = set(families) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown families {sorted(unknown)}; choose from {FAMILIES}")
    if args.quick and set(families) - {"conditions", "uniform20", "spatial", "prism", "g395h"}:
        parser.error("--quick has no subset of the *_seeds and source_flux families")

    times = {}
    if not args.tables_only:
        for family in families:
            out = out_file(family, args.tag, args.quick)
            t_family = time.perf_counter()
            for label, argv_run in commands(family, out, args.work, args.quick, args.stock):
                print(f"== {family}: {label}\n   {' '.join(argv_run)}", flush=True)
                t0 = time.perf_counter()
                log = Path(args.work) / f"{family}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                with open(log, "a") as stream:
                    rc = subprocess.call(["nice", "-n", str(args.nice), *argv_run],
                                         stdout=stream, stderr=subprocess.STDOUT,
                                         cwd=HERE.parent)
                seconds = time.perf_counter() - t0
                times[f"{family}: {label}"] = round(seconds, 1)
                print(f"   {seconds / 60:.1f} min, exit {rc} (log {log})", flush=True)
                if rc:
                    print(f"   FAILED: see {log}", flush=True)
            times[family] = round(time.perf_counter() - t_family, 1)
        times_file = Path(_res(f"results_regression_issue24_{args.tag}"
                               f"{'_quick' if args.quick else ''}_times.json"))
        old = json.loads(times_file.read_text()) if times_file.is_file() else {}
        times_file.write_text(json.dumps({**old, **times}, indent=1))

    for family in families:
        for targs in table_args(family, args.tag, args.quick):
            after = Path(targs[targs.index("--after") + 1].split("+")[0])
            if not after.is_file():
                print(f"\n## {family}: no results file {after}")
                continue
            print(f"\n## {family} ({after.name})", flush=True)
            subprocess.call([PY, str(HERE / "regression_table.py"), *targs], cwd=HERE.parent)
    if times:
        print("\n## times (minutes)")
        for label, seconds in times.items():
            print(f"{seconds / 60:7.1f}  {label}")
        print(f"{sum(v for k, v in times.items() if k in families) / 60:7.1f}  total")


if __name__ == "__main__":
    main()
