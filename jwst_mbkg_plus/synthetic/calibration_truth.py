"""The true calibration factors of the synthetic instrument, evaluated at any pixel."""

import logging

import numpy as np

from jwst_mbkg_plus.synthetic.calibration import A2_TO_SR, check_detector

from . import _calib_functions as cf
from . import _calib_rules as rules

__all__ = [
    "CalibrationTruth",
]

log = logging.getLogger(__name__)


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
        detector = check_detector(detector)
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
