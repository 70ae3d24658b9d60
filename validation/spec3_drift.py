"""spec3 scenes whose sky drifts between the background and the science exposures (issue 26).

jwst's stock ``master_background`` and the plus step (defaults: ``scale_master='auto'``)
run in one process on the same synthetic inputs
(`jwst_mbkg_plus.synthetic.spec3_inputs.make_spec3_inputs`): 2 science exposures, 2
dedicated background exposures (``nodded=False``, spectrum noise 0.3 % per point), the
science exposures' sky ``1 + drift + drift_red * t`` times the background exposures'
(``t`` from 0 at the blue end to 1 at the red end).

Figures, per run: the median over the science exposures' background pixels (no source
flux: ``Spec3Inputs.background_mask``) of (subtracted - true background) / true background,
the subtracted background being input minus output; the same in each fifth of the band
(by pixel wavelength); whether the factor was applied, per exposure.

Parts (``--parts``, comma-separated):

``drift``
    every mode, drift +3 %, +5 % (level) and 0 -> +6 % (red), 5 % and 20 % noise per pixel.
``nodrift``
    every mode, no drift, 5 % and 20 % noise: the figures, and over ``--null-seeds`` seeds
    how often the factor is applied. The application count runs the step's driver
    (`jwst_mbkg_plus.spec3.run.run_master_background`, what the step calls, on the same
    arrays) without the stock step.
``extended``
    NIRSpec IFU with an extended source filling 80 % of the field (no point source), no
    drift, +5 % and 0 -> +6 % red: the applied factor's error against the true drift.
``wings``
    NIRSpec FS point source with Moffat wings (beta 2.5) over the whole slit: the extracted
    1-D source flux (sum over the rows within 6 pixels, 2 FWHM, of the source, every wavelength)
    after each step, against subtracting the true background.
``nodded``
    every mode, nodded (the background members are the nods' own BACKGROUND columns):
    both nods' sky 3 % above the reference (no difference between nods: the factor
    should stay off), and nods differing by 4 % (evidence: it should be applied).

Command (all parts, 5 seeds, 100 null seeds; about 40 minutes on a shared core)::

    python validation/spec3_drift.py --out validation/results_spec3_drift.json
"""

import time

import _common
import numpy as np

MODES = ("NRS_FIXEDSLIT", "NRS_IFU", "MIR_LRS-FIXEDSLIT", "MIR_MRS")
DRIFTS = {"level+3%": (0.03, 0.0), "level+5%": (0.05, 0.0), "red0-6%": (0.0, 0.06)}
NOISES = (0.05, 0.2)


def _arrays(inputs, k, model):
    """(subtracted-input arrays, outputs, truths, masks, wavelengths) of science exposure k."""
    from stdatamodels.jwst import datamodels

    from jwst_mbkg_plus.spec3.subtract import science_wavelengths

    before = inputs.science[k]
    tb, mask = inputs.true_background[k], inputs.background_mask[k]
    tbs, masks = (tb, mask) if isinstance(tb, list) else ([tb], [mask])
    split = (lambda m: list(m.slits)) if isinstance(before, datamodels.MultiSlitModel) \
        else (lambda m: [m])
    return zip(split(before), split(model), tbs, masks, science_wavelengths(before),
               strict=True)


def _fifth_medians(rel, tt):
    """Median of ``rel`` in each fifth of the band (``tt`` from 0 at its blue end to 1)."""
    return [float(np.nanmedian(rel[(tt >= i / 5) & (tt < (i + 1) / 5 if i < 4 else tt <= 2)]))
            for i in range(5)]


def residuals(inputs, result):
    """Median relative residual overall and per fifth of the band, over background pixels."""
    from jwst_mbkg_plus.synthetic.spec3_modes import MODE_SETUP

    w0, w1 = MODE_SETUP[inputs.mode]["wave"]
    rel, tt = [], []
    for k, out in enumerate(result):
        for a_in, a_out, t, m, wl in _arrays(inputs, k, out):
            r = (np.asarray(a_in.data, float) - a_out.data - t) / t
            rel.append(r[m])
            tt.append(((wl - w0) / (w1 - w0))[m])
    rel, tt = np.concatenate(rel), np.concatenate(tt)
    return {"median": float(np.nanmedian(rel)), "fifths": _fifth_medians(rel, tt)}


def _plus(container, **kw):
    from jwst_mbkg_plus import MasterBackgroundPlusStep

    return MasterBackgroundPlusStep.call(container, **kw)


def _scales(inputs):
    """The plus step's per-exposure factors, from its driver on copies of the inputs."""
    from jwst_mbkg_plus.spec3 import run

    out = run.run_master_background([m.copy() for m in inputs.science], inputs.backgrounds)
    return [{"applied": s.factor.applied, "model": s.factor.model, "level": s.factor.level,
             "level_error": s.factor.level_error, "status": s.factor.status,
             "sky_lines": s.region.n_sky_lines if s.region is not None else 0}
            for s in out.scales]


def run_scene(mode, seed, *, stock=True, **kw):
    """Both steps on one scene; residuals and the plus step's factors."""
    from jwst.master_background import MasterBackgroundStep

    from jwst_mbkg_plus.synthetic.spec3_inputs import make_container, make_spec3_inputs

    inputs = make_spec3_inputs(mode, seed=seed, **kw)
    row = {"plus": residuals(inputs, _plus(make_container(inputs))),
           "scales": _scales(inputs)}
    if stock:
        row["stock"] = residuals(inputs, MasterBackgroundStep.call(make_container(inputs)))
    return row, inputs


def _summary(rows):
    out = {}
    for step in ("stock", "plus"):
        if step not in rows[0]:
            continue
        med = np.array([r[step]["median"] for r in rows])
        fif = np.array([r[step]["fifths"] for r in rows])
        out[step] = {"median_per_seed": med.tolist(), "median_mean": float(med.mean()),
                     "median_max_abs": float(np.abs(med).max()),
                     "fifths_per_seed": fif.tolist(),
                     "fifths_mean": fif.mean(axis=0).tolist(),
                     "fifths_max_abs": float(np.abs(fif).max()),
                     "fifths_mean_max_abs": float(np.abs(fif.mean(axis=0)).max())}
    out["applied"] = int(sum(s["applied"] for r in rows for s in r["scales"]))
    out["exposures"] = int(sum(len(r["scales"]) for r in rows))
    out["models"] = sorted({s["model"] for r in rows for s in r["scales"] if s["applied"]})
    return out


def _print(key, s):
    p = s["plus"]
    line = (f"{key:42s} plus {100 * p['median_mean']:+.3f}% (max|.| "
            f"{100 * p['median_max_abs']:.3f}%, fifths max|.| {100 * p['fifths_max_abs']:.3f}%, "
            f"seed-mean fifths {100 * p['fifths_mean_max_abs']:.3f}%) applied "
            f"{s['applied']}/{s['exposures']} {','.join(s['models'])}")
    if "stock" in s:
        st = s["stock"]
        line += (f" | stock {100 * st['median_mean']:+.3f}% (fifths max|.| "
                 f"{100 * st['fifths_max_abs']:.3f}%)")
    print(line, flush=True)


def part_drift(seeds, drifts=DRIFTS, noises=NOISES, **extra):
    out = {}
    for mode in MODES:
        for name, (level, red) in drifts.items():
            for noise in noises:
                rows = [run_scene(mode, s, n_background=2, nodded=False, pixel_noise=noise,
                                  drift=level, drift_red=red, **extra)[0] for s in seeds]
                key = f"{mode} {name} noise {noise:g}"
                out[key] = _summary(rows)
                _print(key, out[key])
    return out


def part_null(null_seeds):
    """How often the factor is applied with no drift (the step's driver only)."""
    from jwst_mbkg_plus.synthetic.spec3_inputs import make_spec3_inputs

    out = {}
    # Speed only: no schema validation on every array assignment (the factor does not
    # depend on it); restored afterwards.
    with _common.assignment_validation_off():
        for mode in MODES:
            for noise in NOISES:
                applied = 0
                for s in null_seeds:
                    inputs = make_spec3_inputs(mode, seed=s, n_background=2, nodded=False,
                                               pixel_noise=noise)
                    applied += any(x["applied"] for x in _scales(inputs))
                key = f"{mode} noise {noise:g}"
                out[key] = {"seeds_with_factor_applied": applied, "seeds": len(null_seeds)}
                print(f"no drift {key:30s} factor applied in {applied} of {len(null_seeds)} "
                      "seeds", flush=True)
    return out


def part_fifths(mc_seeds, mode="NRS_FIXEDSLIT", noise=0.2):
    """The factor's own error per fifth of the band over many seeds (the step's driver).

    The figure per seed is the median over both science exposures' background pixels of
    ``f_fitted / f_true - 1`` in each fifth of the band (the master's noise left out):
    its mean over seeds is the bias, its spread the factor's noise.
    """
    from jwst_mbkg_plus.spec3 import run
    from jwst_mbkg_plus.spec3.subtract import science_wavelengths
    from jwst_mbkg_plus.synthetic.spec3_inputs import make_spec3_inputs
    from jwst_mbkg_plus.synthetic.spec3_modes import MODE_SETUP
    from jwst_mbkg_plus.synthetic.spec3_scenes import drift_factor

    w0, w1 = MODE_SETUP[mode]["wave"]
    out = {}
    with _common.assignment_validation_off():
        for name, (level, red) in DRIFTS.items():
            fifths, models, level_err = [], [], []
            for s in mc_seeds:
                inputs = make_spec3_inputs(mode, seed=s, n_background=2, nodded=False,
                                           pixel_noise=noise, drift=level, drift_red=red)
                scales = run.run_master_background([m.copy() for m in inputs.science],
                                                   inputs.backgrounds).scales
                rel, tt = [], []
                for k, sc in enumerate(scales):
                    wl = science_wavelengths(inputs.science[k])[0]
                    mask = inputs.background_mask[k]
                    mask = mask[0] if isinstance(mask, list) else mask
                    t = (wl - w0) / (w1 - w0)
                    f, _ = sc.factor.evaluate(wl)
                    rel.append((f / drift_factor(t, level, red) - 1.0)[mask])
                    tt.append(t[mask])
                    models.append(sc.factor.model if sc.factor.applied else "not applied")
                    level_err.append(sc.factor.level_error)
                fifths.append(_fifth_medians(np.concatenate(rel), np.concatenate(tt)))
            f = np.array(fifths)
            key = f"{mode} {name} noise {noise:g}"
            out[key] = {"seeds": len(f), "fifths_mean": f.mean(axis=0).tolist(),
                        "fifths_std": f.std(axis=0, ddof=1).tolist(),
                        "fifths_beyond_0.5%": (np.abs(f) > 0.005).mean(axis=0).tolist(),
                        "level_error_mean": float(np.mean(level_err)),
                        "models": {m: models.count(m) for m in sorted(set(models))}}
            print(f"factor error per fifth, {key} ({len(f)} seeds): mean "
                  f"{np.round(100 * f.mean(axis=0), 3).tolist()} %, std "
                  f"{np.round(100 * f.std(axis=0, ddof=1), 3).tolist()} %, beyond 0.5 % "
                  f"{np.round((np.abs(f) > 0.005).mean(axis=0), 3).tolist()}; mean level error "
                  f"{100 * np.mean(level_err):.3f} %; {out[key]['models']}", flush=True)
    return out


def part_extended(seeds):
    out = {}
    for name, (level, red) in {"no drift": (0.0, 0.0), **DRIFTS}.items():
        for noise in NOISES:
            rows, errors = [], []
            for s in seeds:
                row, inputs = run_scene("NRS_IFU", s, n_background=2, nodded=False,
                                        pixel_noise=noise, drift=level, drift_red=red,
                                        point_source=False, extended_fraction=0.8)
                rows.append(row)
                true_mean = 1.0 + level + 0.5 * red
                errors += [(x["level"] / true_mean - 1.0) if x["applied"] else
                           (1.0 / true_mean - 1.0) for x in row["scales"]]
            key = f"NRS_IFU extended 80% {name} noise {noise:g}"
            out[key] = {**_summary(rows), "factor_error_max_abs": float(np.abs(errors).max()),
                        "factor_error_mean": float(np.mean(errors))}
            _print(key, out[key])
            print(f"    mean factor error {100 * np.mean(errors):+.3f}% "
                  f"max|.| {100 * np.abs(errors).max():.3f}%", flush=True)
    return out


def _aperture(inputs, k, half=6):
    """Rows within ``half`` pixels of exposure k's source (the 1-D extraction aperture)."""
    ny = inputs.science[k].slits[0].data.shape[0]
    centre = ny / 2 + (-7.0 if k % 2 == 0 else 7.0)
    return np.abs(np.arange(ny) - centre) <= half


def _source_flux(inputs, result, half=6):
    """Extracted 1-D source flux of every exposure, and that with the true background."""
    step, truth = [], []
    for k, out in enumerate(result):
        slit_in, slit_out = inputs.science[k].slits[0], out.slits[0]
        rows = _aperture(inputs, k, half)
        d_in = np.asarray(slit_in.data, float)[rows]
        step.append(np.nansum(np.asarray(slit_out.data, float)[rows]))
        truth.append(np.nansum(d_in - inputs.true_background[k][0][rows]))
    return np.array(step), np.array(truth)


def _flux_sigma(inputs, result, scales, half=6):
    """Propagated error of each exposure's extracted flux from its factor's covariance.

    The factor's error is common to every pixel of the aperture at a wavelength, so
    the flux's variance is ``g^T cov g`` with ``g`` the sum over the aperture of the
    unscaled master times the factor's B-spline basis (0 when no factor is applied).
    """
    sig = []
    for k, (out, scale) in enumerate(zip(result, scales, strict=True)):
        f = scale.factor
        if not f.applied:
            sig.append(0.0)
            continue
        rows = _aperture(inputs, k, half)
        slit_in, slit_out = inputs.science[k].slits[0], out.slits[0]
        wl = np.asarray(slit_in.wavelength, float)[rows]
        sub = (np.asarray(slit_in.data, float) - np.asarray(slit_out.data, float))[rows]
        ok = np.isfinite(wl) & np.isfinite(sub)
        fac, _ = f.evaluate(wl[ok])
        basis = f._basis(wl[ok])
        g = (sub[ok] / fac) @ basis
        sig.append(float(np.sqrt(max(g @ f.cov @ g, 0.0))))
    return np.array(sig)


def part_wings(seeds):
    """Extracted source flux with wings: per exposure, combined, against the propagated error."""
    from jwst.master_background import MasterBackgroundStep

    from jwst_mbkg_plus.spec3 import run
    from jwst_mbkg_plus.synthetic.spec3_inputs import make_container, make_spec3_inputs

    out = {}
    for name, (level, red) in {"no drift": (0.0, 0.0), **DRIFTS}.items():
        for noise in NOISES:
            res = {"stock": [], "plus": []}
            comb = {"stock": [], "plus": []}
            pulls, sigmas, comb_pulls, comb_sigmas = [], [], [], []
            for s in seeds:
                inputs = make_spec3_inputs("NRS_FIXEDSLIT", seed=s, n_background=2,
                                           nodded=False, pixel_noise=noise, drift=level,
                                           drift_red=red, source_wings=True)
                for step, result in (
                        ("stock", MasterBackgroundStep.call(make_container(inputs))),
                        ("plus", _plus(make_container(inputs)))):
                    got, true = _source_flux(inputs, result)
                    res[step] += (got / true - 1.0).tolist()
                    comb[step].append(float(got.sum() / true.sum() - 1.0))
                    if step == "plus":
                        scales = run.run_master_background(
                            [m.copy() for m in inputs.science], inputs.backgrounds).scales
                        sig = _flux_sigma(inputs, result, scales)
                        sigmas += (sig / true).tolist()
                        pulls += [float((g - t) / e) if e > 0 else float("nan")
                                  for g, t, e in zip(got, true, sig, strict=True)]
                        cs = float(np.sqrt(np.sum(sig**2)))
                        comb_sigmas.append(cs / true.sum())
                        comb_pulls.append(float((got.sum() - true.sum()) / cs) if cs > 0
                                          else float("nan"))
            key = f"NRS_FIXEDSLIT wings {name} noise {noise:g}"
            out[key] = {step: {"flux_error_per_exposure": v,
                               "mean": float(np.mean(v)), "max_abs": float(np.abs(v).max()),
                               "combined_per_seed": comb[step],
                               "combined_mean": float(np.mean(comb[step])),
                               "combined_max_abs": float(np.abs(comb[step]).max())}
                        for step, v in res.items()}
            p = out[key]["plus"]
            p["propagated_sigma_per_exposure"] = sigmas
            p["pull_per_exposure"] = pulls
            p["combined_propagated_sigma"] = comb_sigmas
            p["combined_pull"] = comb_pulls
            finite = np.isfinite(pulls)
            p["pull_rms"] = (float(np.sqrt(np.mean(np.square(np.asarray(pulls)[finite]))))
                             if finite.any() else None)
            p["propagated_sigma_mean"] = float(np.mean(sigmas))
            st = out[key]["stock"]
            print(f"{key:42s} flux vs true background, per exposure: plus "
                  f"{100 * p['mean']:+.3f}% (max|.| {100 * p['max_abs']:.3f}%, propagated "
                  f"sigma {100 * p['propagated_sigma_mean']:.3f}%, pull rms "
                  f"{p['pull_rms'] if p['pull_rms'] is None else round(p['pull_rms'], 2)}) "
                  f"| stock {100 * st['mean']:+.3f}% (max|.| {100 * st['max_abs']:.3f}%); "
                  f"combined: plus {100 * p['combined_mean']:+.3f}% (max|.| "
                  f"{100 * p['combined_max_abs']:.3f}%) | stock "
                  f"{100 * st['combined_mean']:+.3f}%", flush=True)
    return out


def part_nodded(seeds):
    out = {}
    scenes = {"both nods +3%": (0.03, 0.0), "nods differ by 4%": ([0.0, 0.04], 0.0)}
    for mode in MODES:
        for name, (level, red) in scenes.items():
            for noise in NOISES:
                rows = [run_scene(mode, s, n_background=2, nodded=True, pixel_noise=noise,
                                  drift=level, drift_red=red)[0] for s in seeds]
                key = f"{mode} nodded, {name}, noise {noise:g}"
                out[key] = _summary(rows)
                _print(key, out[key])
    return out


def main(argv=None):
    """Run the parts and write the JSON file."""
    parser = _common.script_parser(__doc__, seeds="1,2,3,4,5", out=None)
    parser.add_argument("--parts", default="drift,nodrift,fifths,extended,wings,nodded")
    parser.add_argument("--null-seeds", type=int, default=100)
    parser.add_argument("--mc-seeds", type=int, default=200)
    args = parser.parse_args(argv)
    _common.offline_quiet()
    seeds = _common.parse_seeds(args.seeds)
    out = {"seeds": seeds}
    t0 = time.time()
    parts = args.parts.split(",")
    if "drift" in parts:
        out["drift"] = part_drift(seeds)
    if "nodrift" in parts:
        out["nodrift"] = part_drift(seeds, drifts={"no drift": (0.0, 0.0)})
        out["nodrift_null"] = part_null(range(1000, 1000 + args.null_seeds))
    if "fifths" in parts:
        out["fifths"] = part_fifths(range(100, 100 + args.mc_seeds))
    if "extended" in parts:
        out["extended"] = part_extended(seeds)
    if "wings" in parts:
        out["wings"] = part_wings(seeds)
    if "nodded" in parts:
        out["nodded"] = part_nodded(seeds)
    out["seconds"] = time.time() - t0
    if args.out:
        _common.merge_json(args.out, out, newline=True)


if __name__ == "__main__":
    raise SystemExit(main())
