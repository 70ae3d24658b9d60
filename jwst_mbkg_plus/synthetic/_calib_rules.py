"""How jwst 3.0.0 selects and combines the sampled calibration functions.

Plain-numpy restatements of the selection rules of jwst's pathloss
(``jwst/pathloss/pathloss.py``) and the shadow assembly of its barshadow step
(``jwst/barshadow/bar_shadow.py``), written from their definitions and used by
`~jwst_mbkg_plus.synthetic.calibration_truth.CalibrationTruth`.
"""

import functools

import numpy as np

from . import _calib_functions as cf

__all__ = [
    "DEFAULT_SLIT_YSCALE",
    "neighbours_closed",
    "point_grid_position",
    "assembled_barshadow",
]

#: jwst's fallback ratio of shutter pitch to open height (``SLITRATIO``).
DEFAULT_SLIT_YSCALE = 1.15

_ROWS_PER_SHUTTER = 500  # barshadow rows per shutter pitch (CDELT2 = 0.002)


def neighbours_closed(shutter_config):
    """
    Return whether the shutters below and above the fiducial ``x`` are closed.

    Parameters
    ----------
    shutter_config : str
        ``slit.shutter_state``: ``x`` fiducial, ``1`` open, ``0`` closed.

    Returns
    -------
    below_closed, above_closed : bool
        As jwst's ``shutter_below_is_closed`` / ``shutter_above_is_closed``
        define them (a missing neighbour counts as closed).
    """
    ref = shutter_config.find("x")
    n = len(shutter_config)
    above = ref == n - 1 or shutter_config[ref + 1] == "0"
    below = ref == 0 or shutter_config[ref - 1] == "0"
    return below, above


def point_grid_position(shutter_config, xpos, ypos):
    """
    Aperture and grid position at which jwst reads the point-source pathloss cube.

    Parameters
    ----------
    shutter_config : str
        ``slit.shutter_state``.
    xpos, ypos : float
        ``slit.source_xpos``, ``slit.source_ypos``.

    Returns
    -------
    aperture : {"1x1", "1x3"}
        MOS1x1 if both neighbours are closed, else MOS1x3.
    ypos : float
        ``ypos`` shifted by -1 (only the shutter below closed) or +1 (only above).
    inside : bool
        Whether the position is inside the cube's grid; if not, jwst applies
        no pathloss correction (uniform or point) to the slitlet.
    """
    below, above = neighbours_closed(shutter_config)
    if below and above:
        aperture, ymin, nrows = "1x1", -0.5, 21
    else:
        aperture, ymin, nrows = "1x3", -1.5, 61
        if below and not above:
            ypos = ypos - 1.0
        elif above and not below:
            ypos = ypos + 1.0
    col = (xpos + 0.5) / 0.05
    row = (ypos - ymin) / 0.05
    inside = bool(0 <= col < 20 and 0 <= row < nrows - 1)
    return aperture, ypos, inside


@functools.cache
def _closed_closed_value():
    """jwst fills closed-closed pieces with the minimum of the stored data1x1."""
    y = -1.0 + 0.002 * np.arange(1001)[:, np.newaxis]
    wave = cf.WAVE_MIN + 0.047 * np.arange(101)[np.newaxis, :]
    return float(np.min(cf.barshadow_1x1(y, wave).astype(np.float32)))


def assembled_barshadow(wavelength, slit_y, shutter_config, slit_yscale=None):
    """
    Bar-shadow transmission as jwst assembles and samples it.

    Half a 1x1 shutter below the first shutter, one piece per shutter
    transition (1x3 between two open shutters, the matching 1x1 half next to
    a closed one, the data1x1 minimum between two closed ones; the first
    transition always starts "open") and half a 1x1 shutter above the last,
    which jwst samples one row (0.002 pitch) further out than nominal.  The
    assembled array is read at ``u = src_loc + 1 + slit_y / slit_yscale``
    shutter pitches, clamped to its edges.

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.
    slit_y : array_like
        Slit-frame y (``detector -> slit_frame``), 1 = one shutter height.
    shutter_config : str
        ``slit.shutter_state``.
    slit_yscale : float or None, optional
        ``slit.slit_yscale``; None -> `DEFAULT_SLIT_YSCALE`.

    Returns
    -------
    ndarray
        Transmission; NaN where ``slit_y`` or ``wavelength`` is NaN.
    """
    yscale = DEFAULT_SLIT_YSCALE if slit_yscale is None else float(slit_yscale)
    n = len(shutter_config)
    u = shutter_config.find("x") + 1 + np.asarray(slit_y, dtype=np.float64) / yscale
    u, wave = np.broadcast_arrays(u, np.asarray(wavelength, dtype=np.float64))
    bad = ~(np.isfinite(u) & np.isfinite(wave))
    # map_coordinates(mode="nearest") clamps to the array edges.
    wave = np.clip(np.where(bad, cf.WAVE_MIN, wave), cf.WAVE_MIN, cf.WAVE_MAX)
    umax = (n * _ROWS_PER_SHUTTER + _ROWS_PER_SHUTTER - 1) / _ROWS_PER_SHUTTER
    u = np.clip(np.where(bad, 0.0, u), 0.0, umax)
    seg = np.floor(u).astype(int)
    frac = u - seg

    out = np.empty(u.shape, dtype=np.float64)
    first = seg < 1
    out[first] = cf.barshadow_1x1(u[first] - 1.0, wave[first])
    last = seg >= n
    out[last] = cf.barshadow_1x1(frac[last] + 1.0 / _ROWS_PER_SHUTTER, wave[last])
    status = ["closed" if c == "0" else "open" for c in shutter_config]
    for k in range(1, n):
        sel = seg == k
        pair = ("open" if k == 1 else status[k - 1], status[k])
        if pair == ("open", "open"):
            out[sel] = cf.barshadow_1x3(frac[sel] - 1.0, wave[sel])
        elif pair == ("open", "closed"):
            out[sel] = cf.barshadow_1x1(frac[sel], wave[sel])
        elif pair == ("closed", "open"):
            out[sel] = cf.barshadow_1x1(frac[sel] - 1.0, wave[sel])
        else:
            out[sel] = _closed_closed_value()
    out[bad] = np.nan
    return out
