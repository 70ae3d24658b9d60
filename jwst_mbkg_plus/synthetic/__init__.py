"""Seeded synthetic NIRSpec MOS data the real jwst pipeline accepts.

* :func:`build_instrument` writes the reference files of a plausible NIRSpec
  (WCS: :mod:`.instrument`; calibration: :mod:`.calibration`) and a local CRDS
  context (:mod:`.crds_context`) into a CRDS cache folder, cached by a stamp.
* :class:`Scene` describes what is observed; :func:`make_exposure` writes the
  MSA metadata file (:mod:`.msa_file`), one ``_rate.fits`` per detector
  (:mod:`.exposure`) and the ground truth (:mod:`.truth`, :func:`load_truth`).

:func:`extract_slits` runs jwst's steps before the MOS master background on a
rate file. Run the pipeline on it with
``jwst_mbkg_plus.offline.configure_offline_crds(inst.crds_path, local_context=True)``.
"""

from jwst_mbkg_plus.synthetic.build import (
    GENERATOR_VERSION,
    ExposureResult,
    Instrument,
    build_instrument,
    default_instrument_path,
    local_crds_context,
    make_exposure,
)
from jwst_mbkg_plus.synthetic.front_end import extract_slits
from jwst_mbkg_plus.synthetic.scene import Scene, Slitlet, default_background
from jwst_mbkg_plus.synthetic.truth import Truth, load_truth

__all__ = [
    "GENERATOR_VERSION",
    "ExposureResult",
    "Instrument",
    "Scene",
    "Slitlet",
    "Truth",
    "build_instrument",
    "default_instrument_path",
    "default_background",
    "extract_slits",
    "load_truth",
    "local_crds_context",
    "make_exposure",
]
