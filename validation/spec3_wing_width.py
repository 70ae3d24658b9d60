"""The spec3 wing model with a point spread function that widens to the red (issue 26).

Pure numpy (`jwst_mbkg_plus.spec3.exposure_scale.scale_one`) on the scene of
``validation/spec3_wing_rows.py``: a fixed slit of 32 rows x 400 columns, sky 1.03
times the master, a Moffat source (beta 2.5, 5 times the sky at its peak, a
spectrum of its own) 9 rows from one end, its FWHM 3 rows at mid-band and
``grow`` times wider from the blue end to the red (0: one profile), noise 5 % and
20 % per pixel, ``--draws`` fresh draws. Per case: the factor's level error with
the wings masked and modelled (rms, mean, pulls against the stated error), how
often the wing model is used and how often its width is modelled as linear in
wavelength (on ``grow = 0`` that is the false-alarm rate).

Command (about 5 minutes)::

    python validation/spec3_wing_width.py --out validation/results_spec3_wing_width.json
"""

import json
import logging
from pathlib import Path

import _common
import numpy as np
from spec3_wing_rows import DRIFT, _scene, _summary

GROWS = (0.0, 0.15, 0.3)


def main(argv=None):
    parser = _common.script_parser(__doc__, out=None)
    parser.add_argument("--draws", type=int, default=100)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)

    from jwst_mbkg_plus.spec3.exposure_scale import scale_one

    out = {"draws": args.draws}
    for noise in (0.05, 0.2):
        for grow in GROWS:
            rng = np.random.default_rng(2800 + int(100 * noise) + int(100 * grow))
            err = {"masked": [], "modelled": []}
            stated = {"masked": [], "modelled": []}
            used = linear = 0
            for _ in range(args.draws):
                data, var, wl, master = _scene(rng, noise, grow)
                for key, wings in (("masked", False), ("modelled", True)):
                    sc = scale_one(data, var, None, wl, master, wings=wings)
                    err[key].append(sc.factor.level / DRIFT - 1)
                    stated[key].append(sc.factor.level_error / DRIFT)
                    if wings:
                        used += sc.wings.used
                        linear += sc.wings.used and sc.wings.params.get("width_linear") == 1.0
            res = {k: _summary(v, stated[k]) for k, v in err.items()}
            res["modelled"].update(used=int(used), width_linear=int(linear))
            out[f"noise {noise:g} grow {grow:g}"] = res
            m, w = res["masked"], res["modelled"]
            print(f"noise {noise:g} grow {grow:g}, {args.draws} draws: masked rms "
                  f"{100 * m['rms']:.3f}% mean {100 * m['mean']:+.3f}% pulls "
                  f"{m['pull_rms']:.2f} | modelled rms {100 * w['rms']:.3f}% mean "
                  f"{100 * w['mean']:+.3f}% pulls {w['pull_rms']:.2f}, used {used}, width "
                  f"linear {linear}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
