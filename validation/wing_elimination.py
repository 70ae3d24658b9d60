"""The wing model's two eliminations of a point source's spectrum, on each other's scenes.

`jwst_mbkg_plus.algorithms.wing_model` eliminates the source's amplitude per column
either jointly with the sky factor (``profile_sky_factor``: the MOS step) or from the
profile's core lines (``core_projection``: the spec3 step). Both, with the same
plausible shape errors and the same choice of rows by total error:

``spec3``
    the winged fixed slit of ``validation/spec3_wing_rows.py`` (Moffat beta 2.5, +3 %
    drift), ``--draws`` fresh draws at 5 % and 20 % noise: the spec3 step's factor
    (core lines) against the joint fit with line cuts 0-6 from the centre
    (``coverage`` 1, as spec3), the profile refitted to the lines' mean residual;
``mos``
    the MOS test slitlets of ``tests/algorithms/test_wing_model.py`` (3 shutters, 18
    point sources per exposure, 2 exposures, 20 % noise; Gaussian and Moffat 2.5
    sources; the exposure's common shape): the masked fit, the joint fit (the step's)
    and the core lines (rows within a cut of 0.25-1.0 measure the amplitude,
    ``coverage`` 2, as MOS).

Command (about 3 minutes)::

    python validation/wing_elimination.py --out validation/results_wing_elimination.json
"""

import json
import logging
from pathlib import Path

import _common
import numpy as np
from spec3_wing_rows import DRIFT, _rms, _scene


def part_spec3(draws):

    from jwst_mbkg_plus.algorithms.wing_model import profile_sky_factor
    from jwst_mbkg_plus.algorithms.wing_profile import fit_profile, winged_or_gaussian
    from jwst_mbkg_plus.spec3.exposure_scale import scale_one

    out = {}
    for noise in (0.05, 0.2):
        rng = np.random.default_rng(4242 + int(100 * noise))
        core, joint, s_core, s_joint = [], [], [], []
        for _ in range(draws):
            data, var, wl, master = _scene(rng, noise)
            sc = scale_one(data, var, None, wl, master, wings=True)
            if not sc.wings.used:
                continue
            p = sc.wings.params
            s = np.arange(data.shape[0], dtype=float)
            prof = (data - sc.factor.level * master).mean(axis=1)
            sig = np.sqrt(var.sum(axis=1)) / data.shape[1]
            q0 = 1.0 / p["beta"] if p["beta"] < 1e6 else 0.0
            theta, cov, _, _ = fit_profile(s, prof, sig, np.array(
                [0.0, p["amplitude"], p["centre"], p["sigma"], q0]))
            shape, shape_cov = winged_or_gaussian(0.0, theta[3], theta[4], cov[2:, 2:])
            offset = (s - theta[2])[:, None] * np.ones((1, data.shape[1]))
            fit = profile_sky_factor(wl, data, var, master, np.ones(data.shape, bool), offset,
                                     *shape, shape_cov, cuts=(0.0, 1.0, 2.0, 3.0, 4.0, 6.0),
                                     coverage=1.0)
            core.append(sc.factor.level / DRIFT - 1)
            s_core.append(sc.factor.level_error / DRIFT)
            joint.append(fit.fit.level / DRIFT - 1)
            s_joint.append(np.hypot(fit.fit.level_error, fit.leak) / DRIFT)
        res = {"n": len(core)}
        for key, e, st in (("core", core, s_core), ("joint", joint, s_joint)):
            res[key] = {"rms": _rms(e), "mean": float(np.mean(e)),
                        "pull_rms": _rms(np.array(e) / np.array(st))}
        out[f"spec3 noise {noise:g}"] = res
        print(f"spec3 noise {noise:g} ({len(core)} draws): core lines rms "
              f"{100 * res['core']['rms']:.3f}% pulls {res['core']['pull_rms']:.2f} | joint rms "
              f"{100 * res['joint']['rms']:.3f}% pulls {res['joint']['pull_rms']:.2f}",
              flush=True)
    return out


def _mos_exposure(rng, n_slits, beta, n_cols=300, noise=0.2):
    offset = np.linspace(-2.2, 2.2, 20)[:, None] * np.ones((1, n_cols))
    alpha = 0.335 / np.sqrt(2 ** (1 / beta) - 1)
    wave = np.linspace(1.0, 5.0, n_cols)[None, :] * np.ones((offset.shape[0], 1))
    slits = []
    for _ in range(n_slits):
        level = 1 + 0.03 * rng.standard_normal()
        spectrum = 3.0 * (np.linspace(0.6, 1.4, n_cols) + 2.0 * np.exp(
            -0.5 * ((np.arange(n_cols) - 140) / 2.0) ** 2))[None, :]
        clean = level + spectrum * (1 + (offset / alpha) ** 2) ** -beta
        data = clean * (1 + noise * rng.standard_normal(clean.shape))
        slits.append((wave, data, (noise * clean) ** 2, offset, level))
    return slits


def part_mos():
    from jwst_mbkg_plus.algorithms.free_rows import source_free_mask
    from jwst_mbkg_plus.algorithms.pooled_profile import pooled_shape, wings_with_error
    from jwst_mbkg_plus.algorithms.sky_factor import SKY_CLIP, fit_sky_factor
    from jwst_mbkg_plus.algorithms.source_wings import PROFILE_BIN, source_wings
    from jwst_mbkg_plus.algorithms.wing_model import (
        choose_rows,
        core_noise,
        core_projection,
        core_response,
        profile_sky_factor,
    )
    from jwst_mbkg_plus.algorithms.wing_profile import (
        plausible_shapes,
        profile_shape,
        profile_width_floor,
        winged_or_gaussian,
    )

    out = {}
    for beta in (1e6, 2.5):
        rng = np.random.default_rng(11)
        res = {"masked": [], "joint": [], "core": []}
        for _ in range(2):
            slits = _mos_exposure(rng, 18, beta)
            model = np.ones(slits[0][1].shape)
            wings = {k: source_wings(sl[1], model, sl[3], return_profile=True)
                     for k, sl in enumerate(slits)}
            shape = pooled_shape({k: w[-1] for k, w in wings.items()})
            for k, (wave, data, var, offset, level) in enumerate(slits):
                other = wings[k][1]
                common, _ = wings_with_error(offset, wings[k][-1], shape, k)
                free, _ = source_free_mask(data - common, model, np.abs(offset), ~other,
                                           guard=1.0)
                old = fit_sky_factor(wave, data - common, var, model, free, model="constant",
                                     apply=True, clip=SKY_CLIP)
                res["masked"].append(old.level - level)
                _, _, centre = shape.slit_params[k]
                theta, cov = winged_or_gaussian(centre, shape.width, shape.q,
                                                np.asarray(shape.slit_cov[k])[1:, 1:])
                floor = profile_width_floor(shape.width, PROFILE_BIN)
                new = profile_sky_factor(wave, data, var, model, ~other, offset, *theta, cov,
                                         width_floor=floor)
                res["joint"].append(new.fit.level - level)
                if cov[1, 1] < floor**2:
                    scale = floor / np.sqrt(cov[1, 1])
                    cov[1, :] *= scale
                    cov[:, 1] *= scale
                    cov[1, 1] = floor**2
                rows = np.abs(offset[:, 0])
                P = profile_shape(offset, *theta)
                dPs = [profile_shape(offset, *t) - P for t in plausible_shapes(theta, cov)]
                W = np.where(~other, 1.0 / var, 0.0)
                m = np.where(~other, model, 0.0)

                def evaluate(c, P=P, dPs=dPs, W=W, m=m, rows=rows, data=data, other=other):
                    core, lines = np.flatnonzero(rows < c), np.flatnonzero(rows >= c)
                    noise, _, mp, info = core_noise(core, lines, P, m, W)
                    if mp is None:
                        return None
                    alpha = core_projection(P[core], np.where(~other, data, 0.0)[core],
                                            W[core])
                    amp = alpha - core_projection(P[core], m[core], W[core])
                    leak = np.sqrt(sum(core_response(core, lines, P, d, W, mp, info, amp) ** 2
                                       for d in dPs))
                    lev = np.sum(W[lines] * mp * (data[lines] - P[lines] * alpha[None, :])) / info
                    return noise, leak, lev

                best = choose_rows((0.25, 0.5, 0.75, 1.0), evaluate, coverage=2.0)
                res["core"].append(best[2][2] - level)
        key = f"mos beta {beta:g}"
        out[key] = {k: {"rms": _rms(v), "mean": float(np.mean(v))} for k, v in res.items()}
        print(f"{key} ({len(res['joint'])} slitlets): " + " | ".join(
            f"{k} rms {100 * v['rms']:.3f}% mean {100 * v['mean']:+.3f}%"
            for k, v in out[key].items()), flush=True)
    return out


def main(argv=None):
    parser = _common.script_parser(__doc__, out=None)
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    out = {"draws": args.draws, **part_spec3(args.draws), **part_mos()}
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
