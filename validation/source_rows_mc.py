"""Which rows of a point-source slitlet its sky factor is fitted on: noise draws on step inputs.

Builds the calibration-scatter scene of ``validate_calibration_scatter.py`` (12
background and 18 point-source slitlets of 3 shutters, 3 % level and 2 % tilt
calibration errors), runs the plus step once to capture each source slitlet's
inputs to the sky factor (its modelled background, wavelengths, offsets from the
source) and the truth, then for ``--draws`` new noise realisations of the
noiseless data (``--noise`` per pixel) fits every source slitlet's factor two ways:

* ``own``: the slitlet's own wings, rows beyond ``slit_scale_guard`` (1.0);
* ``common``: the exposure's common profile shape
  (`~jwst_mbkg_plus.algorithms.pooled_profile.pooled_shape`) and rows from
  `~jwst_mbkg_plus.algorithms.free_rows.nearest_cut` (what the step does now);
* ``true``: the true source light subtracted, rows as ``common`` (the limit);
* ``modelled``: the step's rule since session 11: the source a term of the fit
  (`~jwst_mbkg_plus.algorithms.wing_model.profile_sky_factor`) where its total error is below the
  masked fit's (``common`` with rows beyond the guard), else that masked fit.

and reports the rms and mean over slitlets and draws of the median noise-free
residual and the mean of the 95th percentile of its absolute value (as
``validate_calibration_scatter.py``), and the mean pixel count.

With ``--original`` the ways are fitted once, on each scene's own noise draw (the
one ``validate_calibration_scatter.py`` scores, same scene and seed), and the
step's own residual is reported beside them (``step``): whether a figure of that
script is the estimator's or the draw's (``true`` on the same draw is the limit).

Usage::

    python validation/source_rows_mc.py --grating PRISM --noise 0.2 --seeds 1,2 --draws 2 \\
        [--profile gaussian] [--original] [--out validation/results_source_rows_mc.json]
"""

from pathlib import Path
from types import SimpleNamespace

import _common
import numpy as np


def capture(scene, folder, instrument):
    """Source slitlets' factor inputs, the step's applied factor and the truth."""
    import jwst_mbkg_plus.mos.slit_factors as slit_factors
    from jwst_mbkg_plus import MasterBackgroundMosPlusStep
    from jwst_mbkg_plus.io.slits import is_msa_background
    from jwst_mbkg_plus.mos.msa_position import source_distance

    seen = {}
    original = slit_factors.slit_corrections

    def spy(cal_slits, waves, expanded, master, mode, **kwargs):
        out = original(cal_slits, waves, expanded, master, mode, **kwargs)
        for i, s in enumerate(cal_slits):
            if not is_msa_background(s):
                corr = out[0].get(i)
                seen[i] = {"dq": np.array(s.dq), "wave": np.array(waves[i]),
                           "expanded": np.array(expanded[i]),
                           "expanded_var": np.array(kwargs["expanded_var"][i]),
                           "offset": source_distance(s, signed=True),
                           "applied": None if corr is None or corr.factor is None
                           else np.array(corr.factor)}
        return out

    slit_factors.slit_corrections = spy
    try:
        with _common.painted_slits(scene, folder, instrument) as (slits, truth):
            result = MasterBackgroundMosPlusStep.call(slits, output_dir=str(folder))
            for i, (s_in, s_out) in enumerate(zip(slits.slits, result.slits, strict=True)):
                if i not in seen:
                    continue
                factor = truth.cutout(s_in.name, "factor", s_in)
                c = seen[i]
                c["data"] = np.array(s_in.data, float)
                c["subtracted"] = c["data"] - s_out.data
                c["ok"] = (np.isfinite(c["subtracted"]) & ((s_out.dq & 1) == 0))
                c["true"] = truth.cutout(s_in.name, "background", s_in) / factor
                c["source"] = truth.cutout(s_in.name, "source", s_in) / factor
            result.close()
    finally:
        slit_factors.slit_corrections = original
    return list(seen.values())


def residual_stats(c, fit):
    """Median and 95th percentile of |.| of the slit's noise-free residual had the step
    applied ``fit`` (None: its own)."""
    applied = np.ones(c["wave"].shape) if c["applied"] is None else np.where(
        np.isfinite(c["applied"]), c["applied"], 1.0)
    f = applied if fit is None else np.where(
        np.isfinite(fit.evaluate(c["wave"])[0]), fit.evaluate(c["wave"])[0], 1.0)
    ok = c["ok"] & np.isfinite(c["true"]) & (c["true"] > 0)
    residual = (c["subtracted"] * f / applied)[ok] / c["true"][ok] - 1
    return float(np.median(residual)), float(np.percentile(np.abs(residual), 95))


def draws(slits, noise, n_draws, rng, guard=1.0, original=False):
    """Residuals of the ways over noise draws (``original``: the scene's own draw, once)."""
    from jwst_mbkg_plus.algorithms.fit_weights import variance_by_group, variance_by_wavelength
    from jwst_mbkg_plus.algorithms.free_rows import nearest_cut, source_free_mask
    from jwst_mbkg_plus.algorithms.pooled_profile import pooled_shape, wings_with_error
    from jwst_mbkg_plus.algorithms.sky_factor import SKY_CLIP, dilution_corrected, fit_sky_factor
    from jwst_mbkg_plus.algorithms.source_wings import source_wings
    from jwst_mbkg_plus.mos.slit_factors import _modelled

    def fit(c, data, var, free, groups=None):
        v = (variance_by_wavelength(c["wave"], var, free) if groups is None
             else variance_by_group(c["wave"], var, free, groups))
        d, v = dilution_corrected(data, v, c["expanded"], c["expanded_var"])
        return fit_sky_factor(c["wave"], d, v, c["expanded"], free, apply=True, clip=SKY_CLIP)

    out = {"own": [], "common": [], "true": [], "modelled": []}
    if original:
        # The step's own residual on the scene's draw (what the validation scores).
        out["step"] = [(*residual_stats(c, None), 0) for c in slits]
    for _ in range(1 if original else n_draws):
        drawn = []
        for c in slits:
            # Noiseless calibrated data: what the step subtracted over its factor is the
            # modelled background; the truth's ratio gives the calibration.
            with np.errstate(divide="ignore", invalid="ignore"):
                applied = 1.0 if c["applied"] is None else np.where(
                    np.isfinite(c["applied"]), c["applied"], 1.0)
                calib = c["expanded"] * applied / c["subtracted"]
                clean = (c["true"] + c["source"]) * calib
                source = c["source"] * calib
            good = np.isfinite(clean) & np.isfinite(source)
            clean, source = np.where(good, clean, 0.0), np.where(good, source, 0.0)
            if original:
                # The scene's own noisy pixels, calibrated as ``clean`` is.
                data = np.where(good, np.nan_to_num(c["data"] * calib), 0.0)
            else:
                data = clean * (1 + noise * rng.standard_normal(clean.shape))
            valid = ((c["dq"] & 1) == 0) & good
            drawn.append((data, (noise * clean) ** 2, source, valid))
        wings = {k: source_wings(d, c["expanded"], c["offset"], v, return_profile=True)
                 for k, (c, (d, _, _, v)) in enumerate(zip(slits, drawn, strict=True))}
        shape = pooled_shape({k: w[-1] for k, w in wings.items()})
        for k, (c, (data, var, source, valid)) in enumerate(zip(slits, drawn, strict=True)):
            distance = np.abs(c["offset"])
            own, other = wings[k][0], wings[k][1]
            sub = data - c["expanded"] * own
            free, _ = source_free_mask(sub, c["expanded"], distance, valid & ~other, guard=guard)
            out["own"].append((*residual_stats(c, fit(c, sub, var, free)), int(free.sum())))
            start = guard
            common = own
            if shape is not None and shape.consistent.get(k):
                common, error = wings_with_error(c["offset"], wings[k][-1], shape, k)
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = var / c["expanded"] ** 2
                start, _ = nearest_cut(distance, error, rel, valid & ~other, guard=guard,
                                       floor=0.5)
            groups = np.floor(np.nan_to_num(distance, posinf=99.0) / 0.1)
            for name, light in (("common", c["expanded"] * common), ("true", source)):
                sub = data - light
                free, _ = source_free_mask(sub, c["expanded"], distance, valid & ~other,
                                           guard=start)
                out[name].append((*residual_stats(c, fit(c, sub, var, free, groups)),
                                  int(free.sum())))
            sub = data - c["expanded"] * common
            free, cut = source_free_mask(sub, c["expanded"], distance, valid & ~other,
                                         guard=guard)
            chosen = fit(c, sub, var, free, groups)
            if shape is not None and shape.consistent.get(k) and cut < guard + 0.1:
                modelled = _modelled(SimpleNamespace(data=data, var_poisson=var,
                                                     hasattr=lambda n: n == "var_poisson"),
                                     c["wave"], c["expanded"], c["expanded_var"],
                                     valid & ~other, c["offset"], shape, k)
                if modelled is not None and modelled.total < chosen.level_error:
                    chosen, free = modelled.fit, np.ones(modelled.n_pixels, dtype=bool)
            out["modelled"].append((*residual_stats(c, chosen), int(free.sum())))
    return out


def main(argv=None):
    """Run the draws and print a table."""
    parser = _common.script_parser(__doc__, seeds="1,2", work="/tmp/mbkg_source_rows",
                                   out="validation/results_source_rows_mc.json")
    parser.add_argument("--grating", default="PRISM")
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--profile", default="gaussian", choices=("gaussian", "moffat"))
    parser.add_argument("--original", action="store_true",
                        help="fit the ways once on each scene's own noise draw (the one "
                             "validate_calibration_scatter.py scores), beside the step's own "
                             "residual, instead of --draws new draws")
    args = parser.parse_args(argv)
    _common.quiet_loggers()

    from jwst_mbkg_plus.synthetic import Scene

    instrument = _common.offline_instrument()
    rng = np.random.default_rng(0)
    pooled = {"own": [], "common": [], "true": [], "modelled": []}
    if args.original:
        pooled["step"] = []
    for seed in _common.parse_seeds(args.seeds):
        scene = Scene(n_background=12, n_point=18, n_extended=0, shutters_per_slitlet=3,
                      detectors=("NRS1",), grating=args.grating, noise_fraction=args.noise,
                      calibration_error=(0.03, 0.02, 0.0, 0.0), point_profile=args.profile,
                      seed=seed)
        folder = Path(args.work) / f"{args.grating}_{args.noise}_{args.profile}_{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        res = draws(capture(scene, folder, instrument), args.noise, args.draws, rng,
                    original=args.original)
        for k, v in res.items():
            pooled[k] += v
        print(f"seed {seed}: " + ", ".join(
            f"{k} {100 * np.sqrt(np.mean(np.array(v)[:, 0] ** 2)):.3f}% / "
            f"{100 * np.mean(np.array(v)[:, 1]):.2f}%" for k, v in res.items())
            + " (rms of medians / mean p95)")
    summary = {}
    for name, values in pooled.items():
        m = np.array(values, dtype=float)
        summary[name] = {"rms_median": float(np.sqrt(np.mean(m[:, 0] ** 2))),
                         "mean_median": float(np.mean(m[:, 0])),
                         "mean_error": float(np.std(m[:, 0]) / np.sqrt(len(m))),
                         "mean_p95": float(np.mean(m[:, 1])),
                         "mean_pixels": float(np.mean(m[:, 2])), "n": len(m)}
        s = summary[name]
        print(f"{name:7s} rms {100 * s['rms_median']:.3f}% mean {100 * s['mean_median']:+.3f} "
              f"+/- {100 * s['mean_error']:.3f}% p95 {100 * s['mean_p95']:.2f}% "
              f"pixels {s['mean_pixels']:.0f} (n {s['n']})")
    draws_label = "original" if args.original else args.draws
    key = f"{args.grating}@{args.noise}@{args.profile}@{args.seeds}@{draws_label}"
    _common.merge_json(args.out, {key: summary})


if __name__ == "__main__":
    main()
