"""Synthetic NIRSpec MOS calibration reference files and their analytic model.

`build_calibration_refs` writes the ten calibration reference files jwst 3.0.0
reads for NRS_MSASPEC after extract_2d (flats, pathloss, bar shadow, photom,
pixel area, wavecorr, extract1d, apcorr).
`~jwst_mbkg_plus.synthetic.calibration_truth.CalibrationTruth` evaluates, with
plain numpy and independently of jwst, what the calibration steps do with those
files, so a painted background ``DN/s = B_true / F`` with ``F =
CalibrationTruth.extended_factor(...)`` calibrates back to ``B_true``.

How jwst 3.0.0 uses each file for NRS_MSASPEC (``jwst/flatfield/flat_field.py``,
``pathloss/pathloss.py``, ``barshadow/bar_shadow.py``, ``photom/photom.py``):

- **dflat** (`~stdatamodels.jwst.datamodels.NirspecFlatModel`): the SCI cube is
  read at the slit's full-frame pixels and interpolated linearly in
  wavelength between its planes (WAVELENGTH table); times the FAST_VARIATION
  table, linearly interpolated and averaged over each pixel's wavelength
  width (3-point Gauss rule).
- **sflat**: same, with a 2-D SCI image (no wavelength dependence) times the
  fast table.
- **fflat** (`~stdatamodels.jwst.datamodels.NirspecQuadFlatModel`): quadrant
  ``slit.quadrant``, shutter ``[ycen - 1, xcen - 1]`` of the SCI cube,
  interpolated in wavelength onto the quadrant's fast-table grid and
  multiplied into it.  The step divides by ``d * s * f``.
- **pathloss**: aperture MOS1x1 if both neighbours of the ``x`` shutter in
  ``shutter_state`` are closed, else MOS1x3; a 2-shutter slitlet uses the
  mean of the two uniform arrays.  Extended sources divide by the 1-D
  ``uniform_data``; point sources by the ``pointsource_data`` cube bilinearly
  interpolated at ``(source_xpos, source_ypos)`` (``ypos -+ 1`` when only the
  shutter below / above is closed).  If that position falls outside the cube
  grid no pathloss correction at all is applied to the slitlet.
- **barshadow**: extended sources only.  A shadow array is assembled from
  half-shutter pieces of ``data1x1`` / ``data1x3`` following
  ``shutter_state`` and sampled bilinearly at row
  ``500 * (src_loc + 1 + slit_y / slit_yscale)``, column
  ``(wavelength - crval1) / cdelt1`` with the wavelength from the slit WCS
  ``detector -> slit_frame``, which is in metres for science exposures (so
  the synthetic file's CRVAL1/CDELT1 are in metres).
- **photom** + **area**: ``conversion = PHOTMJ * relresponse(wavelength)``,
  divided for non-point sources by the slitlet's pixel solid angle
  ``pixarea * A2_TO_SR`` from the AREA table row matching
  (quadrant, xcen, ycen); the PIXAR keywords of the photom file are not used
  for NIRSpec.
- **wavecorr**: point sources only; the synthetic offset is zero.
- **extract1d**, **apcorr**: used by extract_1d (apcorr for point sources only).
"""

import logging
from pathlib import Path

import numpy as np

from . import _calib_files as files
from . import _calib_flats as flats
from . import _calib_functions as cf

__all__ = [
    "CALIBRATION_REFTYPES",
    "SUPPORTED_MODES",
    "A2_TO_SR",
    "build_calibration_refs",
]

log = logging.getLogger(__name__)

CALIBRATION_REFTYPES = (
    "dflat",
    "sflat",
    "fflat",
    "pathloss",
    "barshadow",
    "photom",
    "area",
    "wavecorr",
    "extract1d",
    "apcorr",
)

SUPPORTED_MODES = tuple(cf.MODE_PARAMETERS)

#: arcsec^2 -> steradian, as in jwst.photom.photom.
A2_TO_SR = (np.pi / (180.0 * 3600.0)) ** 2

# Bump when any function or file layout changes: it is part of every file
# name, so stale cached files are never reused.
_GENERATOR_VERSION = "calib-3"


def check_detector(detector):
    detector = str(detector).upper()
    if detector not in ("NRS1", "NRS2"):
        raise ValueError(f"detector must be NRS1 or NRS2, not {detector!r}")
    return detector


def _file_plan(detector, filter_name, grating, extract_width):
    """Reftype -> (file-name parts it depends on, writer, writer kwargs, extension)."""
    mode = {"filter_name": filter_name, "grating": grating}
    return {
        "dflat": ((detector,), flats.write_dflat, {"detector": detector}, "fits"),
        "sflat": (
            (detector, filter_name, grating),
            flats.write_sflat,
            {"detector": detector, **mode},
            "fits",
        ),
        "fflat": ((filter_name, grating), flats.write_fflat, mode, "fits"),
        "pathloss": ((), files.write_pathloss, {}, "fits"),
        "barshadow": ((), files.write_barshadow, {}, "fits"),
        "photom": ((filter_name, grating), files.write_photom, mode, "fits"),
        "area": ((filter_name, grating), files.write_area, mode, "fits"),
        "wavecorr": ((), files.write_wavecorr, {}, "asdf"),
        "extract1d": (
            (f"w{extract_width}",),
            files.write_extract1d,
            {"extract_width": extract_width},
            "json",
        ),
        "apcorr": ((filter_name, grating), files.write_apcorr, mode, "fits"),
    }


def build_calibration_refs(folder, *, detector, filter, grating, overwrite=False, extract_width=5):
    """
    Write the synthetic MOS calibration reference files for one detector and mode.

    File names encode only what a file depends on plus a generator version,
    e.g. ``synth_nirspec_dflat_nrs1_calib-3.fits``; a file that already exists
    under its name is reused (so calls for NRS1 and NRS2 share the
    detector-independent files), unless ``overwrite``.

    Parameters
    ----------
    folder : str or `~pathlib.Path`
        Output folder, created if missing.
    detector : {"NRS1", "NRS2"}
        Detector.
    filter : str
        Filter, one of `SUPPORTED_MODES`.
    grating : str
        Grating, one of `SUPPORTED_MODES`.
    overwrite : bool, optional
        Rewrite files that already exist.
    extract_width : int, optional
        Extraction height (pixels) of the extract1d aperture.

    Returns
    -------
    dict of str to `~pathlib.Path`
        Reference type -> file, for every entry of `CALIBRATION_REFTYPES`.

    Raises
    ------
    ValueError
        For an unknown detector or an unsupported mode.
    """
    detector = check_detector(detector)
    filter_name, grating = str(filter).upper(), str(grating).upper()
    cf.mode_parameters(filter_name, grating)  # validates the mode
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for reftype, (parts, writer, kwargs, ext) in _file_plan(
        detector, filter_name, grating, int(extract_width)
    ).items():
        stem = "_".join(["synth_nirspec", reftype, *[p.lower() for p in parts], _GENERATOR_VERSION])
        path = folder / f"{stem}.{ext}"
        if path.exists() and not overwrite:
            log.debug("Reusing %s", path)
        else:
            log.info("Writing synthetic %s reference file %s", reftype, path)
            writer(path, **kwargs)
        paths[reftype] = path
    return paths


