"""The raw table of a user background file: FITS (any table, jwst x1d/c1d/masterbg1d), ECSV,
CSV or whitespace text.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.table import Table

from jwst_mbkg_plus.io.user_background.columns_units import (
    FITS_SUFFIXES,
    SURF_BRIGHT_NAMES,
    WAVELENGTH_NAMES,
    find_column,
    normalised_names,
)
from jwst_mbkg_plus.io.user_background.errors import (
    UserBackgroundColumnError,
    UserBackgroundFormatError,
)
from jwst_mbkg_plus.safe_io import describe_file

__all__ = [
    "RawTable",
    "ReadReport",
    "is_fits",
    "read_fits",
    "read_model",
    "read_text",
]

log = logging.getLogger(__name__)


@dataclass
class RawTable:
    """Columns read from a file: name -> (values, unit string or None)."""

    columns: dict
    format: str
    where: str = ""
    forced: dict = field(default_factory=dict)
    multi_hdu: bool = False


class ReadReport:
    """Collects warnings for one file; every message names the file."""

    def __init__(self, path):
        self.path = path
        self.warnings = []

    def warn(self, msg):
        text = f"user background {self.path}: {msg}"
        log.warning(text)
        self.warnings.append(text)

    def fail(self, cls, msg):
        return cls(f"user background {self.path}: {msg}")




def is_fits(path):
    with path.open("rb") as fh:
        head = fh.read(9)
    if head == b"SIMPLE  =":
        return True
    return head[:2] == b"\x1f\x8b" and path.name.lower().endswith(FITS_SUFFIXES)


def _hdu_columns(hdu):
    cols = {}
    for col in hdu.columns:
        data = np.array(hdu.data[col.name]) if hdu.data is not None else np.array([])
        unit = col.unit.strip() if col.unit and col.unit.strip() else None
        cols[col.name] = (data, unit)
    return cols


def read_fits(path, rd, spectrum_index):
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, mode="readonly", memmap=False, lazy_load_hdus=False)
    except Exception as exc:
        raise rd.fail(
            UserBackgroundFormatError,
            f"cannot be read as FITS ({type(exc).__name__}: {exc}). "
            "Check the file is complete and not corrupted, or re-write it with "
            "write_user_background().",
        ) from exc
    corrupt = [str(w.message).strip() for w in caught if "corrupt" in str(w.message).lower()]
    with hdul:
        try:
            return _fits_table(hdul, path, rd, spectrum_index, corrupt)
        except (OSError, TypeError, IndexError, KeyError) as exc:
            raise rd.fail(
                UserBackgroundFormatError,
                f"the FITS table cannot be read ({type(exc).__name__}: {exc}); the file is "
                "probably truncated or corrupted. Re-create it, e.g. with "
                "write_user_background().",
            ) from exc


def _fits_table(hdul, path, rd, spectrum_index, corrupt):
    """Pick the spectrum table of an open FITS file."""
    datamodel = str(hdul[0].header.get("DATAMODL", ""))
    tables = [
        (i, hdu)
        for i, hdu in enumerate(hdul)
        if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)) and hdu.name.upper() != "ASDF"
    ]
    if corrupt:
        if not tables:
            raise rd.fail(
                UserBackgroundFormatError,
                f"is truncated or corrupted (astropy: {corrupt[0]}); no table could be "
                "read. Re-create or re-download the file.",
            )
        rd.warn(f"FITS structure problem (astropy: {corrupt[0]}); reading what is there.")
    if not tables:
        kinds = ", ".join(f"{h.name or i}:{type(h).__name__}" for i, h in enumerate(hdul))
        raise rd.fail(
            UserBackgroundFormatError,
            f"is {describe_file(path)} with no table (HDUs: {kinds}). A user background "
            "must be a table with "
            "wavelength and surface-brightness columns, e.g. a jwst x1d/c1d product "
            "or a FITS binary table; 1-D images with a spectral WCS are not supported.",
        )
    x1d = [(i, h) for i, h in tables if h.name.upper() == "EXTRACT1D"]
    c1d = [(i, h) for i, h in tables if h.name.upper() == "COMBINE1D"]
    if x1d:
        if spectrum_index is None:
            index = 0
            if len(x1d) > 1:
                rd.warn(
                    f"holds {len(x1d)} spectra (EXTRACT1D extensions); using the first. "
                    "Combine them first ('jwst-mbkg-plus master FILE -o master.fits'), or "
                    "write the one to use alone with jwst_mbkg_plus.io.user_background."
                    "write_user_background."
                )
        else:
            index = int(spectrum_index)
            if not 0 <= index < len(x1d):
                raise rd.fail(
                    UserBackgroundFormatError,
                    f"spectrum_index={spectrum_index} is out of range: the file holds "
                    f"{len(x1d)} spectr{'um' if len(x1d) == 1 else 'a'} (0..{len(x1d) - 1}).",
                )
        i, hdu = x1d[index]
        return RawTable(
            _hdu_columns(hdu),
            "jwst-x1d",
            where=f"HDU {i} (EXTRACT1D, spectrum {index})",
            forced=_JWST_FORCED,
            multi_hdu=len(x1d) > 1,
        )
    if c1d or datamodel == "CombinedSpecModel":
        i, hdu = (c1d or tables)[0]
        fmt = "masterbg1d" if "masterbg1d" in path.name.lower() else "jwst-c1d"
        return RawTable(_hdu_columns(hdu), fmt, where=f"HDU {i} ({hdu.name})", forced=_JWST_FORCED)
    # Generic FITS table: the first with both recognised columns, else the first.
    first = None
    for i, hdu in tables:
        cols = _hdu_columns(hdu)
        first = first or (i, hdu, cols)
        names = normalised_names(cols)
        if find_column(names, WAVELENGTH_NAMES) and find_column(names, SURF_BRIGHT_NAMES):
            return RawTable(cols, "fits-table", where=f"HDU {i} ({hdu.name or 'no name'})")
    i, hdu, cols = first
    return RawTable(cols, "fits-table", where=f"HDU {i} ({hdu.name or 'no name'})")


_JWST_FORCED = {"wavelength": "WAVELENGTH", "surf_bright": "SURF_BRIGHT", "sb_error": "SB_ERROR"}


def _is_number(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d*,\d+([eE][+-]?\d+)?\s*$")


def _decimal_commas(lines):
    """Semicolon-separated lines with a decimal comma ('1,25;0,37'): the comma made a point."""
    out, count = [], 0
    for line in lines:
        fields = line.split(";")
        fixed = []
        for f in fields:
            if _DECIMAL_COMMA.match(f):
                f = f.replace(",", ".")
                count += 1
            fixed.append(f)
        out.append(";".join(fixed))
    return out, count


def read_text(path, rd):
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise rd.fail(
            UserBackgroundFormatError,
            "is a binary file of an unsupported format. Supported: jwst x1d/c1d/masterbg1d "
            "FITS, any FITS binary table, ECSV, CSV or whitespace-separated text.",
        )
    try:
        # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise rd.fail(
            UserBackgroundFormatError,
            f"is not UTF-8 text nor FITS ({exc}). Supported: jwst x1d/c1d/masterbg1d FITS, "
            "any FITS binary table, ECSV, CSV or whitespace-separated text.",
        ) from exc
    # Windows (CRLF) and old Mac (CR) line ends are lines too.
    lines = [ln for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
             if ln.strip()]
    if not lines:
        raise rd.fail(UserBackgroundFormatError, "is empty: no table found.")
    if lines[0].startswith("#") and "%ECSV" in lines[0]:
        try:
            table = Table.read(lines, format="ascii.ecsv")
        except Exception as exc:
            raise rd.fail(
                UserBackgroundFormatError,
                f"looks like ECSV but cannot be parsed ({type(exc).__name__}: {exc}). "
                "Fix the header or the data rows.",
            ) from exc
        return RawTable(_table_columns(table), "ecsv")

    comments = []
    data_lines = []
    for ln in lines:
        (comments if ln.lstrip().startswith("#") and not data_lines else data_lines).append(ln)
    if not data_lines:
        raise rd.fail(UserBackgroundFormatError, "has only comment lines: no table found.")
    first = data_lines[0]
    delimiter = ";" if ";" in first else ("," if "," in first else None)
    if delimiter == ";":
        data_lines, n_commas = _decimal_commas(data_lines)
        if n_commas:
            rd.warn(f"semicolon-separated with decimal commas: read {n_commas} numbers "
                    "with the comma as decimal mark.")
        first = data_lines[0]
    tokens = [t.strip() for t in (first.split(delimiter) if delimiter else first.split())]
    kwargs = {"comment": "#", "guess": False, "fast_reader": False}
    if delimiter:
        kwargs["delimiter"] = delimiter
    if all(_is_number(t) for t in tokens):
        # Headerless data; the last comment line may hold the names.
        names = None
        if comments:
            cand = comments[-1].lstrip().lstrip("#").strip()
            cand = [t.strip() for t in (cand.split(delimiter) if delimiter else cand.split())]
            if len(cand) == len(tokens) and not all(_is_number(t) for t in cand):
                names = cand
        fmt = "ascii.no_header"
        if names is not None:
            kwargs["names"] = names
    else:
        fmt = "ascii.csv" if delimiter == "," else "ascii.basic"
        if delimiter == ",":
            del kwargs["delimiter"]
    try:
        table = Table.read(data_lines, format=fmt, **kwargs)
    except Exception as exc:
        raise rd.fail(
            UserBackgroundFormatError,
            f"cannot be parsed as a text table ({type(exc).__name__}: {exc}). "
            "Supported: jwst x1d/c1d/masterbg1d FITS, any FITS binary table, ECSV, CSV "
            "(comma or semicolon separated) or whitespace-separated text with one header "
            "line of column names.",
        ) from exc
    raw_tab = RawTable(_table_columns(table), "csv")
    if fmt == "ascii.no_header" and "names" not in kwargs:
        n = len(table.colnames)
        if n not in (2, 3):
            raise rd.fail(
                UserBackgroundColumnError,
                f"has no header line and {n} columns; add a header line naming the columns, "
                "e.g. 'wave[um],surf_bright[MJy/sr],sb_error[MJy/sr]'.",
            )
        roles = ["wavelength", "surf_bright", "sb_error"][:n]
        raw_tab.forced = dict(zip(roles, table.colnames, strict=True))
        rd.warn(
            "has no header line; assuming the columns are "
            + ", ".join(roles)
            + ". Add a header (e.g. 'wave[um],surf_bright[MJy/sr]') to make this explicit."
        )
    return raw_tab


def _table_columns(table):
    cols = {}
    for name in table.colnames:
        col = table[name]
        unit = None if col.unit is None else col.unit.to_string()
        data = np.ma.filled(np.ma.asarray(col), np.nan) if col.dtype.kind in "fiu" else col
        cols[name] = (np.array(data), unit or None)
    return cols


def read_model(model, rd, spectrum_index):
    if hasattr(model, "spec"):
        n = len(model.spec)
        if n == 0:
            raise rd.fail(UserBackgroundFormatError, "the MultiSpecModel holds no spectra.")
        index = 0 if spectrum_index is None else int(spectrum_index)
        if not 0 <= index < n:
            raise rd.fail(
                UserBackgroundFormatError,
                f"spectrum_index={spectrum_index} is out of range: {n} spectra.",
            )
        if spectrum_index is None and n > 1:
            rd.warn(f"holds {n} spectra; using the first. Combine them first "
                    "('jwst-mbkg-plus master'), or give a model holding the one to use.")
        table, fmt = model.spec[index].spec_table, "jwst-x1d"
    elif hasattr(model, "spec_table"):
        table, fmt = model.spec_table, "jwst-c1d"
    else:
        raise rd.fail(
            UserBackgroundFormatError,
            f"a {type(model).__name__} is not a 1-D spectrum; pass a file name or a "
            "MultiSpecModel/CombinedSpecModel.",
        )
    cols = {}
    for col in table.columns:
        unit = col.unit.strip() if col.unit and col.unit.strip() else None
        cols[col.name] = (np.array(table[col.name], copy=True), unit)
    return RawTable(cols, fmt, forced=_JWST_FORCED)


