"""Validate the spatial background options of MasterBackgroundMosPlusStep, side by side with jwst.

Builds synthetic NIRSpec MOS exposures (14 slitlets on NRS1: 8 background,
4 point sources, 2 extended sources; G235M; 3-shutter slitlets) whose
background varies across the MSA, runs jwst's stock ``MasterBackgroundMosStep``
and the plus step with several settings on the same extracted slits in one
process, and reports:

* per slitlet, the median noise-free residual: subtracted background / true
  background - 1 over the slit's pixels; its rms across slitlets (all, and
  source slitlets only) and its range;
* pulls of the background slitlets: std of residual / ERR per pixel, and of
  column sums / their propagated error;
* bias: median over wavelength of the master / truth - 1 (meaningful on the
  scene with no spatial variation, where the truth is one spectrum);
* the step's wall time.

Usage::

    python validation/validate_spatial.py [--scenes flat,gradient_y,...] [--noise 0.05]
        [--out validation/results_spatial.json] [--work /tmp/mbkg_spatial]

Results are merged into ``--out`` under ``<scene>@<noise>`` keys.
"""

import time
from pathlib import Path

import _common
import numpy as np

SCENES = {
    "flat": {},
    "gradient_y": {"gradient_y": 0.05},
    "gradient_x": {"gradient_x": 0.05},
    "gradient_xy": {"gradient_x": 0.05, "gradient_y": 0.05},
    "quadrant": {"quadrant_offsets": (0.0, 0.0, 0.03, -0.03)},
    "scatter": {"slit_scatter": 0.02},
}

SETTINGS = {
    "stock": None,
    "plus": {},
    "plus_auto": {"spatial_model": "auto"},
    "plus_auto_slit": {"spatial_model": "auto", "slit_scale": True},
}


def _master(folder):
    from stdatamodels.jwst import datamodels

    path = next(Path(folder).glob("*_masterbg1d.fits"))
    with datamodels.open(path) as model:
        table = model.spec[0].spec_table
        return np.asarray(table["WAVELENGTH"], float), np.asarray(table["SURF_BRIGHT"], float)


def metrics(slits_in, slits_out, truth, master=None):
    """
    Residual and pull statistics of one run against the truth.

    Parameters
    ----------
    slits_in, slits_out : list of SlitModel
        The slits before and after the step.
    truth : `~jwst_mbkg_plus.synthetic.Truth`
        The exposure's truth.
    master : tuple of ndarray, optional
        The master's wavelength and surface brightness, for the bias.

    Returns
    -------
    dict
        The statistics (fractions, not percent).
    """
    per_slit, pulls, col_pulls = {}, [], []
    for slit_in, slit_out in zip(slits_in, slits_out, strict=True):
        kind = truth.slit(slit_in.name)["kind"]
        true_rate = truth.cutout(slit_in.name, "background", slit_in) / truth.cutout(
            slit_in.name, "factor", slit_in
        )
        subtracted = slit_in.data.astype(float) - slit_out.data
        ok = np.isfinite(slit_in.data) & np.isfinite(slit_out.data)
        ok &= np.isfinite(true_rate) & (true_rate > 0)
        per_slit[slit_in.name] = {
            "kind": kind,
            "median_residual": float(np.median(subtracted[ok] / true_rate[ok] - 1)),
        }
        if kind == "background":
            with np.errstate(divide="ignore", invalid="ignore"):
                pull = slit_out.data / slit_out.err
            use = ok & np.isfinite(pull)
            pulls.append(pull[use])
            column = np.where(use, slit_out.data, 0.0).sum(axis=0)
            column_var = np.where(use, slit_out.err.astype(float) ** 2, 0.0).sum(axis=0)
            has = use.sum(axis=0) >= 3
            col_pulls.append(column[has] / np.sqrt(column_var[has]))
    res = np.array([v["median_residual"] for v in per_slit.values()])
    src = np.array([v["median_residual"] for v in per_slit.values() if v["kind"] != "background"])
    out = {
        "rms_residual_all": float(np.sqrt(np.mean(res**2))),
        "rms_residual_sources": float(np.sqrt(np.mean(src**2))),
        "min_residual": float(res.min()),
        "max_residual": float(res.max()),
        "pull_std": float(np.std(np.concatenate(pulls))) if pulls else float("nan"),
        "column_pull_std": float(np.std(np.concatenate(col_pulls))) if col_pulls else float("nan"),
        "per_slit": per_slit,
    }
    if master is not None:
        wave_t, sb_t = truth.background_1d()
        wave_m, sb_m = master
        good = np.isfinite(sb_m) & (sb_m != 0)
        out["bias"] = float(np.median(sb_m[good] / np.interp(wave_m[good], wave_t, sb_t) - 1))
    return out


def run_scene(label, noise, work, instrument, settings, seed=7):
    """Build one scene, run every setting on the same slits, return their metrics."""
    from jwst_mbkg_plus.synthetic import Scene

    scene = Scene(
        n_background=8,
        n_point=4,
        n_extended=2,
        detectors=("NRS1",),
        noise_fraction=noise,
        seed=seed,
        **SCENES[label],
    )
    folder = Path(work) / f"{label}_{noise}_{seed}"
    return run_settings(scene, folder, instrument, {name: SETTINGS[name] for name in settings})


def _spatial_fields(qa):
    out = {}
    scatter = qa.get("calibration_scatter")
    if scatter:
        out["calibration_scatter"] = {k: scatter.get(k) for k in (
            "scatter", "detected", "p_value", "rescaled")}
    spatial = qa.get("spatial_model")
    if not spatial:
        return out
    out.update({key: spatial.get(name) for key, name in
                (("spatial_model", "model"), ("reduced_chi2", "reduced_chi2"),
                 ("parameters", "parameters"))})
    return out


def run_settings(scene, folder, instrument, settings, qa_fields=_spatial_fields):
    """
    Paint ``scene`` in ``folder``, run each setting on the same extracted slits.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.Scene`
        The scene.
    folder : pathlib.Path
        Work folder (one subfolder per setting).
    instrument : `~jwst_mbkg_plus.synthetic.Instrument`
        The synthetic instrument.
    settings : dict
        Name -> plus step parameters, or None for jwst's stock step.
    qa_fields : callable, optional
        QA record -> dict of entries to add to the plus step's metrics.

    Returns
    -------
    dict
        Name -> `metrics`, with the step's time (``seconds``) and the QA entries.
    """
    import asdf
    from jwst.master_background import MasterBackgroundMosStep

    from jwst_mbkg_plus import MasterBackgroundMosPlusStep

    results = {}
    with _common.painted_slits(scene, folder, instrument) as (slits, truth):
        for name, pars in settings.items():
            out_dir = folder / name
            out_dir.mkdir(exist_ok=True)
            cls = MasterBackgroundMosStep if pars is None else MasterBackgroundMosPlusStep
            t0 = time.perf_counter()
            result = cls.call(slits, save_background=True, output_dir=str(out_dir), **(pars or {}))
            seconds = time.perf_counter() - t0
            m = metrics(slits.slits, result.slits, truth, _master(out_dir))
            m["seconds"] = seconds
            if pars is not None:
                with asdf.open(next(out_dir.glob("*_mbkgqa.asdf"))) as af:
                    m.update(qa_fields(af["master_background_qa"]))
            results[name] = m
            result.close()
    return results


def main(argv=None):
    """Run the validation and print a table."""
    parser = _common.script_parser(__doc__, work="/tmp/mbkg_spatial",
                                   out="validation/results_spatial.json")
    parser.add_argument("--scenes", default="flat,gradient_y,gradient_x,quadrant,scatter")
    parser.add_argument("--noise", default="0.05")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    _common.quiet_loggers()
    instrument = _common.offline_instrument()
    settings = args.settings.split(",")
    all_results = {}
    for label in args.scenes.split(","):
        for noise in (float(n) for n in args.noise.split(",")):
            results = run_scene(label, noise, args.work, instrument, settings, seed=args.seed)
            all_results[f"{label}@{noise}"] = results
            for name, m in results.items():
                print(
                    f"{label:12s} noise {noise:4.2f} {name:15s} rms(all) "
                    f"{100 * m['rms_residual_all']:6.3f}%  rms(src) "
                    f"{100 * m['rms_residual_sources']:6.3f}%  range "
                    f"{100 * m['min_residual']:+6.2f}..{100 * m['max_residual']:+6.2f}%  "
                    f"pull {m['pull_std']:.3f}/{m['column_pull_std']:.3f}  "
                    f"bias {100 * m.get('bias', np.nan):+.3f}%  {m['seconds']:6.1f} s  "
                    f"{m.get('spatial_model', '')}",
                    flush=True,
                )
    # Runs of other scenes or noise levels already in the file are kept.
    _common.merge_json(args.out, all_results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
