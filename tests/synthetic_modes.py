"""jwst's WCS and calwebb_spec2 chain on one disperser of the synthetic instrument.

Shared by the per-mode tests (tests/synthetic/test_synthetic_prism.py,
test_synthetic_g395h.py): the same set-up, another grating.
"""

import numpy as np

from jwst_mbkg_plus.synthetic import (
    extract_slits,
    load_truth,
    local_crds_context,
    make_exposure,
)
from jwst_mbkg_plus.synthetic.instrument import GRATINGS
from jwst_mbkg_plus.synthetic.instrument_refs import build_instrument_refs

DETECTORS = ("NRS1", "NRS2")


def mode_wcs(folder, scene):
    """jwst's WCS of ``scene`` on both detectors, from freshly built reference files.

    Returns ``({detector: model}, refs)``.
    """
    from jwst_mbkg_plus.synthetic.exposure import load_synthetic_wcs
    from jwst_mbkg_plus.synthetic.msa_file import write_msa_file

    refs = build_instrument_refs(folder)
    wcs_refs = {k: v for k, v in refs.items() if not isinstance(v, dict)}
    wcs_refs["disperser"] = refs["disperser"][scene.grating]
    wcs_refs["fore"] = refs["fore"][GRATINGS[scene.grating]["filter"]]
    msa = write_msa_file(folder / "msa.fits", scene.layout())
    models = {det: load_synthetic_wcs(scene, detector=det, refs=wcs_refs, msa_path=msa)
              for det in DETECTORS}
    return models, refs


def calibrated_exposure(scene, folder, instrument, *, resample_before_extract=False):
    """
    Paint ``scene`` and run it through assign_wcs ... photom and extract_1d on both detectors.

    ``resample_before_extract``: extract_1d on resample_spec's rectified slits, as
    Spec2Pipeline does (needed where traces curve too much for a fixed aperture).

    Returns ``{detector: {"cal": model, "x1d": model, "truth": Truth}}``.
    """
    from jwst.barshadow import BarShadowStep
    from jwst.extract_1d import Extract1dStep
    from jwst.flatfield import FlatFieldStep
    from jwst.pathloss import PathLossStep
    from jwst.photom import PhotomStep
    from jwst.resample import ResampleSpecStep

    exposure = make_exposure(scene, folder, instrument=instrument)
    runs = {}
    with local_crds_context(instrument):
        for det in DETECTORS:
            model = extract_slits(exposure.rate_paths[det])
            for step in (FlatFieldStep, PathLossStep, BarShadowStep, PhotomStep):
                model = step.call(model)
            to_extract = ResampleSpecStep.call(model) if resample_before_extract else model
            runs[det] = {
                "cal": model,
                "x1d": Extract1dStep.call(to_extract),
                "truth": load_truth(exposure.truth_paths[det]),
            }
    return runs


def ratio_to_truth(slit, truth):
    """Calibrated background slit over its injected truth, minus 1 (finite values)."""
    ratio = slit.data / truth.cutout(slit.name, "background", slit) - 1
    return ratio[np.isfinite(ratio)]


def background_slits(cal):
    """The MSA background slitlets of a calibrated MultiSlitModel."""
    return [s for s in cal.slits if "BKG" in str(s.source_name).upper()]


def assert_background_equals_truth(slits, truth, min_pixels):
    """Each slit's calibrated background equals its truth to 1e-4 (median and 99th percentile)."""
    for slit in slits:
        ratio = ratio_to_truth(slit, truth)
        assert ratio.size > min_pixels, slit.name
        assert np.median(np.abs(ratio)) <= 1e-4, slit.name
        assert np.percentile(np.abs(ratio), 99) <= 1e-4, slit.name
