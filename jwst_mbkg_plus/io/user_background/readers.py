"""Read, validate and write user-supplied 1-D master background spectra.

jwst's ``user_background`` option reads ``spec[0]`` WAVELENGTH and SURF_BRIGHT
of a datamodel x1d/c1d and trusts them: no unit check, no NaN handling, no
check that the spectrum covers the science data.  This module accepts the
files people actually have (jwst x1d/c1d/masterbg1d products, any FITS table,
ECSV, CSV or plain text), converts their units with `astropy.units`, and turns
every problem into either a specific `UserBackgroundError` naming the file and
the fix, or a logged warning kept in `UserBackground.warnings`.

The input file and any in-memory input are never modified.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table

from jwst_mbkg_plus.safe_io import (
    InputFileError,
    PackageInputError,
    atomic_save_model,
    check_input_file,
    read_failure,
)

log = logging.getLogger(__name__)

__all__ = [
    "ERROR_NAMES",
    "MIN_POINTS",
    "SURF_BRIGHT_NAMES",
    "WAVELENGTH_NAMES",
    "UserBackground",
    "UserBackgroundColumnError",
    "UserBackgroundCoverageError",
    "UserBackgroundError",
    "UserBackgroundFileNotFoundError",
    "UserBackgroundFormatError",
    "UserBackgroundUnitError",
    "UserBackgroundUnreadableError",
    "UserBackgroundValueError",
    "read_user_background",
    "write_user_background",
]

#: Recognised wavelength column names, in order of preference (case-insensitive).
WAVELENGTH_NAMES = ("wavelength", "wave", "wav", "lambda", "lam", "wl", "wavelength_um")
#: Recognised surface-brightness column names, in order of preference.
SURF_BRIGHT_NAMES = (
    "surf_bright",
    "surface_brightness",
    "sb",
    "sky",
    "background",
    "bkg",
    "bkgd",
    "flux",
)
#: Recognised uncertainty column names, in order of preference.
ERROR_NAMES = (
    "sb_error",
    "sb_err",
    "surface_brightness_error",
    "sb_unc",
    "sky_error",
    "sky_err",
    "background_error",
    "bkg_error",
    "bkg_err",
    "bkgd_error",
    "err",
    "error",
    "flux_error",
    "flux_err",
    "e_flux",
    "e_sb",
    "eflux",
    "sigma",
    "unc",
    "uncertainty",
    "dflux",
    "noise",
)
#: Fewest finite, distinct wavelengths accepted.
MIN_POINTS = 5

_MJYSR = u.MJy / u.sr
# Largest plausible wavelength (micron) when a file carries no unit: MIRI ends
# near 28.8 micron; anything above 100 is nm or Angstrom.
_MAX_UNITLESS_MICRON = 100.0
_MIN_UNITLESS_MICRON = 0.05
_JWST_MICRON = (0.5, 30.0)
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
_UNIT_IN_NAME = re.compile(r"^\s*(?P<name>.*?)\s*[\[\(]\s*(?P<unit>[^\]\)]*?)\s*[\]\)]\s*$")
_WAVE_UNIT_ALIASES = {
    "micron": "um",
    "microns": "um",
    "micrometer": "um",
    "micrometers": "um",
    "micrometre": "um",
    "mum": "um",
    "µm": "um",
    "μm": "um",
    "a": "Angstrom",
    "aa": "Angstrom",
    "å": "Angstrom",
    "angstrom": "Angstrom",
    "angstroms": "Angstrom",
    "nanometer": "nm",
    "nanometers": "nm",
}
_LONE_A = re.compile(r"(?<![A-Za-z])A(?![A-Za-z])")


class UserBackgroundError(PackageInputError):
    """A user background file cannot be used; the message names the file and the fix."""


class UserBackgroundFileNotFoundError(UserBackgroundError, FileNotFoundError):
    """The user background file does not exist."""


class UserBackgroundFormatError(UserBackgroundError):
    """The file is unreadable, of an unsupported format, or holds no table."""


class UserBackgroundUnreadableError(UserBackgroundFormatError):
    """The file cannot be opened: a folder, no read permission, an I/O error."""


class UserBackgroundColumnError(UserBackgroundError):
    """A required column is missing or not numeric."""


class UserBackgroundUnitError(UserBackgroundError):
    """A unit is unparsable, of the wrong kind, or missing where it is needed."""


class UserBackgroundValueError(UserBackgroundError):
    """The values are unusable: no or too few finite points, bad wavelengths, negative errors."""


class UserBackgroundCoverageError(UserBackgroundError):
    """The background covers too little of the science wavelength range."""


@dataclass(frozen=True)
class UserBackground:
    """A validated user background spectrum in micron and MJy/sr.

    Attributes
    ----------
    wavelength : ndarray
        Wavelengths in micron, float64, 1-D, strictly increasing, read-only.
    surf_bright : ndarray
        Surface brightness in MJy/sr, float64, read-only.
    sb_error : ndarray or None
        Surface-brightness uncertainty in MJy/sr (may hold NaN where the file
        had none), or None if the file has no usable error column.
    path : `~pathlib.Path`
        The file read (for an in-memory datamodel, its ``meta.filename``).
    format : str
        One of ``'jwst-x1d'``, ``'jwst-c1d'``, ``'masterbg1d'``, ``'fits-table'``,
        ``'ecsv'``, ``'csv'`` (``'csv'`` covers any delimited plain-text table).
    wavelength_column, surf_bright_column : str
        Names of the columns used, as spelled in the file.
    sb_error_column : str or None
        Name of the error column used, if any.
    wavelength_unit, surf_bright_unit : str or None
        Units found in the file (None if the file had none and defaults were assumed).
    warnings : list of str
        Every warning issued while reading (also logged).
    """

    wavelength: np.ndarray = field(repr=False)
    surf_bright: np.ndarray = field(repr=False)
    sb_error: np.ndarray | None = field(repr=False)
    path: Path
    format: str
    wavelength_column: str
    surf_bright_column: str
    sb_error_column: str | None = None
    wavelength_unit: str | None = None
    surf_bright_unit: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def n_points(self):
        """int: Number of wavelength points."""
        return int(self.wavelength.size)

    @property
    def wavelength_range(self):
        """tuple of float: First and last wavelength, micron."""
        return float(self.wavelength[0]), float(self.wavelength[-1])


@dataclass
class _RawTable:
    """Columns read from a file: name -> (values, unit string or None)."""

    columns: dict
    format: str
    where: str = ""
    forced: dict = field(default_factory=dict)
    multi_hdu: bool = False


class _Reader:
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


# ---------------------------------------------------------------------------
# Reading the raw table
# ---------------------------------------------------------------------------


def _is_fits(path):
    with path.open("rb") as fh:
        head = fh.read(9)
    if head == b"SIMPLE  =":
        return True
    return head[:2] == b"\x1f\x8b" and path.name.lower().endswith(_FITS_SUFFIXES)


def _hdu_columns(hdu):
    cols = {}
    for col in hdu.columns:
        data = np.array(hdu.data[col.name]) if hdu.data is not None else np.array([])
        unit = col.unit.strip() if col.unit and col.unit.strip() else None
        cols[col.name] = (data, unit)
    return cols


def _read_fits(path, rd, spectrum_index):
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
            f"no table found (HDUs: {kinds}). A user background must be a table with "
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
                    f"holds {len(x1d)} spectra (EXTRACT1D extensions); using the first "
                    "(spectrum_index=0). Combine them first, or pass spectrum_index "
                    "to choose another."
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
        return _RawTable(
            _hdu_columns(hdu),
            "jwst-x1d",
            where=f"HDU {i} (EXTRACT1D, spectrum {index})",
            forced=_JWST_FORCED,
            multi_hdu=len(x1d) > 1,
        )
    if c1d or datamodel == "CombinedSpecModel":
        i, hdu = (c1d or tables)[0]
        fmt = "masterbg1d" if "masterbg1d" in path.name.lower() else "jwst-c1d"
        return _RawTable(_hdu_columns(hdu), fmt, where=f"HDU {i} ({hdu.name})", forced=_JWST_FORCED)
    # Generic FITS table: the first with both recognised columns, else the first.
    first = None
    for i, hdu in tables:
        cols = _hdu_columns(hdu)
        first = first or (i, hdu, cols)
        names = _normalised_names(cols)
        if _find(names, WAVELENGTH_NAMES) and _find(names, SURF_BRIGHT_NAMES):
            return _RawTable(cols, "fits-table", where=f"HDU {i} ({hdu.name or 'no name'})")
    i, hdu, cols = first
    return _RawTable(cols, "fits-table", where=f"HDU {i} ({hdu.name or 'no name'})")


_JWST_FORCED = {"wavelength": "WAVELENGTH", "surf_bright": "SURF_BRIGHT", "sb_error": "SB_ERROR"}


def _is_number(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_text(path, rd):
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise rd.fail(
            UserBackgroundFormatError,
            "is a binary file of an unsupported format. Supported: jwst x1d/c1d/masterbg1d "
            "FITS, any FITS binary table, ECSV, CSV or whitespace-separated text.",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise rd.fail(
            UserBackgroundFormatError,
            f"is not UTF-8 text nor FITS ({exc}). Supported: jwst x1d/c1d/masterbg1d FITS, "
            "any FITS binary table, ECSV, CSV or whitespace-separated text.",
        ) from exc
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise rd.fail(UserBackgroundFormatError, "is empty: no table found.")
    if lines[0].startswith("#") and "%ECSV" in lines[0]:
        try:
            table = Table.read(path, format="ascii.ecsv")
        except Exception as exc:
            raise rd.fail(
                UserBackgroundFormatError,
                f"looks like ECSV but cannot be parsed ({type(exc).__name__}: {exc}). "
                "Fix the header or the data rows.",
            ) from exc
        return _RawTable(_table_columns(table), "ecsv")

    comments = []
    data_lines = []
    for ln in lines:
        (comments if ln.lstrip().startswith("#") and not data_lines else data_lines).append(ln)
    if not data_lines:
        raise rd.fail(UserBackgroundFormatError, "has only comment lines: no table found.")
    first = data_lines[0]
    delimiter = "," if "," in first else None
    tokens = [t.strip() for t in (first.split(",") if delimiter else first.split())]
    kwargs = {"comment": "#", "guess": False, "fast_reader": False}
    if delimiter:
        kwargs["delimiter"] = ","
    if all(_is_number(t) for t in tokens):
        # Headerless data; the last comment line may hold the names.
        names = None
        if comments:
            cand = comments[-1].lstrip().lstrip("#").strip()
            cand = [t.strip() for t in (cand.split(",") if delimiter else cand.split())]
            if len(cand) == len(tokens) and not all(_is_number(t) for t in cand):
                names = cand
        fmt = "ascii.no_header"
        if names is not None:
            kwargs["names"] = names
    else:
        fmt = "ascii.csv" if delimiter else "ascii.basic"
        if delimiter:
            del kwargs["delimiter"]
    try:
        table = Table.read(path, format=fmt, **kwargs)
    except Exception as exc:
        raise rd.fail(
            UserBackgroundFormatError,
            f"cannot be parsed as a text table ({type(exc).__name__}: {exc}). "
            "Supported: jwst x1d/c1d/masterbg1d FITS, any FITS binary table, ECSV, CSV or "
            "whitespace-separated text with one header line of column names.",
        ) from exc
    raw_tab = _RawTable(_table_columns(table), "csv")
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


def _read_model(model, rd, spectrum_index):
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
            rd.warn(f"holds {n} spectra; using the first (spectrum_index=0).")
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
    return _RawTable(cols, fmt, forced=_JWST_FORCED)


# ---------------------------------------------------------------------------
# Columns and units
# ---------------------------------------------------------------------------


def _split_name(name):
    """Return (normalised name, unit from brackets or None)."""
    m = _UNIT_IN_NAME.match(name)
    unit = None
    if m and m.group("name"):
        name, unit = m.group("name"), (m.group("unit") or None)
    norm = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return norm, unit


def _normalised_names(cols):
    return {_split_name(name)[0]: name for name in cols}


def _find(norm_map, candidates, exclude=()):
    for cand in candidates:
        name = norm_map.get(cand)
        if name is not None and name not in exclude:
            return name
    return None


def _pick_columns(raw, rd):
    names = list(raw.columns)
    norm = _normalised_names(raw.columns)
    where = f" ({raw.where})" if raw.where else ""
    found = ", ".join(repr(n) for n in names) or "none"

    def forced_or_found(role, candidates, exclude=()):
        if raw.forced.get(role):
            want = raw.forced[role]
            for name in names:
                if name.upper() == want.upper():
                    return name
            return None
        return _find(norm, candidates, exclude)

    wave = forced_or_found("wavelength", WAVELENGTH_NAMES)
    if not wave:
        raise rd.fail(
            UserBackgroundColumnError,
            f"no wavelength column{where}. Columns found: {found}. Recognised names "
            f"(case-insensitive, optional unit in brackets): {', '.join(WAVELENGTH_NAMES)}. "
            "Rename the wavelength column, e.g. to 'wavelength'.",
        )
    sb = forced_or_found("surf_bright", SURF_BRIGHT_NAMES, exclude=(wave,))
    if not sb:
        hint = ""
        if raw.format.startswith("jwst") or raw.format == "masterbg1d":
            hint = " jwst spectra must have a SURF_BRIGHT column."
        raise rd.fail(
            UserBackgroundColumnError,
            f"no surface-brightness column{where}. Columns found: {found}. Recognised names "
            f"(case-insensitive): {', '.join(SURF_BRIGHT_NAMES)}.{hint} Rename the "
            "surface-brightness column, e.g. to 'surf_bright'.",
        )
    err = forced_or_found("sb_error", ERROR_NAMES, exclude=(wave, sb)) or None
    return wave, sb, err


def _parse_unit(text, role, column, rd):
    if text is None or not str(text).strip():
        return None
    s = str(text).strip()
    if role == "wavelength":
        s = _WAVE_UNIT_ALIASES.get(s.lower(), s)
    unit = None
    for fmt in ("fits", "generic"):
        try:
            unit = u.Unit(s, format=fmt, parse_strict="raise")
            break
        except ValueError:
            continue
    if unit is None:
        raise rd.fail(
            UserBackgroundUnitError,
            f"cannot parse the unit {s!r} of column {column!r}. Use a unit astropy "
            "understands, e.g. 'um', 'nm', 'Angstrom' for wavelength and 'MJy/sr', "
            "'Jy/arcsec2' for surface brightness.",
        )
    if any(base == u.A for base in unit.decompose().bases):
        fixed = _LONE_A.sub("Angstrom", s)
        try:
            new = u.Unit(fixed, format="generic", parse_strict="raise")
        except ValueError:
            new = None
        if new is not None and fixed != s:
            rd.warn(f"read 'A' in unit {s!r} of column {column!r} as Angstrom, not ampere.")
            unit = new
    return unit


def _wave_to_micron(values, unit, column, rd):
    if unit is None:
        return values, True
    try:
        out = (values * unit).to_value(u.um, equivalencies=u.spectral())
    except u.UnitConversionError as exc:
        raise rd.fail(
            UserBackgroundUnitError,
            f"wavelength column {column!r} has unit {unit.to_string()!r}, which is not a "
            "length (nor a frequency, energy or wavenumber). Give wavelengths in um, nm, "
            "Angstrom or m.",
        ) from exc
    return out, unit.is_equivalent(u.m)


def _check_sb_unit(unit, column, rd):
    if unit is None or unit.is_equivalent(_MJYSR):
        return
    probe = u.spectral_density(1.0 * u.um)
    if unit.is_equivalent(u.Jy, equivalencies=probe):
        raise rd.fail(
            UserBackgroundUnitError,
            f"column {column!r} has unit {unit.to_string()!r}, a point-source flux density, "
            "not a surface brightness. A master background is a surface brightness "
            "(MJy/sr, as jwst's SURF_BRIGHT column): divide the flux by the solid angle "
            "it was extracted over (e.g. flux_Jy / (n_pixels * pixel_area_sr) * 1e-6 for "
            "MJy/sr), or use the SURF_BRIGHT column of a jwst x1d.",
        )
    if not unit.is_equivalent(_MJYSR, equivalencies=probe):
        raise rd.fail(
            UserBackgroundUnitError,
            f"column {column!r} has unit {unit.to_string()!r}, which is not a spectral "
            "surface brightness. Give the background in MJy/sr (or Jy/arcsec2, "
            "erg/s/cm2/Hz/sr, erg/s/cm2/Angstrom/sr).",
        )


def _sb_to_mjysr(values, unit, wave_um):
    if unit is None:
        return values
    if unit.is_equivalent(_MJYSR):
        return (values * unit).to_value(_MJYSR)
    return (values * unit).to_value(_MJYSR, equivalencies=u.spectral_density(wave_um * u.um))


def _as_float(values, column, rd):
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise rd.fail(
            UserBackgroundColumnError,
            f"column {column!r} is not numeric (dtype {arr.dtype}). Fix the values or the "
            "header (a stray text row?).",
        )
    return np.array(arr, dtype=np.float64).reshape(-1)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def read_user_background(
    path,
    *,
    science_wavelength_range=None,
    min_overlap=0.5,
    spectrum_index=None,
):
    """Read and validate a user-supplied 1-D master background spectrum.

    Parameters
    ----------
    path : str, `~pathlib.Path`, or `~stdatamodels.jwst.datamodels.JwstDataModel`
        The file (jwst x1d, c1d or masterbg1d; any FITS table; ECSV; CSV or
        whitespace-separated text), or an open ``MultiSpecModel`` or
        ``CombinedSpecModel`` (copied, never modified).
    science_wavelength_range : tuple of float or `~astropy.units.Quantity`, optional
        ``(min, max)`` wavelengths of the science data (micron if plain numbers).
        If given, the background must cover at least ``min_overlap`` of it.
    min_overlap : float, optional
        Smallest accepted fraction of ``science_wavelength_range`` covered by
        the background, in [0, 1].
    spectrum_index : int, optional
        Which spectrum of a multi-spectrum x1d to use.  By default the first,
        with a warning if there are several.

    Returns
    -------
    `UserBackground`
        Wavelength in micron (sorted, strictly increasing), surface brightness
        and its error in MJy/sr, and the warnings issued.

    Raises
    ------
    UserBackgroundError
        A subclass naming the file and the fix: `UserBackgroundFileNotFoundError`,
        `UserBackgroundFormatError`, `UserBackgroundColumnError`,
        `UserBackgroundUnitError`, `UserBackgroundValueError`,
        `UserBackgroundCoverageError`.

    Notes
    -----
    Units come from FITS ``TUNITn``, ECSV metadata, or brackets in a text
    header (``wave[um]``, ``flux (MJy/sr)``).  Wavelength may be any length,
    or a frequency, energy or wavenumber (`~astropy.units.spectral`).  Surface
    brightness may be any spectral surface brightness, f_nu or f_lambda per
    solid angle (`~astropy.units.spectral_density`).  Without units, micron and
    MJy/sr are assumed with a warning, unless the wavelengths are implausible
    for micron.  Rows with non-finite wavelength or surface brightness are
    dropped; unsorted rows are sorted; duplicate wavelengths are averaged.  The
    DQ column of jwst products is not used (jwst does not use it either).

    Examples
    --------
    >>> bkg = read_user_background("sky.csv", min_overlap=0.9)  # doctest: +SKIP
    >>> bkg.format, bkg.wavelength_range, bkg.warnings  # doctest: +SKIP
    """
    if isinstance(path, (str, Path)) or hasattr(path, "__fspath__"):
        fpath = Path(path)
        rd = _Reader(fpath)
        if not fpath.exists() and not fpath.is_dir():
            raise rd.fail(
                UserBackgroundFileNotFoundError,
                f"file not found. Check the path (relative paths are relative to {Path.cwd()}).",
            )
        try:
            check_input_file(fpath, "user background")
        except InputFileError as err:
            raise rd.fail(UserBackgroundUnreadableError, err.reason) from err
        try:
            raw = (
                _read_fits(fpath, rd, spectrum_index)
                if _is_fits(fpath)
                else _read_text(fpath, rd)
            )
        except UserBackgroundError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a reader names the file
            problem, fix = read_failure(exc, fpath)
            raise rd.fail(UserBackgroundFormatError, f"{problem}. {fix}") from exc
    else:
        fname = getattr(getattr(path, "meta", None), "filename", None) or "<in-memory model>"
        fpath = Path(fname)
        rd = _Reader(fpath)
        raw = _read_model(path, rd, spectrum_index)
    return _validate(raw, rd, science_wavelength_range, min_overlap, spectrum_index)


def _select_rows(raw, used, rd, spectrum_index):
    """Handle vector columns: one row is flattened, several rows are several spectra."""
    arrays = {c: np.asarray(raw.columns[c][0]) for c in used}
    wave = arrays[used[0]]
    if wave.ndim < 2:
        return arrays
    nrow = wave.shape[0]
    if nrow == 1:
        return {c: a.reshape(-1) for c, a in arrays.items()}
    # With several EXTRACT1D extensions, spectrum_index already chose the extension.
    if raw.multi_hdu:
        spectrum_index = None
    index = 0 if spectrum_index is None else int(spectrum_index)
    if not 0 <= index < nrow:
        raise rd.fail(
            UserBackgroundFormatError,
            f"spectrum_index={spectrum_index} is out of range: the table holds {nrow} "
            f"spectra as rows (0..{nrow - 1}).",
        )
    if spectrum_index is None:
        rd.warn(
            f"holds {nrow} spectra as table rows (vector columns); using row 0. Pass "
            "spectrum_index to choose another."
        )
    return {c: a[index].reshape(-1) for c, a in arrays.items()}


def _validate(raw, rd, science_wavelength_range, min_overlap, spectrum_index=None):
    wcol, scol, ecol = _pick_columns(raw, rd)
    used = [c for c in (wcol, scol, ecol) if c is not None]
    arrays = _select_rows(raw, used, rd, spectrum_index)
    wave_raw = _as_float(arrays[wcol], wcol, rd)
    sb_raw = _as_float(arrays[scol], scol, rd)
    err_raw = None if ecol is None else _as_float(arrays[ecol], ecol, rd)
    if wave_raw.size != sb_raw.size:
        raise rd.fail(
            UserBackgroundColumnError,
            f"columns {wcol!r} and {scol!r} have different lengths "
            f"({wave_raw.size} and {sb_raw.size}).",
        )
    if err_raw is not None and err_raw.size != wave_raw.size:
        rd.warn(f"error column {ecol!r} has a different length; ignored.")
        ecol, err_raw = None, None

    # Units: file metadata first, then brackets in the column name.
    def unit_text(col):
        return raw.columns[col][1] or _split_name(col)[1]

    wunit_s, sunit_s = unit_text(wcol), unit_text(scol)
    eunit_s = unit_text(ecol) if ecol else None
    wunit = _parse_unit(wunit_s, "wavelength", wcol, rd)
    sunit = _parse_unit(sunit_s, "surf_bright", scol, rd)
    eunit = _parse_unit(eunit_s, "sb_error", ecol, rd) if ecol else None
    _check_sb_unit(sunit, scol, rd)
    if ecol:
        _check_sb_unit(eunit, ecol, rd)
        if eunit is None and sunit is not None:
            eunit = sunit
            rd.warn(f"error column {ecol!r} has no unit; assuming that of {scol!r}.")
        elif sunit is None and eunit is not None:
            sunit = eunit
            rd.warn(f"column {scol!r} has no unit; assuming that of {ecol!r}.")
    if wunit is None:
        rd.warn(
            f"column {wcol!r} has no unit; assuming micron. Add a unit (FITS TUNITn, ECSV "
            "unit, or a header like 'wave[um]') to make this explicit."
        )
    if sunit is None:
        rd.warn(
            f"column {scol!r} has no unit; assuming MJy/sr. Add a unit (e.g. "
            "'surf_bright[MJy/sr]') to make this explicit."
        )

    wave, is_length = _wave_to_micron(wave_raw, wunit, wcol, rd)
    good = np.isfinite(wave) & np.isfinite(sb_raw)
    n_bad = int(good.size - good.sum())
    if good.sum() == 0:
        raise rd.fail(
            UserBackgroundValueError,
            f"no finite values: all {good.size} rows of {wcol!r}/{scol!r} are NaN, "
            "infinite or empty. Check the columns hold the spectrum.",
        )
    if n_bad:
        rd.warn(
            f"dropped {n_bad} of {good.size} rows with non-finite wavelength or surface brightness."
        )
    if good.sum() < MIN_POINTS:
        raise rd.fail(
            UserBackgroundValueError,
            f"only {int(good.sum())} finite points; at least {MIN_POINTS} are needed to "
            "interpolate a background. Supply a sampled spectrum, not a few values.",
        )
    wave, sb_raw = wave[good], sb_raw[good]
    err_raw = None if err_raw is None else err_raw[good]
    nonpos = wave <= 0
    if nonpos.any():
        raise rd.fail(
            UserBackgroundValueError,
            f"{int(nonpos.sum())} wavelengths are zero or negative (e.g. "
            f"{wave[nonpos][0]:g}). Wavelengths must be positive; check the column and "
            "its unit.",
        )
    if wunit is None:
        wmax = float(wave.max())
        if wmax > _MAX_UNITLESS_MICRON:
            raise rd.fail(
                UserBackgroundUnitError,
                f"wavelengths reach {wmax:g} with no unit in the file: not plausible in "
                "micron (nm or Angstrom?). Add the unit, e.g. a header 'wave[nm]', FITS "
                "TUNITn = 'nm', or convert to micron.",
            )
        if wmax < _MIN_UNITLESS_MICRON:
            raise rd.fail(
                UserBackgroundUnitError,
                f"wavelengths reach only {wmax:g} with no unit in the file: not plausible "
                "in micron (metres?). Add the unit, e.g. 'wave[m]', or convert to micron.",
            )
    elif wave.max() < _JWST_MICRON[0] or wave.min() > _JWST_MICRON[1]:
        rd.warn(
            f"wavelengths {wave.min():.4g}-{wave.max():.4g} um (from unit "
            f"{wunit.to_string()!r}) lie outside JWST's {_JWST_MICRON[0]}-{_JWST_MICRON[1]} "
            f"um; check the unit of column {wcol!r}."
        )
    sb = _sb_to_mjysr(sb_raw, sunit, wave)
    err = None
    if err_raw is not None:
        err = _sb_to_mjysr(err_raw, eunit, wave)
        finite_err = np.isfinite(err)
        if not finite_err.any():
            log.info("%s: error column %r holds no finite values; ignored", rd.path, ecol)
            err, ecol = None, None
        else:
            neg = finite_err & (err < 0)
            if neg.any():
                raise rd.fail(
                    UserBackgroundValueError,
                    f"{int(neg.sum())} negative values in error column {ecol!r} (e.g. "
                    f"{err[neg][0]:g}). Uncertainties must be >= 0: is this a variance or "
                    "a signed residual? Give 1-sigma errors.",
                )
            if not finite_err.all():
                rd.warn(
                    f"{int((~finite_err).sum())} rows have a non-finite error in {ecol!r}; "
                    "kept with NaN error."
                )

    wave, sb, err = _sort_and_merge(wave, sb, err, is_length, rd)
    if wave.size < MIN_POINTS:
        raise rd.fail(
            UserBackgroundValueError,
            f"only {wave.size} distinct wavelengths; at least {MIN_POINTS} are needed.",
        )
    if science_wavelength_range is not None:
        _check_coverage(wave, science_wavelength_range, min_overlap, rd)
    neg_frac = float(np.mean(sb < 0))
    if neg_frac > 0.5:
        rd.warn(
            f"{neg_frac:.0%} of the surface brightness is negative; a sky background is "
            "positive. Is this a background-subtracted or residual spectrum?"
        )
    elif np.all(sb == 0):
        rd.warn("the surface brightness is zero everywhere; subtracting it changes nothing.")

    for arr in (wave, sb, err):
        if arr is not None:
            arr.flags.writeable = False
    return UserBackground(
        wavelength=wave,
        surf_bright=sb,
        sb_error=err,
        path=rd.path,
        format=raw.format,
        wavelength_column=wcol,
        surf_bright_column=scol,
        sb_error_column=ecol,
        wavelength_unit=None if wunit is None else wunit.to_string(),
        surf_bright_unit=None if sunit is None else sunit.to_string(),
        warnings=list(rd.warnings),
    )


def _sort_and_merge(wave, sb, err, is_length, rd):
    d = np.diff(wave)
    if np.all(d > 0):
        return wave, sb, err
    if np.all(d < 0):
        order = np.arange(wave.size)[::-1]
        if is_length:
            rd.warn("wavelengths are in decreasing order; reversed.")
    else:
        order = np.argsort(wave, kind="stable")
        if not np.all(d >= 0):
            rd.warn("wavelengths are not sorted; rows sorted by wavelength.")
    wave, sb = wave[order], sb[order]
    err = None if err is None else err[order]
    uniq, inverse, counts = np.unique(wave, return_inverse=True, return_counts=True)
    if uniq.size == wave.size:
        return wave, sb, err
    n_dup = int((counts > 1).sum())
    rd.warn(
        f"{n_dup} wavelengths occur more than once ({wave.size - uniq.size} extra rows); "
        "their surface brightness (and errors) were averaged."
    )
    sb_m = np.bincount(inverse, weights=sb) / counts
    err_m = None
    if err is not None:
        err_m = np.sqrt(np.bincount(inverse, weights=err**2)) / counts
    return uniq, sb_m, err_m


def _check_coverage(wave, science_range, min_overlap, rd):
    lo, hi = (
        science_range.to_value(u.um, equivalencies=u.spectral())
        if isinstance(science_range, u.Quantity)
        else np.asarray(science_range, dtype=float)
    )
    lo, hi = float(min(lo, hi)), float(max(lo, hi))
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(
            f"science_wavelength_range must be two finite, distinct values: {lo}, {hi}"
        )
    if not 0.0 <= min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be in [0, 1], not {min_overlap}")
    wmin, wmax = float(wave[0]), float(wave[-1])
    overlap = max(0.0, min(hi, wmax) - max(lo, wmin))
    frac = overlap / (hi - lo)
    if frac < min_overlap:
        raise rd.fail(
            UserBackgroundCoverageError,
            f"covers {wmin:.4g}-{wmax:.4g} um, only {frac:.1%} of the science range "
            f"{lo:.4g}-{hi:.4g} um (min_overlap={min_overlap:.0%}). Supply a background "
            "for this grating/filter, or lower min_overlap.",
        )
    gaps = []
    if wmin > lo:
        gaps.append(f"{lo:.4g}-{wmin:.4g} um")
    if wmax < hi:
        gaps.append(f"{wmax:.4g}-{hi:.4g} um")
    if gaps:
        rd.warn(
            f"covers {frac:.1%} of the science range {lo:.4g}-{hi:.4g} um; "
            f"{' and '.join(gaps)} not covered: science pixels there get no background."
        )
    inside = (wave >= lo) & (wave <= hi)
    w_in = wave[inside]
    if w_in.size > 2:
        step = np.diff(w_in)
        big = step > 20 * np.median(step)
        for k in np.flatnonzero(big)[:3]:
            rd.warn(
                f"gap in the background between {w_in[k]:.4g} and {w_in[k + 1]:.4g} um "
                "(interpolated linearly across)."
            )


def write_user_background(
    path, wavelength, surf_bright, sb_error=None, *, n_inputs=None, overwrite=False
):
    """Write a 1-D background that `read_user_background` and jwst both accept.

    The file is a ``masterbg1d`` product as jwst 3.0 writes it
    (`~jwst_mbkg_plus.io.products.masterbg1d_model`: a
    `~stdatamodels.jwst.datamodels.MultiCombinedSpecModel` with one spectrum)
    with WAVELENGTH [um], SURF_BRIGHT and SB_ERROR [MJy/sr], FLUX and ERROR
    [Jy] (NaN: a background has no point-source flux), DQ, WEIGHT and N_INPUT.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output file name (``.fits``).
    wavelength : array-like or `~astropy.units.Quantity`
        Wavelengths; micron if plain numbers.  Must be finite, positive and
        strictly increasing after unit conversion.
    surf_bright : array-like or `~astropy.units.Quantity`
        Surface brightness; MJy/sr if plain numbers.
    sb_error : array-like or `~astropy.units.Quantity`, optional
        1-sigma uncertainty of ``surf_bright``, same unit rules; NaN if omitted.
    n_inputs : int or array-like, optional
        Number of spectra combined at each wavelength (N_INPUT); NaN if omitted.
    overwrite : bool, optional
        Replace an existing file.

    Returns
    -------
    `~pathlib.Path`
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the arrays are not 1-D, differ in length, or hold invalid values.
    """
    from jwst_mbkg_plus.io.products import masterbg1d_model

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if isinstance(wavelength, u.Quantity):
        wave = wavelength.to_value(u.um, equivalencies=u.spectral())
    else:
        wave = wavelength
    wave = np.array(wave, dtype=np.float64, copy=True)

    def to_sb(values, name):
        if isinstance(values, u.Quantity):
            out = values.to_value(_MJYSR, equivalencies=u.spectral_density(wave * u.um))
        else:
            out = values
        out = np.array(out, dtype=np.float64, copy=True)
        if out.shape != wave.shape:
            raise ValueError(f"{name} has shape {out.shape}, wavelength {wave.shape}")
        return out

    if wave.ndim != 1 or wave.size < 2:
        raise ValueError(f"wavelength must be 1-D with >= 2 points, got shape {wave.shape}")
    sb = to_sb(surf_bright, "surf_bright")
    err = np.full_like(wave, np.nan) if sb_error is None else to_sb(sb_error, "sb_error")
    if not np.all(np.isfinite(wave)) or np.any(wave <= 0) or np.any(np.diff(wave) <= 0):
        raise ValueError("wavelength must be finite, positive and strictly increasing")
    if np.any(err < 0):
        raise ValueError("sb_error must be >= 0")
    n_in = np.full_like(wave, np.nan)
    if n_inputs is not None:
        n_in = np.broadcast_to(np.asarray(n_inputs, dtype=np.float64), wave.shape).copy()

    with masterbg1d_model(wave, sb, err, n_in) as model:
        model.spec[0].source_type = "EXTENDED"
        atomic_save_model(model, path)
    log.info("wrote user background %s (%d points)", path, wave.size)
    return path
