"""Why the 20 %-noise uniform scenes with 2-3 background slitlets move: rescaling or smoothing.

Reads the exposure folders of ``validate_conditions.py --scenes uniform_20`` runs
(one ``--run label=WORK`` per code version, e.g. the current code and session
9's), and per scene, seed and setting (``plus``, ``plus_unsmoothed``,
``plus_noscale``, ``stock``) takes from the QA record (``*_mbkgqa.asdf``) whether
the calibration scatter was detected and which slitlets were rescaled, the
smoothing's median half-width, and from the master (``*_masterbg1d.fits``)
against the truth: the band *average* of master / truth - 1 (what every
slitlet's subtraction shifts by) and its band *median* (the scripts' "bias").
With the results file of the same run (``--results label=FILE``) the rms over
the source slitlets of their median noise-free residual is added.

Usage::

    python validation/uniform20_diagnosis.py \\
        --run now=/work/val/conditions \\
        --results now=validation/results_conditions_uniform20_issue24_s11.json \\
        --run s9=/work/val/conditions_s9code \\
        --results s9=validation/results_conditions_uniform20_issue24_s9code.json \\
        --seeds 7-14 --out validation/results_uniform20_diagnosis.json
"""

import argparse
import json
from pathlib import Path

import _common
import numpy as np

SETTINGS = ("stock", "plus", "plus_unsmoothed", "plus_noscale")


def master_error(folder, truth):
    """Band average and band median of master / truth - 1 (the truth is one spectrum)."""
    from validate_spatial import _master

    wave, sb = _master(folder)
    wave_t, sb_t = truth.background_1d()
    good = np.isfinite(sb) & (sb != 0) & (wave >= wave_t.min()) & (wave <= wave_t.max())
    ratio = sb[good] / np.interp(wave[good], wave_t, sb_t) - 1
    return float(np.mean(ratio)), float(np.median(ratio))


def qa_fields(folder):
    """Scatter detection, rescaled slitlets and smoothing width from the QA record."""
    import asdf

    path = next(Path(folder).glob("*_mbkgqa.asdf"), None)
    if path is None:
        return {}
    with asdf.open(path) as af:
        qa = af["master_background_qa"]
        scatter = qa.get("calibration_scatter") or {}
        smoothing = qa.get("master_smoothing") or {}
        return {
            "scatter": scatter.get("scatter"),
            "detected": scatter.get("detected"),
            "p_value": scatter.get("p_value"),
            "rescaled": scatter.get("rescaled"),
            "rescaled_slits": list(scatter.get("rescaled_slits") or []),
            "smoothing": smoothing.get("method"),
            "median_half_width": smoothing.get("median_half_width"),
        }


def source_rms(entry):
    """Rms over the source slitlets of their median noise-free residual (fraction)."""
    per_slit = (entry or {}).get("per_slit") or {}
    values = [v["median_residual"] for v in per_slit.values() if v["kind"] != "background"]
    return float(np.sqrt(np.mean(np.square(values)))) if values else None


def diagnose(runs, results, backgrounds, seeds):
    """Per run label, scene key and setting: the figures above."""
    from jwst_mbkg_plus.synthetic import load_truth

    out = {}
    for label, work in runs.items():
        res = results.get(label, {})
        for n_bkg in backgrounds:
            for seed in seeds:
                folder = Path(work) / f"uniform_20_{n_bkg}_{seed}"
                truth_path = next(folder.glob("*_truth.asdf"), None)
                if truth_path is None:
                    continue
                truth = load_truth(truth_path)
                key = f"uniform_20/{n_bkg}/{seed}"
                for setting in SETTINGS:
                    if not (folder / setting).is_dir():
                        continue
                    mean, median = master_error(folder / setting, truth)
                    entry = {"master_mean": mean, "master_median": median,
                             **qa_fields(folder / setting)}
                    rms = source_rms(res.get(key, {}).get(setting))
                    if rms is not None:
                        entry["source_rms"] = rms
                    out.setdefault(label, {}).setdefault(key, {})[setting] = entry
    return out


def _pct(value, digits=3):
    return "    --" if value is None else f"{100 * value:+.{digits}f}"


def main(argv=None):
    """Print the per-seed table and the means over seeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="label=work folder")
    parser.add_argument("--results", action="append", default=[], help="label=results.json")
    parser.add_argument("--backgrounds", default="3,2")
    parser.add_argument("--seeds", default="7-14")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    runs = dict(r.split("=", 1) for r in args.run)
    results = {k: json.loads(Path(v).read_text())
               for k, v in (r.split("=", 1) for r in args.results)}
    table = diagnose(runs, results, [int(b) for b in args.backgrounds.split(",")],
                     _common.parse_seeds(args.seeds))
    print("run  key              setting          src rms   master mean  master median  "
          "detected  rescaled  half-width")
    for label, scenes in table.items():
        for key, settings in scenes.items():
            for setting, e in settings.items():
                print(f"{label:4s} {key:16s} {setting:16s} {_pct(e.get('source_rms'))}%  "
                      f"{_pct(e['master_mean'])}%    {_pct(e['master_median'])}%      "
                      f"{e.get('detected')!s:8s}  {len(e.get('rescaled_slits') or [])!s:8s}  "
                      f"{e.get('median_half_width')}")
    print("\nMeans over seeds: rms of the source rms, mean |master mean|, rms of master mean")
    summary = {}
    for label, scenes in table.items():
        for n_bkg in args.backgrounds.split(","):
            for setting in SETTINGS:
                rows = [s[setting] for k, s in scenes.items()
                        if k.split("/")[1] == n_bkg and setting in s]
                if not rows:
                    continue
                src = [r["source_rms"] for r in rows if "source_rms" in r]
                mean = np.array([r["master_mean"] for r in rows])
                summary[f"{label}/{n_bkg}/{setting}"] = s = {
                    "n_seeds": len(rows),
                    "source_rms_rms": float(np.sqrt(np.mean(np.square(src)))) if src else None,
                    "master_mean_rms": float(np.sqrt(np.mean(mean**2))),
                    "master_mean_mean": float(np.mean(mean)),
                    "n_detected": int(sum(bool(r.get("detected")) for r in rows)),
                    "n_rescaled_slits": int(sum(len(r.get("rescaled_slits") or [])
                                                for r in rows)),
                }
                print(f"{label:4s} {n_bkg} bkg {setting:16s} n={s['n_seeds']}  src rms "
                      f"{_pct(s['source_rms_rms'])}%  master mean rms "
                      f"{_pct(s['master_mean_rms'])}% (mean {_pct(s['master_mean_mean'])}%)  "
                      f"detected {s['n_detected']}  rescaled slitlets {s['n_rescaled_slits']}")
    if args.out:
        Path(args.out).write_text(json.dumps({"per_seed": table, "summary": summary}, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
