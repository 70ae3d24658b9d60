"""Write an MSA metadata file (``_msa.fits``) in jwst's layout.

The file has the extensions of a real one (e.g. program 2736's
``jw02736007001_01_msa.fits``): ``SHUTTER_IMAGE`` (int16 image),
``SHUTTER_INFO`` (one row per open shutter and dither point) and ``SOURCE_INFO``
(one row per declared source).

Background slitlets are written the way real empty-sky slitlets are: every
shutter has ``background = "Y"`` and none is ``primary_source = "Y"``; jwst's
assign_wcs then names them ``<program>_BKG<slitlet_id>``, which
``jwst.master_background.nirspec_utils.is_background_msa_slit`` recognises.
Source slitlets have one primary shutter holding the source; the others are
``background = "Y"``.
"""

import logging
from pathlib import Path

import numpy as np
from astropy.io import fits

__all__ = ["PROGRAM", "write_msa_file"]

log = logging.getLogger(__name__)

#: Program number written to the MSA file and the exposure.
PROGRAM = 9999

_SHUTTER_COLUMNS = [
    ("slitlet_id", "I"),
    ("msa_metadata_id", "I"),
    ("shutter_quadrant", "I"),
    ("shutter_row", "I"),
    ("shutter_column", "I"),
    ("source_id", "J"),
    ("background", "1A"),
    ("shutter_state", "6A"),
    ("estimated_source_in_shutter_x", "E"),
    ("estimated_source_in_shutter_y", "E"),
    ("dither_point_index", "I"),
    ("primary_source", "1A"),
    ("fixed_slit", "7A"),
]


def write_msa_file(path, slitlets, *, msa_metadata_id=1, dither_position=1, program=PROGRAM):
    """
    Write the MSA metadata file of a scene.

    Parameters
    ----------
    path : str or pathlib.Path
        Output ``_msa.fits`` file.
    slitlets : list of `~jwst_mbkg_plus.synthetic.scene.Slitlet`
        The open slitlets (:meth:`Scene.layout`).
    msa_metadata_id : int, optional
        ``MSAMETID`` of the exposure.
    dither_position : int, optional
        ``PATT_NUM`` of the exposure.
    program : int, optional
        Program number.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    rows = []
    sources = []
    for s in slitlets:
        has_source = s.kind != "background"
        for k, column in enumerate(s.columns):
            primary = has_source and k == s.primary
            rows.append(
                (
                    s.slitlet_id,
                    msa_metadata_id,
                    s.quadrant,
                    s.row,
                    column,
                    s.source_id if primary else 0,
                    "N" if primary else "Y",
                    "OPEN",
                    0.5 if primary else np.nan,
                    s.source_y if primary else np.nan,
                    dither_position,
                    "Y" if primary else "N",
                    "NONE",
                )
            )
        if has_source:
            sources.append(
                (
                    program,
                    s.source_id,
                    f"{program}_{s.source_id}",
                    f"SYNTH_{s.kind.upper()}_{s.source_id}",
                    0.0,
                    0.0,
                    "None",
                    1.0 if s.kind == "point" else 0.0,
                )
            )
    cols = []
    for i, (name, fmt) in enumerate(_SHUTTER_COLUMNS):
        cols.append(fits.Column(name=name, format=fmt, array=[r[i] for r in rows]))
    shutter_info = fits.BinTableHDU.from_columns(cols, name="SHUTTER_INFO")

    src_cols = [
        ("program", "J"),
        ("source_id", "J"),
        ("source_name", "20A"),
        ("alias", "31A"),
        ("ra", "D"),
        ("dec", "D"),
        ("preimage_id", "30A"),
        ("stellarity", "D"),
    ]
    cols = [
        fits.Column(name=name, format=fmt, array=[r[i] for r in sources])
        for i, (name, fmt) in enumerate(src_cols)
    ]
    source_info = fits.BinTableHDU.from_columns(cols, name="SOURCE_INFO")

    image = np.zeros((730, 342), dtype=np.int16)
    for s in slitlets:
        # Quadrant images side by side, as a map of open shutters.
        qx = 0 if s.quadrant in (1, 2) else 365
        qy = 0 if s.quadrant in (2, 4) else 171
        for column in s.columns:
            image[qx + s.row - 1, qy + column - 1] = 1
    primary = fits.PrimaryHDU()
    hdr = primary.header
    hdr["ORIGIN"] = "jwst_mbkg_plus"
    hdr["TELESCOP"] = "JWST"
    hdr["INSTRUME"] = "NIRSPEC"
    hdr["PROGRAM"] = f"{program:05d}"
    hdr["VISIT"] = "001"
    hdr["OBSERVTN"] = "001"
    hdr["VISIT_ID"] = f"{program:05d}001001"
    hdr["MSACFG10"] = msa_metadata_id
    hdul = fits.HDUList(
        [primary, fits.ImageHDU(image, name="SHUTTER_IMAGE"), shutter_info, source_info]
    )
    hdul.writeto(path, overwrite=True)
    log.info("Wrote MSA metadata file %s (%d slitlets)", path, len(slitlets))
    return Path(path)
