"""The MOS step's residual QA record and its log summary.
"""


import logging

import numpy as np

from jwst_mbkg_plus.algorithms import (
    pulls,
)
from jwst_mbkg_plus.io.slits import (
    DO_NOT_USE,
    slit_label,
)

__all__ = [
    "log_summary",
    "residual_qa",
]

log = logging.getLogger(__name__)


def residual_qa(result, forward, master, background_2d):
    """
    Residual statistics of the background slitlets after subtraction.

    Residuals are relative to the subtracted background; pulls divide by the
    propagated ERR (the calibration factor cancels in both). Pulls are taken
    over the pixels the step kept: valid (finite, not DO_NOT_USE before the
    step) and not rejected by ``reject_pixels``, and summarised robustly
    (`~jwst_mbkg_plus.algorithms.pulls.pull_statistics`): a plain standard
    deviation would measure the few hot pixels left in the data, not the
    error model.

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

    Returns
    -------
    dict
        ``residuals``: per background slit label, ``median_relative`` (median
        residual / background), ``pull_spread`` and ``column_pull_spread``
        (1.4826 x MAD of residual / ERR per pixel and per column sum),
        ``pull_outlier_fraction`` and ``column_pull_outlier_fraction`` (of
        ``|pull| > 5``), ``pull_std`` (plain, for comparison), ``n_pixels``
        and ``rejected_pixels`` (left out). ``pull_summary``: the pixel pulls
        of the slitlets that went into the master, pooled. ``pulls``: how they
        were computed.
    """
    used = set(master.qa.get("slits", []))
    vetted_out = set((master.qa.get("vetting") or {}).get("rejected") or {})
    stats = {}
    pooled = []  # pulls of the slitlets that went into the master
    for index, (slit, factor, bg) in enumerate(
        zip(result.slits, forward.factors, background_2d.slits, strict=True)
    ):
        label = slit_label(slit)
        if label not in used:
            continue
        # The calibration factor cancels in the pull: data and ERR share units.
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = slit.data / bg.data
            pull = slit.data / slit.err
        rejected = master.rejected_masks.get(index)
        if rejected is None:
            rejected = np.zeros(slit.data.shape, dtype=bool)
        good = np.isfinite(relative) & np.isfinite(pull) & (bg.dq == 0) & np.isfinite(factor)
        # DO_NOT_USE from before the step (the step's own flags are the rejected pixels).
        good &= ((slit.dq & DO_NOT_USE) == 0) | rejected
        good &= ~rejected
        if not good.any():
            continue
        column = np.where(good, slit.data, 0.0).sum(axis=0)
        column_var = np.where(good, slit.err.astype(float) ** 2, 0.0).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            column_pull = column / np.sqrt(column_var)
        column_pull = column_pull[np.isfinite(column_pull) & (good.sum(axis=0) > 0)]
        pixel = pulls.pull_statistics(pull[good])
        columns = pulls.pull_statistics(column_pull)
        if label not in vetted_out:
            pooled.append(pull[good])
        stats[label] = {
            "median_relative": float(np.median(relative[good])),
            "pull_spread": pixel["spread"],
            "pull_outlier_fraction": pixel["outlier_fraction"],
            "pull_std": pixel["std"],
            "column_pull_spread": columns["spread"],
            "column_pull_outlier_fraction": columns["outlier_fraction"],
            "n_pixels": pixel["n"],
            "rejected_pixels": int(rejected.sum()),
        }
    return {
        "residuals": stats,
        "pull_summary": pulls.pooled_summary(pooled),
        "pulls": pulls.pull_definition("valid pixels not rejected by reject_pixels"),
    }


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
            "Background slitlets after subtraction (pixels not rejected): pull spread %.3f "
            "(1.4826 MAD), %.2g of |pull| > 5",
            summary["pull_spread"],
            summary["pull_outlier_fraction"],
        )



