"""Scenes outside the validated grid: jwst's stock step and the plus defaults on the same slits.

Issue 24's rule: the plus step's defaults (``slit_scale='auto'``, the source-sky
factors, vetting, the adaptive master smoothing, the spatial model) must never do
worse than jwst's ``MasterBackgroundMosStep`` on a realistic scene, and must not
lose on a well-calibrated one. The defaults were tuned on the grid of
``validate_calibration_scatter.py`` (G235M and PRISM, 12 background and 18
point-source slitlets of 3 shutters, calibration error 3 % level / 2 % tilt) and
of the other ``validate_*.py`` scripts. This script runs both steps on scene
variants outside that grid (:data:`SCENES`): calibration errors of other sizes
and shapes, other gratings and detectors, 2- and 5-shutter slitlets, few
background slitlets, extended sources, Moffat and two-source slitlets,
contaminated background slitlets, sky structure, photon noise and hot pixels,
with and without calibration error.

Figures per scene (``validate_calibration_scatter.slit_metrics`` /
``summarise`` / ``run_one``): over the source slitlets, the rms of the median
noise-free residual (subtracted / true calibrated background - 1) and the mean of
its 95th percentile of absolute value, stock and plus; the plus step's measured
calibration scatter against the injected one; and the same figures over the
slitlets the plus step could not rescale. The verdict is ``plus worse`` where a
plus figure exceeds stock's by more than 5 % of stock's and 0.01 % absolute (one
seed; a scene so marked is re-run on more seeds).

Usage::

    python validation/unseen_scenes.py [--scenes cal_small,few_background] \\
        [--seeds 1] [--out validation/results_unseen_scenes.json] [--resume]
    python validation/unseen_scenes.py --table-only

Results are merged into ``--out`` under ``<scene>@<seed>`` keys.
"""

import shutil
from pathlib import Path

import _common
import numpy as np
import validate_calibration_scatter as vcs

#: The grid's scene: G235M on NRS1, 12 background and 18 point-source slitlets of
#: 3 shutters, 5 % noise per pixel, 3 % level / 2 % tilt calibration error.
BASE = {"grating": "G235M", "detectors": ("NRS1",), "n_background": 12, "n_point": 18,
        "n_extended": 0, "shutters_per_slitlet": 3, "noise_fraction": 0.05,
        "calibration_error": (0.03, 0.02, 0.0, 0.0)}

#: Scene name -> (what it varies, the options that differ from :data:`BASE`).
SCENES = {
    "cal_small": ("calibration error 1 % level / 0.5 % tilt (near detection)",
                  {"calibration_error": (0.01, 0.005, 0.0, 0.0)}),
    "cal_small_n20": ("calibration error 1 % / 0.5 %, 20 % noise per pixel (half-detected)",
                      {"calibration_error": (0.01, 0.005, 0.0, 0.0), "noise_fraction": 0.2}),
    "cal_large": ("calibration error 6 % level / 4 % tilt",
                  {"calibration_error": (0.06, 0.04, 0.0, 0.0)}),
    "cal_curvature": ("calibration error: 2 % curvature only",
                      {"calibration_error": (0.0, 0.0, 0.02, 0.0)}),
    "cal_correlated": ("3 % / 2 % / 1 % curvature, 70 % correlated with MSA position",
                       {"calibration_error": (0.03, 0.02, 0.01, 0.7)}),
    "g395m_nrs2": ("G395M on NRS2", {"grating": "G395M", "detectors": ("NRS2",)}),
    "g395h_nrs1": ("G395H on NRS1 (partial spectra)", {"grating": "G395H"}),
    "prism_nrs2_hot": ("PRISM on NRS2, 2 hot pixels and 1 cluster per background slitlet",
                       {"grating": "PRISM", "detectors": ("NRS2",), "hot_pixels_per_slit": 2,
                        "hot_clusters_per_slit": 1}),
    "shutters2": ("2-shutter slitlets", {"shutters_per_slitlet": 2}),
    "shutters5": ("5-shutter slitlets", {"shutters_per_slitlet": 5}),
    "few_background": ("4 background, 26 point-source slitlets",
                       {"n_background": 4, "n_point": 26}),
    "extended": ("12 point, 6 extended sources", {"n_point": 12, "n_extended": 6}),
    "moffat_two": ("Moffat profile, 6 slitlets with a second source",
                   {"point_profile": "moffat", "n_two_source": 6}),
    "contaminated": ("3 contaminated background slitlets", {"n_contaminated": 3}),
    "sky_structure": ("quadrant offsets and x/y gradients",
                      {"quadrant_offsets": (0.03, -0.02, 0.01, -0.03), "gradient_x": 0.05,
                       "gradient_y": 0.04}),
    "chromatic": ("chromatic quadrants",
                  {"chromatic_quadrants": ((0.02, -0.02), (-0.01, 0.03), (0.0, 0.0),
                                           (-0.03, 0.01))}),
    "photon": ("photon noise, 100 e- of sky per pixel", {"noise_fraction": 0.0,
                                                          "sky_electrons": 100.0}),
    "clean_few_moffat": ("no calibration error: 4 background, Moffat, 4 two-source, "
                         "1 contaminated", {"calibration_error": (), "n_background": 4,
                                            "n_point": 26, "point_profile": "moffat",
                                            "n_two_source": 4, "n_contaminated": 1}),
    "clean_g395m_2sh": ("no calibration error: G395M, 2-shutter slitlets, hot pixels",
                        {"calibration_error": (), "grating": "G395M",
                         "shutters_per_slitlet": 2, "hot_pixels_per_slit": 2}),
}


def scene_of(name, seed):
    """The `~jwst_mbkg_plus.synthetic.Scene` of a named variant and seed."""
    from jwst_mbkg_plus.synthetic import Scene

    return Scene(**{**BASE, **SCENES[name][1]}, seed=seed)


def _fig(m):
    return m["sources"]["rms_median"], m["sources"]["mean_p95"]


def not_rescaled(entry):
    """Plus and stock figures (rms of medians, mean p95) over the slitlets plus did not rescale."""
    names = list((entry["plus"].get("not_rescaled") or {}).get("per_slit") or {})
    out = {}
    for who in ("plus", "stock"):
        per = entry[who]["sources"].get("per_slit") or {}
        med = np.array([per[n]["median"] for n in names if n in per])
        p95 = np.array([per[n]["p95"] for n in names if n in per])
        out[who] = ((float(np.sqrt(np.mean(med**2))), float(np.mean(p95))) if med.size
                    else None)
    return len(names), out


def verdict(entry, *, rel=0.05, floor=1e-4):
    """``plus worse`` if a plus figure exceeds stock's by > ``rel`` of it and ``floor``."""
    worse = [p > s * (1 + rel) and p - s > floor
             for p, s in zip(_fig(entry["plus"]), _fig(entry["stock"]), strict=True)]
    return "plus worse" if any(worse) else "ok"


def table(results):
    """The results as text rows (per entry: figures in %, scatter, verdict)."""
    rows = [f"{'scene@seed':24s} {'plus rms/p95 %':>16s} {'stock rms/p95 %':>16s} "
            f"{'scatter/injected %':>19s} {'not rescaled: plus (stock) %':>28s} verdict"]
    for key, e in results.items():
        pl, st = _fig(e["plus"]), _fig(e["stock"])
        cs, inj = e["plus"]["calibration_scatter"], e["plus"]["injected"]
        n_nr, nr = not_rescaled(e)
        nrs = (f"{n_nr:2d}: {100 * nr['plus'][0]:.2f}/{100 * nr['plus'][1]:.2f} "
               f"({100 * nr['stock'][0]:.2f}/{100 * nr['stock'][1]:.2f})"
               if n_nr and nr["stock"] else "-")
        scatter = cs.get("scatter") or 0.0
        rows.append(f"{key:24s} {100 * pl[0]:7.3f}/{100 * pl[1]:5.2f}   "
                    f"{100 * st[0]:7.3f}/{100 * st[1]:5.2f}   "
                    f"{100 * scatter:5.2f}{'*' if cs.get('detected') else ' '}/"
                    f"{100 * inj['level_std']:5.2f}  {nrs:>28s} {verdict(e)}")
    return "\n".join(rows)


def main(argv=None):
    """Run the scenes and print the table."""
    parser = _common.script_parser(__doc__, seeds="1", work="/tmp/mbkg_unseen",
                                   out="validation/results_unseen_scenes.json", resume=True)
    parser.add_argument("--scenes", default=",".join(SCENES),
                        help=f"comma-separated scenes of {', '.join(SCENES)}")
    parser.add_argument("--keep", action="store_true", help="keep the painted exposures")
    parser.add_argument("--table-only", action="store_true",
                        help="print the table of --out and stop")
    args = parser.parse_args(argv)
    if args.table_only:
        print(table(_common.read_json(args.out)))
        return
    _common.quiet_loggers()
    instrument = _common.offline_instrument()
    done = _common.done_keys(args.out, args.resume)
    for seed in _common.parse_seeds(args.seeds):
        for name in args.scenes.split(","):
            key = f"{name}@{seed}"
            if key in done:
                continue
            folder = Path(args.work) / f"{name}_{seed}"
            res = vcs.run_one(scene_of(name, seed), folder, instrument, {})
            res["scene"] = {"name": name, "seed": seed, "varies": SCENES[name][0],
                            **scene_of(name, seed).to_dict()}
            res["verdict"] = verdict(res)
            _common.merge_json(args.out, {key: res})
            print(table({key: res}).splitlines()[1], flush=True)
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    print(table({k: v for k, v in _common.read_json(args.out).items()
                 if k.split("@")[0] in args.scenes.split(",")}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
