"""Where does the adaptive master smoothing's bias come from? A pure-numpy probe.

Draws many noisy masters of a realistic sky (the G235M default sky with its line, the
PRISM sky table on the synthetic PRISM's one-sample-per-column grid), with the
per-sample noise of a master combined from ``n`` background slitlets at a noise per
pixel (0.197 x noise / sqrt(n) per sample, measured on the G235M uniform scene's
unsmoothed master: 0.49 % at 5 % with 4 slitlets), smooths each with a smoother and
splits the error of the smoothed master into

* the deterministic bias of the chosen kernels: ``L_chosen t - t`` (each sample's
  chosen kernel applied to the noiseless truth);
(with ``twice``, Tukey's twicing with the same kernels, ``M = 2 L - L L`` in place of
``L``);

* the selection term: ``L_chosen e`` (the same kernels applied to the noise), whose mean
  over draws is not zero when the choice depends on the noise's sign;

and reports, over draws, the mean and rms of the band mean and band median of
``smoothed / truth - 1`` (the per-slit median residual of a uniform scene is the band
median of the master's error) and the mean 95th percentile of ``|smoothed / truth - 1|``.

Usage::

    python validation/smoothing_bias_probe.py [--draws 300] [--methods raw,adaptive]
        [--out validation/results_smoothing_bias_probe.json]
"""

import argparse
import json
import time

import numpy as np

from jwst_mbkg_plus.algorithms import adaptive_smoothing as ad
from jwst_mbkg_plus.algorithms.smoothing import median_filter_nan

#: Per-sample noise of the master per (noise per pixel / sqrt(n background slitlets)).
NOISE_PER_SAMPLE = 0.197


def g235m_sky():
    """The G235M uniform scene's sky (default, line at 40 % of the band) on its grid."""
    from jwst_mbkg_plus.synthetic.spectra import default_background

    wave = 1.6442 + 0.0013184 * np.arange(1166)
    return wave, default_background(wave, line_center=1.66 + 0.4 * (3.17 - 1.66))


def prism_sky():
    """The PRISM sky table on the synthetic PRISM's grid (one sample per column)."""
    from jwst_mbkg_plus.synthetic import instrument
    from jwst_mbkg_plus.synthetic.sky import builtin_sky

    fine = np.linspace(0.6e-6, 5.3e-6, 20000)
    pix = instrument.dispersed_x(0.0, fine, "PRISM") / 18e-6
    cols = np.arange(np.ceil(pix.min()), np.floor(pix.max()) + 1)
    wave = np.interp(cols, pix, fine) * 1e6
    w, f = builtin_sky("prism_sky")
    return wave, np.interp(wave, w, f)


def chosen_kernels(var, chosen, half_widths=ad.DEFAULT_HALF_WIDTHS, degree=2, weight_window=15):
    """Sparse matrix L of the chosen kernels (identity rows where unsmoothed)."""
    smooth_var, _ = median_filter_nan(var, kernel=weight_window)
    weight = 1.0 / smooth_var
    rows = []
    for h in half_widths:
        take = np.flatnonzero(chosen == h)
        if take.size:
            rows.append((take, h, ad.local_polynomial(weight, h, degree)[take]))
    return ad.chosen_kernel_matrix(var.size, chosen, rows)


def run(truth, noise, n_bkg, draws, smoother, seed=1):
    """Statistics of one smoother over ``draws`` noisy masters."""
    rng = np.random.default_rng(seed)
    sigma = NOISE_PER_SAMPLE * noise / np.sqrt(n_bkg) * truth
    var = sigma**2
    rows = {k: [] for k in ("mean", "median", "p95", "det_mean", "sel_mean", "width",
                            "median_change", "shift", "sel_net")}
    for _ in range(draws):
        e = rng.normal(0.0, sigma)
        y = truth + e
        out, chosen = smoother(y, var)
        r = out / truth - 1
        rows["mean"].append(r.mean())
        rows["median"].append(np.median(r))
        rows["p95"].append(np.percentile(np.abs(r), 95))
        rows["median_change"].append(np.median(r) - np.median(e / truth))
        rows["shift"].append(np.mean(r) - np.mean(e / truth))  # paired with the raw master
        if chosen is not None:
            kw = getattr(smoother, "kw", {})
            mat = chosen_kernels(var, chosen, degree=kw.get("degree", 2),
                                 half_widths=kw.get("half_widths", ad.DEFAULT_HALF_WIDTHS))
            if getattr(smoother, "twicing", False):
                mat = 2 * mat - mat @ mat
                assert np.allclose(mat @ y, out, rtol=1e-9, atol=0)
            rows["det_mean"].append(np.mean(mat @ truth / truth - 1))
            rows["sel_mean"].append(np.mean(mat @ e / truth))
            rows["sel_net"].append(np.mean(mat @ e / truth) - np.mean(e / truth))
            rows["width"].append(np.median(chosen))
    arr = {k: np.array(v) for k, v in rows.items() if v}
    res = {
        "band_mean_bias_pct": 100 * arr["mean"].mean(),
        "band_mean_bias_err_pct": 100 * arr["mean"].std() / np.sqrt(draws),
        "band_mean_rms_pct": 100 * np.sqrt(np.mean(arr["mean"] ** 2)),
        "band_median_bias_pct": 100 * arr["median"].mean(),
        "band_median_rms_pct": 100 * np.sqrt(np.mean(arr["median"] ** 2)),
        "p95_pct": 100 * arr["p95"].mean(),
        "rms_median_change_pct": 100 * np.sqrt(np.mean(arr["median_change"] ** 2)),
        "shift_vs_raw_pct": 100 * arr["shift"].mean(),
        "shift_vs_raw_err_pct": 100 * arr["shift"].std() / np.sqrt(draws),
        "sample_sigma_pct": 100 * NOISE_PER_SAMPLE * noise / np.sqrt(n_bkg),
    }
    if "det_mean" in arr:
        res["deterministic_bias_pct"] = 100 * arr["det_mean"].mean()
        res["selection_bias_pct"] = 100 * arr["sel_mean"].mean()
        res["selection_bias_err_pct"] = 100 * arr["sel_mean"].std() / np.sqrt(draws)
        # The selection term net of the draws' own mean noise (paired with the raw master).
        res["selection_net_pct"] = 100 * arr["sel_net"].mean()
        res["selection_net_err_pct"] = 100 * arr["sel_net"].std() / np.sqrt(draws)
        res["median_half_width"] = float(np.median(arr["width"]))
    return res


def smoother_for(name):
    """Name -> callable (flux, var) -> (smoothed, chosen half-widths or None)."""
    if name == "raw":
        return lambda y, v: (y, None)

    def adaptive(y, v, **kw):
        kw.setdefault("twicing", False)
        res = ad.adaptive_smooth(y, v, threshold=3.5, **kw)
        return res.flux, res.half_width

    if name == "adaptive":
        return adaptive
    if name == "twice" or name.startswith("twice_"):
        kw = json.loads(name.split("_", 1)[1]) if "_" in name else {}
        kw.setdefault("threshold", 3.5)

        def twice(y, v):
            res = ad.adaptive_smooth(y, v, twicing=True, **kw)
            return res.flux, res.half_width
        twice.twicing = True
        twice.kw = kw
        return twice
    if name == "adaptive_nostructure":
        return lambda y, v: adaptive(y, v, structure_p=1e-300)
    if name.startswith("adaptive_"):
        kw = json.loads(name.split("_", 1)[1])
        return lambda y, v: adaptive(y, v, **kw)
    raise ValueError(name)


def main(argv=None):
    """Run the probe and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--methods", default="raw,adaptive,adaptive_nostructure")
    parser.add_argument("--skies", default="G235M,PRISM")
    parser.add_argument("--noise", default="0.05,0.2")
    parser.add_argument("--backgrounds", default="2,4,12")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    skies = {"G235M": g235m_sky, "PRISM": prism_sky}
    results = {}
    for sky in args.skies.split(","):
        _, truth = skies[sky]()
        for noise in (float(v) for v in args.noise.split(",")):
            for n_bkg in (int(v) for v in args.backgrounds.split(",")):
                for method in args.methods.split(";" if "{" in args.methods else ","):
                    t0 = time.perf_counter()
                    r = run(truth, noise, n_bkg, args.draws, smoother_for(method))
                    key = f"{sky}/{noise}/{n_bkg}/{method}"
                    results[key] = r
                    print(f"{key:40s} mean {r['band_mean_bias_pct']:+.4f}+-"
                          f"{r['band_mean_bias_err_pct']:.4f}% rms(mean) "
                          f"{r['band_mean_rms_pct']:.4f}% median {r['band_median_bias_pct']:+.4f}% "
                          f"rms(median) {r['band_median_rms_pct']:.4f}% p95 {r['p95_pct']:.3f}% "
                          f"shift {r['shift_vs_raw_pct']:+.4f}+-{r['shift_vs_raw_err_pct']:.4f}%"
                          + (f" det {r['deterministic_bias_pct']:+.4f}% sel "
                             f"{r['selection_net_pct']:+.4f}+-{r['selection_net_err_pct']:.4f}%"
                             f" hw {r['median_half_width']:.0f}"
                             if "deterministic_bias_pct" in r else "")
                          + f" ({time.perf_counter() - t0:.0f}s)", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)
        print("wrote", args.out)


if __name__ == "__main__":
    main()
