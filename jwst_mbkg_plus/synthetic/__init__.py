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

import importlib

#: Public name -> module that defines it; imported on first use (PEP 562), so
#: that the CLI and the submodules (instrument, scene, sky) load no jwst code.
_LAZY = {
    **dict.fromkeys(
        ("GENERATOR_VERSION", "ExposureResult", "Instrument", "build_instrument",
         "default_instrument_path", "local_crds_context", "make_exposure"),
        "jwst_mbkg_plus.synthetic.build",
    ),
    "extract_slits": "jwst_mbkg_plus.synthetic.front_end",
    **dict.fromkeys(("Scene", "Slitlet"), "jwst_mbkg_plus.synthetic.scene"),
    "default_background": "jwst_mbkg_plus.synthetic.spectra",
    **dict.fromkeys(("Truth", "load_truth"), "jwst_mbkg_plus.synthetic.truth"),
}

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


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
