"""How many source-free rows the spec3 sky region keeps in the fixed slit (issue 26).

The step's driver (`jwst_mbkg_plus.spec3.run.run_master_background`) on the synthetic
NIRSpec fixed slit (32 rows, the source 9 rows from one end; 2 science and 2 dedicated
background exposures, sky +3 % over the background exposures'), with the compact
source (a cosine bump, no light 3 rows or more from its centre: 27 rows of 32 are
free of it; the validation counts the 23 rows 5 or more from it as background) and
with the winged one (Moffat, beta 2.5). Per noise and source: the distribution of
the sky rows found per exposure, the fraction of exposures keeping 18 rows or fewer,
and the fitted factor's error against the true +3 % (mean, rms over exposures).

Command (seeds 500-699, 400 exposures per case; a few minutes)::

    python validation/spec3_sky_rows.py --out validation/results_spec3_sky_rows.json

Run it at another commit (``git stash`` or a worktree) for the figures before a change.
"""

import collections

import _common
import numpy as np


def run_case(seeds, noise, wings):
    """Sky rows and factor errors over the seeds' exposures."""
    from jwst_mbkg_plus.spec3 import run
    from jwst_mbkg_plus.synthetic.spec3_inputs import make_spec3_inputs

    rows, errors = [], []
    for s in seeds:
        inputs = make_spec3_inputs("NRS_FIXEDSLIT", seed=s, n_background=2, nodded=False,
                                   pixel_noise=noise, drift=0.03, source_wings=wings)
        scales = run.run_master_background([m.copy() for m in inputs.science],
                                           inputs.backgrounds).scales
        for sc in scales:
            rows.append(int(sc.region.n_sky_lines))
            errors.append(sc.factor.level / 1.03 - 1.0)
    rows, errors = np.array(rows), np.array(errors)
    return {"exposures": int(rows.size),
            "sky_rows": dict(sorted(collections.Counter(rows.tolist()).items())),
            "sky_rows_mean": float(rows.mean()),
            "fraction_at_most_18": float(np.mean(rows <= 18)),
            "factor_error_mean": float(errors.mean()),
            "factor_error_rms": float(np.sqrt(np.mean(errors**2)))}


def main(argv=None):
    """Run the cases and print one line each."""
    parser = _common.script_parser(__doc__, out=None)
    parser.add_argument("--seeds", default="500-699", help="first-last seed")
    args = parser.parse_args(argv)
    lo, hi = (int(v) for v in args.seeds.split("-"))
    _common.offline_quiet(validate_on_assignment=False)
    out = {"seeds": [lo, hi]}
    for wings in (False, True):
        for noise in (0.05, 0.2):
            key = f"{'winged' if wings else 'compact'} source, noise {noise:g}"
            out[key] = r = run_case(range(lo, hi + 1), noise, wings)
            print(f"{key:30s} sky rows mean {r['sky_rows_mean']:.2f}, <= 18 in "
                  f"{100 * r['fraction_at_most_18']:.1f} % of {r['exposures']}; factor error "
                  f"mean {100 * r['factor_error_mean']:+.3f} % rms "
                  f"{100 * r['factor_error_rms']:.3f} %; rows {r['sky_rows']}", flush=True)
    if args.out:
        _common.write_json(args.out, out)


if __name__ == "__main__":
    raise SystemExit(main())
