"""Visit master against per-exposure masters on a synthetic visit with known sky.

The issue-14 scene: 3 nods x NRS1/NRS2 (G235M), 3 background slitlets per
detector (plus 2 point and 2 extended source slitlets per visit), 20% noise
per pixel, the sky level drifting 0.99 / 1.00 / 1.01 over the nods. Every
exposure goes through jwst's front end (assign_wcs, msaflagopen, extract_2d,
srctype) and the plus step's calibration pass once; then its master is made
twice with the plus step's defaults: from its own background slitlets
(per exposure) and from those of all 3 nods of its detector
(:func:`jwst_mbkg_plus.mos.visit.visit_master`). For each master:

* noise: standard deviation over wavelength of master / truth - 1, with truth
  the nod's injected sky (level x B0), over the central 90% of the band;
* bias: median of master / truth - 1 over the same wavelengths;
* master pull: 1.4826 MAD of (master - truth) / master error;
* per-pixel and per-column pulls: the step's residual QA of the background
  slitlets, each subtracted with its leave-one-out master;
* the fitted level of each nod against the injected one.

Command (about 1 minute on 2 cores when they are free)::

    python validation/validate_visit_master.py --out validation/results_visit_master.json

Bias is an expectation over noise realisations; one realisation's bias carries
that exposure's own noise (mostly its fitted level's, about 0.08% at 20% noise
with 3 background slitlets). ``--seeds`` repeats the visit for each seed (each
seed draws the noise and the rows the slitlets sit on) and adds a ``seeds``
entry: per exposure the seed-mean bias with its standard error (std / sqrt(n)),
the per-seed values, and every seed's summary and targets; the top-level
figures stay the first seed's. Ten seeds (about 10 to 30 minutes)::

    python validation/validate_visit_master.py --seeds 14,15,16,17,18,19,20,21,22,23 \
        --work /tmp/mbkg_vm_seeds --out validation/results_visit_master_seeds.json
"""

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import _common
import numpy as np


def _robust_std(x):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _master_figures(master, twave, tsb):
    wave = np.asarray(master.wavelength, float)
    sb = np.asarray(master.surf_bright, float)
    err = np.sqrt(np.asarray(master.var, float))
    truth = np.interp(wave, twave, tsb)
    lo, hi = np.nanpercentile(wave, [5, 95])
    use = np.isfinite(sb) & np.isfinite(truth) & (truth > 0) & (wave >= lo) & (wave <= hi)
    rel = sb[use] / truth[use] - 1
    pull = (sb[use] - truth[use]) / err[use]
    return {
        "noise": float(np.std(rel)),
        "bias": float(np.median(rel)),
        "mean_bias": float(np.mean(rel)),
        "master_pull_spread": _robust_std(pull),
        "master_pull_std": float(np.std(pull[np.isfinite(pull)])),
        "n_wavelengths": int(use.sum()),
    }


def _data_column_pulls(forward, truth, labels):
    """Column pulls of the calibrated background slitlets against the truth (data noise only)."""
    from jwst_mbkg_plus.io.slits import DO_NOT_USE, slit_label, slit_variance

    spreads = {}
    for slit in forward.model.slits:
        if slit_label(slit) not in labels:
            continue
        true = truth.cutout(slit.name, "background", slit)
        var = slit_variance(slit)
        good = (np.isfinite(true) & np.isfinite(slit.data) & np.isfinite(var) & (var > 0)
                & ((slit.dq & DO_NOT_USE) == 0))
        col = np.where(good, slit.data - true, 0.0).sum(axis=0)
        col_var = np.where(good, var, 0.0).sum(axis=0)
        ok = good.sum(axis=0) > 0
        spreads[slit_label(slit)] = _robust_std(col[ok] / np.sqrt(col_var[ok]))
    return spreads


def _residual_figures(model, forward, master, options):
    from jwst_mbkg_plus.mos.qa import residual_qa
    from jwst_mbkg_plus.mos.subtract import subtract_master

    # subtract_master works in place: on a copy, so the next master starts from the data.
    result, bkg2d = subtract_master(model.copy(), forward, master, options)
    qa = residual_qa(result, forward, master, bkg2d)
    result.close()
    bkg2d.close()
    res = {k: v for k, v in qa["residuals"].items() if isinstance(v, dict)}
    return {
        "pull_spread": float(qa["pull_summary"]["pull_spread"]),
        "column_pull_spread": float(np.median([r["column_pull_spread"] for r in res.values()])),
        "column_pull_spreads": {k: float(r["column_pull_spread"]) for k, r in res.items()},
        "median_relative": {k: float(r["median_relative"]) for k, r in res.items()},
    }


def _parse_seeds(text, default):
    """The seeds of ``--seeds`` (a comma list), or ``[default]``."""
    if not text:
        return [default]
    seeds = [int(part) for part in text.split(",") if part.strip()]
    if not seeds or len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds: a comma list of distinct integers, got {text!r}")
    return seeds


def run_visit(args, seed, inst, work):
    """Make the visit of one seed, its per-exposure and visit masters and their figures."""
    from jwst_mbkg_plus.synthetic import Scene, extract_slits, load_truth, local_crds_context
    from jwst_mbkg_plus.synthetic.visit import make_visit

    scene = Scene(n_background=6, n_point=2, n_extended=2, detectors=("NRS1", "NRS2"),
                  noise_fraction=args.noise, seed=seed)
    visit = make_visit(scene, work, instrument=inst, n_nods=3, drift=args.drift)

    from jwst_mbkg_plus.mos.calibration import calibrate_as_extended
    from jwst_mbkg_plus.mos.master import master_from_slits
    from jwst_mbkg_plus.mos.options import MasterOptions
    from jwst_mbkg_plus.mos.step import MasterBackgroundMosPlusStep
    from jwst_mbkg_plus.mos.visit import visit_master

    rows = []
    with local_crds_context(inst):
        step = MasterBackgroundMosPlusStep(spatial_model=args.spatial_model)
        options = MasterOptions.from_step(step)
        models, forwards = {}, {}
        for key, rate in sorted(visit.rate_paths.items()):
            models[key] = extract_slits(rate)
            forwards[key] = calibrate_as_extended(step, models[key])
        for (nod, det), forward in sorted(forwards.items()):
            truth = load_truth(visit.truth_paths[(nod, det)])
            twave, tsb = truth.background_1d()
            name = visit.rate_paths[(nod, det)].name
            companions = [(visit.rate_paths[k].name, forwards[k].model)
                          for k in sorted(forwards) if k[1] == det and k != (nod, det)]
            per = master_from_slits(step, forward.model, options)
            vis = visit_master(step, forward.model, companions, options, label=name,
                               leave_out=args.leave_out)
            row = {
                "exposure": name, "nod": nod, "detector": det,
                "true_level": float(visit.levels[nod - 1]),
                "n_background_slitlets": len(per.qa["slits"]),
                "per_exposure": {**_master_figures(per, twave, tsb),
                                 **_residual_figures(models[(nod, det)], forward, per,
                                                     options)},
                "visit": {**_master_figures(vis, twave, tsb),
                          **_residual_figures(models[(nod, det)], forward, vis, options)},
                "data_column_pull_spread_vs_truth": _data_column_pulls(
                    forward, truth, set(per.qa["slits"])),
                "visit_qa": vis.qa["visit"],
                "regime": {"per_exposure": per.qa.get("regime"), "visit": vis.qa.get("regime")},
            }
            # Level relative to the visit's mean, fitted from this exposure's view.
            fitted = {k: v["level"] for k, v in vis.qa["visit"]["levels"].items()}
            true = {visit.rate_paths[(k, det)].name: visit.levels[k - 1] for k in (1, 2, 3)}
            mean_true = np.mean(list(true.values()))
            row["level_errors"] = {k: float(fitted[k] - true[k] / mean_true) for k in fitted}
            rows.append(row)
            print(f"seed {seed} {name}: noise per-exposure {row['per_exposure']['noise']:.4f} "
                  f"visit {row['visit']['noise']:.4f}; bias visit "
                  f"{100 * row['visit']['bias']:+.3f}%; "
                  f"pulls visit {row['visit']['pull_spread']:.3f} px, "
                  f"{row['visit']['column_pull_spread']:.3f} col; level errors "
                  + ", ".join(f"{100 * v:+.3f}%" for v in row["level_errors"].values()),
                  flush=True)
        for key in models:
            forwards[key].model.close()
            models[key].close()
    return scene, visit, rows


def _summary(rows):
    ratios = [r["per_exposure"]["noise"] / r["visit"]["noise"] for r in rows]
    return {
        "noise_ratio_median": float(np.median(ratios)),
        "noise_ratio_min": float(np.min(ratios)),
        "noise_ratios": ratios,
        "visit_bias_max_abs": float(max(abs(r["visit"]["bias"]) for r in rows)),
        "per_exposure_bias_max_abs": float(max(abs(r["per_exposure"]["bias"]) for r in rows)),
        "visit_pull_spread_range": [float(min(r["visit"]["pull_spread"] for r in rows)),
                                    float(max(r["visit"]["pull_spread"] for r in rows))],
        "visit_column_pull_spread_range": [
            float(min(r["visit"]["column_pull_spread"] for r in rows)),
            float(max(r["visit"]["column_pull_spread"] for r in rows))],
        "visit_master_pull_spread_range": [
            float(min(r["visit"]["master_pull_spread"] for r in rows)),
            float(max(r["visit"]["master_pull_spread"] for r in rows))],
        "per_exposure_pull_spread_range": [
            float(min(r["per_exposure"]["pull_spread"] for r in rows)),
            float(max(r["per_exposure"]["pull_spread"] for r in rows))],
        "level_error_max_abs": float(max(abs(v) for r in rows
                                         for v in r["level_errors"].values())),
    }


def _targets(summary):
    return {
        "noise_ratio >= 1.6": summary["noise_ratio_min"] >= 1.6,
        "|bias| <= 0.1%": summary["visit_bias_max_abs"] <= 1e-3,
        "pixel pulls 1.00 +/- 0.05": all(abs(v - 1) <= 0.05
                                         for v in summary["visit_pull_spread_range"]),
        "column pulls 1.00 +/- 0.05": all(abs(v - 1) <= 0.05
                                          for v in summary["visit_column_pull_spread_range"]),
        "levels within 0.2%": summary["level_error_max_abs"] <= 2e-3,
    }


def _mean_and_error(values):
    values = np.asarray(values, float)
    n = values.size
    error = float(np.std(values, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return float(np.mean(values)), error


def seed_statistics(per_seed):
    """
    Per exposure (nod, detector): the seed-mean of each master's bias and its standard error.

    ``per_seed`` maps seed -> rows of :func:`run_visit`. Bias is the
    expectation over noise realisations, so one realisation's bias includes
    one master's own noise; the standard error of the seed mean (std over
    seeds / sqrt(n), ddof=1) says how well the expectation is known.
    """
    seeds = list(per_seed)
    keys = sorted({(r["nod"], r["detector"]) for rows in per_seed.values() for r in rows})
    table = []
    for nod, det in keys:
        entry = {"nod": nod, "detector": det, "seeds": seeds}
        for kind in ("visit", "per_exposure"):
            for figure in ("bias", "mean_bias", "noise"):
                values = [next(r[kind][figure] for r in per_seed[s]
                               if (r["nod"], r["detector"]) == (nod, det)) for s in seeds]
                mean, error = _mean_and_error(values)
                entry[f"{kind}_{figure}"] = {"mean": mean, "standard_error": error,
                                             "per_seed": [float(v) for v in values]}
        entry["visit_bias_significance"] = (
            entry["visit_bias"]["mean"] / entry["visit_bias"]["standard_error"]
            if entry["visit_bias"]["standard_error"] > 0 else float("nan"))
        table.append(entry)
    pooled = [r["visit"]["bias"] for rows in per_seed.values() for r in rows]
    pooled_mean, pooled_error = _mean_and_error(pooled)
    return {
        "exposures": table,
        "visit_bias_all_exposures": {"mean": pooled_mean, "standard_error": pooled_error,
                                     "n": len(pooled)},
        "visit_seed_mean_bias_max_abs": float(max(abs(e["visit_bias"]["mean"])
                                                  for e in table)),
        "visit_single_seed_bias_max_abs": float(max(abs(v) for v in pooled)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/mbkg_visit_master")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--seeds", default=None,
                        help="comma list of scene seeds to repeat the visit over (e.g. "
                             "14,15,16); default --seed alone, with the single-seed output")
    parser.add_argument("--keep-visits", action="store_true",
                        help="with --seeds: keep each seed's visit files (500 MB each)")
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--drift", type=float, default=0.01)
    parser.add_argument("--spatial-model", default="auto",
                        help="the step's spatial_model (default auto, the step's default)")
    parser.add_argument("--leave-out", default="exposure", choices=("exposure", "slitlet"),
                        help="visit master leave-one-out (default exposure: the issue's)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    seeds = _parse_seeds(args.seeds, args.seed)
    t0 = time.perf_counter()
    load_before = list(os.getloadavg())

    inst = _common.offline_instrument()
    per_seed, seconds = {}, {}
    for seed in seeds:
        t_seed = time.perf_counter()
        work = Path(args.work) / ("visit" if len(seeds) == 1 else f"visit_seed{seed}")
        scene, visit, rows = run_visit(args, seed, inst, work)
        per_seed[seed] = rows
        seconds[seed] = time.perf_counter() - t_seed
        if len(seeds) > 1 and not args.keep_visits:
            shutil.rmtree(work, ignore_errors=True)
    first = seeds[0]
    rows = per_seed[first]
    summary = _summary(rows)
    targets = _targets(summary)
    out = {
        "scene": {"nods": 3, "detectors": ["NRS1", "NRS2"], "background_slitlets_per_detector":
                  3, "noise": args.noise, "levels": visit.levels, "seed": first,
                  "grating": scene.grating, "spatial_model": args.spatial_model,
                  "leave_out": args.leave_out},
        "summary": summary,
        "targets_met": targets,
        "exposures": rows,
    }
    if len(seeds) > 1:
        stats = seed_statistics(per_seed)
        out["scene"]["seeds"] = seeds
        out["seeds"] = {
            "note": "each seed is a new realisation of the scene: the noise and the rows "
                    "the slitlets are drawn on; 'summary', 'targets_met' and 'exposures' "
                    "above are the first seed's",
            **stats,
            "per_seed_summary": {str(s): _summary(r) for s, r in per_seed.items()},
            "per_seed_targets_met": {str(s): _targets(_summary(r))
                                     for s, r in per_seed.items()},
            "seconds_per_seed": {str(s): v for s, v in seconds.items()},
        }
        out["targets_met"]["|seed-mean bias| <= 0.1%"] = (
            stats["visit_seed_mean_bias_max_abs"] <= 1e-3)
        print("seed-mean visit bias per exposure (% +/- standard error):")
        for e in stats["exposures"]:
            b, pe = e["visit_bias"], e["per_exposure_bias"]
            print(f"  nod {e['nod']} {e['detector']}: visit {100 * b['mean']:+.3f} +/- "
                  f"{100 * b['standard_error']:.3f}; per exposure {100 * pe['mean']:+.3f} "
                  f"+/- {100 * pe['standard_error']:.3f}")
    out.update({
        "seconds": time.perf_counter() - t0,
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python validation/validate_visit_master.py "
                   + " ".join(sys.argv[1:]),
    })
    print(json.dumps({"summary": summary, "targets_met": targets}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
