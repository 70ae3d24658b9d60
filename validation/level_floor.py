"""How well can any estimator know a source slitlet's sky level? Oracles beside the plus step.

Issue 24 asks, on its calibration-scatter scenes, for the source slitlets' rms
(over slitlets) of the median noise-free residual. A source slitlet's median
residual is, to first order, the error of its own sky factor's level at the
middle of the band: every other term (the master, the spatial model) is common
to all slitlets or averages out. That level is measured from the slitlet's own
pixels, so its noise has a floor that no estimator can go below without knowing
more than the data hold. On the same painted exposures as the plus step, this
script fits the factor (a straight line in wavelength, the shape of the injected
error) by weighted least squares with the true weights (Gaussian noise of
``noise_fraction`` x signal) and a perfect master, three ways:

``known``
    the source's light known and subtracted, every row fitted (the source's
    spectrum is not known in practice: a bound no estimator reaches);
``eliminated``
    the source's profile along the slit known exactly, its spectrum free in
    every column and fitted jointly with the factor (the step's own variable
    projection, `~jwst_mbkg_plus.algorithms.wing_model.ProfileNuisance`, with
    the true profile instead of a fitted one), every row fitted: the bound for
    an estimator that makes no assumption about the source's spectrum;
``eliminated_at_cut``
    the same on the rows the plus step fitted (``|offset| >=`` its cut, from
    the QA record).

For each it gives the level at the slitlets' median wavelength on this noise
draw, and its Cramer-Rao standard error (the inverse Fisher information, which
does not depend on the draw). The rms over slitlets of the draw's levels is the
figure the issue's line asks of the plus step; the rms of the standard errors is
its expectation.

Usage::

    python validation/level_floor.py --grating PRISM --noise 0.2 --seeds 1,2,3,4,5 \\
        [--out validation/results_level_floor.json]

Results are merged into ``--out`` under ``<grating>@<noise>@<seed>`` keys, with
the pooled figures of the seeds run under ``pooled@<grating>@<noise>``.
"""

import json
from pathlib import Path

import _common
import numpy as np

ORACLES = ("known", "eliminated", "eliminated_at_cut")


def line_level(wave, resid, weight, valid, nuisance=None):
    """
    Level at the median wavelength of a straight line fitted to ``resid``, and its error.

    Parameters
    ----------
    wave, resid, weight : ndarray, shape (ny, nx)
        Pixel wavelengths, relative residual data / sky - 1, weights 1 / sigma**2
        (relative).
    valid : ndarray of bool
        Pixels fitted.
    nuisance : ndarray or None
        The source's relative profile per pixel (source / sky): one free
        amplitude per column along it, eliminated before the line is fitted.

    Returns
    -------
    level, error : float
    """
    from jwst_mbkg_plus.algorithms.wing_model import ProfileNuisance

    # Whitened weighted least squares on the valid pixels; a source's amplitude per
    # column is projected out with the step's own variable projection.
    sigma = 1.0 / np.sqrt(weight[valid])
    design = np.stack([np.ones(sigma.size), wave[valid] - np.median(wave[valid])], axis=1)
    aw, bw = design / sigma[:, None], resid[valid] / sigma
    if nuisance is not None:
        columns = np.broadcast_to(np.arange(wave.shape[-1]), wave.shape)[valid]
        aw, bw = ProfileNuisance(nuisance[valid], columns).project(aw, bw, sigma)
    params, *_ = np.linalg.lstsq(aw, bw, rcond=None)
    return float(params[0]), float(np.sqrt(np.linalg.inv(aw.T @ aw)[0, 0]))


def slit_floor(slit_in, slit_out, truth, noise_fraction, cut):
    """Plus's median residual and the oracles' levels and errors on one source slit."""
    from jwst_mbkg_plus.mos.msa_position import source_distance

    sky = truth.cutout(slit_in.name, "background", slit_in) / truth.cutout(
        slit_in.name, "factor", slit_in)
    source = np.nan_to_num(truth.cutout(slit_in.name, "source", slit_in) / truth.cutout(
        slit_in.name, "factor", slit_in))
    data = np.asarray(slit_in.data, dtype=float)
    ok = np.isfinite(data) & np.isfinite(slit_out.data) & ((slit_out.dq & 1) == 0)
    ok &= np.isfinite(sky) & (sky > 0)
    plus = float(np.median((data - slit_out.data)[ok] / sky[ok] - 1))
    wave = np.asarray(slit_in.wavelength, dtype=float)
    weight = np.where(ok, 1.0 / (noise_fraction * (sky + source) / np.where(ok, sky, 1)) ** 2,
                      0.0)
    profile = np.where(ok, source / np.where(ok, sky, 1), 0.0)
    distance = np.abs(source_distance(slit_in))
    out = {"plus": plus}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["known"] = line_level(wave, (data - source) / sky - 1, weight, ok)
        out["eliminated"] = line_level(wave, data / sky - 1, weight, ok, profile)
        near = ok & (distance >= cut)
        out["eliminated_at_cut"] = line_level(wave, data / sky - 1, weight, near, profile)
    return out


def summarise(rows):
    """rms over slitlets of plus's medians, of each oracle's levels and of their errors."""
    s = {"n": len(rows), "plus": float(np.sqrt(np.mean([r["plus"] ** 2 for r in rows])))}
    for name in ORACLES:
        s[name] = float(np.sqrt(np.mean([r[name][0] ** 2 for r in rows])))
        s[f"{name}_expected"] = float(np.sqrt(np.mean([r[name][1] ** 2 for r in rows])))
    return s


def run_seed(scene, folder, instrument):
    """Plus on the painted slits, then the oracles on the same draw."""
    import asdf

    from jwst_mbkg_plus import MasterBackgroundMosPlusStep

    rows = {}
    with _common.painted_slits(scene, folder, instrument) as (slits, truth):
        out_dir = folder / "plus"
        out_dir.mkdir(parents=True, exist_ok=True)
        result = MasterBackgroundMosPlusStep.call(slits, output_dir=str(out_dir), save_qa=True)
        with asdf.open(next(out_dir.glob("*_mbkgqa.asdf"))) as af:
            scaling = {k.split(":")[0]: dict(v) for k, v in
                       (af["master_background_qa"].get("applied_scaling") or {}).items()}
        for slit_in, slit_out in zip(slits.slits, result.slits, strict=True):
            if truth.slit(slit_in.name)["kind"] == "background":
                continue
            rec = scaling.get(str(slit_in.name), {})
            cut = float((rec.get("source_wings") or {}).get("cut",
                                                             rec.get("free_from_distance", 0.0)))
            rows[str(slit_in.name)] = {**slit_floor(slit_in, slit_out, truth,
                                                    scene.noise_fraction, cut), "cut": cut}
        result.close()
    return rows


def main(argv=None):
    """Run the oracles beside the plus step and print a table."""
    parser = _common.script_parser(__doc__, seeds="1,2,3,4,5", work="/tmp/mbkg_level_floor",
                                   out="validation/results_level_floor.json", resume=True)
    parser.add_argument("--grating", default="PRISM")
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--level", type=float, default=0.03)
    parser.add_argument("--tilt", type=float, default=0.02)
    args = parser.parse_args(argv)
    _common.quiet_loggers()

    from jwst_mbkg_plus.synthetic import Scene

    instrument = _common.offline_instrument()
    out = Path(args.out)
    done = _common.done_keys(out, args.resume)
    for seed in _common.parse_seeds(args.seeds):
        key = f"{args.grating}@{args.noise}@{seed}"
        if key in done:
            continue
        scene = Scene(n_background=12, n_point=18, n_extended=0, shutters_per_slitlet=3,
                      detectors=("NRS1",), grating=args.grating, noise_fraction=args.noise,
                      calibration_error=(args.level, args.tilt, 0.0, 0.0), seed=seed)
        rows = run_seed(scene, Path(args.work) / key.replace("@", "_"), instrument)
        s = summarise(list(rows.values()))
        print(f"{key:20s} plus {100 * s['plus']:.3f}% | " + " | ".join(
            f"{name} {100 * s[name]:.3f}% (expected {100 * s[name + '_expected']:.3f}%)"
            for name in ORACLES), flush=True)
        _common.merge_json(out, {key: {"summary": s, "slits": rows}})
    results = json.loads(out.read_text())
    prefix = f"{args.grating}@{args.noise}@"
    rows = [r for k, v in results.items() if k.startswith(prefix) for r in v["slits"].values()]
    if rows:
        s = summarise(rows)
        seeds = sorted(int(k[len(prefix):]) for k in results if k.startswith(prefix))
        s["seeds"] = seeds
        print(f"pooled over seeds {seeds}: plus {100 * s['plus']:.3f}% | " + " | ".join(
            f"{name} {100 * s[name]:.3f}% (expected {100 * s[name + '_expected']:.3f}%)"
            for name in ORACLES))
        _common.merge_json(out, {f"pooled@{args.grating}@{args.noise}": s})


if __name__ == "__main__":
    main()
