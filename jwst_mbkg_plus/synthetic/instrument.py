"""Synthetic NIRSpec MOS instrument model: the WCS reference files assign_wcs needs.

The optical chain is a deliberately simple, plausible NIRSpec:

* ``fpa``: detector pixels -> metres in the focal plane. NRS1 and NRS2 sit side by
  side along the dispersion, 145 px apart; NRS2 is rotated by 180 degrees, so in
  DMS orientation the wavelength grows with x on both detectors.
* ``camera``: focal plane metres -> unitless direction (focal length 0.15 m).
* ``disperser``: a grating at order -1 with zero alignment angles; the groove
  density sets the dispersion (G235M ~1.3 nm/px, G395M ~2.2 nm/px). The
  high-resolution G395H (~0.66 nm/px at 4 micron) is turned by a GWA tilt
  ``tilt_y`` so that its mid-band leaves along the camera axis; its ~3800 px
  spectra are longer than a detector and straddle the NRS1/NRS2 gap. The prism
  uses the same tilt to bring its deviated beam back on axis.
* ``collimator``: MSA metres <-> unitless direction (focal length 0.35 m), so a
  shutter pitch of 204 micron spans about 4.9 detector pixels along the slit.
* ``msa``: four quadrants of 365 x 171 shutters (pitch 105 x 204 micron).
* ``fore``: identity from MSA to the OTE image plane; ``ote``: metre -> arcsec.

Every quantity the scene generator needs to place slitlets is a module constant,
and :func:`quadrant_origin` / :func:`shutter_center_msa` give the MSA position of
a shutter with the same convention as the ``msa`` reference file.
"""

import logging

import numpy as np
from stdatamodels.jwst.transforms.models import (
    DirCos2Unitless,
    Rotation3DToGWA,
    Snell,
    Unitless2DirCos,
)

__all__ = [
    "CAMERA_FOCAL_LENGTH",
    "COLLIMATOR_FOCAL_LENGTH",
    "DETECTORS",
    "DETECTOR_GAP",
    "GRATINGS",
    "INSTRUMENT_REFTYPES",
    "MSA_PITCH",
    "MSA_PITCH_TO_SIZE",
    "N_COLUMNS",
    "N_ROWS",
    "OTE_SCALE",
    "PARTIAL_MIN_FRACTION",
    "PIXEL_SIZE",
    "PRISM_KCOEF",
    "PRISM_LCOEF",
    "PRISM_TCOEF",
    "QUADRANT_GAP",
    "V2V3_CENTER",
    "detector_fractions",
    "detector_of_shutter",
    "dispersed_x",
    "is_prism",
    "quadrant_origin",
    "shutter_center_msa",
    "spectrum_pixel_range",
]

log = logging.getLogger(__name__)

#: Detector pixel size [m].
PIXEL_SIZE = 18e-6
#: Gap between NRS1 and NRS2 [pixels].
DETECTOR_GAP = 145
#: Camera focal length [m].
CAMERA_FOCAL_LENGTH = 0.15
#: Collimator focal lengths (x = dispersion, y = along slit) [m].
COLLIMATOR_FOCAL_LENGTH = (0.25, 0.35)
#: Shutter pitch (x = dispersion, y = along slit) [m].
MSA_PITCH = (105e-6, 204e-6)
#: Pitch / open size of a shutter (jwst's MSA_SLIT_SCALES).
MSA_PITCH_TO_SIZE = (1.35, 1.15)
#: Shutters per quadrant along the dispersion ("shutter_row", 1..365).
N_ROWS = 365
#: Shutters per quadrant along the slit ("shutter_column", 1..171).
N_COLUMNS = 171
#: Gap between quadrants on the MSA [m].
QUADRANT_GAP = 2.0e-3
#: Detectors modelled.
DETECTORS = ("NRS1", "NRS2")
#: Pointing of the MSA centre in V2/V3 [arcsec].
V2V3_CENTER = (378.6, -428.6)
#: Plate scale at the MSA / OTE image plane [arcsec / m].
OTE_SCALE = 2600.0

#: Smallest fraction of a spectrum longer than a detector (G395H) that must
#: fall on the detector a slitlet is placed for (30 px from its edges).
PARTIAL_MIN_FRACTION = 0.3

#: Outgoing direction cosine of mid-band light from a centred shutter.
_ALPHA_MID = 0.2174
#: Real CaF2 Sellmeier coefficients of the NIRSpec prism (CRDS
#: ``jwst_nirspec_disperser_0065.asdf``, read from the Snell model in the WCS of
#: real CEERS PRISM cutouts): n^2 = 1 + sum K_i l^2 / (l^2 - L_i), l in micron.
PRISM_KCOEF = (1.03293407, 0.01233043, 4.09337187)
PRISM_LCOEF = (5.45608159e-3, 3.88174430e-2, 1.26400781e3)
PRISM_TCOEF = (-2.66e-5, 0.0, 0.0, 0.0, 0.0, 0.0)

#: Dispersers: filter, wavelength range [m] and spectral order of each mode;
#: gratings have a groove density [1/m], the prism its angle [deg], glass and
#: the GWA tilt ``tilt_y`` [deg] that brings its deviated beam back on axis.
#: G395H's groove density gives 0.66 nm/px at 4.0 micron for a centred shutter
#: (real G395H: R ~2700, ~0.66 nm/px); so large a groove density sends mid-band
#: far off the camera axis, and its ``tilt_y`` turns the grating so that
#: mid-band (4.07 micron) of a centred shutter again lands between the
#: detectors. Both angles were solved with :func:`dispersed_x`.
#: The prism angle is steeper than the real -16.5 deg because the synthetic
#: camera is shorter: with -28.0 deg, 0.6-5.3 micron span ~400 px and dlambda
#: per pixel follows the real curve (0.0044 / 0.0205 / 0.0075 micron at
#: 0.6 / 1.54 / 5.3 micron).
GRATINGS = {
    "G235M": {
        "filter": "F170LP",
        "groovedensity": _ALPHA_MID / 2.415e-6,
        "wrange": (1.66e-6, 3.17e-6),
        "order": -1,
    },
    "G395M": {
        "filter": "F290LP",
        "groovedensity": _ALPHA_MID / 4.07e-6,
        "wrange": (2.87e-6, 5.27e-6),
        "order": -1,
    },
    "G395H": {
        "filter": "F290LP",
        "groovedensity": 1.585e5,
        "wrange": (2.87e-6, 5.27e-6),
        "order": -1,
        "tilt_y": -12.6567,
    },
    "PRISM": {
        "filter": "CLEAR",
        "wrange": (0.6e-6, 5.3e-6),
        "order": 0,
        "angle": -28.0,
        "tilt_y": 48.18,
        "kcoef": PRISM_KCOEF,
        "lcoef": PRISM_LCOEF,
        "tcoef": PRISM_TCOEF,
        "tref": 35.0,
        "pref": 0.0,
    },
}
#: Unitless camera direction of the optical axis: mid-band of a centred
#: shutter falls in the middle of the focal plane (the detector gap).
U0 = _ALPHA_MID / np.sqrt(1 - _ALPHA_MID**2)

#: Reference types written by
#: :func:`~jwst_mbkg_plus.synthetic.instrument_refs.build_instrument_refs`.
INSTRUMENT_REFTYPES = (
    "fpa",
    "camera",
    "collimator",
    "disperser",
    "msa",
    "fore",
    "ote",
    "wavelengthrange",
    "msaoper",
)


def quadrant_origin(quadrant):
    """
    Return the MSA position of shutter (row 1, column 1) of a quadrant.

    Quadrants 1 and 2 are at negative MSA x, 3 and 4 at positive x; 1 and 3 at
    positive y, 2 and 4 at negative y.

    Parameters
    ----------
    quadrant : int
        Quadrant number, 1 to 4.

    Returns
    -------
    tuple of float
        (x, y) in metres.
    """
    if quadrant not in (1, 2, 3, 4):
        raise ValueError(f"quadrant must be 1..4, got {quadrant!r}")
    width = N_ROWS * MSA_PITCH[0]
    height = N_COLUMNS * MSA_PITCH[1]
    half_gap = QUADRANT_GAP / 2
    x0 = -half_gap - width + MSA_PITCH[0] / 2 if quadrant in (1, 2) else half_gap + MSA_PITCH[0] / 2
    y0 = (
        half_gap + MSA_PITCH[1] / 2 if quadrant in (1, 3) else -half_gap - height + MSA_PITCH[1] / 2
    )
    return x0, y0


def shutter_center_msa(quadrant, row, column):
    """
    Return the MSA position of a shutter centre.

    Parameters
    ----------
    quadrant : int
        Quadrant, 1 to 4.
    row : int or ndarray
        ``shutter_row`` (1..365, along the dispersion).
    column : int or ndarray
        ``shutter_column`` (1..171, along the slit).

    Returns
    -------
    tuple of float or ndarray
        (x, y) in metres.
    """
    x0, y0 = quadrant_origin(quadrant)
    return x0 + (np.asarray(row) - 1) * MSA_PITCH[0], y0 + (np.asarray(column) - 1) * MSA_PITCH[1]


def is_prism(grating):
    """
    Whether a disperser of `GRATINGS` is the prism.

    Parameters
    ----------
    grating : str
        Disperser name.

    Returns
    -------
    bool
        True for the prism.
    """
    return "groovedensity" not in GRATINGS[grating]


def dispersed_x(x_msa, wavelength, grating, y_msa=0.0):
    """
    Focal-plane x [m] of a wavelength from an MSA position.

    The untilted gratings use the grating equation with the synthetic zero
    angles; the tilted grating (G395H) and the prism go through the same models
    jwst's WCS uses (GWA rotation with ``tilt_y``, the grating equation of
    `~gwcs.spectroscopy.AnglesFromGratingEquation3D` or
    `~stdatamodels.jwst.transforms.models.Snell`, rotation back).

    Parameters
    ----------
    x_msa : float or ndarray
        MSA x position [m].
    wavelength : float or ndarray
        Wavelength [m].
    grating : str
        Disperser, a key of `GRATINGS`.
    y_msa : float or ndarray, optional
        MSA y position [m] (the gratings ignore it).

    Returns
    -------
    ndarray
        Focal-plane x [m] (0 = between the detectors).
    """
    u_in = np.asarray(x_msa, dtype=float) / COLLIMATOR_FOCAL_LENGTH[0]
    lam = np.asarray(wavelength, dtype=float)
    p = GRATINGS[grating]
    if not is_prism(grating) and "tilt_y" not in p:
        groove = p["groovedensity"]
        alpha_in = u_in / np.sqrt(1 + u_in**2)
        alpha_out = groove * lam - alpha_in
        u_out = alpha_out / np.sqrt(1 - alpha_out**2)
        return (u_out - U0) * CAMERA_FOCAL_LENGTH

    v_in = np.asarray(y_msa, dtype=float) / COLLIMATOR_FOCAL_LENGTH[1]
    rotation = Rotation3DToGWA([0.0, 0.0, 0.0, p["tilt_y"]], axes_order="xyzy")
    u_in, v_in, lam = np.broadcast_arrays(u_in, v_in, lam)
    a, b, g = rotation(*Unitless2DirCos()(u_in, v_in))
    if is_prism(grating):
        snell = Snell(
            p["angle"], p["kcoef"], p["lcoef"], p["tcoef"], p["tref"], p["pref"], 37.0, p["pref"]
        )
        a, b, g = snell(lam, a, b, g)
    else:
        # jwst's grating equation in the GWA frame, order -1 (alpha's sign flipped
        # on input): alpha_out = G lambda - alpha_in, beta_out = -beta_in.
        a, b = p["groovedensity"] * lam - a, -b
        with np.errstate(invalid="ignore"):
            g = np.sqrt(1 - a**2 - b**2)
    u_out, _ = DirCos2Unitless()(*rotation.inverse(a, b, g))
    return (u_out - U0) * CAMERA_FOCAL_LENGTH


def _fpa_x_to_detector(x_fpa):
    """Focal-plane x [m] -> (detector name array, DMS x pixel)."""
    offset = (2048 + DETECTOR_GAP) / 2
    pix = np.asarray(x_fpa) / PIXEL_SIZE
    x1 = pix + offset + 1023.5
    x2 = pix - offset + 1023.5
    return x1, x2


def spectrum_pixel_range(quadrant, row, grating, column=None):
    """
    Approximate DMS x range of a shutter's spectrum on each detector.

    A fast analytic approximation used to choose shutters; the real geometry is
    jwst's WCS built from the reference files. The gratings' helper ignores the
    small y dependence; the prism's spectra shift by up to ~40 px along the
    quadrant's columns, so without ``column`` the range covers all of them.

    Parameters
    ----------
    quadrant : int
        Quadrant, 1 to 4.
    row : int
        ``shutter_row`` (1..365).
    grating : str
        Grating name, a key of `GRATINGS`.
    column : int or None, optional
        ``shutter_column`` (1..171); None: the envelope over the quadrant's
        first, middle and last columns.

    Returns
    -------
    dict
        ``{"NRS1": (xmin, xmax), "NRS2": (xmin, xmax)}`` in DMS pixels, not
        clipped to the detector.
    """
    columns = np.array([1, (N_COLUMNS + 1) // 2, N_COLUMNS] if column is None else [column])
    x_msa, y_msa = shutter_center_msa(quadrant, row, columns)
    # x grows monotonically with wavelength: the range ends give the pixel range.
    lam = np.array(GRATINGS[grating]["wrange"])[:, np.newaxis]
    x_fpa = dispersed_x(x_msa, lam, grating, y_msa)
    x1, x2 = _fpa_x_to_detector(x_fpa)
    return {"NRS1": (float(x1.min()), float(x1.max())), "NRS2": (float(x2.min()), float(x2.max()))}


def detector_of_shutter(quadrant, row, grating, *, margin=20):
    """
    Return the detector a shutter's whole spectrum falls on, or None.

    Parameters
    ----------
    quadrant : int
        Quadrant, 1 to 4.
    row : int
        ``shutter_row`` (1..365).
    grating : str
        Grating name.
    margin : float, optional
        Pixels kept free at the detector edges.

    Returns
    -------
    str or None
        "NRS1", "NRS2", or None if the spectrum is cut by the gap or an edge.
    """
    ranges = spectrum_pixel_range(quadrant, row, grating)
    for det, (lo, hi) in ranges.items():
        if lo >= margin and hi <= 2047 - margin:
            return det
    return None




def detector_fractions(quadrant, row, grating, *, margin=30):
    """
    Fraction of a shutter's spectrum that falls on each detector.

    Parameters
    ----------
    quadrant : int
        Quadrant, 1 to 4.
    row : int or array of int
        ``shutter_row`` (1..365); an array evaluates all rows at once.
    grating : str
        Grating name.
    margin : float, optional
        Pixels at the detector edges that do not count.

    Returns
    -------
    dict
        ``{"NRS1": fraction, "NRS2": fraction}`` of the spectrum's pixel span
        (0..1, the envelope over the quadrant's first, middle and last columns
        as in `spectrum_pixel_range`), a float or an array like ``row``; the
        rest is in the gap or beyond an outer edge.
    """
    rows = np.atleast_1d(np.asarray(row))[:, np.newaxis]
    columns = np.array([1, (N_COLUMNS + 1) // 2, N_COLUMNS])[np.newaxis, :]
    x_msa, y_msa = shutter_center_msa(quadrant, rows, columns)
    lam = np.array(GRATINGS[grating]["wrange"])[:, np.newaxis, np.newaxis]
    x1, x2 = _fpa_x_to_detector(dispersed_x(x_msa, lam, grating, y_msa))
    out = {}
    for det, x in (("NRS1", x1), ("NRS2", x2)):
        lo, hi = x.min(axis=(0, 2)), x.max(axis=(0, 2))
        on = np.clip(np.minimum(hi, 2047 - margin) - np.maximum(lo, margin), 0.0, None)
        frac = on / (hi - lo)
        out[det] = frac if np.ndim(row) else float(frac[0])
    return out
