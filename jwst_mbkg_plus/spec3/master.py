"""Engine of the calwebb_spec3 master background step, plus: the datamodel side.

`MasterBackgroundPlusStep` (``jwst_mbkg_plus.spec3.step``) validates its
input and calls :func:`run_master_background`, which

1. collects the background spectra of the ``exptype: background`` ``x1d``
   members, choosing the column exactly as jwst 3.0 does
   (:func:`background_column`): ``BACKGROUND`` (with ``BKGD_ERROR``) for
   nodded exposures (``meta.observation.bkgdtarg is False``), for NIRSpec IFU
   extended sources and always for MIRI MRS; ``SURF_BRIGHT`` (with
   ``SB_ERROR``) otherwise. Both are per-pixel surface brightnesses (MJy/sr),
   the quantity jwst combines. Samples flagged DO_NOT_USE or non-finite are
   dropped. The input models are never modified (jwst copies the column in
   place);
2. builds the 1-D master with the shared, datamodel-free algorithms
   (:func:`build_master_background`): common wavelength grid and resampling
   with variance (`jwst_mbkg_plus.algorithms.grid`), whole-spectrum vetting
   (`~jwst_mbkg_plus.algorithms.selection.vet_spectra`), per-wavelength
   robust combination (`~jwst_mbkg_plus.algorithms.combine.combine_spectra`,
   exposure-time weights like jwst), optional NaN-aware running median
   (`~jwst_mbkg_plus.algorithms.smoothing.median_filter_nan`); or reads a
   user background (`jwst_mbkg_plus.io.user_background.read_user_background`);
3. for every science member, evaluates the master at each pixel's wavelength
   (:func:`pixel_wavelengths`: the slit ``wavelength`` array or the WCS via
   `jwst.lib.wcs_utils.get_wavelengths` for slits and images; the NIRSpec
   IFU slice WCSs of `jwst.assign_wcs.nirspec.nrs_ifu_wcs`; the MIRI MRS
   WCS), with its variance (`~jwst_mbkg_plus.algorithms.expand.expand_to_2d`);
4. converts the background to point-source calibration where jwst does, with
   jwst's own functions (:func:`point_source_factor`:
   `~jwst.master_background.nirspec_utils.correct_nrs_fs_bkg` for NIRSpec
   fixed slits holding a point source,
   `~jwst.master_background.nirspec_utils.correct_nrs_ifu_bkg` for a NIRSpec
   IFU point source), scaling the variance by the factor squared;
5. subtracts it (:func:`apply_backgrounds`), after computing every background
   first (:func:`run_master_background`), so a failure changes nothing.

Error propagation
-----------------
The master background's variance does not depend on the science pixel's own
signal, so it is added to ``VAR_RNOISE`` (the signal-independent term) and
``ERR`` is recomputed as ``sqrt(VAR_POISSON + VAR_RNOISE + VAR_FLAT)``. If
the variance arrays are absent, ``ERR`` is combined in quadrature with the
background error instead. The background error is the same for all pixels at
one wavelength (it is correlated): summing N pixels of one column, the true
background variance is N^2 var_bkg, not N var_bkg; see
`jwst_mbkg_plus.algorithms.errors.column_sum_variance`.

Edge policy
-----------
Pixels whose wavelength is outside the master's range get no background
(``edge="nan"``, the default): if they hold data, the data, errors and
variances become NaN and DQ gets DO_NOT_USE (jwst's convention for unusable
pixels in ``cal`` products), instead of jwst's silent zero background
(jwst issue #8244). ``"nearest"`` / ``"extrapolate_linear"`` extend the
master instead. Pixels without any wavelength (between IFU slices, off the
slit) are not science pixels and are left exactly as they are.
"""

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
from gwcs.wcstools import grid_from_bounding_box
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from jwst_mbkg_plus.algorithms.combine import combine_spectra
from jwst_mbkg_plus.algorithms.excess import compare_pair
from jwst_mbkg_plus.algorithms.expand import expand_to_2d
from jwst_mbkg_plus.algorithms.grid import common_wavelength_grid, resample_spectra
from jwst_mbkg_plus.algorithms.pulls import pooled_summary, pull_definition, pull_statistics
from jwst_mbkg_plus.algorithms.selection import vet_spectra
from jwst_mbkg_plus.algorithms.smoothing import median_filter_nan

__all__ = [
    "BackgroundSpectrum",
    "MasterBackground",
    "Spec3BackgroundResult",
    "SubtractionResult",
    "apply_backgrounds",
    "background_2d_model",
    "background_column",
    "build_master_background",
    "collect_background_spectra",
    "compute_backgrounds",
    "master_from_user_background",
    "pixel_wavelengths",
    "point_source_factor",
    "run_master_background",
    "science_wavelengths",
]

log = logging.getLogger(__name__)

_DO_NOT_USE = dqflags.pixel["DO_NOT_USE"]


# --------------------------------------------------------------------------- collect


@dataclass(frozen=True)
class BackgroundSpectrum:
    """One background spectrum taken from an ``x1d`` member.

    Attributes
    ----------
    name : str
        ``<file name>[<spectrum index>]``, used in logs and QA.
    wavelength : ndarray
        Strictly increasing wavelengths, micron.
    surf_bright : ndarray
        Surface brightness, MJy/sr.
    var : ndarray or None
        Its variance (None when the product has no usable errors).
    column : str
        Column read: ``"BACKGROUND"`` or ``"SURF_BRIGHT"``.
    exposure_time : float
        Weight in the combination (jwst's ``exptime_key="exposure_time"``).
    """

    name: str
    wavelength: np.ndarray
    surf_bright: np.ndarray
    var: np.ndarray | None
    column: str
    exposure_time: float


def background_column(model, spec):
    """
    Return the ``x1d`` column holding the background, as jwst 3.0 decides.

    ``BACKGROUND`` for nodded exposures (``bkgdtarg is False``, not merely
    unset), NIRSpec IFU extended sources and MIRI MRS (always treated as
    extended); ``SURF_BRIGHT`` otherwise (dedicated background exposures).

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.MultiSpecModel`
        The ``x1d`` product.
    spec : `~stdatamodels.jwst.datamodels.SpecModel`
        One of its spectra.

    Returns
    -------
    str
        ``"BACKGROUND"`` or ``"SURF_BRIGHT"``.
    """
    exp_type = model.meta.exposure.type
    first = model.spec[0] if len(model.spec) else spec
    ifu_extended = (exp_type == "NRS_IFU" and first.source_type == "EXTENDED") or (
        exp_type == "MIR_MRS"
    )
    if model.meta.observation.bkgdtarg is False or ifu_extended:
        return "BACKGROUND"
    return "SURF_BRIGHT"


def _spectrum_from_table(name, table, column, exposure_time):
    error_column = "BKGD_ERROR" if column == "BACKGROUND" else "SB_ERROR"
    wave = np.asarray(table["WAVELENGTH"], dtype=np.float64)
    sb = np.asarray(table[column], dtype=np.float64)
    err = np.asarray(table[error_column], dtype=np.float64)
    dq = np.asarray(table["DQ"]) if "DQ" in table.dtype.names else np.zeros(wave.shape, int)
    good = np.isfinite(wave) & np.isfinite(sb) & ((dq & _DO_NOT_USE) == 0)
    wave, sb, err = wave[good], sb[good], err[good]
    order = np.argsort(wave, kind="stable")
    wave, sb, err = wave[order], sb[order], err[order]
    keep = np.diff(wave, prepend=-np.inf) > 0  # drop duplicate wavelengths
    wave, sb, err = wave[keep], sb[keep], err[keep]
    var = err**2 if np.all(np.isfinite(err) & (err > 0)) else None
    return BackgroundSpectrum(name, wave, sb, var, column, exposure_time)


def collect_background_spectra(models):
    """
    Read the background spectra of ``x1d`` members, without modifying them.

    Parameters
    ----------
    models : iterable of `~stdatamodels.jwst.datamodels.MultiSpecModel`
        The ``exptype: background`` members.

    Returns
    -------
    list of BackgroundSpectrum
        One per spectrum with at least two usable samples.

    Raises
    ------
    TypeError
        If a member is not a ``MultiSpecModel``-like product with ``spec``.
    """
    spectra = []
    for i, model in enumerate(models):
        if not hasattr(model, "spec"):
            raise TypeError(
                f"background member {i} ({type(model).__name__}) is not an x1d product"
            )
        exptime = model.meta.exposure.exposure_time
        exptime = float(exptime) if exptime else 1.0
        fname = model.meta.filename or f"background_{i}"
        for k, spec in enumerate(model.spec):
            column = background_column(model, spec)
            s = _spectrum_from_table(f"{fname}[{k}]", spec.spec_table, column, exptime)
            if s.wavelength.size < 2:
                log.warning("Background spectrum %s has fewer than 2 usable samples; ignored",
                            s.name)
                continue
            log.debug("Background spectrum %s: column %s, %d samples", s.name, column,
                      s.wavelength.size)
            spectra.append(s)
    return spectra


# --------------------------------------------------------------------------- combine


@dataclass
class MasterBackground:
    """A 1-D master background and how it was made.

    Attributes
    ----------
    wavelength, surf_bright, var : ndarray
        Master on its grid (micron, MJy/sr, (MJy/sr)^2); NaN where undefined.
    n_used : ndarray of int
        Number of spectra combined at each wavelength.
    qa : dict
        Record of inputs, vetting and clipping (JSON-serialisable).
    """

    wavelength: np.ndarray
    surf_bright: np.ndarray
    var: np.ndarray
    n_used: np.ndarray
    qa: dict = field(default_factory=dict)

    @property
    def rejected(self):
        """list of str: names of background spectra rejected by the vetting."""
        return [s["name"] for s in self.qa.get("inputs", []) if not s.get("accepted", True)]


def _odd_kernel(kernel):
    """jwst's rule: even median kernels are rounded down to odd."""
    kernel = int(kernel)
    if kernel > 1 and kernel % 2 == 0:
        log.info("Even median filter kernels are not supported; rounding %d down to %d",
                 kernel, kernel - 1)
        kernel -= 1
    return max(kernel, 1)


def build_master_background(
    spectra,
    *,
    combine_method="clipped_mean",
    sigma_clip=3.0,
    maxiters=5,
    min_spectra=1,
    vet=True,
    vet_threshold=5.0,
    vet_min_deviation=0.05,
    median_kernel=1,
    exptime_weights=True,
):
    """
    Combine background spectra into a master background.

    Parameters
    ----------
    spectra : list of BackgroundSpectrum
        From `collect_background_spectra`.
    combine_method : {"clipped_mean", "median", "weighted_mean", "mean"}, optional
        See `~jwst_mbkg_plus.algorithms.combine.combine_spectra`.
    sigma_clip : float or None, optional
        Per-wavelength clip threshold (None: no clip).
    maxiters : int, optional
        Clip iterations.
    min_spectra : int, optional
        Wavelengths with fewer surviving spectra are undefined (NaN).
    vet : bool, optional
        Reject whole spectra that deviate from the consensus first.
    vet_threshold : float, optional
        Vetting significance threshold (sigma).
    vet_min_deviation : float, optional
        Smallest median relative deviation that can reject a spectrum.
    median_kernel : int, optional
        Running-median width in grid samples (1: none; even values rounded
        down, as jwst does).
    exptime_weights : bool, optional
        Weight by exposure time (jwst's weighting) in the (clipped) mean.

    Returns
    -------
    MasterBackground
        The master and its QA record.

    Raises
    ------
    ValueError
        If there is no spectrum, or the algorithms reject the inputs.
    """
    if not spectra:
        raise ValueError(
            "no background member has a usable spectrum (every one is all NaN, flagged "
            "DO_NOT_USE or shorter than 2 samples): check the background x1d members, or give "
            "user_background."
        )
    waves = [s.wavelength for s in spectra]
    grid = common_wavelength_grid(waves, min_spectra=1, sampling="native")
    use_var = all(s.var is not None for s in spectra)
    if not use_var:
        log.warning("Some background spectra have no usable errors: the master background "
                    "variance is estimated from the scatter of the spectra")
    flux, var = resample_spectra(
        waves, [s.surf_bright for s in spectra], [s.var for s in spectra] if use_var else None,
        grid,
    )
    n = len(spectra)
    accepted = np.ones(n, dtype=bool)
    vetting = None
    pair = None
    reasons = ["not vetted"] * n
    if vet and n >= 3:
        vetting = vet_spectra(flux, var, threshold=vet_threshold,
                              min_deviation=vet_min_deviation, wavelength=grid)
        accepted = np.asarray(vetting.accepted, dtype=bool)
        reasons = list(vetting.reasons)
        for i in np.flatnonzero(~accepted):
            log.warning("Background spectrum %s: %s (median deviation %+.1f%%, "
                        "score %.1f)", spectra[i].name, vetting.reasons[i],
                        100 * vetting.deviation[i], vetting.score[i])
    elif vet and n == 2:
        pair = _vet_pair(spectra, flux, var, grid, vet_threshold, vet_min_deviation)
        reasons = ["accepted", "accepted"]
        if pair.contaminated is not None:
            accepted[pair.contaminated] = False
            reasons[pair.contaminated] = (
                f"rejected: additive excess of {100 * abs(pair.excess.excess):.1f}% "
                f"({abs(pair.excess.score):.1f} sigma) with a spectral shape unlike "
                f"{spectra[1 - pair.contaminated].name}'s"
            )
    elif vet:
        log.info("One background spectrum: nothing to compare it with, not vetted")
    if not accepted.any():
        raise ValueError("vetting rejected every background spectrum: check the background "
                         "members, or set vet_spectra=False.")
    if min_spectra > accepted.sum():
        raise ValueError(
            f"min_spectra={min_spectra} but only {int(accepted.sum())} background spectra "
            f"{'remain after vetting' if accepted.sum() < n else 'are given'}: the master "
            f"would be undefined at every wavelength. Lower min_spectra to at most "
            f"{int(accepted.sum())}."
        )
    _check_kernel(median_kernel, grid.size)
    weights = None
    if exptime_weights and combine_method in ("clipped_mean", "mean"):
        weights = np.array([s.exposure_time for s in spectra])[accepted]
    sigma = sigma_clip if combine_method in ("clipped_mean", "weighted_mean") else None
    if combine_method == "clipped_mean" and sigma is None:
        combine_method = "mean"
    combined = combine_spectra(
        flux[accepted], None if var is None else var[accepted], method=combine_method,
        sigma=sigma, maxiters=maxiters, min_spectra=min_spectra, weights=weights,
    )
    sb, sb_var = combined.flux, combined.var
    kernel = _odd_kernel(median_kernel)
    if kernel > 1:
        log.info("Applying a NaN-aware moving median of width %d to the master background",
                 kernel)
        sb, sb_var = median_filter_nan(sb, sb_var, kernel=kernel, keep_nan=True)
    clipped = np.zeros(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        finite = np.isfinite(flux[accepted]).sum(axis=1)
        clipped[accepted] = combined.rejected_mask.sum(axis=1) / np.maximum(finite, 1)
    inputs = []
    for i, s in enumerate(spectra):
        inputs.append({
            "name": s.name,
            "column": s.column,
            "exposure_time": s.exposure_time,
            "accepted": bool(accepted[i]),
            "reason": reasons[i],
            "deviation": None if vetting is None else _f(vetting.deviation[i]),
            "score": None if vetting is None else _f(vetting.score[i]),
            "excess": None if vetting is None else _f(vetting.excess[i]),
            "excess_score": None if vetting is None else _f(vetting.excess_score[i]),
            "clipped_fraction": float(clipped[i]),
        })
    qa = {
        "source": "background members",
        "combine_method": combine_method,
        "sigma_clip": sigma,
        "median_kernel": kernel,
        "n_spectra": n,
        "n_accepted": int(accepted.sum()),
        "n_wavelengths": int(grid.size),
        "n_defined": int(np.isfinite(sb).sum()),
        "inputs": inputs,
    }
    qa.update(_shared_qa_keys(inputs, vetting is not None, vet_threshold, flux, combined))
    if var is not None:
        qa.update(_residual_qa(
            [s.name for s in spectra], flux, var, accepted, combined,
            dict(method=combine_method, sigma=sigma, maxiters=maxiters,
                 min_spectra=min_spectra), weights,
        ))
    if pair is not None:
        qa["pair"] = pair.to_record([s.name for s in spectra])
    log.info("Master background from %d of %d background spectra, %s, %d wavelengths",
             int(accepted.sum()), n, combine_method, int(np.isfinite(sb).sum()))
    return MasterBackground(grid, sb, sb_var, np.asarray(combined.n_used), qa)


def _shared_qa_keys(inputs, vetted, threshold, flux, combined):
    """The keys the MOS step's QA record has with the same meaning."""
    n_valid = int(np.isfinite(flux[[e["accepted"] for e in inputs]]).sum())
    return {
        "slits": [e["name"] for e in inputs],
        "vetting": {
            "applied": bool(vetted),
            "threshold": threshold if vetted else None,
            "scores": {e["name"]: e["score"] for e in inputs if e["score"] is not None},
            "rejected": {e["name"]: e["reason"] for e in inputs if not e["accepted"]},
        },
        "clipped_fraction": float(combined.rejected_mask.sum() / n_valid) if n_valid else 0.0,
    }


def _residual_qa(names, flux, var, accepted, full, combine_kwargs, weights):
    """
    Pulls of each background spectrum against the master made without it.

    The 1-D counterpart of the MOS step's residuals: each accepted spectrum is
    compared with the master combined from the others (leave one out, so the
    comparison is independent), a rejected one with the full master; points
    the per-wavelength clip rejected are left out, as the master left them out.
    The running median is not applied (it would correlate the points).
    """
    n = flux.shape[0]
    idx = np.flatnonzero(accepted)
    kept = np.zeros(flux.shape, dtype=bool)
    kept[idx] = ~full.rejected_mask
    kept[~accepted] = True
    stats = {}
    pooled = []
    for k in range(n):
        if accepted[k] and idx.size >= 2:
            others = idx[idx != k]
            w = None if weights is None else weights[idx != k]
            reference = combine_spectra(flux[others], var[others], weights=w, **combine_kwargs)
        elif accepted[k]:
            continue  # one spectrum: nothing independent to compare it with
        else:
            reference = full
        with np.errstate(invalid="ignore", divide="ignore"):
            residual = flux[k] - reference.flux
            pull = residual / np.sqrt(var[k] + reference.var)
            relative = residual / reference.flux
        good = kept[k] & np.isfinite(pull) & np.isfinite(relative)
        if not good.any():
            continue
        summary = pull_statistics(pull[good])
        if accepted[k]:
            pooled.append(pull[good])
        stats[names[k]] = {
            "median_relative": float(np.median(relative[good])),
            "pull_spread": summary["spread"],
            "pull_outlier_fraction": summary["outlier_fraction"],
            "pull_std": summary["std"],
            "n_pixels": summary["n"],
            "rejected_pixels": int((np.isfinite(flux[k]) & ~kept[k]).sum()),
        }
    return {
        "residuals": stats,
        "pull_summary": pooled_summary(pooled),
        "pulls": pull_definition("points not clipped per wavelength"),
    }


def _vet_pair(spectra, flux, var, grid, threshold, level_tolerance):
    """Compare two background spectra (`~jwst_mbkg_plus.algorithms.excess.compare_pair`); log."""
    pair = compare_pair(flux, var, wavelength=grid, threshold=threshold,
                        level_tolerance=level_tolerance)
    names = [s.name for s in spectra]
    if pair.verdict == "contaminated":
        bad = pair.contaminated
        log.warning("Background spectrum %s rejected: it holds an additive excess of %.1f%% "
                    "(%.1f sigma) with a spectral shape unlike %s's; levels differ by %.1f%%",
                    names[bad], 100 * abs(pair.excess.excess), abs(pair.excess.score),
                    names[1 - bad], 100 * pair.level_difference)
    elif pair.verdict == "undecided":
        log.warning(
            "The two background spectra differ: %s is brighter by %.1f%% (%.0f sigma), and "
            "nothing in their spectra says which is contaminated (%s); both are used. If one "
            "holds a source, drop it from the association or supply a user_background.",
            names[pair.brighter], 100 * pair.level_difference, pair.level_score, pair.message,
        )
    else:
        log.info("The two background spectra agree: %s", pair.message)
    return pair


def _check_kernel(median_kernel, n_samples):
    kernel = int(median_kernel or 1)
    if kernel > 1 and kernel >= n_samples:
        raise ValueError(
            f"median_kernel={kernel} is not shorter than the master background spectrum "
            f"({n_samples} samples): the running median would flatten it. Use an odd value "
            "well below that, or 1 for none."
        )


def _f(x):
    x = float(x)
    return x if np.isfinite(x) else None


def master_from_user_background(user_background, *, median_kernel=1):
    """
    Wrap a user background as a `MasterBackground`.

    Parameters
    ----------
    user_background : `~jwst_mbkg_plus.io.user_background.UserBackground`
        From `~jwst_mbkg_plus.io.user_background.read_user_background`.
    median_kernel : int, optional
        Running-median width (1: none).

    Returns
    -------
    MasterBackground
        ``var`` is ``sb_error**2``, or zeros if the file had no error column.
    """
    wave = np.asarray(user_background.wavelength, dtype=np.float64)
    sb = np.asarray(user_background.surf_bright, dtype=np.float64)
    err = user_background.sb_error
    var = np.zeros_like(sb) if err is None else np.asarray(err, dtype=np.float64) ** 2
    var = np.where(np.isfinite(var), var, 0.0)
    _check_kernel(median_kernel, sb.size)
    kernel = _odd_kernel(median_kernel)
    if kernel > 1:
        sb, var = median_filter_nan(sb, var, kernel=kernel, keep_nan=True)
    qa = {
        "source": "user_background",
        "user_background": str(user_background.path),
        "format": user_background.format,
        "has_errors": err is not None,
        "median_kernel": kernel,
        "warnings": list(user_background.warnings),
        "inputs": [],
    }
    return MasterBackground(wave, sb, var, np.ones(wave.shape, dtype=int), qa)


# --------------------------------------------------------------------------- expand


def pixel_wavelengths(model, target=None):
    """
    Wavelength of every pixel, the way jwst's ``expand_to_2d`` gets it.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The science exposure.
    target : `~stdatamodels.jwst.datamodels.SlitModel`, optional
        For a `~stdatamodels.jwst.datamodels.MultiSlitModel`, the slit.

    Returns
    -------
    ndarray
        Wavelengths (micron) of shape ``data.shape[-2:]``; NaN where undefined.

    Raises
    ------
    RuntimeError
        If the wavelengths cannot be determined.
    TypeError
        For an unsupported model type.
    """
    from jwst.lib.wcs_utils import get_wavelengths

    exp_type = model.meta.exposure.type
    if target is not None or isinstance(model, (datamodels.ImageModel, datamodels.SlitModel)):
        obj = model if target is None else target
        wl = get_wavelengths(obj, exp_type)
        if wl is None:
            raise RuntimeError(f"Can't determine wavelengths for {type(obj).__name__}")
        return np.asarray(wl, dtype=np.float64)
    if isinstance(model, datamodels.IFUImageModel):
        shape = model.data.shape
        instrument = str(model.meta.instrument.name).upper()
        if instrument == "NIRSPEC":
            from jwst.assign_wcs import nirspec

            wl = np.full(shape, np.nan)
            for slice_wcs in nirspec.nrs_ifu_wcs(model):
                x, y = grid_from_bounding_box(slice_wcs.bounding_box)
                lam = np.asarray(slice_wcs(x, y)[2], dtype=np.float64)
                xi, yi = x.astype(int), y.astype(int)
                inside = (xi >= 0) & (yi >= 0) & (xi < shape[1]) & (yi < shape[0])
                ok = inside & np.isfinite(lam)
                wl[yi[ok], xi[ok]] = lam[ok]
            return wl
        if instrument == "MIRI":
            grid = np.indices(shape, dtype=np.float64)
            return np.asarray(model.meta.wcs(grid[1], grid[0])[2], dtype=np.float64)
        raise TypeError(f"IFU data of instrument {instrument} are not supported")
    raise TypeError(f"Input type {type(model).__name__} is not supported")


def point_source_factor(model, target=None):
    """
    Factor converting the master (extended-source units) to the science calibration.

    Uses jwst's own corrections on a unit image, so the logic (which arrays,
    which source types, what happens when an array is missing) is jwst's:
    `~jwst.master_background.nirspec_utils.correct_nrs_fs_bkg` for a NIRSpec
    fixed slit whose ``source_type`` is POINT,
    `~jwst.master_background.nirspec_utils.correct_nrs_ifu_bkg` for NIRSpec
    IFU data whose ``meta.target.source_type`` is POINT.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The science exposure.
    target : `~stdatamodels.jwst.datamodels.SlitModel`, optional
        The slit, for a `~stdatamodels.jwst.datamodels.MultiSlitModel`.

    Returns
    -------
    ndarray or None
        Per-pixel factor, or None when no correction applies.
    """
    from jwst.master_background.nirspec_utils import correct_nrs_fs_bkg, correct_nrs_ifu_bkg

    if target is not None:
        is_point = str(target.source_type).upper() == "POINT"
        if _exp_type(model, target) != "NRS_FIXEDSLIT" or not is_point:
            return None
        unit = datamodels.SlitModel(data=np.ones(target.data.shape, dtype=np.float32))
        for name in ("pathloss_point", "pathloss_uniform", "flatfield_point",
                     "flatfield_uniform", "photom_point", "photom_uniform"):
            if name in target.instance:
                setattr(unit, name, getattr(target, name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            factor = np.asarray(correct_nrs_fs_bkg(unit).data, dtype=np.float64)
        return None if np.all(factor == 1.0) else factor
    if (
        isinstance(model, datamodels.IFUImageModel)
        and str(model.meta.instrument.name).upper() == "NIRSPEC"
        and model.meta.target.source_type == "POINT"
    ):
        unit = datamodels.IFUImageModel(data=np.ones(model.data.shape, dtype=np.float32))
        for name in ("pathloss_point", "pathloss_uniform"):
            if name in model.instance:
                setattr(unit, name, getattr(model, name))
        factor = np.asarray(correct_nrs_ifu_bkg(unit).data, dtype=np.float64)
        return None if np.all(factor == 1.0) else factor
    return None


# --------------------------------------------------------------------------- subtract


@dataclass
class SubtractionResult:
    """Backgrounds for one science model.

    Attributes
    ----------
    backgrounds : list of (ndarray, ndarray or None, ndarray)
        Per data array (one per slit for a MultiSlitModel): the 2-D background,
        its variance, in the science calibration, and the mask of pixels that
        have a wavelength (all None for a slit left alone).
    n_no_background : int
        Pixels with data and a wavelength but no background (flagged
        DO_NOT_USE).
    """

    backgrounds: list
    n_no_background: int = 0


def _targets(model):
    if isinstance(model, datamodels.MultiSlitModel):
        return [(slit, slit) for slit in model.slits]
    return [(None, model)]


def _exp_type(model, slit=None):
    if slit is not None:
        try:
            exp_type = slit.meta.exposure.type
        except AttributeError:
            exp_type = None
        if exp_type:
            return exp_type
    return model.meta.exposure.type


def _has(obj, name):
    arr = getattr(obj, name, None) if name in obj.instance else None
    return arr is not None and np.shape(arr) == np.shape(obj.data)


def science_wavelengths(model):
    """
    Pixel wavelengths of every data array of a science model.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Science model.

    Returns
    -------
    list of ndarray or None
        One per slit for a MultiSlitModel (None for NIRSpec MOS slits, which
        calwebb_spec3 does not background-subtract), else one.
    """
    out = []
    for slit, _ in _targets(model):
        if slit is not None and _exp_type(model, slit) == "NRS_MSASPEC":
            out.append(None)
            continue
        out.append(pixel_wavelengths(model, slit))
    return out


def compute_backgrounds(model, master, wavelengths=None, *, edge="nan"):
    """
    Evaluate the master at every pixel of one science model.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Science model (`MultiSlitModel`, `ImageModel`, `SlitModel` or
        `IFUImageModel`); not modified.
    master : MasterBackground
        The master background.
    wavelengths : list of ndarray, optional
        From `science_wavelengths` (computed if not given).
    edge : {"nan", "nearest", "extrapolate_linear"}, optional
        Policy outside the master's wavelength range.

    Returns
    -------
    SubtractionResult
        The 2-D backgrounds and variances, point-source corrected where jwst
        corrects them.
    """
    if wavelengths is None:
        wavelengths = science_wavelengths(model)
    out = SubtractionResult([])
    for (slit, _), wl in zip(_targets(model), wavelengths, strict=True):
        if wl is None:
            log.warning("Master background subtraction is not supported for NIRSpec MOS "
                        "slit %s in calwebb_spec3; slit left unchanged", slit.name)
            out.backgrounds.append((None, None, None))
            continue
        bkg, var = expand_to_2d(wl, master.wavelength, master.surf_bright, master.var,
                                edge=edge)
        factor = point_source_factor(model, slit)
        if factor is not None:
            log.info("Applying point-source corrections to the background of %s",
                     slit.name if slit is not None else model.meta.filename)
            bkg = bkg * factor
            var = None if var is None else var * factor**2
        out.backgrounds.append((bkg, var, np.isfinite(wl)))
    return out


def _subtract_one(obj, bkg, bkg_var, has_wavelength, *, propagate_errors):
    """Subtract ``bkg`` from ``obj`` (a model or slit) in place; return #unusable pixels.

    Pixels without a wavelength (outside IFU slices, off the slit) are not
    science pixels: left as they are. Pixels with a wavelength but no
    background become NaN with DO_NOT_USE.
    """
    data = np.asarray(obj.data, dtype=np.float64)
    missing = ~np.isfinite(bkg) & np.isfinite(data) & has_wavelength
    new = data - np.where(np.isfinite(bkg), bkg, 0.0)
    new[missing] = np.nan
    obj.data = new.astype(obj.data.dtype)
    obj.dq = obj.dq | np.where(missing, _DO_NOT_USE, 0).astype(obj.dq.dtype)
    if propagate_errors and bkg_var is not None:
        # Only pixels that received a background change; ERR elsewhere is kept
        # as it is even if it was not the quadrature sum of the variances.
        upd = np.isfinite(bkg_var)
        bv = np.where(upd, bkg_var, 0.0)
        names = [n for n in ("var_poisson", "var_rnoise", "var_flat") if _has(obj, n)]
        err_in = np.asarray(obj.err, dtype=np.float64) if _has(obj, "err") else None
        if "var_rnoise" in names:
            vr = np.asarray(obj.var_rnoise, dtype=np.float64) + bv
            obj.var_rnoise = vr.astype(obj.var_rnoise.dtype)
            err_new = np.sqrt(sum(np.asarray(getattr(obj, n), dtype=np.float64)
                                  for n in names))
        elif err_in is not None:
            err_new = np.sqrt(err_in**2 + bv)
        else:
            err_new = np.sqrt(bv)
        if err_in is not None:
            err_new = np.where(upd, err_new, err_in)
        obj.err = err_new.astype(np.float32)
    if missing.any():
        for name in ("err", "var_poisson", "var_rnoise", "var_flat"):
            if _has(obj, name):
                arr = np.array(getattr(obj, name))
                arr[missing] = np.nan
                setattr(obj, name, arr)
    return int(missing.sum())


def apply_backgrounds(model, result, *, propagate_errors=True):
    """
    Subtract the backgrounds of `compute_backgrounds` from a model, in place.

    Data minus background; with ``propagate_errors`` the background variance
    is added to ``VAR_RNOISE`` and ``ERR`` recomputed from the three variances
    (see the module docstring). Pixels with data but no background become NaN
    with DO_NOT_USE.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Science model, updated in place (pass a copy).
    result : SubtractionResult
        Its backgrounds; ``n_no_background`` is updated.
    propagate_errors : bool, optional
        Propagate the background variance.

    Returns
    -------
    SubtractionResult
        ``result``.
    """
    result.n_no_background = 0
    for (_, obj), (bkg, var, has_wl) in zip(_targets(model), result.backgrounds, strict=True):
        if bkg is None:
            continue
        result.n_no_background += _subtract_one(obj, bkg, var, has_wl,
                                                propagate_errors=propagate_errors)
    if result.n_no_background:
        log.warning("%d pixels of %s are outside the master background's wavelength range: "
                    "set to NaN and flagged DO_NOT_USE", result.n_no_background,
                    model.meta.filename)
    return result


def background_2d_model(model, result):
    """
    Build a ``masterbg2d`` product: a copy of ``model`` holding the background.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The science model.
    result : SubtractionResult
        From `compute_backgrounds`.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.JwstDataModel`
        Same type as ``model``; ``data`` is the background (0 where
        undefined, with DO_NOT_USE), ``err`` its error, ``var_rnoise`` its
        variance, the other variances zero.
    """
    bkg_model = model.copy()
    for (_, obj), (bkg, var, _) in zip(_targets(bkg_model), result.backgrounds, strict=True):
        if bkg is None:
            bkg = np.zeros(obj.data.shape)
        undefined = ~np.isfinite(bkg)
        obj.data = np.where(undefined, 0.0, bkg).astype(np.float32)
        obj.dq = np.where(undefined, _DO_NOT_USE, 0).astype(np.uint32)
        v = np.zeros(bkg.shape) if var is None else np.where(np.isfinite(var), var, 0.0)
        obj.err = np.sqrt(v).astype(np.float32)
        for name in ("var_poisson", "var_flat"):
            if _has(obj, name):
                setattr(obj, name, np.zeros(bkg.shape, dtype=np.float32))
        if _has(obj, "var_rnoise"):
            obj.var_rnoise = v.astype(np.float32)
    return bkg_model


# --------------------------------------------------------------------------- driver


@dataclass
class Spec3BackgroundResult:
    """Outcome of `run_master_background`.

    Attributes
    ----------
    master : MasterBackground
        The 1-D master (combined or user-supplied).
    subtractions : list of SubtractionResult
        One per science model, in order.
    """

    master: MasterBackground
    subtractions: list


def _wavelength_range(wavelengths):
    lo, hi = np.inf, -np.inf
    for per_model in wavelengths:
        for wl in per_model:
            if wl is not None and np.isfinite(wl).any():
                lo = min(lo, float(np.nanmin(wl)))
                hi = max(hi, float(np.nanmax(wl)))
    return (lo, hi) if lo < hi else None


def _check_overlap(master, science_range):
    """Refuse a master that covers none of the science wavelengths."""
    defined = np.isfinite(master.surf_bright)
    if not defined.any():
        raise ValueError("the master background is undefined at every wavelength: check the "
                         "background members (all NaN?) and min_spectra.")
    if science_range is None:
        raise ValueError("the science data have no valid wavelength: check that the science "
                         "members are calibrated cal products with a WCS.")
    lo, hi = master.wavelength[defined][[0, -1]]
    if hi < science_range[0] or lo > science_range[1]:
        raise ValueError(
            f"the background covers {lo:.4f}-{hi:.4f} um and the science data "
            f"{science_range[0]:.4f}-{science_range[1]:.4f} um: no overlap. Check that the "
            "background members are of the same grating/filter as the science."
        )


def run_master_background(science, backgrounds=(), *, user_background=None, combine=None,
                          median_kernel=1, edge="nan", propagate_errors=True,
                          min_overlap=0.5):
    """
    Build the master background and subtract it from every science model.

    All backgrounds are computed before any model is changed, so an error
    leaves the science models untouched.

    Parameters
    ----------
    science : sequence of `~stdatamodels.jwst.datamodels.JwstDataModel`
        Science models, updated in place (pass copies).
    backgrounds : sequence of `~stdatamodels.jwst.datamodels.MultiSpecModel`, optional
        ``x1d`` background members (not modified); ignored with
        ``user_background``.
    user_background : str, `~pathlib.Path` or None, optional
        A user-supplied 1-D master background instead of the members.
    combine : dict, optional
        Keyword arguments for `build_master_background` (without
        ``median_kernel``).
    median_kernel : int, optional
        Running-median width of the master, in samples.
    edge : {"nan", "nearest", "extrapolate_linear"}, optional
        Policy outside the master's wavelength range.
    propagate_errors : bool, optional
        Add the master's variance to the science variances.
    min_overlap : float, optional
        Smallest fraction of the science wavelength range a user background
        must cover.

    Returns
    -------
    Spec3BackgroundResult
        The master and per-model backgrounds.

    Raises
    ------
    ValueError
        No usable background spectrum, or the combination failed.
    jwst_mbkg_plus.io.user_background.UserBackgroundError
        A bad user background.
    """
    wavelengths = [science_wavelengths(model) for model in science]
    if user_background is not None:
        from jwst_mbkg_plus.io.user_background import read_user_background

        user = read_user_background(
            user_background, science_wavelength_range=_wavelength_range(wavelengths),
            min_overlap=min_overlap,
        )
        for text in user.warnings:
            log.warning("user_background: %s", text)
        master = master_from_user_background(user, median_kernel=median_kernel)
    else:
        spectra = collect_background_spectra(backgrounds)
        master = build_master_background(spectra, median_kernel=median_kernel,
                                         **(combine or {}))
    _check_overlap(master, _wavelength_range(wavelengths))
    subtractions = [
        compute_backgrounds(model, master, wl, edge=edge)
        for model, wl in zip(science, wavelengths, strict=True)
    ]
    for model, sub in zip(science, subtractions, strict=True):
        apply_backgrounds(model, sub, propagate_errors=propagate_errors)
    return Spec3BackgroundResult(master, subtractions)
