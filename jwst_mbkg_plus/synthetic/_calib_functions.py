"""Closed-form functions behind the synthetic NIRSpec MOS calibration.

Every synthetic calibration reference file is written by sampling one of
these functions, and `~jwst_mbkg_plus.synthetic.calibration_truth.CalibrationTruth`
evaluates the same functions, so the two cannot drift apart.  All functions
are plain numpy, broadcast over their array arguments, and take wavelengths in
micron.

The functions are smooth (few-percent variations) so that jwst's linear
interpolations of the sampled files reproduce them to better than 1e-5, with
two exceptions that are deliberately *pixel-level*: the d-flat and s-flat
carry a small ``cos`` term in the integer detector pixel indices, and the
f-flat a small term in the integer shutter indices, so that an off-by-one in
the pixel or shutter wiring is visible.  jwst reads those files at the exact
pixel or shutter, without interpolation.
"""

import numpy as np

__all__ = [
    "MODE_PARAMETERS",
    "WAVE_MIN",
    "WAVE_MAX",
    "mode_parameters",
    "dflat_image",
    "dflat_fast",
    "sflat_image",
    "sflat_fast",
    "fflat_image",
    "fflat_fast",
    "pathloss_uniform_1x1",
    "pathloss_uniform_1x3",
    "pathloss_point_1x1",
    "pathloss_point_1x3",
    "barshadow_1x1",
    "barshadow_1x3",
    "relresponse",
    "pixel_area_arcsec2",
]

#: Wavelength span (micron) covered by every wavelength-dependent file.
WAVE_MIN = 0.6
WAVE_MAX = 5.3

#: Per-mode constants: nominal wavelength range (micron, as in the synthetic
#: wavelengthrange file), a phase that makes the mode-dependent functions
#: differ, PHOTMJ (MJy per DN/s) and a pixel-area scale.
MODE_PARAMETERS = {
    ("F170LP", "G235M"): {
        "wave_range": (1.66, 3.17),
        "phase": 0.4,
        "photmj": 3.0e-12,
        "area_scale": 1.0,
    },
    ("F290LP", "G395M"): {
        "wave_range": (2.87, 5.27),
        "phase": 1.7,
        "photmj": 2.2e-12,
        "area_scale": 1.03,
    },
    # Same band as G395M; a higher PHOTMJ because the high-resolution grating
    # spreads the same flux over ~3x more pixels (fewer DN/s per pixel).
    ("F290LP", "G395H"): {
        "wave_range": (2.87, 5.27),
        "phase": 3.3,
        "photmj": 6.0e-12,
        "area_scale": 1.01,
    },
    ("CLEAR", "PRISM"): {
        "wave_range": (0.6, 5.3),
        "phase": 2.6,
        "photmj": 4.1e-12,
        "area_scale": 0.98,
    },
}

_DETECTOR_PHASE = {"NRS1": 0.0, "NRS2": 1.3}

# Pixel area in arcsec^2 of a nominal 0.1 arcsec pixel.
_NOMINAL_PIXAR_A2 = 0.0110

# Bar-shadow shape: Gaussian dips of width _BAR_SIGMA (in shutter pitches)
# centred on the bars at +-0.5 pitch.
_BAR_SIGMA = 0.1


def mode_parameters(filter_name, grating):
    """
    Return the constants of one supported filter/grating mode.

    Parameters
    ----------
    filter_name : str
        Filter name, e.g. ``"F170LP"``.
    grating : str
        Grating name, e.g. ``"G235M"``.

    Returns
    -------
    dict
        Keys ``wave_range``, ``phase``, ``photmj``, ``area_scale``.

    Raises
    ------
    ValueError
        If the mode is not supported.
    """
    key = (str(filter_name).upper(), str(grating).upper())
    try:
        return MODE_PARAMETERS[key]
    except KeyError:
        raise ValueError(f"unsupported mode {key}; supported: {sorted(MODE_PARAMETERS)}") from None


def _detector_phase(detector):
    try:
        return _DETECTOR_PHASE[str(detector).upper()]
    except KeyError:
        raise ValueError(f"unknown detector {detector!r}; expected NRS1 or NRS2") from None


def _t(wavelength):
    """Wavelength mapped linearly to 0 at WAVE_MIN and 1 at WAVE_MAX."""
    return (np.asarray(wavelength, dtype=np.float64) - WAVE_MIN) / (WAVE_MAX - WAVE_MIN)


def _u(wavelength, filter_name, grating):
    """Wavelength mapped linearly to -1 .. 1 over the mode's nominal range."""
    lo, hi = mode_parameters(filter_name, grating)["wave_range"]
    return (np.asarray(wavelength, dtype=np.float64) - 0.5 * (lo + hi)) / (0.5 * (hi - lo))


def _norm_pixel(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return (x - 1023.5) / 1024.0, (y - 1023.5) / 1024.0


# ---------------------------------------------------------------- flats
def dflat_image(wavelength, x, y, detector):
    """
    Slowly varying d-flat: linear in wavelength, so two planes represent it exactly.

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.
    x, y : array_like
        0-based full-frame pixel indices on ``detector``.
    detector : {"NRS1", "NRS2"}
        Detector name.

    Returns
    -------
    ndarray
        ``A(x, y) + B(x, y) * t`` with ``t`` = 0 at 0.6 and 1 at 5.3 micron.
    """
    phi = _detector_phase(detector)
    xn, yn = _norm_pixel(x, y)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    a = (
        1.0
        + 0.02 * np.sin(2.0 * np.pi * (0.37 * xn + 0.21 * yn) + phi)
        + 0.004 * np.cos(2.1 * x + 3.7 * y + phi)
    )
    b = 0.03 * (0.8 * xn - 0.5 * yn) + 0.01 * np.sin(np.pi * yn + phi)
    return a + b * _t(wavelength)


def dflat_fast(wavelength, detector):
    """
    Fast-variation (1-D) component of the d-flat.

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.
    detector : {"NRS1", "NRS2"}
        Detector name.

    Returns
    -------
    ndarray
        ``1 + 0.01 sin(2 pi lambda / 0.9 + phase_detector)``.
    """
    lam = np.asarray(wavelength, dtype=np.float64)
    return 1.0 + 0.01 * np.sin(2.0 * np.pi * lam / 0.9 + _detector_phase(detector))


def sflat_image(x, y, detector, filter_name, grating):
    """
    Wavelength-independent (2-D) image component of the s-flat.

    Parameters
    ----------
    x, y : array_like
        0-based full-frame pixel indices on ``detector``.
    detector : {"NRS1", "NRS2"}
        Detector name.
    filter_name, grating : str
        The mode.

    Returns
    -------
    ndarray
        The s-flat image value.
    """
    phi = _detector_phase(detector) + mode_parameters(filter_name, grating)["phase"]
    xn, yn = _norm_pixel(x, y)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return (
        1.0
        + 0.015 * np.cos(np.pi * (0.6 * xn - 0.4 * yn) + phi)
        + 0.0025 * np.sin(1.3 * x - 2.9 * y + phi)
    )


def sflat_fast(wavelength, detector, filter_name, grating):
    """
    Fast-variation (1-D) component of the s-flat.

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.
    detector : {"NRS1", "NRS2"}
        Detector name.
    filter_name, grating : str
        The mode.

    Returns
    -------
    ndarray
        ``1 + 0.03 u + 0.008 cos(2 pi lambda / 0.7 + phase)``, ``u`` = -1 .. 1
        over the mode's nominal range.
    """
    lam = np.asarray(wavelength, dtype=np.float64)
    phi = _detector_phase(detector) + mode_parameters(filter_name, grating)["phase"]
    return (
        1.0 + 0.03 * _u(lam, filter_name, grating) + 0.008 * np.cos(2.0 * np.pi * lam / 0.7 + phi)
    )


def fflat_image(wavelength, quadrant, shutter_column, shutter_row, filter_name, grating):
    """
    Per-shutter f-flat image component: linear in wavelength.

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.
    quadrant : array_like of int
        MSA quadrant, 1 .. 4.
    shutter_column, shutter_row : array_like of int
        1-based MSA shutter column (1 .. 365) and row (1 .. 171), jwst's
        ``slit.xcen`` and ``slit.ycen``.
    filter_name, grating : str
        The mode.

    Returns
    -------
    ndarray
        The f-flat image value.
    """
    phi = mode_parameters(filter_name, grating)["phase"]
    q = np.asarray(quadrant, dtype=np.float64)
    col = np.asarray(shutter_column, dtype=np.float64)
    row = np.asarray(shutter_row, dtype=np.float64)
    a = (
        1.0
        + 0.02 * np.sin(np.pi * (1.1 * col / 365.0 + 0.7 * row / 171.0) + q + phi)
        + 0.003 * np.cos(1.7 * col + 2.3 * row + q)
    )
    b = 0.02 * np.cos(np.pi * col / 365.0 + 0.5 * q) - 0.01 * row / 171.0
    return a + b * _t(wavelength)


def fflat_fast(wavelength, quadrant, filter_name, grating):
    """
    Per-quadrant fast-variation (1-D) component of the f-flat.

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.
    quadrant : array_like of int
        MSA quadrant, 1 .. 4.
    filter_name, grating : str
        The mode.

    Returns
    -------
    ndarray
        ``1 + 0.02 sin(2 pi lambda / 1.3 + 0.7 q + phase) + 0.01 u``.
    """
    lam = np.asarray(wavelength, dtype=np.float64)
    q = np.asarray(quadrant, dtype=np.float64)
    phi = mode_parameters(filter_name, grating)["phase"]
    return (
        1.0
        + 0.02 * np.sin(2.0 * np.pi * lam / 1.3 + 0.7 * q + phi)
        + 0.01 * _u(lam, filter_name, grating)
    )


# ------------------------------------------------------------- pathloss
def pathloss_uniform_1x1(wavelength):
    """
    Uniform-source pathloss of the MOS1x1 aperture.

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.

    Returns
    -------
    ndarray
        ``0.86 + 0.05 t + 0.01 sin(2 pi lambda / 1.7)``.
    """
    lam = np.asarray(wavelength, dtype=np.float64)
    return 0.86 + 0.05 * _t(lam) + 0.01 * np.sin(2.0 * np.pi * lam / 1.7)


def pathloss_uniform_1x3(wavelength):
    """
    Uniform-source pathloss of the MOS1x3 aperture.

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.

    Returns
    -------
    ndarray
        ``0.91 - 0.03 t + 0.008 cos(2 pi lambda / 1.1)``.
    """
    lam = np.asarray(wavelength, dtype=np.float64)
    return 0.91 - 0.03 * _t(lam) + 0.008 * np.cos(2.0 * np.pi * lam / 1.1)


def _point_profile(xpos, ypos):
    x = np.asarray(xpos, dtype=np.float64)
    y = np.asarray(ypos, dtype=np.float64)
    return 1.0 - 0.05 * x**2 - 0.04 * y**2 + 0.01 * x


def pathloss_point_1x1(wavelength, xpos, ypos):
    """
    Point-source pathloss of the MOS1x1 aperture (linear in wavelength).

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.
    xpos, ypos : array_like
        Source position in the aperture grid, in shutter units (-0.5 .. 0.5).

    Returns
    -------
    ndarray
        ``(0.70 + 0.12 t) * (1 - 0.05 x^2 - 0.04 y^2 + 0.01 x)``.
    """
    return (0.70 + 0.12 * _t(wavelength)) * _point_profile(xpos, ypos)


def pathloss_point_1x3(wavelength, xpos, ypos):
    """
    Point-source pathloss of the MOS1x3 aperture grid (linear in wavelength).

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.
    xpos, ypos : array_like
        Position in the aperture grid: x in -0.5 .. 0.5, y in -1.5 .. 1.5.

    Returns
    -------
    ndarray
        ``(0.74 + 0.10 t) * (1 - 0.05 x^2 - 0.04 y^2 + 0.01 x)``.
    """
    return (0.74 + 0.10 * _t(wavelength)) * _point_profile(xpos, ypos)


# ------------------------------------------------------------ barshadow
def _bar_dip(y):
    y = np.asarray(y, dtype=np.float64)
    return np.exp(-0.5 * ((y - 0.5) / _BAR_SIGMA) ** 2) + np.exp(
        -0.5 * ((y + 0.5) / _BAR_SIGMA) ** 2
    )


def barshadow_1x1(y, wavelength):
    """
    Bar-shadow transmission of a single open shutter (the ``data1x1`` array).

    Parameters
    ----------
    y : array_like
        Position in shutter pitches from the shutter centre (-1 .. 1).
    wavelength : array_like
        Wavelength in micron.

    Returns
    -------
    ndarray
        ``1 - (0.35 + 0.05 t) * (g(y - 0.5) + g(y + 0.5))``, Gaussian dips of
        width 0.1 pitch on the bars; linear in wavelength.
    """
    return 1.0 - (0.35 + 0.05 * _t(wavelength)) * _bar_dip(y)


def barshadow_1x3(y, wavelength):
    """
    Bar-shadow transmission between open shutters (the ``data1x3`` array).

    Parameters
    ----------
    y : array_like
        Position in shutter pitches from the centre of the middle shutter (-1 .. 1).
    wavelength : array_like
        Wavelength in micron.

    Returns
    -------
    ndarray
        ``1 - (0.28 + 0.04 t) * (g(y - 0.5) + g(y + 0.5))``.
    """
    return 1.0 - (0.28 + 0.04 * _t(wavelength)) * _bar_dip(y)


# --------------------------------------------------------------- photom
def relresponse(wavelength, filter_name, grating):
    """
    Relative response of the photom table.

    Parameters
    ----------
    wavelength : array_like
        Wavelength in micron.
    filter_name, grating : str
        The mode.

    Returns
    -------
    ndarray
        ``1 + 0.1 u - 0.05 u^2 + 0.01 sin(2 pi lambda / 0.8 + phase)``.
    """
    lam = np.asarray(wavelength, dtype=np.float64)
    u = _u(lam, filter_name, grating)
    phi = mode_parameters(filter_name, grating)["phase"]
    return 1.0 + 0.1 * u - 0.05 * u**2 + 0.01 * np.sin(2.0 * np.pi * lam / 0.8 + phi)


def pixel_area_arcsec2(quadrant, shutter_column, shutter_row, filter_name, grating):
    """
    Pixel area in arcsec^2 for a slitlet (the ``pixarea`` column of the area file).

    Parameters
    ----------
    quadrant : array_like of int
        MSA quadrant, 1 .. 4.
    shutter_column, shutter_row : array_like of int
        1-based MSA shutter column and row.
    filter_name, grating : str
        The mode.

    Returns
    -------
    ndarray
        The area in arcsec^2, rounded to float32 as the file stores it.
    """
    scale = mode_parameters(filter_name, grating)["area_scale"]
    q = np.asarray(quadrant, dtype=np.float64)
    col = np.asarray(shutter_column, dtype=np.float64)
    row = np.asarray(shutter_row, dtype=np.float64)
    value = (
        _NOMINAL_PIXAR_A2
        * scale
        * (
            1.0
            + 0.02 * np.cos(np.pi * (col - 183.0) / 365.0 + 0.3 * q)
            + 0.01 * (row - 86.0) / 171.0
            + 0.005 * q
        )
    )
    return value.astype(np.float32).astype(np.float64)
