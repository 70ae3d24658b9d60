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

Command (about 4 minutes on 2 cores)::

    python validation/validate_visit_master.py --out validation/results_visit_master.json
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/mbkg_visit_master")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--drift", type=float, default=0.01)
    parser.add_argument("--spatial-model", default="auto",
                        help="the step's spatial_model (default auto, the step's default)")
    parser.add_argument("--leave-out", default="exposure", choices=("exposure", "slitlet"),
                        help="visit master leave-one-out (default exposure: the issue's)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    t0 = time.perf_counter()
    load_before = list(os.getloadavg())

    from jwst_mbkg_plus.offline import configure_offline_crds

    configure_offline_crds()
    from jwst_mbkg_plus.synthetic import (
        Scene,
        build_instrument,
        default_instrument_path,
        extract_slits,
        load_truth,
        local_crds_context,
    )
    from jwst_mbkg_plus.synthetic.visit import make_visit

    inst = build_instrument(default_instrument_path())
    scene = Scene(n_background=6, n_point=2, n_extended=2, detectors=("NRS1", "NRS2"),
                  noise_fraction=args.noise, seed=args.seed)
    visit = make_visit(scene, Path(args.work) / "visit", instrument=inst, n_nods=3,
                       drift=args.drift)

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
            print(f"{name}: noise per-exposure {row['per_exposure']['noise']:.4f} visit "
                  f"{row['visit']['noise']:.4f}; bias visit {100 * row['visit']['bias']:+.3f}%; "
                  f"pulls visit {row['visit']['pull_spread']:.3f} px, "
                  f"{row['visit']['column_pull_spread']:.3f} col; level errors "
                  + ", ".join(f"{100 * v:+.3f}%" for v in row["level_errors"].values()),
                  flush=True)
    ratios = [r["per_exposure"]["noise"] / r["visit"]["noise"] for r in rows]
    summary = {
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
    targets = {
        "noise_ratio >= 1.6": summary["noise_ratio_min"] >= 1.6,
        "|bias| <= 0.1%": summary["visit_bias_max_abs"] <= 1e-3,
        "pixel pulls 1.00 +/- 0.05": all(abs(v - 1) <= 0.05
                                         for v in summary["visit_pull_spread_range"]),
        "column pulls 1.00 +/- 0.05": all(abs(v - 1) <= 0.05
                                          for v in summary["visit_column_pull_spread_range"]),
        "levels within 0.2%": summary["level_error_max_abs"] <= 2e-3,
    }
    out = {
        "scene": {"nods": 3, "detectors": ["NRS1", "NRS2"], "background_slitlets_per_detector":
                  3, "noise": args.noise, "levels": visit.levels, "seed": args.seed,
                  "grating": scene.grating, "spatial_model": args.spatial_model,
                  "leave_out": args.leave_out},
        "summary": summary,
        "targets_met": targets,
        "exposures": rows,
        "seconds": time.perf_counter() - t0,
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python validation/validate_visit_master.py "
                   + " ".join(sys.argv[1:]),
    }
    print(json.dumps({"summary": summary, "targets_met": targets}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
