"""The spec3 sky factor with a point source's wings modelled against masked (issue 26).

Two measurements, both without jwst's step (the factor only):

``scene``
    Pure numpy (`jwst_mbkg_plus.spec3.exposure_scale.scale_one`): a fixed slit of
    32 rows x 400 columns, sky 1.03 times the master, a Moffat source (beta 2.5, FWHM
    3 rows, 5 times the sky at its peak, a spectrum of its own) 9 rows from one end,
    noise 5 % and 20 % per pixel, ``--draws`` fresh draws: the factor's level error
    with the wings masked (``wings=False``) and modelled (``wings=True``), its stated
    error and the pulls; then a profile 30 % wider at the red end than at the blue
    (how often the wing model is refused).
``driver``
    The step's driver (`jwst_mbkg_plus.spec3.run.run_master_background`) on the
    generator's winged fixed-slit scenes (+3 % drift, seeds 100..), with the wing model
    on and off (``run.SLIT_TYPES`` emptied): level error and the extracted 1-D flux
    (rows within 6 of the source) against subtracting the true background.

Command (about 3 minutes)::

    python validation/spec3_wing_rows.py --out validation/results_spec3_wing_rows.json
"""

import _common
import numpy as np

NY, NX, DRIFT = 32, 400, 1.03


def _scene(rng, noise, grow=0.0):
    from jwst_mbkg_plus.synthetic.spec3_scenes import source_profile

    y, x = np.mgrid[0:NY, 0:NX].astype(float)
    wl = 1.7 + 1.4 * x / (NX - 1) + 0.0001 * (y - NY / 2)
    t = (wl - 1.7) / 1.4
    master = 1.0 + 0.4 * t + 0.1 * np.sin(3 * t)
    source = 5.0 * (1.0 + 0.5 * np.sin(7 * t)) * source_profile(
        y, 9.0, 3.0 * (1.0 + grow * (t - 0.5)), wings=True)
    data = DRIFT * master + source + noise * master * rng.normal(size=master.shape)
    return data, (noise * master) ** 2, wl, master


def _rms(a):
    return float(np.sqrt(np.mean(np.square(a))))


def _summary(errors, stated):
    """Mean, rms, mean stated error and rms pull of a way's factor errors over draws."""
    return {"mean": float(np.mean(errors)), "rms": _rms(errors),
            "stated_mean": float(np.mean(stated)),
            "pull_rms": _rms(np.array(errors) / np.array(stated))}


def part_scene(draws):
    from jwst_mbkg_plus.spec3.exposure_scale import scale_one

    out = {}
    for noise in (0.05, 0.2):
        rng = np.random.default_rng(2600 + int(100 * noise))
        rows = {"masked": [], "modelled": []}
        stated = {"masked": [], "modelled": []}
        used, lines = 0, []
        for _ in range(draws):
            data, var, wl, master = _scene(rng, noise)
            for key, wings in (("masked", False), ("modelled", True)):
                sc = scale_one(data, var, None, wl, master, wings=wings)
                rows[key].append(sc.factor.level / DRIFT - 1)
                stated[key].append(sc.factor.level_error / DRIFT)
                if wings:
                    used += sc.wings.used
                    lines.append(len(sc.wings.lines) if sc.wings.used else np.nan)
        res = {k: _summary(v, stated[k]) for k, v in rows.items()}
        res["modelled"]["used"] = int(used)
        res["modelled"]["sky_lines_mean"] = float(np.nanmean(lines))
        rng = np.random.default_rng(2700 + int(100 * noise))
        refused = 0
        for _ in range(10):
            data, var, wl, master = _scene(rng, noise, grow=0.3)
            refused += not scale_one(data, var, None, wl, master, wings=True).wings.used
        res["widening_profile_refused_of_10"] = int(refused)
        out[f"noise {noise:g}"] = res
        print(f"scene, noise {noise:g}, {draws} draws: masked rms {100 * res['masked']['rms']:.3f}%"
              f" (stated {100 * res['masked']['stated_mean']:.3f}%, pulls "
              f"{res['masked']['pull_rms']:.2f}, mean {100 * res['masked']['mean']:+.3f}%) | "
              f"modelled in {used}: rms {100 * res['modelled']['rms']:.3f}% (stated "
              f"{100 * res['modelled']['stated_mean']:.3f}%, pulls "
              f"{res['modelled']['pull_rms']:.2f}, mean {100 * res['modelled']['mean']:+.3f}%), "
              f"{res['modelled']['sky_lines_mean']:.1f} lines | widening profile refused "
              f"{refused} of 10", flush=True)
    return out


def part_driver(seeds):
    import spec3_drift

    from jwst_mbkg_plus.spec3 import run
    from jwst_mbkg_plus.synthetic.spec3_inputs import make_spec3_inputs

    out = {}
    for noise in (0.05, 0.2):
        for on in (False, True):
            saved = run.SLIT_TYPES
            if not on:
                run.SLIT_TYPES = ()
            flux, lev, used = [], [], 0
            try:
                for s in seeds:
                    inputs = make_spec3_inputs("NRS_FIXEDSLIT", seed=s, n_background=2,
                                               nodded=False, pixel_noise=noise, drift=0.03,
                                               source_wings=True)
                    sci = [m.copy() for m in inputs.science]
                    res = run.run_master_background(sci, inputs.backgrounds)
                    for sc in res.scales:
                        lev.append(sc.factor.level / 1.03 - 1)
                        used += bool(sc.wings is not None and sc.wings.used)
                    got, true = spec3_drift._source_flux(inputs, sci)
                    flux += (got / true - 1).tolist()
            finally:
                run.SLIT_TYPES = saved
            key = f"noise {noise:g} wings {'modelled' if on else 'masked'}"
            out[key] = {"level_mean": float(np.mean(lev)), "level_rms": _rms(lev),
                        "flux_mean": float(np.mean(flux)), "flux_rms": _rms(flux),
                        "flux_max_abs": float(np.max(np.abs(flux))),
                        "flux_beyond_0.3%": float(np.mean(np.abs(flux) > 0.003)),
                        "used": used, "exposures": len(lev)}
            o = out[key]
            print(f"driver, {key}: level {100 * o['level_mean']:+.3f}% rms "
                  f"{100 * o['level_rms']:.3f}%; flux {100 * o['flux_mean']:+.3f}% rms "
                  f"{100 * o['flux_rms']:.3f}% max {100 * o['flux_max_abs']:.3f}% beyond 0.3 % "
                  f"{o['flux_beyond_0.3%']:.2f}; wing model in {used}/{len(lev)}", flush=True)
    return out


def main(argv=None):
    parser = _common.script_parser(__doc__, out=None)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=50, help="number of seeds, from 100")
    args = parser.parse_args(argv)
    _common.offline_quiet(validate_on_assignment=False)
    out = {"scene": part_scene(args.draws),
           "driver": part_driver(range(100, 100 + args.seeds))}
    if args.out:
        _common.write_json(args.out, out)


if __name__ == "__main__":
    raise SystemExit(main())
