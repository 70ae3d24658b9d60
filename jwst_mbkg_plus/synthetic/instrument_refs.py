"""The synthetic instrument's WCS reference files, written as jwst's assign_wcs reads them."""

import json
import logging
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.modeling import models
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.synthetic.instrument import (
    CAMERA_FOCAL_LENGTH,
    COLLIMATOR_FOCAL_LENGTH,
    DETECTOR_GAP,
    GRATINGS,
    MSA_PITCH,
    MSA_PITCH_TO_SIZE,
    N_COLUMNS,
    N_ROWS,
    OTE_SCALE,
    PIXEL_SIZE,
    U0,
    V2V3_CENTER,
    is_prism,
    quadrant_origin,
)

__all__ = [
    "FAILED_OPEN",
    "build_instrument_refs",
]

log = logging.getLogger(__name__)


_USEAFTER = "2022-01-01T00:00:00"


_AUTHOR = "jwst_mbkg_plus.synthetic"


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
        models.Shift(U0) & models.Shift(0.0)
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
        # Only G395H is tilted, to bring its mid-band back on the camera axis.
        model.tilt_y = float(p.get("tilt_y", 0.0))
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
