"""use_source_sky on and off where source slitlets' sky rows hold light that is not sky.

Calibration-scatter scene (12 background, 18 point-source slitlets of 3 shutters,
3 % level / 2 % tilt rms) whose sources have Moffat wings (beta 2.5) that reach the
neighbouring shutters, and 6 of which have a second, undeclared point source (half the
primary's peak) in the next shutter. Prints, for the plus step with
``use_source_sky=False`` and with the default, the rms of the source slitlets' median
noise-free residual, the mean of their 95th percentile of its absolute value, the mean
median, and the QA record's ``source_sky`` (slitlets added and rejected).

Usage::

    python validation/source_sky_contamination.py GRATING NOISE SEED [WORK]
"""

import logging
import sys
from pathlib import Path

import _common
import numpy as np


def source_figures(truth, slits_in, slits_out):
    """rms of the source slitlets' median residual, mean 95th percentile, mean median."""
    meds, p95 = [], []
    for si, so in zip(slits_in.slits, slits_out.slits, strict=True):
        if truth.slit(si.name)["kind"] == "background":
            continue
        true_bkg = truth.cutout(si.name, "background", si) / truth.cutout(si.name, "factor", si)
        ok = np.isfinite(so.data) & np.isfinite(true_bkg) & (true_bkg > 0) & ((so.dq & 1) == 0)
        rel = (si.data - so.data)[ok] / true_bkg[ok] - 1
        meds.append(np.median(rel))
        p95.append(np.percentile(np.abs(rel), 95))
    return np.sqrt(np.mean(np.square(meds))), np.mean(p95), np.mean(meds)


def main(argv):
    """Run one scene with use_source_sky off and on, and print the figures."""
    logging.disable(logging.WARNING)
    from jwst_mbkg_plus import MasterBackgroundMosPlusStep
    from jwst_mbkg_plus.synthetic import Scene

    instrument = _common.offline_instrument()
    grating, noise, seed = argv[0], float(argv[1]), int(argv[2])
    work = Path(argv[3] if len(argv) > 3 else "/tmp/mbkg_source_sky")
    scene = Scene(n_background=12, n_point=18, n_extended=0, shutters_per_slitlet=3,
                  detectors=("NRS1",), grating=grating, noise_fraction=noise,
                  calibration_error=(0.03, 0.02, 0, 0), seed=seed, point_profile="moffat",
                  moffat_beta=2.5, n_two_source=6, companion_flux=0.5)
    with _common.painted_slits(scene, work / f"{grating}_{noise}_{seed}",
                               instrument) as (slits, truth):
        for name, pars in (("off", {"use_source_sky": False}), ("on", {})):
            result = MasterBackgroundMosPlusStep.call(slits, **pars)
            qa = result.meta.master_background_qa.instance
            rms, p95, mean = source_figures(truth, slits, result)
            sky = qa.get("source_sky", {})
            scatter = qa.get("calibration_scatter", {})
            print(f"{grating} {noise} seed {seed} {name:3s} rms med {100 * rms:.3f}% "
                  f"p95 {100 * p95:.3f}% mean med {100 * mean:+.3f}% | scatter "
                  f"{scatter.get('detected')} rescaled {len(scatter.get('rescaled_slits', []))}"
                  f" | sky slitlets {sky.get('n_source_slits')} rejected "
                  f"{list(sky.get('rejected', {}))} variance ratio "
                  f"{sky.get('median_variance_ratio')}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
