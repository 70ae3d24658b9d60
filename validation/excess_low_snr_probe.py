"""Probe: the vetting's additive-excess score on clean spectra at photon-counting noise.

Draws, per seed, 9 clean background spectra of the photon-counting scene of
``validate_conditions.py`` (3 e- of sky per pixel, 6 e- read noise, 19 pixels
per wavelength bin: about 48 % noise per sample), on the sky shape of the
scene's truth (``--truth``, a ``*_truth.asdf``), and runs
`jwst_mbkg_plus.algorithms.selection.vet_spectra` as the MOS step does. Prints
the mean, standard deviation and maximum of the excess scores (unit normal
on clean spectra if the test is calibrated; a spectrum is rejected beyond 5),
for the spectra as they are and binned by ``--bin`` samples in wavelength.
``--gaussian`` draws Gaussian noise of the same variance instead of Poisson
(the bias is the same: it is the low signal-to-noise per sample, not Poisson
statistics); ``--noise-scale`` scales it.

Usage::

    python validation/excess_low_snr_probe.py --truth WORK/conditions/photon_9_7/*_truth.asdf \\
        [--draws 10] [--bin 10] [--gaussian --noise-scale 0.3]
"""

import argparse

import numpy as np


def draw(rng, shape, n_spectra=9, n_pix=19, sky=3.0, read=6.0, gaussian=False, scale=1.0):
    """Binned spectra (mean over the pixels of a bin) and their variances (electrons)."""
    flux, var = [], []
    for _ in range(n_spectra):
        lam = sky * shape[None, :] * np.ones((n_pix, 1))
        if gaussian:
            pix = lam + scale * rng.normal(0.0, 1.0, lam.shape) * np.sqrt(lam + read**2)
        else:
            pix = rng.poisson(lam) + rng.normal(0.0, read, lam.shape)
        v = np.clip(pix, 0.0, None) + read**2 if not gaussian else scale**2 * (lam + read**2)
        flux.append(pix.mean(axis=0))
        var.append(v.sum(axis=0) / n_pix**2)
    return np.array(flux), np.array(var)


def rebin(flux, var, wave, k):
    """Mean of ``k`` consecutive samples (variance of the mean)."""
    m = (flux.shape[1] // k) * k
    n = flux.shape[0]
    return (flux[:, :m].reshape(n, -1, k).mean(axis=2),
            var[:, :m].reshape(n, -1, k).sum(axis=2) / k**2,
            wave[:m].reshape(-1, k).mean(axis=1))


def main(argv=None):
    """Print the excess scores' statistics."""
    from jwst_mbkg_plus.algorithms.selection import vet_spectra
    from jwst_mbkg_plus.synthetic import load_truth

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", required=True)
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--bin", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1167)
    parser.add_argument("--gaussian", action="store_true")
    parser.add_argument("--noise-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    w, sb = load_truth(args.truth).background_1d()
    wave = np.linspace(w.min(), w.max(), args.samples)
    shape = np.interp(wave, w, sb)
    shape /= np.median(shape)
    scores = {"as binned by the step": [], f"binned by {args.bin} more": []}
    for seed in range(args.draws):
        flux, var = draw(np.random.default_rng(seed), shape, gaussian=args.gaussian,
                         scale=args.noise_scale)
        for label, (f, v, wv) in zip(scores, ((flux, var, wave),
                                             rebin(flux, var, wave, args.bin)), strict=True):
            scores[label].append(np.asarray(vet_spectra(f, v, wavelength=wv).excess_score))
    for label, values in scores.items():
        v = np.concatenate(values)
        v = v[np.isfinite(v)]
        print(f"{label:24s} n {v.size}  mean {v.mean():+.2f}  sd {v.std():.2f}  max {v.max():.1f}"
              f"  beyond 5: {(v > 5).sum()}")


if __name__ == "__main__":
    main()
