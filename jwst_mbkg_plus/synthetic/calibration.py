"""Synthetic NIRSpec MOS calibration reference files and their analytic model.

`build_calibration_refs` writes the ten calibration reference files jwst 3.0.0
reads for NRS_MSASPEC after extract_2d (flats, pathloss, bar shadow, photom,
pixel area, wavecorr, extract1d, apcorr).  `CalibrationTruth` evaluates, with
plain numpy and independently of jwst, what the calibration steps do with
those files, so a painted background ``DN/s = B_true / F`` with
``F = CalibrationTruth.extended_factor(...)`` calibrates back to ``B_true``.

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
from . import _calib_functions as cf
from . import _calib_rules as rules

__all__ = [
    "CALIBRATION_REFTYPES",
    "SUPPORTED_MODES",
    "A2_TO_SR",
    "build_calibration_refs",
    "CalibrationTruth",
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


def _check_detector(detector):
    detector = str(detector).upper()
    if detector not in ("NRS1", "NRS2"):
        raise ValueError(f"detector must be NRS1 or NRS2, not {detector!r}")
    return detector


def _file_plan(detector, filter_name, grating, extract_width):
    """Reftype -> (file-name parts it depends on, writer, writer kwargs, extension)."""
    mode = {"filter_name": filter_name, "grating": grating}
    return {
        "dflat": ((detector,), files.write_dflat, {"detector": detector}, "fits"),
        "sflat": (
            (detector, filter_name, grating),
            files.write_sflat,
            {"detector": detector, **mode},
            "fits",
        ),
        "fflat": ((filter_name, grating), files.write_fflat, mode, "fits"),
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
    detector = _check_detector(detector)
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


class CalibrationTruth:
    """
    Analytic model of the synthetic MOS calibration, as jwst 3.0.0 applies it.

    All methods are keyword-only, broadcast over numpy arrays and take
    wavelengths in micron.  They are valid for wavelengths inside
    0.6 .. 5.3 micron (the span of every file); outside, jwst flags the
    pixels instead.

    Parameters
    ----------
    filter : str
        Filter, e.g. ``"F170LP"``.
    grating : str
        Grating, e.g. ``"G235M"``.

    Examples
    --------
    >>> truth = CalibrationTruth(filter="F170LP", grating="G235M")
    >>> f = truth.extended_factor(wavelength=2.4, x=1000, y=900, detector="NRS1",
    ...                           quadrant=3, shutter_column=120, shutter_row=40,
    ...                           slit_y=0.0, shutter_config="1x1")
    >>> bool(f > 0)
    True
    """

    def __init__(self, *, filter, grating):
        self.filter = str(filter).upper()
        self.grating = str(grating).upper()
        self._mode = cf.mode_parameters(self.filter, self.grating)
        # jwst keeps PHOTMJ as the float32 table value.
        self.photmj = float(np.float32(self._mode["photmj"]))

    # ---------------------------------------------------------------- flats
    def flat_components(self, *, wavelength, x, y, detector, quadrant, shutter_column, shutter_row):
        """
        Return the d-, s- and f-flat factors separately.

        Parameters
        ----------
        wavelength : array_like
            Wavelength in micron.
        x, y : array_like of int
            0-based full-frame pixel on ``detector`` (slit pixel + ``slit.xstart - 1``).
        detector : {"NRS1", "NRS2"}
            Detector.
        quadrant : int
            MSA quadrant (``slit.quadrant``), 1 .. 4.
        shutter_column, shutter_row : int
            ``slit.xcen`` and ``slit.ycen``: 1-based MSA column and row.

        Returns
        -------
        dict of str to ndarray
            Keys ``"dflat"``, ``"sflat"``, ``"fflat"``.
        """
        detector = _check_detector(detector)
        fg = (self.filter, self.grating)
        return {
            "dflat": cf.dflat_image(wavelength, x, y, detector)
            * cf.dflat_fast(wavelength, detector),
            "sflat": cf.sflat_image(x, y, detector, *fg) * cf.sflat_fast(wavelength, detector, *fg),
            "fflat": cf.fflat_image(wavelength, quadrant, shutter_column, shutter_row, *fg)
            * cf.fflat_fast(wavelength, quadrant, *fg),
        }

    def flat(self, *, wavelength, x, y, detector, quadrant, shutter_column, shutter_row):
        """
        Total flat ``d * s * f`` that flat_field divides by.

        Parameters
        ----------
        wavelength : array_like
            Wavelength in micron.
        x, y : array_like of int
            0-based full-frame pixel on ``detector``.
        detector : {"NRS1", "NRS2"}
            Detector.
        quadrant : int
            MSA quadrant, 1 .. 4.
        shutter_column, shutter_row : int
            ``slit.xcen`` and ``slit.ycen``.

        Returns
        -------
        ndarray
            The flat.
        """
        parts = self.flat_components(
            wavelength=wavelength,
            x=x,
            y=y,
            detector=detector,
            quadrant=quadrant,
            shutter_column=shutter_column,
            shutter_row=shutter_row,
        )
        return parts["dflat"] * parts["sflat"] * parts["fflat"]

    # ------------------------------------------------------------- pathloss
    @staticmethod
    def pathloss_applies(*, shutter_config, source_xpos=0.0, source_ypos=0.0):
        """
        Whether jwst applies any pathloss correction to the slitlet.

        jwst skips the whole slitlet (uniform and point) when the source
        position, shifted as for the point-source cube, is outside that cube's grid.

        Parameters
        ----------
        shutter_config : str
            ``slit.shutter_state``.
        source_xpos, source_ypos : float, optional
            ``slit.source_xpos`` and ``slit.source_ypos``.

        Returns
        -------
        bool
            True if the correction is applied.
        """
        return rules.point_grid_position(shutter_config, source_xpos, source_ypos)[2]

    def pathloss_uniform(self, *, wavelength, shutter_config):
        """
        Extended-source pathloss correction jwst divides by.

        Parameters
        ----------
        wavelength : array_like
            Wavelength in micron.
        shutter_config : str
            ``slit.shutter_state`` (``x`` = fiducial shutter, ``1`` open, ``0`` closed).

        Returns
        -------
        ndarray
            MOS1x1 uniform pathloss if both neighbours of ``x`` are closed,
            the mean of MOS1x1 and MOS1x3 for a 2-shutter slitlet, else MOS1x3.
        """
        if len(shutter_config) == 2:
            return 0.5 * (cf.pathloss_uniform_1x1(wavelength) + cf.pathloss_uniform_1x3(wavelength))
        below, above = rules.neighbours_closed(shutter_config)
        if below and above:
            return cf.pathloss_uniform_1x1(wavelength)
        return cf.pathloss_uniform_1x3(wavelength)

    def pathloss_point(self, *, wavelength, xpos, ypos, shutter_config):
        """
        Point-source pathloss correction jwst divides by.

        Parameters
        ----------
        wavelength : array_like
            Wavelength in micron.
        xpos, ypos : float
            ``slit.source_xpos``, ``slit.source_ypos`` (shutter units).
        shutter_config : str
            ``slit.shutter_state``.

        Returns
        -------
        ndarray
            The correction; NaN where jwst applies none (source off the grid).
        """
        aperture, ygrid, inside = rules.point_grid_position(shutter_config, xpos, ypos)
        if not inside:
            return np.full(np.shape(wavelength), np.nan)
        if aperture == "1x1":
            return cf.pathloss_point_1x1(wavelength, xpos, ygrid)
        return cf.pathloss_point_1x3(wavelength, xpos, ygrid)

    # ------------------------------------------------------------ barshadow
    def barshadow(self, *, wavelength, slit_y, shutter_config, slit_yscale=None):
        """
        Bar-shadow correction jwst divides extended sources by.

        The shadow is assembled as jwst does: half a 1x1 shutter below the
        first shutter, one piece per shutter transition (1x3 between two open
        shutters, the matching 1x1 half next to a closed one, the data1x1
        minimum between two closed ones) and half a 1x1 shutter above the
        last, where jwst samples the 1x1 array one row (0.002 pitch) further
        out than its nominal position.

        Parameters
        ----------
        wavelength : array_like
            Wavelength in micron.
        slit_y : array_like
            Slit-frame y (the ``y`` output of the slit WCS
            ``detector -> slit_frame`` transform, 1 = one shutter height).
        shutter_config : str
            ``slit.shutter_state``.
        slit_yscale : float or None, optional
            ``slit.slit_yscale`` (pitch / open height); None -> 1.15 as jwst.

        Returns
        -------
        ndarray
            The bar-shadow transmission; NaN where ``slit_y`` or ``wavelength`` is NaN.
        """
        return rules.assembled_barshadow(wavelength, slit_y, shutter_config, slit_yscale)

    # --------------------------------------------------------------- photom
    def pixel_area_sr(self, *, quadrant, shutter_column, shutter_row):
        """
        Pixel solid angle (sr) jwst takes from the AREA file for the slitlet.

        Parameters
        ----------
        quadrant : int
            ``slit.quadrant``.
        shutter_column, shutter_row : int
            ``slit.xcen``, ``slit.ycen``.

        Returns
        -------
        ndarray
            ``pixarea [arcsec^2] * A2_TO_SR``.
        """
        area = cf.pixel_area_arcsec2(
            quadrant, shutter_column, shutter_row, self.filter, self.grating
        )
        return area * A2_TO_SR

    def photom_conversion(
        self, *, wavelength, quadrant, shutter_column, shutter_row, extended=True
    ):
        """
        Photom factor jwst multiplies by.

        Parameters
        ----------
        wavelength : array_like
            Wavelength in micron.
        quadrant : int
            ``slit.quadrant``.
        shutter_column, shutter_row : int
            ``slit.xcen``, ``slit.ycen``.
        extended : bool, optional
            True: (MJy/sr) per (DN/s), divided by the pixel solid angle; False:
            MJy per (DN/s), as for a POINT source.

        Returns
        -------
        ndarray
            ``PHOTMJ * relresponse(wavelength) [/ pixel_area_sr]``.
        """
        conv = self.photmj * cf.relresponse(wavelength, self.filter, self.grating)
        if extended:
            conv = conv / self.pixel_area_sr(
                quadrant=quadrant, shutter_column=shutter_column, shutter_row=shutter_row
            )
        return conv

    # ------------------------------------------------------------- totals
    def extended_factor(
        self,
        *,
        wavelength,
        x,
        y,
        detector,
        quadrant,
        shutter_column,
        shutter_row,
        slit_y,
        shutter_config,
        slit_yscale=None,
        source_xpos=0.0,
        source_ypos=0.0,
    ):
        """
        Factor F with surface brightness [MJy/sr] = (DN/s) * F for an extended source.

        This is flat_field -> pathloss (uniform) -> barshadow -> photom as
        jwst 3.0.0 applies them to an NRS_MSASPEC slitlet.

        Parameters
        ----------
        wavelength : array_like
            Wavelength in micron.
        x, y : array_like of int
            0-based full-frame pixel on ``detector``.
        detector : {"NRS1", "NRS2"}
            Detector.
        quadrant : int
            ``slit.quadrant``.
        shutter_column, shutter_row : int
            ``slit.xcen``, ``slit.ycen``.
        slit_y : array_like
            Slit-frame y of each pixel (see `barshadow`).
        shutter_config : str
            ``slit.shutter_state``.
        slit_yscale : float or None, optional
            ``slit.slit_yscale``.
        source_xpos, source_ypos : float, optional
            ``slit.source_xpos``, ``slit.source_ypos``: only decide whether jwst
            applies the pathloss correction at all (see `pathloss_applies`).

        Returns
        -------
        ndarray
            F in (MJy/sr) / (DN/s).
        """
        flat = self.flat(
            wavelength=wavelength,
            x=x,
            y=y,
            detector=detector,
            quadrant=quadrant,
            shutter_column=shutter_column,
            shutter_row=shutter_row,
        )
        if self.pathloss_applies(
            shutter_config=shutter_config, source_xpos=source_xpos, source_ypos=source_ypos
        ):
            pathloss = self.pathloss_uniform(wavelength=wavelength, shutter_config=shutter_config)
        else:
            pathloss = 1.0
        shadow = self.barshadow(
            wavelength=wavelength,
            slit_y=slit_y,
            shutter_config=shutter_config,
            slit_yscale=slit_yscale,
        )
        conv = self.photom_conversion(
            wavelength=wavelength,
            quadrant=quadrant,
            shutter_column=shutter_column,
            shutter_row=shutter_row,
            extended=True,
        )
        return conv / (flat * pathloss * shadow)

    def point_factor(
        self,
        *,
        wavelength,
        x,
        y,
        detector,
        quadrant,
        shutter_column,
        shutter_row,
        shutter_config,
        source_xpos,
        source_ypos,
    ):
        """
        Factor F with flux density [MJy per pixel] = (DN/s) * F for a POINT source.

        flat_field -> pathloss (point) -> photom (no bar shadow, no pixel area);
        the synthetic wavecorr offset is zero, so wavelengths are unchanged.

        Parameters
        ----------
        wavelength : array_like
            Wavelength in micron.
        x, y : array_like of int
            0-based full-frame pixel on ``detector``.
        detector : {"NRS1", "NRS2"}
            Detector.
        quadrant : int
            ``slit.quadrant``.
        shutter_column, shutter_row : int
            ``slit.xcen``, ``slit.ycen``.
        shutter_config : str
            ``slit.shutter_state``.
        source_xpos, source_ypos : float
            ``slit.source_xpos``, ``slit.source_ypos``.

        Returns
        -------
        ndarray
            F in MJy / (DN/s).
        """
        flat = self.flat(
            wavelength=wavelength,
            x=x,
            y=y,
            detector=detector,
            quadrant=quadrant,
            shutter_column=shutter_column,
            shutter_row=shutter_row,
        )
        pathloss = self.pathloss_point(
            wavelength=wavelength,
            xpos=source_xpos,
            ypos=source_ypos,
            shutter_config=shutter_config,
        )
        pathloss = np.where(np.isnan(pathloss), 1.0, pathloss)
        conv = self.photom_conversion(
            wavelength=wavelength,
            quadrant=quadrant,
            shutter_column=shutter_column,
            shutter_row=shutter_row,
            extended=False,
        )
        return conv / (flat * pathloss)
