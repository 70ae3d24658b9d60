"""The spec3 master background: from the background spectra, or a user spectrum."""

import logging

import numpy as np

from jwst_mbkg_plus.algorithms.combine import combine_spectra
from jwst_mbkg_plus.algorithms.grid import common_wavelength_grid, resample_spectra
from jwst_mbkg_plus.algorithms.master import (
    MasterSpectrum,
    check_kernel,
    combine_master,
    odd_kernel,
    pair_rejection_reason,
    running_median,
    vet_by_count,
)
from jwst_mbkg_plus.algorithms.pulls import pooled_summary, pull_definition, pull_statistics
from jwst_mbkg_plus.algorithms.qa_stats import clipped_fraction

__all__ = [
    "MasterBackground",
    "build_master_background",
    "master_from_user_background",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- combine


#: The one result type of a master background (`jwst_mbkg_plus.algorithms.master`).
MasterBackground = MasterSpectrum


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
    vet_pair_level_limit=0.1,
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
    vet_pair_level_limit : float or None, optional
        Two spectra: level difference beyond which the brighter is rejected
        even without shape evidence (None: never).
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
    names = [s.name for s in spectra]
    accepted = np.ones(n, dtype=bool)
    vetting = None
    pair = None
    reasons = ["not vetted"] * n
    if vet and n >= 2:
        decided = vet_by_count(flux, var, names, threshold=vet_threshold,
                               min_deviation=vet_min_deviation, wavelength=grid,
                               pair_level_limit=vet_pair_level_limit)
        accepted, reasons = decided.accepted.copy(), list(decided.reasons)
        vetting, pair = decided.consensus, decided.pair
        if pair is not None:
            _log_pair(pair, names)
        for i in np.flatnonzero(~accepted) if vetting is not None else ():
            log.warning("Background spectrum %s: %s (median deviation %+.1f%%, "
                        "score %.1f)", spectra[i].name, vetting.reasons[i],
                        100 * vetting.deviation[i], vetting.score[i])
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
    check_kernel(median_kernel, grid.size)
    weights = None
    if exptime_weights and combine_method in ("clipped_mean", "mean"):
        weights = np.array([s.exposure_time for s in spectra])[accepted]
    sigma = sigma_clip if combine_method in ("clipped_mean", "weighted_mean") else None
    if combine_method == "clipped_mean" and sigma is None:
        combine_method = "mean"
    kernel = odd_kernel(median_kernel)
    combined = combine_master(
        flux[accepted], None if var is None else var[accepted], method=combine_method,
        sigma=sigma, maxiters=maxiters, min_spectra=min_spectra, weights=weights,
        median_kernel=kernel, keep_nan=True,
    )
    sb, sb_var = combined.flux, combined.var
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
            [s.name for s in spectra], flux, var, accepted, combined.robust,
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
    return {
        "slits": [e["name"] for e in inputs],
        "vetting": {
            "applied": bool(vetted),
            "threshold": threshold if vetted else None,
            "scores": {e["name"]: e["score"] for e in inputs if e["score"] is not None},
            "rejected": {e["name"]: e["reason"] for e in inputs if not e["accepted"]},
        },
        "clipped_fraction": clipped_fraction(flux[[e["accepted"] for e in inputs]],
                                             combined.rejected_mask),
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


def _log_pair(pair, names):
    """Log the verdict of `~jwst_mbkg_plus.algorithms.excess.compare_pair` on two spectra."""
    if pair.verdict == "contaminated" and pair.basis == "level":
        bad = pair.contaminated
        log.warning("Background spectrum %s %s", names[bad],
                    pair_rejection_reason(pair, names[1 - bad]))
    elif pair.verdict == "contaminated":
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
    check_kernel(median_kernel, sb.size)
    kernel = odd_kernel(median_kernel)
    sb, var = running_median(sb, var, kernel, keep_nan=True)
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


