"""The MOS step's residual QA record and its log summary.
"""


import logging

import numpy as np
from jwst.lib.wcs_utils import get_wavelengths

from jwst_mbkg_plus.algorithms import column_variance, errors, expand, pulls
from jwst_mbkg_plus.algorithms.qa_stats import finite_median
from jwst_mbkg_plus.io.slits import (
    DO_NOT_USE,
    slit_label,
)

__all__ = [
    "log_summary",
    "residual_qa",
]

log = logging.getLogger(__name__)


def residual_qa(result, forward, master, background_2d, *, propagate_errors=True):
    """
    Residual statistics of the background slitlets after subtraction.

    Each background slitlet is subtracted with the master made without it
    (leave one out), so its residual is independent of the master's error and
    measures the error model. Residuals are relative to the subtracted
    background. Pulls are taken over the pixels the step kept: valid (finite,
    not DO_NOT_USE before the step) and not rejected by ``reject_pixels``, and
    summarised robustly (`~jwst_mbkg_plus.algorithms.pulls.pull_statistics`): a
    plain standard deviation would measure the few hot pixels left in the
    data, not the error model.

    Parameters
    ----------
    result : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The subtracted slits.
    forward : `~jwst_mbkg_plus.mos.calibration.ForwardCalibration`
        The forward pass.
    master : MasterBackground
        The master background.
    background_2d : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The subtracted background.
    propagate_errors : bool, optional
        Whether ERR holds the master's variance, raised for column sums
        (`~jwst_mbkg_plus.algorithms.errors.balanced_background_inflation`).

    Returns
    -------
    dict
        ``residuals``: per background slit label, ``median_relative`` (median
        residual / background); the error model's pulls ``pull_spread`` (per
        pixel, residual / ``sqrt(v + b)``: data variance ``v``, master variance
        ``b``) and ``column_pull_spread`` (per column sum, against
        ``sum v`` plus the variance of the summed background from the master's
        samples, `~jwst_mbkg_plus.algorithms.column_variance`), both 1.4826 x
        MAD and 1 for a right error model, each with its standard error
        (``pull_spread_error``, ``column_pull_spread_error``);
        ``pull_outlier_fraction`` and ``column_pull_outlier_fraction`` (of
        ``|pull| > 5``); ``pull_std`` (plain, for comparison); ``n_pixels``,
        ``n_columns`` and ``rejected_pixels`` (left out). ``pull_summary`` and
        ``column_pull_summary`` pool the slitlets that went into the master;
        ``pulls`` says how they were computed.

        ERR itself is checked beside the model: it carries the master's
        variance raised for column sums, so that a plain sum of ERR**2 along a
        column (what extract_1d does) is not too small; residual / ERR per
        pixel then spreads by less than 1, and per column by about 1, when
        every variance is right. ``err_pull_spread`` and
        ``err_column_pull_spread`` are those spreads and
        ``expected_err_pull_spread`` and ``expected_err_column_pull_spread``
        what they are for a right error model; ``err_pull_summary`` pools the
        first.
    """
    height = float(master.qa.get("error_extraction_height") or 1)
    used = set(master.qa.get("slits", []))
    vetted_out = set((master.qa.get("vetting") or {}).get("rejected") or {})
    exp_type = result.meta.exposure.type
    stats = {}
    pooled = {"pixel": [], "column": [], "err": []}  # slitlets that went into the master
    for index, (slit, factor, bg) in enumerate(
        zip(result.slits, forward.factors, background_2d.slits, strict=True)
    ):
        label = slit_label(slit)
        if label not in used:
            continue
        # The calibration factor cancels in the pull: data and ERR share units.
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = slit.data / bg.data
            err_pull = slit.data / slit.err
        rejected = master.rejected_masks.get(index)
        if rejected is None:
            rejected = np.zeros(slit.data.shape, dtype=bool)
        good = np.isfinite(relative) & np.isfinite(err_pull) & (bg.dq == 0) & np.isfinite(factor)
        # DO_NOT_USE from before the step (the step's own flags are the rejected pixels).
        good &= ((slit.dq & DO_NOT_USE) == 0) | rejected
        good &= ~rejected
        # Pixels that got the full master, this slitlet included, test nothing.
        good &= ~master.self_subtracted.get(index, np.zeros(good.shape, dtype=bool))
        if not good.any():
            continue
        err_var = slit.err.astype(float) ** 2
        wave = np.asarray(get_wavelengths(forward.model.slits[index], exp_type), dtype=float)
        this = master.leave_one_out.get(index, master)
        model = _model_variances(err_var, bg, good, height, propagate_errors,
                                 _background_column_variance(this, wave, bg, good))
        column = np.where(good, slit.data, 0.0).sum(axis=0)
        err_column_var = np.where(good, err_var, 0.0).sum(axis=0)
        keep_column = good.any(axis=0) & (err_column_var > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = slit.data / np.sqrt(model["pixel"])
            column_pull = (column / np.sqrt(model["column"]))[keep_column]
            err_column_pull = (column / np.sqrt(err_column_var))[keep_column]
            expected = np.sqrt(model["pixel"] / err_var)[good]
            expected_column = np.sqrt(model["column"] / err_column_var)[keep_column]
        pixel = pulls.pull_statistics(pull[good])
        columns = pulls.pull_statistics(column_pull)
        err_pixel = pulls.pull_statistics(err_pull[good])
        err_columns = pulls.pull_statistics(err_column_pull)
        if label not in vetted_out:
            pooled["pixel"].append(pull[good])
            pooled["column"].append(column_pull)
            pooled["err"].append(err_pull[good])
        stats[label] = {
            "median_relative": float(np.median(relative[good])),
            "pull_spread": pixel["spread"],
            "pull_spread_error": pixel["spread_error"],
            "pull_outlier_fraction": pixel["outlier_fraction"],
            "pull_std": pixel["std"],
            "column_pull_spread": columns["spread"],
            "column_pull_spread_error": columns["spread_error"],
            "column_pull_outlier_fraction": columns["outlier_fraction"],
            "err_pull_spread": err_pixel["spread"],
            "err_column_pull_spread": err_columns["spread"],
            "expected_err_pull_spread": finite_median(expected),
            "expected_err_column_pull_spread": finite_median(expected_column),
            "n_pixels": pixel["n"],
            "n_columns": columns["n"],
            "rejected_pixels": int(rejected.sum()),
        }
    return {
        "residuals": stats,
        "pull_summary": pulls.pooled_summary(pooled["pixel"]),
        "column_pull_summary": pulls.pooled_summary(pooled["column"]),
        "err_pull_summary": pulls.pooled_summary(pooled["err"]),
        "pulls": pulls.pull_definition(
            "valid pixels not rejected by reject_pixels",
            pull=("residual / the error model's sigma: per pixel sqrt(v + b), per column sum "
                  "sqrt(sum v + the summed background's variance from the master's samples); "
                  "err_* pulls divide by ERR"),
        ),
    }


def _background_column_variance(this, wave, background, good):
    """Variance of each column's summed background: the master samples' own covariance."""
    defined = np.isfinite(this.surf_bright) & np.isfinite(this.var)

    def expand_(flux):
        return expand.expand_to_2d(wave, this.wavelength, flux, edge="nearest",
                                   interpolation=this.interpolation)[0]

    calibrated = expand_(np.where(defined, this.surf_bright, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        # Un-calibration and any spatial factor, as the subtracted background has them.
        scale = background.data / calibrated
    finite = np.isfinite(this.wavelength)
    position = np.interp(wave, this.wavelength[finite], np.flatnonzero(finite))
    return column_variance.column_sum_background_variance(
        expand_, np.where(defined, this.var, np.nan), position, scale, good)


def _model_variances(err_var, background, good, height, propagate_errors, column_bkg_var):
    """The error model's per-pixel and column-sum variances of one background slit."""
    bkg_var = np.where(np.isfinite(background.err), background.err.astype(float) ** 2, 0.0)
    if propagate_errors:
        own = errors.pixel_variance_from_inflated(err_var, bkg_var, max(height, 1.0))
    else:
        own = err_var
    column = np.where(good, own, 0.0).sum(axis=0) + column_bkg_var
    return {"pixel": own + bkg_var, "column": column}


def log_summary(master):
    """Log a one-paragraph summary of the master background."""
    qa = master.qa
    vet = qa.get("vetting", {})
    log.info(
        "Master background: %d wavelengths %.4f-%.4f um from %s; %d spectra rejected by vetting;"
        " %.2f%% of points clipped",
        master.wavelength.size,
        master.wavelength[0],
        master.wavelength[-1],
        qa.get("source", "?"),
        len(vet.get("rejected", {})),
        100 * qa.get("clipped_fraction", 0.0),
    )
    summary = qa.get("pull_summary") or {}
    if summary.get("n_pixels"):
        log.info(
            "Background slitlets after subtraction (pixels not rejected): error-model pull "
            "spread %.3f per pixel, %.3f per column (1.4826 MAD), %.2g of |pull| > 5",
            summary["pull_spread"],
            (qa.get("column_pull_summary") or {}).get("pull_spread", float("nan")),
            summary["pull_outlier_fraction"],
        )



