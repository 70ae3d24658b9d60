"""Per-slitlet calibration errors: jwst's stock step and the plus step on the same slits.

Builds synthetic NIRSpec MOS exposures whose slitlets are each calibrated with
their own smooth error in wavelength (``Scene.calibration_error``: level, tilt
across the band, curvature), runs jwst's stock ``MasterBackgroundMosStep`` and
the plus step (defaults, or ``--plus`` settings) on the same extracted slits,
and reports per scene:

* source slitlets: rms over slitlets of the median noise-free residual
  (subtracted background / true background - 1, the true background being the
  slitlet's calibrated sky, its calibration error included), and the mean over
  slitlets of the 95th percentile of its absolute value;
* the calibration scatter the plus step measured (QA ``calibration_scatter``)
  against the injected one: the standard deviation over the background
  slitlets of their mean factor (and per band);
* the slitlets that could not be rescaled: std and rms of residual / ERR per
  pixel and of column sums / their propagated error (pulls; 1 if the ERR is
  honest; the rms keeps the mean pull, the calibration error these slitlets
  share relative to the master's level).

Usage::

    python validation/validate_calibration_scatter.py --gratings G235M,PRISM \\
        --noise 0.05,0.2 --seeds 1,2,3,4,5 [--level 0.03 --tilt 0.02]
        [--out validation/results_calibration_scatter.json]

Results are merged into ``--out`` under ``<grating>@<noise>@<seed>@<label>`` keys.
"""

import json
import time
from pathlib import Path

import _common
import numpy as np


def slit_metrics(slits_in, slits_out, truth):
    """Per-slit noise-free residual statistics and pulls of one run."""
    per_slit = {}
    for slit_in, slit_out in zip(slits_in, slits_out, strict=True):
        entry = truth.slit(slit_in.name)
        true_rate = truth.cutout(slit_in.name, "background", slit_in) / truth.cutout(
            slit_in.name, "factor", slit_in)
        subtracted = slit_in.data.astype(float) - slit_out.data
        ok = np.isfinite(slit_in.data) & np.isfinite(slit_out.data)
        ok &= np.isfinite(true_rate) & (true_rate > 0) & ((slit_out.dq & 1) == 0)
        rel = subtracted[ok] / true_rate[ok] - 1
        src = truth.cutout(slit_in.name, "source", slit_in) / truth.cutout(
            slit_in.name, "factor", slit_in)
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = (slit_out.data - src) / slit_out.err
        use = ok & np.isfinite(pull)
        column = np.where(use, slit_out.data - src, 0.0).sum(axis=0)
        column_var = np.where(use, slit_out.err.astype(float) ** 2, 0.0).sum(axis=0)
        has = use.sum(axis=0) >= 3
        per_slit[slit_in.name] = {
            "kind": entry["kind"],
            "median_residual": float(np.median(rel)),
            "p95_abs_residual": float(np.percentile(np.abs(rel), 95)),
            "pulls": pull[use],
            "column_pulls": column[has] / np.sqrt(column_var[has]),
        }
    return per_slit


def summarise(per_slit, names=None):
    """Residual figures over the source slitlets (or ``names``)."""
    src = {k: v for k, v in per_slit.items()
           if (names is None and v["kind"] != "background") or (names and k in names)}
    med = np.array([v["median_residual"] for v in src.values()])
    p95 = np.array([v["p95_abs_residual"] for v in src.values()])
    return {"n": len(src), "rms_median": float(np.sqrt(np.mean(med**2))) if med.size else np.nan,
            "mean_p95": float(np.mean(p95)) if p95.size else np.nan,
            "per_slit": {k: {"median": v["median_residual"], "p95": v["p95_abs_residual"]}
                         for k, v in src.items()}}


def pulls_of(per_slit, names):
    """Pull std (pixels, columns) over the named slits."""
    pix = [per_slit[n]["pulls"] for n in names if n in per_slit]
    col = [per_slit[n]["column_pulls"] for n in names if n in per_slit]
    if not pix:
        return {}
    pix, col = np.concatenate(pix), np.concatenate(col)
    # rms as well as std: the std removes the mean pull, which is the part of the
    # calibration error all these slitlets share with the master's level.
    return {"pixel_pull_std": float(np.std(pix)), "column_pull_std": float(np.std(col)),
            "pixel_pull_rms": float(np.sqrt(np.mean(pix**2))),
            "column_pull_rms": float(np.sqrt(np.mean(col**2))),
            "column_pull_mean": float(np.mean(col))}


def injected_scatter(truth, band_wavelength=()):
    """Std over background slitlets of their mean calibration factor (and per band)."""
    levels, bands = [], []
    for name in truth.background_names():
        s = truth.slit(name)
        ok = s["valid"] & np.isfinite(s["calibration_error"])
        levels.append(float(np.mean(s["calibration_error"][ok])))
        terms = s["calibration_terms"]
        if len(band_wavelength):
            from jwst_mbkg_plus.synthetic.calib_error import calibration_error_factor

            bands.append(calibration_error_factor(terms, np.asarray(band_wavelength),
                                                  truth.scene["grating"]))
    out = {"level_std": float(np.std(levels, ddof=1)) if len(levels) > 1 else np.nan}
    if bands:
        out["band_std"] = [float(v) for v in np.std(np.array(bands), axis=0, ddof=1)]
    return out


def run_one(scene, folder, instrument, plus_pars, stock=None):
    """Stock and plus on the same slits; their figures (``stock``: stock's, already measured)."""
    import asdf
    from jwst.master_background import MasterBackgroundMosStep

    from jwst_mbkg_plus import MasterBackgroundMosPlusStep

    out = {}
    with _common.painted_slits(scene, folder, instrument) as (slits, truth):
        runs = [("plus", MasterBackgroundMosPlusStep, plus_pars)]
        if stock is None:
            runs.insert(0, ("stock", MasterBackgroundMosStep, {}))
        else:
            out["stock"] = stock
        for name, cls, pars in runs:
            out_dir = folder / name
            out_dir.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            kwargs = {"save_qa": True} if cls is MasterBackgroundMosPlusStep else {}
            result = cls.call(slits, output_dir=str(out_dir), **kwargs, **pars)
            seconds = time.perf_counter() - t0
            per_slit = slit_metrics(slits.slits, result.slits, truth)
            m = {"sources": summarise(per_slit), "seconds": seconds}
            if name == "plus":
                with asdf.open(next(out_dir.glob("*_mbkgqa.asdf"))) as af:
                    cs = dict(af["master_background_qa"].get("calibration_scatter") or {})
                cs = json.loads(json.dumps(cs, default=float))
                m["calibration_scatter"] = {k: cs.get(k) for k in (
                    "scatter", "detected", "p_value", "band_wavelength", "band_scatter",
                    "rescaled_slits", "systematic_error_slits", "median_level_error")}
                m["injected"] = injected_scatter(truth, cs.get("band_wavelength") or ())
                # QA labels are "<name>:<source>"; the slits' names are the first part.
                fixed = [k.split(":")[0] for k in (cs.get("systematic_error_slits") or {})]
                m["not_rescaled"] = {**summarise(per_slit, fixed), **pulls_of(per_slit, fixed)}
            out[name] = m
            result.close()
    return out


def main(argv=None):
    """Run the validation and print a table."""
    parser = _common.script_parser(
        __doc__, seeds="1,2,3,4,5", work="/tmp/mbkg_calscatter",
        out="validation/results_calibration_scatter.json", resume=True)
    parser.add_argument("--gratings", default="G235M,PRISM")
    parser.add_argument("--noise", default="0.05,0.2")
    parser.add_argument("--level", type=float, default=0.03)
    parser.add_argument("--tilt", type=float, default=0.02)
    parser.add_argument("--curvature", type=float, default=0.0)
    parser.add_argument("--correlation", type=float, default=0.0)
    parser.add_argument("--n-background", type=int, default=12)
    parser.add_argument("--n-point", type=int, default=18)
    parser.add_argument("--n-extended", type=int, default=0)
    parser.add_argument("--shutters", type=int, default=3)
    parser.add_argument("--plus", default="{}", help="plus step parameters (JSON)")
    parser.add_argument("--label", default="")
    parser.add_argument("--plus-only", action="store_true", help="do not run jwst's step")
    parser.add_argument("--stock-from", default=None,
                        help="results file whose stock figures of the same scenes are reused "
                             "(stock does not depend on this package's code)")
    args = parser.parse_args(argv)
    _common.quiet_loggers()

    from jwst_mbkg_plus.synthetic import Scene

    instrument = _common.offline_instrument()
    plus_pars = json.loads(args.plus)
    calib = (args.level, args.tilt, args.curvature, args.correlation)
    label = args.label or f"cal{args.level:g}_{args.tilt:g}_{args.curvature:g}"
    out = Path(args.out)
    # Seeds outermost: an interrupted run has every grating and noise at equal seeds.
    done = _common.done_keys(out, args.resume)
    stock_from = json.loads(Path(args.stock_from).read_text()) if args.stock_from else {}
    for seed in _common.parse_seeds(args.seeds):
        for grating in args.gratings.split(","):
            for noise in (float(n) for n in args.noise.split(",")):
                if f"{grating}@{noise}@{seed}@{label}" in done:
                    continue
                scene = Scene(n_background=args.n_background, n_point=args.n_point,
                              n_extended=args.n_extended, shutters_per_slitlet=args.shutters,
                              detectors=("NRS1",), grating=grating, noise_fraction=noise,
                              calibration_error=calib, seed=seed)
                folder = Path(args.work) / f"{grating}_{noise}_{seed}_{label}"
                key = f"{grating}@{noise}@{seed}@{label}"
                stock = stock_from.get(key, {}).get("stock")
                if args.plus_only:
                    stock = {"sources": {"rms_median": np.nan, "mean_p95": np.nan},
                             "seconds": np.nan, "not_run": True}
                res = run_one(scene, folder, instrument, plus_pars, stock=stock)
                st, pl = res["stock"]["sources"], res["plus"]["sources"]
                cs, inj = res["plus"]["calibration_scatter"], res["plus"]["injected"]
                nr = res["plus"]["not_rescaled"]
                print(f"{key:32s} stock rms {100 * st['rms_median']:5.2f}% p95 "
                      f"{100 * st['mean_p95']:5.2f}% | plus rms {100 * pl['rms_median']:5.3f}% "
                      f"p95 {100 * pl['mean_p95']:5.2f}% | scatter "
                      f"{100 * (cs.get('scatter') or 0):5.2f}% ({cs.get('detected')}) injected "
                      f"{100 * inj['level_std']:5.2f}% | not rescaled {nr.get('n', 0)} pulls "
                      f"{nr.get('pixel_pull_std', np.nan):.2f}/"
                      f"{nr.get('column_pull_std', np.nan):.2f} | "
                      f"{res['stock']['seconds']:.0f}/{res['plus']['seconds']:.0f} s", flush=True)
                _common.merge_json(out, {key: res})


if __name__ == "__main__":
    main()
