"""Build a ``user_background`` file from background spectra: the notebook's vetting step.

The STScI notebook interpolates the background spectra onto a common grid,
drops those whose median relative deviation from the median spectrum exceeds
5%, sigma-clips per wavelength and takes the mean. :func:`make_master_background`
does the same with the package's algorithms:

1. read every spectrum of the inputs (:func:`read_background_spectra`): jwst
   x1d/c1d products (``SURF_BRIGHT``/``SB_ERROR`` or ``BACKGROUND``/``BKGD_ERROR``)
   or cal/s2d ``MultiSlitModel`` files, whose background slits (MSA designation or
   ``slits``) are binned in wavelength from all their valid pixels;
2. resample them onto one grid
   (:func:`~jwst_mbkg_plus.algorithms.grid.common_wavelength_grid`,
   :func:`~jwst_mbkg_plus.algorithms.grid.resample_spectra`);
3. reject whole deviating spectra (:func:`~jwst_mbkg_plus.algorithms.selection.vet_spectra`);
4. combine the rest per wavelength (:func:`~jwst_mbkg_plus.algorithms.combine.combine_spectra`),
   optionally smooth (:func:`~jwst_mbkg_plus.algorithms.smoothing.median_filter_nan`);
5. write the result with :func:`~jwst_mbkg_plus.io.user_background.write_user_background`.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.algorithms import grid
from jwst_mbkg_plus.algorithms import master as core
from jwst_mbkg_plus.input_checks import unique_files
from jwst_mbkg_plus.io.slits import BackgroundSelectionError, select_background_slits, slit_label
from jwst_mbkg_plus.io.spectra import column_names, spectrum_name, table_columns
from jwst_mbkg_plus.io.user_background import write_user_background
from jwst_mbkg_plus.plots import plot_master_background
from jwst_mbkg_plus.tools import ToolInputError, check_output_path, tool_reading

__all__ = [
    "COLUMNS",
    "BackgroundSpectrum",
    "MasterResult",
    "combine_background_spectra",
    "make_master_background",
    "read_background_spectra",
]

log = logging.getLogger(__name__)

#: Column choices: value column and its error column in a jwst x1d table.
COLUMNS = {"surf_bright": ("SURF_BRIGHT", "SB_ERROR"), "background": ("BACKGROUND", "BKGD_ERROR")}

_MJYSR = u.MJy / u.sr


@dataclass(frozen=True)
class BackgroundSpectrum:
    """
    One background spectrum read from a file.

    Attributes
    ----------
    label : str
        ``<file name>[<index>]:<slit or spectrum name>``.
    wavelength : ndarray
        Micron.
    flux : ndarray
        Surface brightness, MJy/sr.
    var : ndarray or None
        Its variance, (MJy/sr)**2 (None if the file has no usable error).
    """

    label: str
    wavelength: np.ndarray
    flux: np.ndarray
    var: np.ndarray | None


@dataclass(frozen=True)
class MasterResult:
    """
    Result of `combine_background_spectra`.

    Attributes
    ----------
    labels : list of str
        Label of each input spectrum.
    wavelength : ndarray, shape (n_wave,)
        Common grid, micron.
    flux : ndarray, shape (n_spectra, n_wave)
        Input spectra on the grid, MJy/sr (NaN = no data).
    var : ndarray, shape (n_spectra, n_wave)
        Their variances (NaN where unknown).
    accepted : ndarray of bool, shape (n_spectra,)
        Spectra kept by the vetting.
    reasons : list of str
        ``"accepted"`` or why each spectrum was rejected.
    scores : ndarray, shape (n_spectra,)
        Vetting significance of each spectrum's deviation (NaN if not vetted).
    master : ndarray, shape (n_wave,)
        The master background, MJy/sr (NaN where undefined).
    master_err : ndarray, shape (n_wave,)
        Its 1-sigma uncertainty.
    n_used : ndarray of int, shape (n_wave,)
        Spectra combined at each wavelength.
    clipped : ndarray of bool, shape (n_spectra, n_wave)
        Points of accepted spectra rejected by the per-wavelength clip.
    cv : ndarray, shape (n_wave,)
        Coefficient of variation of the accepted, unclipped points: robust
        scatter over the master, per wavelength (`coefficient_of_variation`).
    output : `~pathlib.Path` or None
        The file written by `make_master_background`.
    plot : `~pathlib.Path` or None
        The QA plot written by `make_master_background`.
    """

    labels: list
    wavelength: np.ndarray
    flux: np.ndarray
    var: np.ndarray
    accepted: np.ndarray
    reasons: list
    scores: np.ndarray
    master: np.ndarray
    master_err: np.ndarray
    n_used: np.ndarray
    clipped: np.ndarray
    cv: np.ndarray
    output: Path | None = None
    plot: Path | None = None

    @property
    def clipped_fraction(self):
        """float: fraction of the accepted spectra's valid points clipped."""
        n_valid = np.isfinite(self.flux[self.accepted]).sum()
        return float(self.clipped.sum() / n_valid) if n_valid else 0.0


def _column_unit(table_columns, name):
    for col in table_columns:
        if col.name.upper() == name:
            return col.unit
    return None


def _to_quantity(values, unit, default, path, column, equivalencies=None):
    unit = u.Unit(unit, parse_strict="silent") if unit else default
    if isinstance(unit, u.UnrecognizedUnit):
        raise ToolInputError(path, f"column {column} has an unrecognised unit {unit!s}")
    try:
        return (np.asarray(values, dtype=np.float64) * unit).to_value(
            default, equivalencies=equivalencies or []
        )
    except u.UnitConversionError:
        raise ToolInputError(
            path, f"column {column} is in {unit}, not convertible to {default}"
        ) from None


def _spectra_from_x1d(model, path, column):
    value_col, err_col = COLUMNS[column]
    out = []
    for i, spec in enumerate(model.spec):
        table = spec.spec_table
        if not {"WAVELENGTH", value_col} <= column_names(table):
            raise ToolInputError(
                path, f"spectrum {i} has no WAVELENGTH and {value_col} columns; "
                "give x1d, c1d or masterbg1d products"
            )
        columns = spec.spec_table.columns if hasattr(spec.spec_table, "columns") else []
        values = table_columns(table, ("WAVELENGTH", value_col), optional=(err_col,),
                               checked=(value_col,), name=f"{Path(path).name} spectrum {i}")
        wave, flux, err = values["WAVELENGTH"], values[value_col], values[err_col]
        wave_unit = _column_unit(columns, "WAVELENGTH")
        wave = _to_quantity(wave, wave_unit, u.um, path, "WAVELENGTH", u.spectral())
        sb_unit = _column_unit(columns, value_col)
        flux = _to_quantity(flux, sb_unit, _MJYSR, path, value_col)
        if err is not None:
            err = _to_quantity(err, _column_unit(columns, err_col) or sb_unit, _MJYSR, path,
                               err_col)
        name = spectrum_name(spec, i)
        rows = wave.reshape(-1, wave.shape[-1]) if wave.ndim > 1 else wave[None]
        frows = flux.reshape(rows.shape)
        erows = None if err is None else err.reshape(rows.shape)
        for k in range(rows.shape[0]):
            label = f"{path.name}[{i}]:{name}" + (f"/{k}" if rows.shape[0] > 1 else "")
            var = None
            if erows is not None and np.isfinite(erows[k]).any():
                var = erows[k] ** 2
            out.append(BackgroundSpectrum(label, rows[k], frows[k], var))
    return out


def _spectra_from_slits(model, path, slits):
    """Each background slit binned in wavelength, exactly as the MOS step's first round."""
    # Here, not at the top: it loads jwst, which x1d inputs do not need.
    from jwst_mbkg_plus.mos.slit_spectra import bin_slits, slit_arrays, slit_grid

    try:
        chosen = select_background_slits(model.slits, include=slits or None)
    except BackgroundSelectionError as err:
        raise ToolInputError(path, f"{err}; name background slits with --slits") from None
    exp_type = model.meta.exposure.type
    arrays = [slit_arrays(model.slits[i], exp_type) for i in chosen.indices]
    if not any(valid.any() for *_, valid in arrays):
        raise ToolInputError(path, "its background slits have no valid calibrated pixel")
    grid_wave, _ = slit_grid(arrays)
    flux, var = bin_slits(arrays, [np.zeros(a[1].shape, dtype=bool) for a in arrays], grid_wave)
    out = []
    for k, index in enumerate(chosen.indices):
        keep = np.isfinite(flux[k])
        if keep.sum() >= 2:
            label = f"{path.name}:{slit_label(model.slits[index])}"
            out.append(BackgroundSpectrum(label, grid_wave[keep], flux[k, keep], var[k, keep]))
    return out


def read_background_spectra(paths, *, column="surf_bright", slits=None, progress=None):
    """
    Read every background spectrum of a list of files.

    Parameters
    ----------
    paths : sequence of str or `~pathlib.Path`
        jwst x1d/c1d/masterbg1d products (every spectrum is used) or cal/s2d
        ``MultiSlitModel`` files (their background slits, binned in wavelength).
    column : {"surf_bright", "background"}, optional
        x1d column to read: ``SURF_BRIGHT`` (spectra extracted from background
        slitlets) or ``BACKGROUND`` (the background the extraction measured
        beside a source).
    slits : list of str, optional
        For MultiSlitModel inputs: the slits to use (slitlet id, name, source
        id or source name); default those the MSA file designates background.
    progress : callable, optional
        Called with a message before each file.

    Returns
    -------
    list of BackgroundSpectrum
        The spectra, in input order.

    Raises
    ------
    ToolInputError
        If a file is missing, of another kind, or lacks the columns.
    """
    if column not in COLUMNS:
        raise ValueError(f"column must be one of {sorted(COLUMNS)}, got {column!r}")
    spectra = []
    for k, path in enumerate(paths, start=1):
        path = Path(path).expanduser()
        if progress is not None:
            progress(f"[{k}/{len(paths)}] reading {path.name}")
        if not path.exists():
            raise ToolInputError(path, "no such file")
        try:
            with tool_reading(path, "background product"):
                model = datamodels.open(path)
        except ToolInputError as err:
            raise ToolInputError(path, f"{err.reason} Give x1d or cal files.") from None
        with model, tool_reading(path, "background product"):
            subtracted = [
                step for step in ("master_background", "bkg_subtract")
                if getattr(model.meta.cal_step, step, None) == "COMPLETE"
            ]
            if subtracted:
                raise ToolInputError(
                    path, f"its background was already subtracted ({subtracted[0]} COMPLETE), "
                    "so its background spectra are residuals around zero; give the products "
                    "of a calwebb_spec2 run without master background subtraction"
                )
            if isinstance(model, datamodels.MultiSlitModel):
                found = _spectra_from_slits(model, path, slits)
            elif hasattr(model, "spec"):
                found = _spectra_from_x1d(model, path, column)
            else:
                raise ToolInputError(
                    path, f"is a {type(model).__name__}; give x1d/c1d (MultiSpecModel) or "
                    "cal/s2d (MultiSlitModel) products"
                )
        if not found:
            raise ToolInputError(path, "holds no spectrum")
        spectra.extend(found)
    return spectra


def combine_background_spectra(spectra, *, method="clipped_mean", sigma=3.0, vet=True,
                               vet_threshold=5.0, min_deviation=0.05, median_kernel=1):
    """
    Vet and combine background spectra on a common wavelength grid.

    Parameters
    ----------
    spectra : sequence of BackgroundSpectrum
        The spectra (at least one).
    method : {"clipped_mean", "median", "weighted_mean", "mean"}, optional
        Per-wavelength combination (see
        `~jwst_mbkg_plus.algorithms.combine.combine_spectra`).
    sigma : float, optional
        Clip threshold of the per-wavelength clip.
    vet : bool, optional
        Reject whole spectra: three or more against the consensus, two against each
        other (`~jwst_mbkg_plus.algorithms.master.vet_by_count`).
    vet_threshold : float, optional
        Significance (sigma) of a spectrum's median relative deviation above
        which it is rejected.
    min_deviation : float, optional
        Smallest median relative deviation rejected (0.05 = 5%, the notebook's cut).
    median_kernel : int, optional
        Width of a NaN-aware running median applied to the master (1 = none).

    Returns
    -------
    MasterResult
        The grid, inputs, vetting decisions, master and QA arrays.

    Raises
    ------
    ValueError
        If there is no spectrum, vetting rejects all, or nothing overlaps.
    """
    if not spectra:
        raise ValueError("no background spectrum to combine")
    labels = [s.label for s in spectra]
    waves = [s.wavelength for s in spectra]
    wave_grid = grid.common_wavelength_grid(waves)
    fluxes = [s.flux for s in spectra]
    if all(s.var is not None for s in spectra):
        variances = [s.var for s in spectra]
    else:
        variances = None
    flux, var = grid.resample_spectra(waves, fluxes, variances, wave_grid)
    n = flux.shape[0]
    accepted = np.ones(n, dtype=bool)
    reasons = ["accepted"] * n
    scores = np.full(n, np.nan)
    if vet and n >= 2:
        vetting = core.vet_by_count(flux, var, labels, threshold=vet_threshold,
                                    min_deviation=min_deviation, wavelength=wave_grid)
        accepted, reasons = vetting.accepted, vetting.reasons
        if vetting.consensus is not None:
            scores = np.asarray(vetting.consensus.score, dtype=float)
    elif vet:
        reasons = ["accepted (not vetted: one spectrum)"]
    if not accepted.any():
        raise ValueError("vetting rejected every spectrum; check the inputs or use --no-vet")
    use_var = None if var is None else var[accepted]
    if method == "weighted_mean" and use_var is None:
        raise ValueError("method 'weighted_mean' needs errors in every input spectrum")
    combined = core.combine_master(flux[accepted], use_var, method=method, sigma=sigma,
                                   median_kernel=core.odd_kernel(median_kernel), keep_nan=True)
    master, master_var, cv = combined.flux, combined.var, combined.cv
    clipped = np.zeros(flux.shape, dtype=bool)
    clipped[accepted] = combined.rejected_mask
    with np.errstate(invalid="ignore"):
        master_err = np.sqrt(np.where(np.isfinite(master_var) & (master_var >= 0),
                                      master_var, np.nan))
    if not np.isfinite(master).any():
        raise ValueError("the combined spectrum is undefined at every wavelength")
    return MasterResult(
        labels=labels, wavelength=wave_grid, flux=flux,
        var=np.full(flux.shape, np.nan) if var is None else var,
        accepted=np.asarray(accepted), reasons=reasons, scores=np.asarray(scores),
        master=master, master_err=master_err, n_used=combined.n_used, clipped=clipped, cv=cv,
    )


def make_master_background(paths, output, *, column="surf_bright", slits=None,
                           method="clipped_mean", sigma=3.0, vet=True, vet_threshold=5.0,
                           min_deviation=0.05, median_kernel=1, plot=None, overwrite=False,
                           progress=None):
    """
    Vet and combine background spectra and write a ``user_background`` file.

    Parameters
    ----------
    paths : sequence of str or `~pathlib.Path`
        Input x1d/c1d or cal/s2d files (not modified); see `read_background_spectra`.
    output : str or `~pathlib.Path`
        The ``masterbg1d``-format FITS file to write; ``user_background`` of the
        plus steps and of jwst accepts it.
    column : {"surf_bright", "background"}, optional
        x1d column to read.
    slits : list of str, optional
        Background slits of MultiSlitModel inputs.
    method, sigma, vet, vet_threshold, min_deviation, median_kernel
        Options of `combine_background_spectra`.
    plot : str or `~pathlib.Path`, optional
        Also write a QA PNG here
        (:func:`~jwst_mbkg_plus.plots.plot_master_background`).
    overwrite : bool, optional
        Replace existing output files (never an input).
    progress : callable, optional
        Called with a progress message per file read and per stage.

    Returns
    -------
    MasterResult
        With ``output`` and ``plot`` set.

    Raises
    ------
    ToolInputError
        For unusable inputs or outputs; the message names the file and the fix.
    """
    paths = [Path(p).expanduser() for p in paths]
    if not paths:
        raise ToolInputError("master", "no input file; give x1d or cal files")
    if method in ("clipped_mean", "weighted_mean") and not sigma > 0:
        raise ToolInputError("master", f"--sigma {sigma} would clip every point; give a value "
                             "> 0 (default 3), or --method mean/median")
    if vet and not vet_threshold > 0:
        raise ToolInputError("master", f"--vet-threshold {vet_threshold} would reject every "
                             "spectrum; give a value > 0 (default 5), or --no-vet")
    if median_kernel < 1:
        raise ToolInputError("master", f"--median-kernel {median_kernel} must be >= 1 "
                             "(1: no median filter)")
    paths = unique_files(paths, "input file") if len(paths) > 1 else paths
    for path in paths:
        if not path.exists():
            raise ToolInputError(path, "no such file")
        with tool_reading(path, "background product"):
            pass  # the inputs first: a folder or an unreadable file is named before the output
    output = check_output_path(output, paths, overwrite=overwrite)
    if plot is not None:
        plot = check_output_path(plot, [*paths, output], overwrite=overwrite)
    spectra = read_background_spectra(paths, column=column, slits=slits, progress=progress)
    if progress is not None:
        progress(f"combining {len(spectra)} spectra ({method}, vetting "
                 f"{'on' if vet else 'off'})")
    try:
        result = combine_background_spectra(
            spectra, method=method, sigma=sigma, vet=vet, vet_threshold=vet_threshold,
            min_deviation=min_deviation, median_kernel=median_kernel,
        )
    except ValueError as err:
        raise ToolInputError(paths[0] if len(paths) == 1 else "inputs", str(err)) from None
    defined = np.isfinite(result.master)
    err = np.where(np.isfinite(result.master_err), result.master_err, np.nan)[defined]
    write_user_background(output, result.wavelength[defined], result.master[defined], err,
                          n_inputs=result.n_used[defined], overwrite=overwrite)
    written_plot = None
    if plot is not None:

        written_plot = plot_master_background(
            result.wavelength, result.flux, result.accepted, result.master, result.master_err,
            clipped_mask=result.clipped, labels=result.labels, path=plot, cv=result.cv,
        )
    return MasterResult(**{**result.__dict__, "output": output, "plot": written_plot})
