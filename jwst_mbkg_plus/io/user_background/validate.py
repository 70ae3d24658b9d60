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
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np

from jwst_mbkg_plus.io.user_background.columns_units import (
    JWST_MICRON,
    MAX_UNITLESS_MICRON,
    MIN_POINTS,
    MIN_UNITLESS_MICRON,
    as_float,
    check_sb_unit,
    parse_unit,
    pick_columns,
    sb_to_mjysr,
    split_name,
    wave_to_micron,
)
from jwst_mbkg_plus.io.user_background.errors import (
    UserBackgroundColumnError,
    UserBackgroundCoverageError,
    UserBackgroundError,
    UserBackgroundFileNotFoundError,
    UserBackgroundFormatError,
    UserBackgroundUnitError,
    UserBackgroundUnreadableError,
    UserBackgroundValueError,
)
from jwst_mbkg_plus.io.user_background.readers import (
    ReadReport,
    is_fits,
    read_fits,
    read_model,
    read_text,
)
from jwst_mbkg_plus.io.user_background.values import RANGE_FACTOR, absurd_rows, describe_rows
from jwst_mbkg_plus.safe_io import (
    InputFileError,
    check_input_file,
    describe_file,
    read_failure,
)

__all__ = [
    "UserBackground",
    "read_user_background",
]

log = logging.getLogger(__name__)



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
        rd = ReadReport(fpath)
        if not fpath.exists() and not fpath.is_dir():
            raise rd.fail(
                UserBackgroundFileNotFoundError,
                f"file not found. Check the path (relative paths are relative to {Path.cwd()}).",
            )
        try:
            check_input_file(fpath, "user background")
        except InputFileError as err:
            raise rd.fail(UserBackgroundUnreadableError, err.reason) from err
        _refuse_other_kinds(fpath, rd)
        try:
            raw = (
                read_fits(fpath, rd, spectrum_index)
                if is_fits(fpath)
                else read_text(fpath, rd)
            )
        except UserBackgroundError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a reader names the file
            problem, fix = read_failure(exc, fpath)
            raise rd.fail(UserBackgroundFormatError, f"{problem}. {fix}") from exc
    else:
        fname = getattr(getattr(path, "meta", None), "filename", None) or "<in-memory model>"
        fpath = Path(fname)
        rd = ReadReport(fpath)
        raw = read_model(path, rd, spectrum_index)
    return _validate(raw, rd, science_wavelength_range, min_overlap, spectrum_index)


_EXPECTED = ("A user background is a 1-D spectrum: a jwst x1d/c1d/masterbg1d FITS product, "
             "a FITS table, ECSV, CSV or text with wavelength and surface-brightness columns.")


def _refuse_other_kinds(fpath, rd):
    """Name a file that is plainly not a table (an image, an archive, an ASDF record)."""
    kind = describe_file(fpath)
    if not kind or kind.startswith(("a FITS", "a text", "an empty", "a gzip")):
        return
    raise rd.fail(UserBackgroundFormatError, f"is {kind}. {_EXPECTED}")


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
            f"holds {nrow} spectra as table rows (vector columns); using row 0. To use "
            "another, write it alone with jwst_mbkg_plus.io.user_background."
            "write_user_background, or combine them with 'jwst-mbkg-plus master'."
        )
    return {c: a[index].reshape(-1) for c, a in arrays.items()}


def _validate(raw, rd, science_wavelength_range, min_overlap, spectrum_index=None):
    wcol, scol, ecol = pick_columns(raw, rd)
    used = [c for c in (wcol, scol, ecol) if c is not None]
    arrays = _select_rows(raw, used, rd, spectrum_index)
    wave_raw = as_float(arrays[wcol], wcol, rd)
    sb_raw = as_float(arrays[scol], scol, rd)
    err_raw = None if ecol is None else as_float(arrays[ecol], ecol, rd)
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
        return raw.columns[col][1] or split_name(col)[1]

    wunit_s, sunit_s = unit_text(wcol), unit_text(scol)
    eunit_s = unit_text(ecol) if ecol else None
    wunit = parse_unit(wunit_s, "wavelength", wcol, rd)
    sunit = parse_unit(sunit_s, "surf_bright", scol, rd)
    eunit = parse_unit(eunit_s, "sb_error", ecol, rd) if ecol else None
    check_sb_unit(sunit, scol, rd)
    if ecol:
        check_sb_unit(eunit, ecol, rd)
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

    wave, is_length = wave_to_micron(wave_raw, wunit, wcol, rd)
    good = np.isfinite(wave) & np.isfinite(sb_raw)
    n_bad = int(good.size - good.sum())
    absurd = absurd_rows(sb_raw) & good
    if absurd.sum() > 0.5 * good.sum():
        absurd[:] = False  # most of the column: not a few bad rows; the checks below decide
    if absurd.any():
        rows = np.flatnonzero(absurd)
        rd.warn(
            f"dropped {describe_rows(rows + 1, sb_raw[rows])} of column {scol!r}: fill values "
            f"or values more than {RANGE_FACTOR:g} times the spectrum's robust range beyond "
            "it (row 1 is the first data row). Set missing values to NaN or remove those rows."
        )
        good &= ~absurd
    if good.sum() == 0:
        raise rd.fail(
            UserBackgroundValueError,
            f"no finite values: all {good.size} rows of {wcol!r}/{scol!r} are NaN, "
            "infinite or empty. Check the columns hold the spectrum.",
        )
    if n_bad:
        rows = np.flatnonzero(~(np.isfinite(wave) & np.isfinite(sb_raw))) + 1
        rd.warn(
            f"dropped {n_bad} of {good.size} rows with non-finite wavelength or surface "
            f"brightness (rows {', '.join(map(str, rows[:5]))}{', ...' if n_bad > 5 else ''})."
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
        if wmax > MAX_UNITLESS_MICRON:
            raise rd.fail(
                UserBackgroundUnitError,
                f"wavelengths reach {wmax:g} with no unit in the file: not plausible in "
                "micron (nm or Angstrom?). Add the unit, e.g. a header 'wave[nm]', FITS "
                "TUNITn = 'nm', or convert to micron.",
            )
        if wmax < MIN_UNITLESS_MICRON:
            raise rd.fail(
                UserBackgroundUnitError,
                f"wavelengths reach only {wmax:g} with no unit in the file: not plausible "
                "in micron (metres?). Add the unit, e.g. 'wave[m]', or convert to micron.",
            )
    elif wave.max() < JWST_MICRON[0] or wave.min() > JWST_MICRON[1]:
        rd.warn(
            f"wavelengths {wave.min():.4g}-{wave.max():.4g} um (from unit "
            f"{wunit.to_string()!r}) lie outside JWST's {JWST_MICRON[0]}-{JWST_MICRON[1]} "
            f"um; check the unit of column {wcol!r}."
        )
    sb = sb_to_mjysr(sb_raw, sunit, wave)
    err = None
    if err_raw is not None:
        err = sb_to_mjysr(err_raw, eunit, wave)
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
            f"{lo:.4g}-{hi:.4g} um (user_background_min_overlap={min_overlap:g}). Supply a "
            "background for this grating/filter, or lower user_background_min_overlap.",
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


