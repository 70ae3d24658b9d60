"""Monte Carlo of the master background's bias on photon-counting noise, per combine_method.

Faint-sky NIRSpec exposures have a few electrons of sky per pixel, read noise of
~6 e-, and VAR_POISSON estimated from each pixel's own value (ramp fitting), so
weights and clip floors that use a pixel's variance depend on its noise. This
script draws, for each seed, the background pixels of ``--slits`` slitlets
(``--pixels`` per slitlet and wavelength bin, ``--bins`` bins): Poisson sky of
``--sky`` electrons plus Gaussian read noise, variance ``max(value, 0) + read**2``.
It bins every slitlet as the MOS plus step does (`bin_pixels`, clipped mean at 4
sigma with the bin's median noise as floor) and combines the spectra with every
``combine_method``; it reports the master's mean bias against the truth over the
seeds (with its standard error) and against the plain mean of the same pixels,
which is unbiased and shares their noise (a much more precise measure of the
estimator's own bias).

Usage::

    python validation/photon_noise_mc.py [--seeds 20] [--sky 3] [--read 6]
"""

import argparse

import numpy as np

from jwst_mbkg_plus.algorithms.binning import bin_pixels
from jwst_mbkg_plus.algorithms.combine import METHODS, combine_spectra


def draw(rng, n_slits, n_bins, per_bin, sky, read):
    """Pixels of each slitlet: wavelength, value, variance (electrons)."""
    out = []
    for _ in range(n_slits):
        lab = np.repeat(np.arange(n_bins), per_bin)
        wave = lab + rng.uniform(0.01, 0.99, lab.size)
        value = rng.poisson(sky, lab.size) + rng.normal(0.0, read, lab.size)
        var = np.clip(value, 0.0, None) + read**2
        out.append((wave, value, var))
    return out


def master_bias(pixels, n_bins, sky):
    """Bias of the master against the truth and against the plain pixel mean, per method."""
    edges = np.arange(n_bins + 1, dtype=float)
    binned = [bin_pixels(w, x, v, edges, method="clipped_mean", sigma=4.0) for w, x, v in pixels]
    flux = np.array([b.flux for b in binned])
    var = np.array([b.var for b in binned])
    plain = np.mean(np.concatenate([x for _, x, _ in pixels]))
    result = {}
    for method in METHODS:
        window = 31 if method == "weighted_mean" else 1
        master = combine_spectra(flux, var, method=method, weight_window=window).flux
        level = np.nanmean(master)
        result[method] = (level / sky - 1, (level - plain) / sky)
    # The per-point weights the step no longer uses, for comparison.
    raw = combine_spectra(flux, var, method="weighted_mean").flux
    result["weighted_mean (per-point weights)"] = (np.nanmean(raw) / sky - 1,
                                                   (np.nanmean(raw) - plain) / sky)
    return result


def main(argv=None):
    """Run the Monte Carlo and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--slits", type=int, default=9)
    parser.add_argument("--bins", type=int, default=4000)
    parser.add_argument("--pixels", type=int, default=30)
    parser.add_argument("--sky", type=float, default=3.0)
    parser.add_argument("--read", type=float, default=6.0)
    args = parser.parse_args(argv)
    runs = []
    for seed in range(args.seeds):
        rng = np.random.default_rng([seed, 13])
        pixels = draw(rng, args.slits, args.bins, args.pixels, args.sky, args.read)
        runs.append(master_bias(pixels, args.bins, args.sky))
    print(f"{args.seeds} seeds, {args.slits} slitlets x {args.bins} bins x {args.pixels} px, "
          f"sky {args.sky} e-, read noise {args.read} e-")
    print(f"{'combine_method':36s} {'bias vs truth':>22s} {'vs plain pixel mean':>22s}")
    for method in runs[0]:
        truth = np.array([r[method][0] for r in runs])
        paired = np.array([r[method][1] for r in runs])
        n = np.sqrt(len(runs))
        print(f"{method:36s} {100 * truth.mean():+8.3f}% +- {100 * truth.std() / n:.3f}%"
              f"   {100 * paired.mean():+8.3f}% +- {100 * paired.std() / n:.3f}%")


if __name__ == "__main__":
    main()
