"""Validate the MOS plus step's defaults under real sky and detector conditions, beside jwst.

Builds synthetic NIRSpec MOS exposures (G235M, NRS1, 3-shutter slitlets, 4 point
and 2 extended sources, and 9, 4, 3 or 2 background slitlets dealt alternately to
NRS1's two quadrants) whose background is not the same everywhere, runs jwst's
stock ``MasterBackgroundMosStep`` and the plus step with its default parameters on
the same extracted slits in one process, and reports the statistics of
``validate_spatial.metrics``: the rms over slitlets of the per-slitlet median
noise-free residual (subtracted / true background - 1), its range, the pulls of
the background slitlets (std of residual / ERR per pixel and of column sums /
their propagated error) and the master's bias against the truth (meaningful where
the truth is one spectrum).

Scenes (5 % Gaussian noise unless the name says otherwise):

* ``uniform``: the same sky everywhere;
* ``halves``: +4 % / -4 % between the MSA halves (NRS1's two quadrants);
* ``quadrant``: 3 % per-quadrant offsets (0, +3 % on NRS1's quadrants 3 and 4);
* ``chromatic``: msaexp-like chromatic map: per-quadrant levels that change with
  wavelength (quadrant 3 from 0.92 at the blue end of the band to 0.98 at the
  red end, quadrant 4 from 1.01 to 1.00) plus a gradient along y whose amplitude
  goes from +2 % to -1 %: factors 0.90-1.03;
* ``gradient``: a +/-5 % gradient along x and y;
* ``photon``: the uniform sky with photon-counting noise, 3 e- of sky per pixel
  and 6 e- read noise (VAR_POISSON from each pixel's own value);
* ``..._20``: the same at 20 % noise (pull scenes).

Usage::

    python validation/validate_conditions.py [--scenes uniform,halves,...]
        [--backgrounds 9,4] [--seeds 7] [--out validation/results_conditions.json]

Results are merged into ``--out`` under ``<scene>/<n_background>/<seed>`` keys, per
setting (a run with ``--settings plus`` keeps the stock figures of the same key).
"""

import logging
from pathlib import Path

import _common
import numpy as np
from validate_spatial import run_settings

CHROMATIC = {
    "chromatic_quadrants": ((0.0, 0.0), (0.0, 0.0), (-0.08, -0.02), (0.01, 0.0)),
    "chromatic_gradient_y": (0.02, -0.01),
}

SCENES = {
    "uniform": {"noise_fraction": 0.05},
    "halves": {"noise_fraction": 0.05, "quadrant_offsets": (0.04, -0.04, 0.04, -0.04)},
    "quadrant": {"noise_fraction": 0.05, "quadrant_offsets": (0.03, -0.03, 0.0, 0.03)},
    "chromatic": {"noise_fraction": 0.05, **CHROMATIC},
    "gradient": {"noise_fraction": 0.05, "gradient_x": 0.05, "gradient_y": 0.05},
    "photon": {"sky_electrons": 3.0, "read_noise_electrons": 6.0},
    "uniform_20": {"noise_fraction": 0.20},
    "halves_20": {"noise_fraction": 0.20, "quadrant_offsets": (0.04, -0.04, 0.04, -0.04)},
}

SETTINGS = {"stock": None, "plus": {}, "plus_none": {"spatial_model": "none"},
            # The master smoothing either way, whatever the default.
            "plus_unsmoothed": {"master_smoothing": "none"},
            "plus_smoothed": {"master_smoothing": "adaptive"},
            # The per-slitlet rescaling off, whatever the default.
            "plus_noscale": {"slit_scale": False}}
# Scenes where one master is right: the defaults are also compared with
# spatial_model='none' (the default before 'auto').
WITH_NONE = ("uniform", "photon", "uniform_20")


def _qa_fields(qa):
    spatial = qa.get("spatial_model") or {}
    return {
        "spatial_model": spatial.get("model"),
        "chromatic_order": spatial.get("wavelength_order"),
        "rejected": sorted((qa.get("vetting") or {}).get("rejected", {})),
        "master_variance": qa.get("master_variance"),
        # The QA record's error-model pulls (1.4826 MAD, leave-one-out residuals).
        "qa_pull_spread": (qa.get("pull_summary") or {}).get("pull_spread"),
        "qa_column_pull_spread": (qa.get("column_pull_summary") or {}).get("pull_spread"),
        "qa_err_pull_spread": (qa.get("err_pull_summary") or {}).get("pull_spread"),
        "qa_slit_pull_spreads": {k: [r.get("pull_spread"), r.get("column_pull_spread")]
                                 for k, r in (qa.get("residuals") or {}).items()},
        "calibration_scatter": {k: (qa.get("calibration_scatter") or {}).get(k)
                                for k in ("scatter", "detected", "p_value", "rescaled")},
    }


def run_scene(label, n_background, seed, work, instrument, settings, with_none=True):
    """Build one scene, run every setting on the same slits, return their metrics."""
    from jwst_mbkg_plus.synthetic import Scene

    scene = Scene(n_background=n_background, n_point=4, n_extended=2, detectors=("NRS1",),
                  seed=seed, **SCENES[label])
    folder = Path(work) / f"{label}_{n_background}_{seed}"
    if with_none and label in WITH_NONE and "plus_none" not in settings:
        settings = [*settings, "plus_none"]
    return run_settings(scene, folder, instrument, {name: SETTINGS[name] for name in settings},
                        qa_fields=_qa_fields)


def main(argv=None):
    """Run the validation and print a table."""
    parser = _common.script_parser(__doc__, seeds="7", work="/tmp/mbkg_conditions",
                                   out="validation/results_conditions.json")
    parser.add_argument("--scenes", default="uniform,halves,quadrant,chromatic,gradient")
    parser.add_argument("--backgrounds", default="9,4")
    parser.add_argument("--settings", default="stock,plus")
    parser.add_argument("--no-plus-none", action="store_true",
                        help="do not add spatial_model='none' on the uniform/photon scenes")
    args = parser.parse_args(argv)
    _common.quiet_loggers(logging.ERROR, names=(*_common.STACK_LOGGERS, "CRDS"))
    instrument = _common.offline_instrument()
    settings = args.settings.split(",")
    merged = _common.read_json(args.out)
    for label in args.scenes.split(","):
        for n_bkg in (int(n) for n in args.backgrounds.split(",")):
            for seed in _common.parse_seeds(args.seeds):
                results = run_scene(label, n_bkg, seed, args.work, instrument, settings,
                                    with_none=not args.no_plus_none)
                # Per setting: a run with --settings plus keeps the stock figures.
                merged.setdefault(f"{label}/{n_bkg}/{seed}", {}).update(results)
                for name, m in results.items():
                    print(
                        f"{label:10s} bkg {n_bkg} seed {seed:3d} {name:6s} rms "
                        f"{100 * m['rms_residual_all']:6.3f}% src "
                        f"{100 * m['rms_residual_sources']:6.3f}% range "
                        f"{100 * m['min_residual']:+6.2f}..{100 * m['max_residual']:+6.2f}% "
                        f"pull {m['pull_std']:.3f}/{m['column_pull_std']:.3f} "
                        f"bias {100 * m.get('bias', np.nan):+.3f}% {m['seconds']:5.1f}s "
                        f"{m.get('spatial_model', '')} {m.get('rejected', '')}"
                        + (f" scatter {m['calibration_scatter']}"
                           if m.get("calibration_scatter") else "")
                        + (f" QA pulls {m['qa_pull_spread']:.3f}/{m['qa_column_pull_spread']:.3f}"
                           if m.get("qa_column_pull_spread") is not None else ""),
                        flush=True,
                    )
                # Written after every scene, so an interrupted run keeps what it measured.
                _common.write_json(args.out, merged, newline=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
