"""Writers of the synthetic NIRSpec MOS calibration reference files.

Each ``write_<reftype>`` samples the closed-form functions of
`jwst_mbkg_plus.synthetic._calib_functions` on the grid that jwst 3.0.0 reads
and saves one reference file that validates under strict validation.  The
public entry point is `jwst_mbkg_plus.synthetic.calibration.build_calibration_refs`.
"""

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
from astropy.modeling.tabular import Tabular2D
from stdatamodels.jwst import datamodels

from . import _calib_functions as cf

__all__ = [
    "FAST_WAVE_STEP",
    "UNIFORM_WAVE_STEP",
    "POINT_WAVE_PLANES",
    "write_pathloss",
    "write_barshadow",
    "write_photom",
    "write_area",
    "write_wavecorr",
    "write_extract1d",
    "write_apcorr",
]

log = logging.getLogger(__name__)

#: Grid step (micron) of the flat fast-variation tables and the photom table.
FAST_WAVE_STEP = 0.005
#: Grid step (micron) of the 1-D uniform pathloss arrays.
UNIFORM_WAVE_STEP = 0.005
#: Number of wavelength planes of the point-source pathloss cubes (exact:
#: the point-source pathloss is linear in wavelength).
POINT_WAVE_PLANES = 11

USEAFTER = "2000-01-01T00:00:00"
AUTHOR = "jwst_mbkg_plus.synthetic"
PEDIGREE = "DUMMY"
EXP_TYPE = "NRS_MSASPEC"

# MSA quadrant size: 365 columns (x) by 171 rows (y).
MSA_COLUMNS = 365
MSA_ROWS = 171
DETECTOR_SIZE = 2048


#: Margin (micron) by which the flats' fast tables extend beyond 0.6-5.3 micron:
#: flat_field averages them over each pixel's width (up to 0.02 micron for the
#: prism), so a pixel just inside the band must not reach beyond the table.
#: Beyond the band photom's table ends and jwst gives NaN, as in real PRISM data.
FAST_TABLE_MARGIN = 0.05


def _wave_grid(step, margin=0.0):
    n = int(round((cf.WAVE_MAX - cf.WAVE_MIN + 2 * margin) / step)) + 1
    return cf.WAVE_MIN - margin + step * np.arange(n, dtype=np.float64)


def set_meta(model, *, reftype, description, detector="ANY", filter_name=None, grating=None):
    """Fill the reference-file keywords CRDS and strict validation look at.

    Keywords the model's schema does not define (e.g. EXP_TYPE of the MOS
    f-flat) are skipped.
    """
    values = {
        ("instrument", "name"): "NIRSPEC",
        ("instrument", "detector"): detector,
        ("instrument", "filter"): filter_name,
        ("instrument", "grating"): grating,
        ("exposure", "type"): EXP_TYPE,
        ("exposure", "p_exptype"): f"{EXP_TYPE}|",
        ("reftype",): reftype.upper(),
        ("author",): AUTHOR,
        ("pedigree",): PEDIGREE,
        ("description",): description,
        ("useafter",): USEAFTER,
        ("telescope",): "JWST",
    }
    for keys, value in values.items():
        if value is None:
            continue
        node = model.meta
        try:
            for key in keys[:-1]:
                node = getattr(node, key)
            setattr(node, keys[-1], value)
        except AttributeError:
            log.debug("%s has no meta.%s; not set", type(model).__name__, ".".join(keys))


def save(model, path):
    """Validate strictly, then save to ``path`` through a private temporary folder.

    Writing the file under its final base name in a temporary folder keeps
    the FILENAME keyword right, and the final rename is atomic, so a file a
    crashed run left half-written is never reused.
    """
    path = Path(path)
    model.meta.filename = path.name
    model.validate()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".tmp_calib_") as tmp:
        tmp_path = Path(tmp) / path.name
        model.save(tmp_path)
        tmp_path.replace(path)
    model.close()
    return path


def fast_table(values_fn):
    """One-row FAST_VARIATION table sampled on the fast wavelength grid."""
    wave = _wave_grid(FAST_WAVE_STEP, FAST_TABLE_MARGIN)
    n = wave.size
    dtype = [
        ("slit_name", "S15"),
        ("nelem", "<i4"),
        ("wavelength", "<f4", (n,)),
        ("data", "<f4", (n,)),
        ("error", "<f4", (n,)),
    ]
    table = np.zeros(1, dtype=dtype)
    table["slit_name"][0] = b"ANY"
    table["nelem"][0] = n
    table["wavelength"][0] = wave
    table["data"][0] = values_fn(wave)
    table["error"][0] = 0.0
    return table


def plane_wavelengths():
    return np.array([(cf.WAVE_MIN,), (cf.WAVE_MAX,)], dtype=[("wavelength", "<f4")])


def write_pathloss(path):
    """
    Write the MOS pathloss file: apertures MOS1x1 and MOS1x3.

    Point-source cubes (wavelength, y, x) on a 0.05-shutter grid and
    `POINT_WAVE_PLANES` wavelengths; uniform 1-D arrays every
    `UNIFORM_WAVE_STEP` micron.  Wavelengths are in metres in the file.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output FITS file.

    Returns
    -------
    `~pathlib.Path`
        The written file.
    """
    model = datamodels.PathlossModel()
    wave_uni = _wave_grid(UNIFORM_WAVE_STEP)
    wave_pt = np.linspace(cf.WAVE_MIN, cf.WAVE_MAX, POINT_WAVE_PLANES)
    cdelt_pt = (cf.WAVE_MAX - cf.WAVE_MIN) / (POINT_WAVE_PLANES - 1)
    xs = -0.5 + 0.05 * np.arange(21)
    for name, nshut, ymin, point_fn, uniform_fn in (
        ("MOS1x1", 1, -0.5, cf.pathloss_point_1x1, cf.pathloss_uniform_1x1),
        ("MOS1x3", 3, -1.5, cf.pathloss_point_1x3, cf.pathloss_uniform_1x3),
    ):
        ys = ymin + 0.05 * np.arange(int(round(-2 * ymin / 0.05)) + 1)
        cube = point_fn(
            wave_pt[:, np.newaxis, np.newaxis],
            xs[np.newaxis, np.newaxis, :],
            ys[np.newaxis, :, np.newaxis],
        )
        item = model.apertures.item()
        item.name = name
        item.shutters = nshut
        item.pointsource_data = cube.astype(np.float32)
        item.uniform_data = uniform_fn(wave_uni).astype(np.float32)
        item.pointsource_wcs.crpix1 = 1.0
        item.pointsource_wcs.crval1 = float(xs[0])
        item.pointsource_wcs.cdelt1 = 0.05
        item.pointsource_wcs.crpix2 = 1.0
        item.pointsource_wcs.crval2 = float(ymin)
        item.pointsource_wcs.cdelt2 = 0.05
        item.pointsource_wcs.crpix3 = 1.0
        item.pointsource_wcs.crval3 = cf.WAVE_MIN * 1e-6
        item.pointsource_wcs.cdelt3 = cdelt_pt * 1e-6
        item.uniform_wcs.crpix1 = 1.0
        item.uniform_wcs.crval1 = cf.WAVE_MIN * 1e-6
        item.uniform_wcs.cdelt1 = UNIFORM_WAVE_STEP * 1e-6
        model.apertures.append(item)
    set_meta(model, reftype="pathloss", description="Synthetic NIRSpec MOS pathloss")
    return save(model, path)


def write_barshadow(path):
    """
    Write the bar-shadow file: 1001 x 101 arrays over -1 .. 1 pitch and 0.6 .. 5.3 micron.

    The wavelength axis keywords are in metres (CRVAL1 = 6e-7, CDELT1 = 4.7e-8),
    the unit of the slit-frame wavelength jwst's barshadow step samples it with.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output FITS file.

    Returns
    -------
    `~pathlib.Path`
        The written file.
    """
    y = -1.0 + 0.002 * np.arange(1001, dtype=np.float64)[:, np.newaxis]
    wave = cf.WAVE_MIN + 0.047 * np.arange(101, dtype=np.float64)[np.newaxis, :]
    model = datamodels.BarshadowModel()
    model.data1x1 = cf.barshadow_1x1(y, wave).astype(np.float32)
    model.data1x3 = cf.barshadow_1x3(y, wave).astype(np.float32)
    # bar_shadow.py takes the wavelength from the slit WCS "slit_frame", which
    # for science exposures is in metres (jwst scales to micron only after the
    # MSA): CRVAL1/CDELT1 must be in metres, or every pixel reads column 0.
    model.crval1 = cf.WAVE_MIN * 1e-6
    model.cdelt1 = 0.047e-6
    model.crval2 = -1.0
    model.cdelt2 = 0.002
    set_meta(
        model,
        reftype="barshadow",
        grating="ANY",
        description="Synthetic NIRSpec MOS bar shadow",
    )
    return save(model, path)


def write_photom(path, *, filter_name, grating):
    """
    Write the MOS photom file: one row (the mode) with PHOTMJ and RELRESPONSE.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output FITS file.
    filter_name, grating : str
        The mode.

    Returns
    -------
    `~pathlib.Path`
        The written file.
    """
    wave = _wave_grid(FAST_WAVE_STEP)
    n = wave.size
    dtype = [
        ("filter", "S12"),
        ("grating", "S15"),
        ("photmj", "<f4"),
        ("uncertainty", "<f4"),
        ("nelem", "<i2"),
        ("wavelength", "<f4", (n,)),
        ("relresponse", "<f4", (n,)),
        ("reluncertainty", "<f4", (n,)),
    ]
    table = np.zeros(1, dtype=dtype)
    table["filter"][0] = filter_name.encode()
    table["grating"][0] = grating.encode()
    table["photmj"][0] = cf.mode_parameters(filter_name, grating)["photmj"]
    table["uncertainty"][0] = 0.0
    table["nelem"][0] = n
    table["wavelength"][0] = wave
    table["relresponse"][0] = cf.relresponse(wave, filter_name, grating)
    table["reluncertainty"][0] = 0.0
    model = datamodels.NrsMosPhotomModel()
    model.phot_table = table
    # jwst does not use these for NIRSpec (it reads the AREA file per slitlet).
    model.meta.photometry.pixelarea_arcsecsq = 0.0110
    model.meta.photometry.pixelarea_steradians = 0.0110 * (np.pi / 648000.0) ** 2
    set_meta(
        model,
        reftype="photom",
        description=f"Synthetic NIRSpec MOS photom for {filter_name}/{grating}",
    )
    return save(model, path)


def write_area(path, *, filter_name, grating):
    """
    Write the MOS pixel-area table: one row per shutter of the four quadrants.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output FITS file.
    filter_name, grating : str
        The mode.

    Returns
    -------
    `~pathlib.Path`
        The written file.
    """
    q, row, col = np.meshgrid(
        np.arange(1, 5),
        np.arange(1, MSA_ROWS + 1),
        np.arange(1, MSA_COLUMNS + 1),
        indexing="ij",
    )
    dtype = [("quadrant", "<i2"), ("shutter_x", "<i2"), ("shutter_y", "<i2"), ("pixarea", "<f4")]
    table = np.zeros(q.size, dtype=dtype)
    table["quadrant"] = q.ravel()
    table["shutter_x"] = col.ravel()
    table["shutter_y"] = row.ravel()
    table["pixarea"] = cf.pixel_area_arcsec2(
        q.ravel(), col.ravel(), row.ravel(), filter_name, grating
    )
    model = datamodels.NirspecMosAreaModel()
    model.area_table = table
    set_meta(
        model,
        reftype="area",
        filter_name=filter_name,
        grating=grating,
        description=f"Synthetic NIRSpec MOS pixel area for {filter_name}/{grating}",
    )
    return save(model, path)


def write_wavecorr(path):
    """
    Write the wavecorr file (ASDF): aperture ``MOS`` with a zero zero-point offset.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output ASDF file.

    Returns
    -------
    `~pathlib.Path`
        The written file.
    """
    wave_m = np.linspace(cf.WAVE_MIN, cf.WAVE_MAX, 11) * 1e-6
    xpos = np.linspace(-0.5, 0.5, 5)
    offset = Tabular2D(
        points=(wave_m, xpos),
        lookup_table=np.zeros((wave_m.size, xpos.size)),
        bounds_error=False,
        fill_value=None,
        name="zero_point_offset",
    )
    aperture = {
        "aperture_name": "MOS",
        "width": 1.05e-4,
        "zero_point_offset": offset,
        "variance": np.zeros((wave_m.size, xpos.size), dtype=np.float32),
    }
    model = datamodels.WaveCorrModel(apertures=[aperture])
    set_meta(model, reftype="wavecorr", description="Synthetic NIRSpec wavecorr (zero offset)")
    return save(model, path)


def write_extract1d(path, *, extract_width=5):
    """
    Write the extract1d JSON file: one ``id: ANY`` box aperture following the source.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output JSON file.
    extract_width : int, optional
        Extraction height in pixels.

    Returns
    -------
    `~pathlib.Path`
        The written file.
    """
    content = {
        "reftype": "EXTRACT1D",
        "instrument": "NIRSPEC",
        "telescope": "JWST",
        "exp_type": EXP_TYPE,
        "detector": "ANY",
        "pedigree": PEDIGREE,
        "author": AUTHOR,
        "useafter": USEAFTER,
        "description": "Synthetic NIRSpec MOS extract1d: box of a few pixels at the source",
        "apertures": [
            {
                "id": "ANY",
                "region_type": "target",
                "disp_axis": 1,
                "extract_width": int(extract_width),
                "bkg_order": 0,
            }
        ],
    }
    path = Path(path)
    tmp = path.with_name(f".tmp_{path.name}")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    tmp.replace(path)
    return path


def write_apcorr(path, *, filter_name, grating):
    """
    Write the MOS aperture-correction file: one row (the mode), all corrections 1.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output FITS file.
    filter_name, grating : str
        The mode.

    Returns
    -------
    `~pathlib.Path`
        The written file.
    """
    wave = np.linspace(cf.WAVE_MIN, cf.WAVE_MAX, 11)
    sizes = np.array([1.0, 5.0, 30.0])
    phases = np.array([0.0, 0.25, 0.5])
    nw, ns, nph = wave.size, sizes.size, phases.size
    # jwst's ApCorrPhase interpolates APCORR along its last axis in pixel
    # phase and SIZE along its last axis in wavelength: shapes (ns, nw, nph)
    # and (ns, nw).
    dtype = [
        ("filter", "S12"),
        ("grating", "S15"),
        ("wavelength", "<f4", (nw,)),
        ("nelem_wl", "<i2"),
        ("size", "<f4", (ns, nw)),
        ("nelem_size", "<i2"),
        ("pixphase", "<f4", (nph,)),
        ("apcorr", "<f4", (ns, nw, nph)),
        ("apcorr_err", "<f4", (ns, nw, nph)),
    ]
    table = np.zeros(1, dtype=dtype)
    table["filter"][0] = filter_name.encode()
    table["grating"][0] = grating.encode()
    table["wavelength"][0] = wave
    table["nelem_wl"][0] = nw
    table["size"][0] = np.repeat(sizes[:, np.newaxis], nw, axis=1)
    table["nelem_size"][0] = ns
    table["pixphase"][0] = phases
    table["apcorr"][0] = 1.0
    table["apcorr_err"][0] = 0.0
    model = datamodels.NrsMosApcorrModel()
    model.apcorr_table = table
    model.sizeunit = "pixels"
    set_meta(
        model,
        reftype="apcorr",
        description=f"Synthetic NIRSpec MOS unity aperture correction for {filter_name}/{grating}",
    )
    return save(model, path)
