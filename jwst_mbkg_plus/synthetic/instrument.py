"""Synthetic NIRSpec MOS instrument model: the WCS reference files assign_wcs needs.

The optical chain is a deliberately simple, plausible NIRSpec:

* ``fpa``: detector pixels -> metres in the focal plane. NRS1 and NRS2 sit side by
  side along the dispersion, 145 px apart; NRS2 is rotated by 180 degrees, so in
  DMS orientation the wavelength grows with x on both detectors.
* ``camera``: focal plane metres -> unitless direction (focal length 0.15 m).
* ``disperser``: a grating at order -1 with zero alignment angles; the groove
  density sets the dispersion (G235M ~1.1 nm/px, G395M ~1.8 nm/px).
* ``collimator``: MSA metres <-> unitless direction (focal length 0.35 m), so a
  shutter pitch of 204 micron spans about 4.9 detector pixels along the slit.
* ``msa``: four quadrants of 365 x 171 shutters (pitch 105 x 204 micron).
* ``fore``: identity from MSA to the OTE image plane; ``ote``: metre -> arcsec.

Every quantity the scene generator needs to place slitlets is a module constant,
and :func:`quadrant_origin` / :func:`shutter_center_msa` give the MSA position of
a shutter with the same convention as the ``msa`` reference file.
"""

import json
import logging
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.modeling import models
from stdatamodels.jwst import datamodels
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
    "FAILED_OPEN",
    "GRATINGS",
    "INSTRUMENT_REFTYPES",
    "MSA_PITCH",
    "MSA_PITCH_TO_SIZE",
    "N_COLUMNS",
    "N_ROWS",
    "OTE_SCALE",
    "PIXEL_SIZE",
    "PRISM_KCOEF",
    "PRISM_LCOEF",
    "PRISM_TCOEF",
    "QUADRANT_GAP",
    "V2V3_CENTER",
    "build_instrument_refs",
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
_U0 = _ALPHA_MID / np.sqrt(1 - _ALPHA_MID**2)

#: Reference types written by :func:`build_instrument_refs`.
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

_USEAFTER = "2022-01-01T00:00:00"
_AUTHOR = "jwst_mbkg_plus.synthetic"


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

    The gratings use the grating equation with the synthetic zero angles; the
    prism goes through the same models jwst's WCS uses (GWA rotation with
    ``tilt_y``, `~stdatamodels.jwst.transforms.models.Snell`, rotation back).

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
    if not is_prism(grating):
        groove = GRATINGS[grating]["groovedensity"]
        alpha_in = u_in / np.sqrt(1 + u_in**2)
        alpha_out = groove * lam - alpha_in
        u_out = alpha_out / np.sqrt(1 - alpha_out**2)
        return (u_out - _U0) * CAMERA_FOCAL_LENGTH

    p = GRATINGS[grating]
    v_in = np.asarray(y_msa, dtype=float) / COLLIMATOR_FOCAL_LENGTH[1]
    rotation = Rotation3DToGWA([0.0, 0.0, 0.0, p["tilt_y"]], axes_order="xyzy")
    snell = Snell(
        p["angle"], p["kcoef"], p["lcoef"], p["tcoef"], p["tref"], p["pref"], 37.0, p["pref"]
    )
    u_in, v_in, lam = np.broadcast_arrays(u_in, v_in, lam)
    a, b, g = rotation(*Unitless2DirCos()(u_in, v_in))
    a, b, g = snell(lam, a, b, g)
    u_out, _ = DirCos2Unitless()(*rotation.inverse(a, b, g))
    return (u_out - _U0) * CAMERA_FOCAL_LENGTH


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


def _set_ref_meta(model, *, description, exp_type="N/A", p_exptype="NRS_MSASPEC|"):
    model.meta.description = description
    model.meta.author = _AUTHOR
    model.meta.pedigree = "DUMMY"
    model.meta.useafter = _USEAFTER
    model.meta.telescope = "JWST"
    model.meta.instrument.name = "NIRSPEC"
    model.meta.exposure.type = exp_type
    model.meta.exposure.p_exptype = p_exptype
    model.meta.instrument.p_detector = "NRS1|NRS2|"


def _fpa_model(detector):
    offset = (2048 + DETECTOR_GAP) / 2 * PIXEL_SIZE
    if detector == "NRS1":
        mx = models.Shift(-1023.5) | models.Scale(PIXEL_SIZE) | models.Shift(-offset)
        my = models.Shift(-1023.5) | models.Scale(PIXEL_SIZE)
    else:
        # SCA coordinates of NRS2 are rotated by 180 deg with respect to DMS.
        mx = models.Shift(-1023.5) | models.Scale(-PIXEL_SIZE) | models.Shift(offset)
        my = models.Shift(-1023.5) | models.Scale(-PIXEL_SIZE)
    model = mx & my
    model.name = f"fpa_{detector.lower()}"
    return model


def _write_fpa(path):
    model = datamodels.FPAModel(nrs1_model=_fpa_model("NRS1"), nrs2_model=_fpa_model("NRS2"))
    _set_ref_meta(model, description="Synthetic NIRSpec FPA: pixels -> metres")
    model.meta.input_units = u.pix
    model.meta.output_units = u.m
    model.save(path)


def _write_camera(path):
    f = CAMERA_FOCAL_LENGTH
    # +y: slit_y decreases with detector y, as on the real NRS1/NRS2 (DMS orientation).
    transform = (models.Scale(1 / f) & models.Scale(1 / f)) | (
        models.Shift(_U0) & models.Shift(0.0)
    )
    transform.name = "camera"
    model = datamodels.CameraModel(model=transform)
    _set_ref_meta(model, description="Synthetic NIRSpec camera: metres -> unitless")
    model.meta.input_units = u.m
    model.meta.output_units = u.dimensionless_unscaled
    model.save(path)


def _write_collimator(path):
    fx, fy = COLLIMATOR_FOCAL_LENGTH
    transform = models.Scale(fx) & models.Scale(fy)
    transform.name = "collimator"
    model = datamodels.CollimatorModel(model=transform)
    _set_ref_meta(model, description="Synthetic NIRSpec collimator: unitless <-> MSA metres")
    model.meta.input_units = u.dimensionless_unscaled
    model.meta.output_units = u.m
    model.save(path)


def _write_disperser(path, grating):
    tilt = {
        "tilt_model": models.Polynomial1D(0, c0=0.0),
        "zeroreadings": [0.0],
        "temperatures": [40.0],
        "unit": "arcsec",
    }
    p = GRATINGS[grating]
    common = {
        "theta_x": 0.0,
        "theta_y": 0.0,
        "theta_z": 0.0,
        "gwa_tiltx": dict(tilt),
        "gwa_tilty": dict(tilt),
    }
    if is_prism(grating):
        # The fields jwst's Snell model reads; no groove density.
        model = datamodels.DisperserModel(
            angle=float(p["angle"]),
            kcoef=list(p["kcoef"]),
            lcoef=list(p["lcoef"]),
            tcoef=list(p["tcoef"]),
            pref=float(p["pref"]),
            tref=float(p["tref"]),
            **common,
        )
        model.tilt_y = float(p["tilt_y"])
        model.wbound = list(p["wrange"])
        description = f"Synthetic NIRSpec {grating} (CaF2, real Sellmeier coefficients)"
    else:
        model = datamodels.DisperserModel(
            groovedensity=float(p["groovedensity"]),
            angle=0.0,
            kcoef=[0.0, 0.0, 0.0],
            lcoef=[0.0, 0.0, 0.0],
            tcoef=[0.0] * 6,
            pref=0.0,
            tref=35.0,
            **common,
        )
        model.tilt_y = 0.0
        description = f"Synthetic NIRSpec {grating} grating"
    model.tilt_x = 0.0
    _set_ref_meta(model, description=description)
    model.meta.instrument.grating = grating
    model.meta.instrument.p_grating = f"{grating}|"
    model.save(path)


def _msa_table(xc, yc, sizex, sizey):
    dtype = [
        ("SLITID", ">i4"),
        ("XC", ">f8"),
        ("YC", ">f8"),
        ("SIZEX", ">f8"),
        ("SIZEY", ">f8"),
    ]
    table = np.zeros(len(xc), dtype=dtype)
    table["SLITID"] = np.arange(1, len(xc) + 1)
    table["XC"] = xc
    table["YC"] = yc
    table["SIZEX"] = sizex
    table["SIZEY"] = sizey
    return table


def _write_msa(path):
    rows, cols = np.meshgrid(np.arange(1, N_ROWS + 1), np.arange(1, N_COLUMNS + 1))
    # Table index = (column - 1) * 365 + (row - 1), as jwst's shutter_id - 1.
    xc = ((rows - 1) * MSA_PITCH[0]).ravel()
    yc = ((cols - 1) * MSA_PITCH[1]).ravel()
    sizex = MSA_PITCH[0] / MSA_PITCH_TO_SIZE[0]
    sizey = MSA_PITCH[1] / MSA_PITCH_TO_SIZE[1]
    models_, data = {}, {}
    for q in (1, 2, 3, 4):
        x0, y0 = quadrant_origin(q)
        m = models.Shift(x0) & models.Shift(y0)
        m.name = f"msa_q{q}"
        models_[f"Q{q}"] = m
        data[f"Q{q}"] = _msa_table(xc, yc, np.full(xc.size, sizex), np.full(xc.size, sizey))
    # Fixed slits (quadrant 5): S200A1, S200A2, S400A1, S1600A1, S200B1 in the centre.
    fs_x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0]) * 1e-3
    fs_y = np.array([0.5, -0.5, 0.0, 0.5, -0.5]) * 1e-3
    fs_w = np.array([0.2, 0.2, 0.4, 1.6, 0.2]) / OTE_SCALE
    fs_h = np.array([3.3, 3.3, 3.8, 1.6, 3.3]) / OTE_SCALE
    models_["Q5"] = models.Shift(0.0) & models.Shift(0.0)
    data["Q5"] = _msa_table(fs_x, fs_y, fs_w / 2, fs_h / 2)
    model = datamodels.MSAModel(models=models_, data=data)
    _set_ref_meta(model, description="Synthetic NIRSpec MSA: 4 x 365 x 171 shutters")
    model.meta.input_units = u.dimensionless_unscaled
    model.meta.output_units = u.m
    model.save(path)


def _write_fore(path, filter_name):
    transform = models.Mapping((0, 1), n_inputs=3) | models.Identity(2)
    inverse = models.Mapping((0, 1), n_inputs=3) | models.Identity(2)
    transform.inverse = inverse
    transform.name = "fore"
    model = datamodels.FOREModel(model=transform)
    _set_ref_meta(model, description="Synthetic NIRSpec FORE optics (identity)")
    model.meta.instrument.filter = filter_name
    model.meta.input_units = u.m
    model.meta.output_units = u.m
    model.save(path)


def _write_ote(path):
    transform = (models.Scale(OTE_SCALE) | models.Shift(V2V3_CENTER[0])) & (
        models.Scale(OTE_SCALE) | models.Shift(V2V3_CENTER[1])
    )
    transform.name = "ote"
    model = datamodels.OTEModel(model=transform)
    _set_ref_meta(model, description="Synthetic JWST OTE: metres -> V2/V3 arcsec")
    model.meta.input_units = u.m
    model.meta.output_units = u.arcsec
    model.save(path)


def _write_wavelengthrange(path):
    selector = [f"{v['filter']}_{g}" for g, v in GRATINGS.items()]
    wrange = [list(v["wrange"]) for v in GRATINGS.values()]
    model = datamodels.WavelengthrangeModel(
        wrange_selector=selector,
        wrange=wrange,
        order=[v["order"] for v in GRATINGS.values()],
        wunits=u.m,
    )
    _set_ref_meta(model, description="Synthetic NIRSpec wavelength ranges")
    model.save(path)


def _write_msaoper(path, failed_open):
    entries = [
        {
            "Q": int(q),
            "x": int(row),
            "y": int(col),
            "state": "open",
            "TA state": "open",
            "Internal state": "normal",
            "Vignetted": "no",
        }
        for q, row, col in failed_open
    ]
    doc = {
        "title": "Synthetic NIRSpec MSA operability",
        "reftype": "MSAOPER",
        "pedigree": "DUMMY",
        "author": _AUTHOR,
        "instrument": "NIRSPEC",
        "exp_type": "NRS_MSASPEC",
        "useafter": _USEAFTER,
        "descrip": "Synthetic failed-open shutters",
        "telescope": "JWST",
        "msaoper": entries,
    }
    Path(path).write_text(json.dumps(doc, indent=1))


#: Failed-open shutters (quadrant, row, column) of the synthetic MSA, chosen
#: away from the rows scenes use by default.
FAILED_OPEN = ((1, 20, 150), (4, 350, 20))


def build_instrument_refs(folder, *, gratings=tuple(GRATINGS)):
    """
    Write the WCS reference files of the synthetic instrument.

    Parameters
    ----------
    folder : str or pathlib.Path
        Output folder (created).
    gratings : sequence of str, optional
        Gratings for which a ``disperser`` file is written.

    Returns
    -------
    dict
        ``{reftype: path}`` for single files and ``{"disperser": {grating: path}}``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    simple = {
        "fpa": _write_fpa,
        "camera": _write_camera,
        "collimator": _write_collimator,
        "msa": _write_msa,
        "ote": _write_ote,
        "wavelengthrange": _write_wavelengthrange,
    }
    for reftype, writer in simple.items():
        path = folder / f"jwst_nirspec_synth_{reftype}.asdf"
        writer(path)
        out[reftype] = path
    out["disperser"] = {}
    for grating in gratings:
        if grating not in GRATINGS:
            raise ValueError(f"unknown grating {grating!r}; choose from {sorted(GRATINGS)}")
        path = folder / f"jwst_nirspec_synth_disperser_{grating.lower()}.asdf"
        _write_disperser(path, grating)
        out["disperser"][grating] = path
    out["fore"] = {}
    for grating in gratings:
        filter_name = GRATINGS[grating]["filter"]
        path = folder / f"jwst_nirspec_synth_fore_{filter_name.lower()}.asdf"
        _write_fore(path, filter_name)
        out["fore"][filter_name] = path
    path = folder / "jwst_nirspec_synth_msaoper.json"
    _write_msaoper(path, FAILED_OPEN)
    out["msaoper"] = path
    log.info("Wrote synthetic NIRSpec WCS reference files to %s", folder)
    return out
