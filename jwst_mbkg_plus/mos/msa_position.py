"""Where a NIRSpec MOS slitlet sits on the MSA, and where its source sits in it.

Both come from the slit's own WCS (assign_wcs + extract_2d), so they hold for
the real instrument model and for the synthetic one alike.
"""

import logging
from typing import NamedTuple

import numpy as np

from jwst_mbkg_plus.io.slits import is_msa_background

__all__ = ["SlitPosition", "slit_position", "source_distance"]

log = logging.getLogger(__name__)


class SlitPosition(NamedTuple):
    """MSA-frame position of a slit's centre, and its quadrant."""

    x: float
    """MSA-frame x [m] (dispersion direction)."""
    y: float
    """MSA-frame y [m] (along the slits)."""
    quadrant: int
    """MSA quadrant, 1..4 (0 if unknown)."""


def slit_position(slit):
    """
    MSA-frame position of a slit's centre.

    Parameters
    ----------
    slit : `~stdatamodels.jwst.datamodels.SlitModel`
        A MOS slit with its WCS.

    Returns
    -------
    SlitPosition
        NaN coordinates if the slit has no usable WCS.
    """
    quadrant = int(getattr(slit, "quadrant", 0) or 0)
    wcs = slit.meta.wcs
    try:
        slit2msa = wcs.get_transform("slit_frame", "msa_frame")
        ymin = getattr(slit, "slit_ymin", None)
        ymax = getattr(slit, "slit_ymax", None)
        y_mid = 0.5 * (ymin + ymax) if ymin is not None and ymax is not None else 0.0
        x, y, _ = slit2msa(0.0, y_mid, 2e-6)
    except Exception as err:  # noqa: BLE001 - any WCS failure means "position unknown"
        log.warning("No MSA position for slit %s (%s); it gets the mean spatial factor.",
                    slit.name, err)
        return SlitPosition(np.nan, np.nan, quadrant)
    return SlitPosition(float(x), float(y), quadrant)


def source_distance(slit, *, column_step=16, signed=False):
    """
    Distance of each pixel from the slit's source along the slit.

    Parameters
    ----------
    slit : `~stdatamodels.jwst.datamodels.SlitModel`
        A MOS slit with its WCS and ``source_ypos`` (slit frame).
    column_step : int, optional
        The WCS is evaluated every ``column_step`` columns (and at the last)
        and interpolated linearly in between: the slit position of a row
        changes slowly along the dispersion, and the full WCS costs more than
        the rest of the scaling. 1 evaluates every pixel.
    signed : bool, optional
        Return ``y_slit - source_ypos`` instead of its absolute value.

    Returns
    -------
    ndarray
        ``|y_slit - source_ypos|`` per pixel (slit-frame units, NaN off the
        slit); ``inf`` everywhere for a background slitlet.
    """
    shape = slit.data.shape
    if is_msa_background(slit):
        return np.full(shape, np.inf)
    det2slit = slit.meta.wcs.get_transform("detector", "slit_frame")
    sampled = np.unique(np.r_[np.arange(0, shape[1], max(1, int(column_step))), shape[1] - 1])
    rows, columns = np.meshgrid(np.arange(shape[0]), sampled, indexing="ij")
    _, y_sampled, _ = det2slit(columns, rows)
    y_sampled = np.asarray(y_sampled, dtype=float)
    if sampled.size == shape[1]:
        y_slit = y_sampled
    else:
        every = np.arange(shape[1])
        y_slit = np.vstack([np.interp(every, sampled, row) for row in y_sampled])
    source_y = getattr(slit, "source_ypos", None)
    source_y = 0.0 if source_y is None else float(source_y)
    offset = y_slit - source_y
    return offset if signed else np.abs(offset)
