"""Benchmark jwst's MOS master background against the plus step, and calwebb_spec2 against plus.

Builds synthetic NIRSpec MOS exposures (NRS1; G235M by default, any disperser
with ``--grating``, e.g. PRISM on the built-in real PRISM sky) of several sizes
with the project's generator, runs jwst's front end (assign_wcs, msaflagopen,
extract_2d, srctype) once per size, and then times, each in a fresh
subprocess on the same inputs:

* ``MasterBackgroundMosStep`` (stock), ``MasterBackgroundMosPlusStep`` with its
  defaults (plus) and with jwst-equivalent settings (plus-jwst);
* ``Spec2Pipeline`` and ``Spec2PipelinePlus`` (jwst-equivalent and default
  settings) from the rate file, with the MOS master background switched on.

Reported per run: wall time of the step or pipeline call, peak resident memory
of the subprocess (``ru_maxrss``) and its resident memory just before the call
(imports + input), the ratios plus / stock, and the largest plain relative
difference ``|plus - stock| / |stock|`` between plus-jwst and stock, over pixels
where both are finite, of the subtracted 2-D background and the output SCI
arrays (step) and of the ``masterbg2d`` and ``_cal`` SCI arrays (pipeline), with
the number of pixels finite in one only.

Usage::

    python benchmarks/bench_mos.py [--sizes 20,60,150] [--pipeline-sizes 60]
        [--shutters 1] [--grating G235M] [--sky default|prism_sky|FILE.csv]
        [--work /tmp/mbkg_bench] [--out benchmarks/results.json]

One subprocess per measurement keeps peak memory separate; the whole run at the
default sizes takes about half an hour on two cores. ``--profile`` writes a
cProfile file next to each step run's output (slower; not for timing).
"""

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

STEP_RUNS = ("stock", "plus", "plus-jwst")
PIPELINE_RUNS = ("stock", "plus-jwst", "plus")


def _quiet():
    for name in ("jwst", "stpipe", "jwst_mbkg_plus", "CRDS", "crds"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _instrument(work):
    from jwst_mbkg_plus.offline import configure_offline_crds
    from jwst_mbkg_plus.synthetic import build_instrument, default_instrument_path

    configure_offline_crds(Path(work) / "crds_base")
    return build_instrument(default_instrument_path())


def _scene(n_slitlets, shutters, grating="G235M", sky="default"):
    from jwst_mbkg_plus.synthetic import Scene

    n_background = max(2, n_slitlets // 4)
    n_point = (n_slitlets - n_background) // 2
    return Scene(
        n_background=n_background,
        n_point=n_point,
        n_extended=n_slitlets - n_background - n_point,
        shutters_per_slitlet=shutters,
        detectors=("NRS1",),
        grating=grating,
        background=sky,
        noise_fraction=0.02,
        seed=3,
    )


def prepare(n_slitlets, shutters, work, instrument, grating="G235M", sky="default"):
    """Build one exposure and its extracted slits; return (rate path, slits path)."""
    from jwst.assign_wcs import AssignWcsStep
    from jwst.extract_2d import Extract2dStep
    from jwst.msaflagopen import MSAFlagOpenStep
    from jwst.srctype import SourceTypeStep

    from jwst_mbkg_plus.synthetic import local_crds_context, make_exposure

    folder = Path(work) / f"{grating.lower()}_n{n_slitlets}_s{shutters}"
    scene = _scene(n_slitlets, shutters, grating, sky)
    exposure = make_exposure(scene, folder, instrument=instrument)
    slits_path = folder / "slits_srctype.fits"
    if not slits_path.is_file():
        with local_crds_context(instrument):
            model = AssignWcsStep.call(str(exposure.rate_path))
            model = MSAFlagOpenStep.call(model)
            model = Extract2dStep.call(model)
            model = SourceTypeStep.call(model)
        model.save(slits_path)
        model.close()
    return exposure.rate_path, slits_path


# ----------------------------------------------------------------------------- workers


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(kind, impl, source, output, work, profile=False):
    """Run one measurement in this (fresh) process and print a JSON line."""
    instrument = _instrument(work)
    _quiet()
    from stdatamodels.jwst import datamodels

    from jwst_mbkg_plus import JWST_EQUIVALENT_SETTINGS
    from jwst_mbkg_plus.synthetic import local_crds_context

    result = {"kind": kind, "impl": impl}
    with local_crds_context(instrument):
        if kind == "step":
            from jwst.master_background import MasterBackgroundMosStep

            from jwst_mbkg_plus import MasterBackgroundMosPlusStep

            model = datamodels.open(source)
            cls = MasterBackgroundMosStep if impl == "stock" else MasterBackgroundMosPlusStep
            kwargs = JWST_EQUIVALENT_SETTINGS if impl == "plus-jwst" else {}
            result["rss_before_mb"] = _rss_mb()
            profiler = None
            if profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            t0 = time.perf_counter()
            out = cls.call(model, **kwargs)
            result["seconds"] = time.perf_counter() - t0
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(str(output) + ".prof")
            result["peak_rss_mb"] = _rss_mb()
            result["status"] = out.meta.cal_step.master_background
            out.save(output)
        else:
            from jwst.pipeline import Spec2Pipeline

            from jwst_mbkg_plus import Spec2PipelinePlus

            cls = Spec2Pipeline if impl == "stock" else Spec2PipelinePlus
            mbkg = {"skip": False, "save_background": True}
            if impl == "plus-jwst":
                mbkg.update(JWST_EQUIVALENT_SETTINGS)
            out_dir = Path(output)
            out_dir.mkdir(parents=True, exist_ok=True)
            # MSAMETFL is looked up relative to the working directory for models.
            os.chdir(Path(source).parent)
            result["rss_before_mb"] = _rss_mb()
            t0 = time.perf_counter()
            out = cls.call(
                str(source),
                steps={"master_background_mos": mbkg},
                output_dir=str(out_dir),
                save_results=True,
            )
            result["seconds"] = time.perf_counter() - t0
            result["peak_rss_mb"] = _rss_mb()
            out = out[0] if isinstance(out, list) else out
            result["status"] = out.meta.cal_step.master_background
    print("BENCH " + json.dumps(result), flush=True)
    return 0


def _run_worker(kind, impl, source, output, work, profile):
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        impl,
        str(source),
        str(output),
        "--work",
        str(work),
    ]
    if profile:
        cmd.append("--profile")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise RuntimeError(f"worker {kind}/{impl} failed:\n{proc.stderr[-4000:]}")


# ----------------------------------------------------------------------------- comparisons


class _Difference:
    """Running plain relative difference ``|plus - stock| / |stock|`` where both are finite."""

    def __init__(self):
        self.worst, self.n_compared, self.n_finite_mismatch = 0.0, 0, 0

    def add(self, stock, plus):
        stock = np.asarray(stock, dtype=np.float64)
        plus = np.asarray(plus, dtype=np.float64)
        finite_s, finite_p = np.isfinite(stock), np.isfinite(plus)
        both = finite_s & finite_p
        self.n_finite_mismatch += int((finite_s != finite_p).sum())
        self.n_compared += int(both.sum())
        differ = both & (plus != stock)
        if differ.any():
            # Equal values count as 0 (also where both are 0); a difference from 0 is inf.
            with np.errstate(divide="ignore"):
                rel = np.abs(plus[differ] - stock[differ]) / np.abs(stock[differ])
            self.worst = max(self.worst, float(rel.max()))


def _differences(bkg, out, name):
    """The figures of two `_Difference`: the 2-D backgrounds' and the outputs' (``name``)."""
    return {
        "max_rel_diff_bkg2d": bkg.worst,
        f"max_rel_diff_{name}": out.worst,
        "n_compared": out.n_compared,
        "n_finite_mismatch": out.n_finite_mismatch,
    }


def compare_step(slits_path, stock_path, plus_path):
    """Plain relative differences of the subtracted 2-D backgrounds and of the outputs."""
    from stdatamodels.jwst import datamodels

    bkg, data = _Difference(), _Difference()
    with (
        datamodels.open(slits_path) as raw,
        datamodels.open(stock_path) as stock,
        datamodels.open(plus_path) as plus,
    ):
        for r, s, p in zip(raw.slits, stock.slits, plus.slits, strict=True):
            bkg.add(r.data - s.data, r.data - p.data)
            data.add(s.data, p.data)
    return _differences(bkg, data, "data")


def compare_cal(stock_dir, plus_dir):
    """Plain relative differences of the pipelines' ``masterbg2d`` and ``_cal`` SCI arrays."""
    from stdatamodels.jwst import datamodels

    def product(folder, suffix):
        return datamodels.open(next(Path(folder).glob(f"*_{suffix}.fits")))

    bkg, cal = _Difference(), _Difference()
    with (
        product(stock_dir, "cal") as cal_s,
        product(plus_dir, "cal") as cal_p,
        product(stock_dir, "masterbg2d") as bkg_s,
        product(plus_dir, "masterbg2d") as bkg_p,
    ):
        for cs, cp, bs, bp in zip(cal_s.slits, cal_p.slits, bkg_s.slits, bkg_p.slits, strict=True):
            bkg.add(bs.data, bp.data)
            cal.add(cs.data, cp.data)
    return _differences(bkg, cal, "cal")


# ----------------------------------------------------------------------------- driver


def _markdown(by_size, runs, first, differences):
    """
    One Markdown table: per size, each run's time, its ratio to the first's, peak memory.

    Parameters
    ----------
    by_size : dict
        Slitlet count -> {run: {"seconds", "peak_rss_mb"}, difference key: value}.
    runs : sequence of str
        The runs, the stock one first.
    first : str
        The first run's name in the time column's title.
    differences : dict
        Key of a difference -> its column's title.

    Returns
    -------
    list of str
        The table's lines.
    """
    later = runs[1:]
    titles = ["slitlets", f"{first} s", *(f"{r} s" for r in later),
              *(f"{r}/stock" for r in later), *(f"{r} peak MB" for r in runs),
              *differences.values()]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for n, res in by_size.items():
        base = res[runs[0]]["seconds"]
        cells = [str(n), *(f"{res[r]['seconds']:.1f}" for r in runs),
                 *(f"{res[r]['seconds'] / base:.2f}" for r in later),
                 *(f"{res[r]['peak_rss_mb']:.0f}" for r in runs),
                 *(f"{res[k]:.1e}" for k in differences)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _table(results):
    lines = _markdown(results["step"], STEP_RUNS, "stock",
                      {"max_rel_diff_bkg2d": "max rel diff 2-D bkg",
                       "max_rel_diff_data": "max rel diff output"})
    if results.get("pipeline"):
        lines += ["", *_markdown(results["pipeline"], PIPELINE_RUNS, "calwebb_spec2",
                                 {"max_rel_diff_bkg2d": "max rel diff masterbg2d",
                                  "max_rel_diff_cal": "max rel diff _cal"})]
    return "\n".join(lines)


def main(argv=None):
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,60,150")
    parser.add_argument("--pipeline-sizes", default="60")
    parser.add_argument("--shutters", type=int, default=1)
    parser.add_argument("--work", default="/tmp/mbkg_bench")
    parser.add_argument("--out", default="benchmarks/results.json")
    parser.add_argument("--grating", default="G235M", help="G235M, G395M, G395H, PRISM")
    parser.add_argument("--sky", default=None,
                        help="'default', 'prism_sky' or a CSV (wave [micron], flux [MJy/sr]); "
                        "default prism_sky for PRISM, else 'default'")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "IMPL", "SOURCE", "OUTPUT"))
    args = parser.parse_args(argv)

    if args.worker:
        kind, impl, source, output = args.worker
        return worker(kind, impl, source, output, args.work, profile=args.profile)

    instrument = _instrument(args.work)
    _quiet()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    pipeline_sizes = [int(s) for s in args.pipeline_sizes.split(",") if s]
    sky = args.sky or ("prism_sky" if args.grating == "PRISM" else "default")
    if sky not in ("default", "prism_sky"):
        sky = str(Path(sky).resolve())
    results = {"grating": args.grating, "sky": sky, "shutters_per_slitlet": args.shutters,
               "step": {}, "pipeline": {}}
    for n in sorted(set(sizes) | set(pipeline_sizes)):
        t0 = time.perf_counter()
        rate_path, slits_path = prepare(n, args.shutters, args.work, instrument, args.grating,
                                        sky)
        print(f"{n} slitlets: inputs ready in {time.perf_counter() - t0:.0f} s", flush=True)
        folder = slits_path.parent
        if n in sizes:
            runs = {}
            for impl in STEP_RUNS:
                out = folder / f"step_{impl}.fits"
                runs[impl] = _run_worker("step", impl, slits_path, out, args.work, args.profile)
                print(f"  step {impl:9s} {runs[impl]}", flush=True)
            runs.update(
                compare_step(
                    slits_path, folder / "step_stock.fits", folder / "step_plus-jwst.fits"
                )
            )
            results["step"][n] = runs
        if n in pipeline_sizes:
            runs = {}
            for impl in PIPELINE_RUNS:
                out = folder / f"pipeline_{impl}"
                runs[impl] = _run_worker("pipeline", impl, rate_path, out, args.work, False)
                print(f"  pipeline {impl:9s} {runs[impl]}", flush=True)
            runs.update(compare_cal(folder / "pipeline_stock", folder / "pipeline_plus-jwst"))
            results["pipeline"][n] = runs
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(_table(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
