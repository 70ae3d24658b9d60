"""Two eliminations of a point source's spectrum from a sky factor, on each other's scenes.

`jwst_mbkg_plus.algorithms.wing_model` eliminates the source's amplitude per column
jointly with the sky factor (``profile_sky_factor``, ``joint_sky_factor``: the MOS
step, and the spec3 step since session 13). Until then spec3 measured it on the
profile's core lines (its brightest ``k``) and fitted the factor on the others; that
two-stage elimination is kept here (``_core_projection``, ``_core_noise``,
``_core_response``) as the reference. Both, with the same plausible shape errors and the
same choice of rows by total error:

``spec3``
    the winged fixed slit of ``validation/spec3_wing_rows.py`` (Moffat beta 2.5, +3 %
    drift), ``--draws`` fresh draws at 5 % and 20 % noise, the profile the spec3 step's
    (refitted to the lines' mean residual): the core lines (split ``k`` of least total
    error, leak at most the noise, the spectrum's noise and the leak added to the level's
    variance) against the joint fit with line cuts 0-6 from the centre (``coverage`` 1, as
    spec3), and the step's own factor;
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


def _core_projection(P, m, W):
    """Per-column amplitude of ``m`` on ``P`` in weights ``W`` (sums over the lines, axis 0)."""
    spp = np.sum(W * P * P, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spp > 0, np.sum(W * P * m, axis=0) / spp, 0.0)


def _core_noise(core, lines, P, m, W):
    """
    Noise of the factor's level with the amplitude from ``core`` and the sky from ``lines``.

    Parameters
    ----------
    core, lines : ndarray of int
        Lines (axis 0) of the amplitude and of the sky.
    P, m, W : ndarray
        Profile, modelled background (0 where unused) and weights, lines x columns.

    Returns
    -------
    noise : float
        Standard error of the level, the amplitude's noise included (inf when
        a column of the sky has no core to measure its amplitude).
    spectrum_var : float
        The amplitude's share of its variance.
    mp : ndarray or None
        The sky lines' projected background (for `_core_response`).
    info : float
        The sky lines' information on the level.
    """
    Wc, Pc = W[core], P[core]
    Wl, Pl, ml = W[lines], P[lines], m[lines]
    spp = np.sum(Wc * Pc * Pc, axis=0)
    if not np.all(spp[np.any(Wl > 0, axis=0)] > 0):
        return np.inf, 0.0, None, 0.0
    mp = ml - Pl * _core_projection(Pc, m[core], Wc)[None, :]
    info = np.sum(Wl * mp * mp)
    if not info > 0:
        return np.inf, 0.0, None, 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        spectrum_var = np.where(spp > 0, np.sum(Wl * mp * Pl, axis=0) ** 2 / spp, 0.0)
    spectrum_var = float(np.sum(spectrum_var) / info**2)
    return float(np.sqrt(1.0 / info + spectrum_var)), spectrum_var, mp, info


def _core_response(core, lines, P, dP, W, mp, info, amplitude):
    """The level's response to the profile changed by ``dP`` (source of ``amplitude``)."""
    Wl, Pl = W[lines], P[lines]
    x = amplitude * (dP[lines] - Pl * _core_projection(P[core], dP[core], W[core])[None, :])
    return np.sum(Wl * mp * x) / info


def _core_lines(wl, data, var, master, shape, shape_cov, amplitude, min_lines=3):
    """The factor with the spectrum from the core lines (spec3's way until session 13)."""
    from jwst_mbkg_plus.algorithms.sky_factor import SKY_CLIP, fit_sky_factor
    from jwst_mbkg_plus.algorithms.wing_model import choose_rows
    from jwst_mbkg_plus.algorithms.wing_profile import plausible_shapes, profile_shape

    s = np.arange(data.shape[0], dtype=float)
    P = np.broadcast_to(profile_shape(s, *shape)[:, None], data.shape)
    dP = [np.broadcast_to(profile_shape(s, *t)[:, None], data.shape) - P
          for t in plausible_shapes(shape, shape_cov)]
    W = 1.0 / var
    order = np.argsort(-P[:, 0], kind="stable")

    def evaluate(k):
        core, lines = np.sort(order[:k]), np.sort(order[k:])
        noise, spectrum_var, mp, info = _core_noise(core, lines, P, master, W)
        if mp is None:
            return np.inf, np.inf, 0.0, core, lines
        shifts = [_core_response(core, lines, P, d, W, mp, info, amplitude) for d in dP]
        return noise, float(np.sqrt(np.sum(np.square(shifts)))), spectrum_var, core, lines

    _, _, (_, leak, spectrum_var, core, lines) = choose_rows(
        range(1, data.shape[0] - min_lines + 1), evaluate, max_leak=1.0)
    alpha = _core_projection(P[core], data[core], W[core])
    mu = _core_projection(P[core], master[core], W[core])
    sign = np.where(master - P * mu[None, :] < 0, -1.0, 1.0)
    use = np.zeros(data.shape, bool)
    use[lines] = True
    fit = fit_sky_factor(wl, sign * (data - P * alpha[None, :]), var,
                         sign * (master - P * mu[None, :]), use, apply=True, clip=SKY_CLIP)
    return fit.level, float(np.sqrt(fit.level_error**2 + leak**2 + spectrum_var))


def part_spec3(draws):

    from jwst_mbkg_plus.algorithms.wing_model import profile_sky_factor
    from jwst_mbkg_plus.algorithms.wing_profile import fit_profile, winged_or_gaussian
    from jwst_mbkg_plus.spec3.exposure_scale import scale_one

    out = {}
    for noise in (0.05, 0.2):
        rng = np.random.default_rng(4242 + int(100 * noise))
        errors = {"core": [], "joint": [], "step": []}
        stated = {"core": [], "joint": [], "step": []}
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
            level, error = _core_lines(wl, data, var, master, np.array(
                [theta[2], *shape[1:]]), shape_cov, theta[1])
            for key, lev, err in (
                    ("core", level, error),
                    ("joint", fit.fit.level, np.hypot(fit.fit.level_error, fit.leak)),
                    ("step", sc.factor.level, sc.factor.level_error)):
                errors[key].append(lev / DRIFT - 1)
                stated[key].append(err / DRIFT)
        res = {"n": len(errors["core"])}
        for key, e in errors.items():
            res[key] = {"rms": _rms(e), "mean": float(np.mean(e)),
                        "pull_rms": _rms(np.array(e) / np.array(stated[key]))}
        out[f"spec3 noise {noise:g}"] = res
        print(f"spec3 noise {noise:g} ({res['n']} draws): " + " | ".join(
            f"{key} rms {100 * res[key]['rms']:.3f}% mean {100 * res[key]['mean']:+.3f}% "
            f"pulls {res[key]['pull_rms']:.2f}" for key in errors), flush=True)
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
    from jwst_mbkg_plus.algorithms.wing_model import choose_rows, profile_sky_factor
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
                    noise, _, mp, info = _core_noise(core, lines, P, m, W)
                    if mp is None:
                        return None
                    alpha = _core_projection(P[core], np.where(~other, data, 0.0)[core],
                                             W[core])
                    amp = alpha - _core_projection(P[core], m[core], W[core])
                    leak = np.sqrt(sum(_core_response(core, lines, P, d, W, mp, info, amp) ** 2
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
