"""spec3 pairs at 5% noise per point over many seeds: is the contaminated member named,
and how far is the master left from the truth against one clean spectrum alone?

Every mode of `jwst_mbkg_plus.synthetic.spec3_inputs`, 2 background members, the second
contaminated by +30% of the continuum, seeds 100-119. For each seed the plus step's bias
(median over background-dominated science pixels of (subtracted - injected) / injected,
as in ``validate_vetting.py``) is set beside that of the same seed's clean member alone:
the floor a master made from one noisy spectrum cannot beat.

Command (about 2 minutes)::

    python validation/spec3_pair_seeds.py --out validation/results_spec3_pair_seeds.json
"""

import glob
import tempfile

import _common
import numpy as np

MODES = ("NRS_FIXEDSLIT", "NRS_IFU", "MIR_LRS-FIXEDSLIT", "MIR_MRS")


def main(argv=None):
    """Run the seeds and print one line per mode."""
    parser = _common.script_parser(__doc__, out=None)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, default=20, help="number of seeds, from 100")
    parser.add_argument("--scale-master", default="auto",
                        help="the plus step's scale_master (off: no factor, as before issue 26)")
    args = parser.parse_args(argv)
    _common.offline_quiet()
    from validate_vetting import _spec3_bias

    from jwst_mbkg_plus import MasterBackgroundPlusStep
    from jwst_mbkg_plus.io.products import read_qa
    from jwst_mbkg_plus.synthetic.spec3_inputs import make_container, make_spec3_inputs

    out = {}
    for mode in MODES:
        bias, alone, named = [], [], 0
        for seed in range(100, 100 + args.seeds):
            inputs = make_spec3_inputs(mode, n_background=2, contaminate=1, seed=seed,
                                       spectrum_noise=args.noise)
            folder = tempfile.mkdtemp()
            result = MasterBackgroundPlusStep.call(make_container(inputs), save_qa=True,
                                                   output_dir=folder,
                                                   scale_master=args.scale_master)
            bias.append(_spec3_bias(inputs, result))
            qa = read_qa(glob.glob(folder + "/*mbkgqa.asdf")[0])
            rejected = [e["name"] for e in qa["inputs"] if not e["accepted"]]
            named += rejected == [qa["inputs"][1]["name"]]
            clean = make_spec3_inputs(mode, n_background=1, seed=seed, spectrum_noise=args.noise)
            alone.append(_spec3_bias(clean, MasterBackgroundPlusStep.call(
                make_container(clean), scale_master=args.scale_master)))
        bias, alone = np.array(bias), np.array(alone)
        out[mode] = {
            "named": named, "seeds": args.seeds,
            "bias_mean": float(bias.mean()), "bias_median_abs": float(np.median(np.abs(bias))),
            "bias_max_abs": float(np.abs(bias).max()),
            "one_clean_mean": float(alone.mean()),
            "one_clean_median_abs": float(np.median(np.abs(alone))),
            "one_clean_max_abs": float(np.abs(alone).max()),
        }
        r = out[mode]
        print(f"{mode:18s} named {named}/{args.seeds}  bias mean {100 * r['bias_mean']:+.3f}% "
              f"median|.| {100 * r['bias_median_abs']:.3f}% max {100 * r['bias_max_abs']:.3f}%"
              f"  | one clean spectrum: median|.| {100 * r['one_clean_median_abs']:.3f}% "
              f"max {100 * r['one_clean_max_abs']:.3f}%", flush=True)
    if args.out:
        _common.write_json(args.out, out)


if __name__ == "__main__":
    raise SystemExit(main())
