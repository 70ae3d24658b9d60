"""Would smoothing the master lower a band's residual? A check on validate_mos.py's outputs.

A band's median residual averages the master's error over the band, so a smoothing
that keeps the local mean cannot lower it; it can only blur narrow sky lines. This
script measures both on the plus step's masters of existing ``validate_mos.py`` runs:
for each exposure folder it compares the master as made (``raw``) with scipy's
``make_smoothing_spline`` (smoothness by generalized cross-validation, weights from
``SB_ERROR``) of the master (``gcv``) and of its logarithm (``gcv_log``), against the
true background: the median over all samples, the worst of the ten bands of the PRISM
range and, at He I 1.083 micron (1.06-1.11), the median and scatter of the ratio.

Usage::

    python validation/smoothing_probe.py /tmp/mbkg_validation/PRISM_NRS1_prism_sky_clean_0.2 ...
"""

import argparse
from pathlib import Path

import numpy as np
from scipy.interpolate import make_smoothing_spline

#: The ten bands of validate_mos.py for PRISM (micron).
BANDS = np.linspace(0.6, 5.3, 11)


def smoothed_masters(wave, sb, err):
    """
    The master as made and two GCV smoothing splines of it, on its own samples.

    Parameters
    ----------
    wave, sb, err : ndarray
        Master wavelength (micron), surface brightness and its error.

    Returns
    -------
    dict
        Name -> surface brightness on ``wave``.
    """
    x = np.arange(wave.size, dtype=float)  # the grid follows the dispersion
    weight = 1 / err**2
    log_weight = (sb / err) ** 2
    linear = make_smoothing_spline(x, sb, w=weight / weight.mean())
    logarithmic = make_smoothing_spline(x, np.log(sb), w=log_weight / log_weight.mean())
    return {"raw": sb, "gcv": linear(x), "gcv_log": np.exp(logarithmic(x))}


def compare(folder):
    """Print the three masters' residuals against the truth of one exposure folder."""
    from stdatamodels.jwst import datamodels

    from jwst_mbkg_plus.synthetic import load_truth

    folder = Path(folder)
    with datamodels.open(next((folder / "plus").glob("*_masterbg1d.fits"))) as model:
        table = model.spec[0].spec_table
        wave, sb, err = (
            np.asarray(table[c], float) for c in ("WAVELENGTH", "SURF_BRIGHT", "SB_ERROR")
        )
    keep = np.isfinite(sb) & np.isfinite(err) & (err > 0) & (sb > 0)
    wave, sb, err = wave[keep], sb[keep], err[keep]
    wave_t, sb_t = load_truth(next(folder.glob("*_truth.asdf"))).background_1d()
    truth = np.interp(wave, wave_t, sb_t)
    which = np.digitize(wave, BANDS) - 1
    line = (wave > 1.06) & (wave < 1.11)
    print(folder.name)
    for name, master in smoothed_masters(wave, sb, err).items():
        rel = master / truth - 1
        bands = [np.median(rel[which == k]) for k in range(len(BANDS) - 1)]
        print(
            f"  {name:8s} all {100 * np.median(rel):+.3f} %  worst band "
            f"{100 * np.max(np.abs(bands)):.3f} %  He I median {100 * np.median(rel[line]):+.2f} % "
            f"std {100 * np.std(rel[line]):.2f} %"
        )


def main(argv=None):
    """Compare the masters of the given folders."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="validate_mos.py exposure folders")
    for folder in parser.parse_args(argv).folders:
        compare(folder)


if __name__ == "__main__":
    main()
