"""Which columns hold the spectrum, and their units, in a user background file.
"""

from __future__ import annotations

import logging
import re

import astropy.units as u
import numpy as np

from jwst_mbkg_plus.io.user_background.errors import (
    UserBackgroundColumnError,
    UserBackgroundUnitError,
)

__all__ = [
    "ERROR_NAMES",
    "FITS_SUFFIXES",
    "JWST_MICRON",
    "MAX_UNITLESS_MICRON",
    "MIN_POINTS",
    "MIN_UNITLESS_MICRON",
    "MJYSR",
    "SURF_BRIGHT_NAMES",
    "WAVELENGTH_NAMES",
    "as_float",
    "check_sb_unit",
    "find_column",
    "normalised_names",
    "parse_unit",
    "pick_columns",
    "sb_to_mjysr",
    "split_name",
    "wave_to_micron",
]

log = logging.getLogger(__name__)

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

MJYSR = u.MJy / u.sr
# Largest plausible wavelength (micron) when a file carries no unit: MIRI ends
# near 28.8 micron; anything above 100 is nm or Angstrom.
MAX_UNITLESS_MICRON = 100.0
MIN_UNITLESS_MICRON = 0.05
JWST_MICRON = (0.5, 30.0)
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
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


def split_name(name):
    """Return (normalised name, unit from brackets or None)."""
    m = _UNIT_IN_NAME.match(name)
    unit = None
    if m and m.group("name"):
        name, unit = m.group("name"), (m.group("unit") or None)
    norm = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return norm, unit


def normalised_names(cols):
    return {split_name(name)[0]: name for name in cols}


def find_column(norm_map, candidates, exclude=()):
    for cand in candidates:
        name = norm_map.get(cand)
        if name is not None and name not in exclude:
            return name
    return None


def pick_columns(raw, rd):
    names = list(raw.columns)
    norm = normalised_names(raw.columns)
    where = f" ({raw.where})" if raw.where else ""
    found = ", ".join(repr(n) for n in names) or "none"

    def forced_or_found(role, candidates, exclude=()):
        if raw.forced.get(role):
            want = raw.forced[role]
            for name in names:
                if name.upper() == want.upper():
                    return name
            return None
        return find_column(norm, candidates, exclude)

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


def parse_unit(text, role, column, rd):
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


def wave_to_micron(values, unit, column, rd):
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


def check_sb_unit(unit, column, rd):
    if unit is None or unit.is_equivalent(MJYSR):
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
    if not unit.is_equivalent(MJYSR, equivalencies=probe):
        raise rd.fail(
            UserBackgroundUnitError,
            f"column {column!r} has unit {unit.to_string()!r}, which is not a spectral "
            "surface brightness. Give the background in MJy/sr (or Jy/arcsec2, "
            "erg/s/cm2/Hz/sr, erg/s/cm2/Angstrom/sr).",
        )


def sb_to_mjysr(values, unit, wave_um):
    if unit is None:
        return values
    if unit.is_equivalent(MJYSR):
        return (values * unit).to_value(MJYSR)
    return (values * unit).to_value(MJYSR, equivalencies=u.spectral_density(wave_um * u.um))


def as_float(values, column, rd):
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise rd.fail(
            UserBackgroundColumnError,
            f"column {column!r} is not numeric (dtype {arr.dtype}). Fix the values or the "
            "header (a stray text row?).",
        )
    return np.array(arr, dtype=np.float64).reshape(-1)


