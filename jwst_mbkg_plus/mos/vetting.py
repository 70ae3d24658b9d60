"""Vetting of the MOS background slitlets: whole spectra, row profiles, the pair case.
"""


import logging
import warnings

import numpy as np
from astropy.stats import biweight_scale, sigma_clipped_stats

from jwst_mbkg_plus.algorithms import (
    expand,
    profiles,
)
from jwst_mbkg_plus.algorithms import master as core
from jwst_mbkg_plus.mos.options import MasterBackgroundError

__all__ = [
    "grow_source_rows",
    "level_tolerance",
    "report_vetting",
    "undeclared_sources",
    "vet_background_spectra",
]

log = logging.getLogger(__name__)

#: Smallest level deviation that can reject a spectrum (as ``vet_by_count``'s default).
MIN_LEVEL_DEVIATION = 0.05

_WHAT_TO_DO = (
    "If one of them holds a source, exclude it (exclude_slits), choose other background "
    "slitlets (bkg_slits) or supply a user_background."
)


def vet_background_spectra(flux, var, labels, options, profile_rejects, wavelength=None):
    """
    Vet the background spectra not already rejected for a source along the slit.

    Three or more: against the leave-one-out consensus
    (`~jwst_mbkg_plus.algorithms.selection.vet_spectra`). Two: against each
    other, by the sign and significance of their difference and the shape of
    the excess (`~jwst_mbkg_plus.algorithms.excess.compare_pair`). One: its
    row profile is its only test.
    """
    n = flux.shape[0]
    keep = np.ones(n, dtype=bool)
    keep[list(profile_rejects)] = False
    rejected = {labels[k]: reason for k, reason in profile_rejects.items()}
    if not options.vet_spectra:
        return keep, {"applied": False, "rejected": rejected}
    idx = np.flatnonzero(keep)
    if idx.size < 2:
        return keep, {
            "applied": True,
            "method": "row profile only",
            "reason": "one background spectrum: nothing to compare it with",
            "rejected": rejected,
        }
    names = [labels[k] for k in idx]
    tolerance = level_tolerance(flux[idx])
    vetting = core.vet_by_count(flux[idx], var[idx], names, threshold=options.vet_threshold,
                                wavelength=wavelength, min_deviation=tolerance)
    accepted = np.zeros(n, dtype=bool)
    accepted[idx] = vetting.accepted
    if vetting.method == "pair":
        for j in np.flatnonzero(~vetting.accepted):
            rejected[names[j]] = vetting.reasons[j]
        return accepted, {
            "applied": True,
            "method": "pair",
            "threshold": options.vet_threshold,
            "pair": vetting.pair.to_record(names),
            "rejected": rejected,
        }
    result = vetting.consensus
    scores, excess_scores = {}, {}
    for j, k in enumerate(idx):
        scores[labels[k]] = float(result.score[j])
        excess_scores[labels[k]] = float(result.excess_score[j])
        if not result.accepted[j]:
            rejected[labels[k]] = result.reasons[j]
            log.warning("Rejected background slitlet %s: %s", labels[k], result.reasons[j])
    if not accepted.any():
        raise MasterBackgroundError(
            "Vetting rejected every background spectrum; check the background slitlets "
            "or set vet_spectra=False."
        )
    return accepted, {
        "applied": True,
        "method": "consensus",
        "threshold": options.vet_threshold,
        "level_tolerance": float(tolerance),
        "scores": scores,
        "excess_scores": excess_scores,
        "rejected": rejected,
    }


def level_tolerance(flux, *, floor=MIN_LEVEL_DEVIATION, n_sigma=5.0):
    """
    Smallest level deviation vetting may call contamination, given the levels' scatter.

    Every slitlet's calibration is off by a few percent, differently in each
    (the calibration scatter). A slitlet whose level is off by an amount that
    scatter explains is not contaminated: contamination shows as a profile
    along the slit or an additive excess with a shape of its own, which the
    other tests see (the row profile, and the additive-excess shape test of
    `~jwst_mbkg_plus.algorithms.selection.vet_spectra`). The tolerance is
    ``n_sigma`` (5) times the scatter of the spectra's levels relative to their
    median, at least ``floor``; with fewer than 5 spectra, ``floor``.

    The scatter is the larger of the biweight scale and the standard deviation
    after a 3-sigma clip about the median. With ~12 levels a robust scale alone
    follows whichever half happens to cluster: levels drawn from a 2.4 % scatter
    gave a biweight of 0.6 % (7 of 12 within 0.5 %), so a slitlet only
    mis-calibrated by +5.6 % was rejected and the measured scatter came out
    20 % low. The clipped deviation follows the calibration scatter and still
    leaves out a single gross outlier; several contaminated slitlets are the
    profile and shape tests' to find.

    Parameters
    ----------
    flux : ndarray, shape (n, n_wave)
        Background spectra on one grid.
    floor, n_sigma : float, optional

    Returns
    -------
    float
    """
    if flux.shape[0] < 5:
        return floor
    # Grid points no spectrum covers are all-NaN columns: expected, not news.
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        consensus = np.nanmedian(flux, axis=0)
        levels = np.nanmedian(flux / consensus, axis=1)
    levels = levels[np.isfinite(levels)]
    if levels.size < 5:
        return floor
    # Biweight: robust to a contaminated spectrum, but far less noisy than the MAD
    # with ~10 spectra (a 12-slitlet MAD can come out at 40% of the true scatter).
    spread = biweight_scale(levels, c=9.0)
    _, _, clipped = sigma_clipped_stats(levels, sigma=3.0, maxiters=5, cenfunc="median",
                                        stdfunc="std", std_ddof=1)
    spread = np.nanmax([spread, clipped])
    return float(max(floor, n_sigma * spread)) if np.isfinite(spread) else floor


def report_vetting(qa, profiles_qa, profile_flags):
    """Add the row profiles to the vetting record; log what could not be decided."""
    vet = qa.setdefault("vetting", {})
    if profiles_qa:
        vet["profiles"] = profiles_qa
    if profile_flags:
        vet["flagged"] = dict(profile_flags)
        masked = vet.get("masked_rows", {})
        for label, reason in profile_flags.items():
            rows = masked.get(label)
            how = (f"without its rows {min(rows)}-{max(rows)}, which hold the source"
                   if rows else "as it is")
            log.warning(
                "Background slitlet %s shows a source along the slit (%s), but no clean "
                "background slitlet is left to replace it, so it is used %s. Exclude it "
                "(exclude_slits), choose other background slitlets (bkg_slits) or supply a "
                "user_background.", label, reason, how,
            )
    pair = vet.get("pair")
    if pair is None:
        return
    if pair["verdict"] == "contaminated":
        log.warning("Rejected background slitlet %s: %s", pair["contaminated"],
                    vet["rejected"].get(pair["contaminated"], pair["message"]))
    elif pair["verdict"] == "undecided":
        log.warning(
            "The two background slitlets differ: %s is brighter by %.1f%% (%.0f sigma), "
            "and neither their spectra nor their profiles say which is contaminated; both "
            "are used. %s", pair["brighter"], 100 * (pair["level_difference"] or 0),
            pair["level_score"] or 0, _WHAT_TO_DO,
        )
    else:
        log.info("The two background slitlets agree: %s", pair["message"])


def grow_source_rows(flagged, valid, previous, margin=1, min_kept=0.25):
    """
    Rows to leave out of a kept slitlet that shows a source: the flagged ones and
    ``margin`` rows around them, added to ``previous``.

    Returns None if nothing new would be masked, or if fewer than ``min_kept`` of
    the slitlet's rows with data would remain.
    """
    n_rows = valid.shape[0]
    rows = np.zeros(n_rows, dtype=bool) if previous is None else previous.copy()
    for r in flagged:
        rows[max(r - margin, 0):r + margin + 1] = True
    if previous is not None and np.array_equal(rows, previous):
        return None
    has_data = valid.any(axis=1)
    if (has_data & ~rows).sum() < min_kept * has_data.sum():
        return None
    return rows


def undeclared_sources(arrays, masks, master, accepted, options, factors):
    """
    Accepted slits whose row profile shows a source.

    Returns
    -------
    found : dict
        Position in the selection -> reason, for the slits with a source.
    summary : dict
        Position -> largest row deviation from a flat profile and its
        significance, for every accepted slit.
    """
    found, summary = {}, {}
    for k in np.flatnonzero(accepted):
        wave, sb, var, valid = arrays[k]
        model, _ = expand.expand_to_2d(
            wave, master.wavelength, master.surf_bright * factors[k], edge="nan",
            interpolation=master.interpolation,
        )
        result = profiles.row_profile(sb, var, model, valid & ~masks[k], detrend=True)
        rows = profiles.find_profile_outliers(result, threshold=options.vet_threshold)
        finite = np.isfinite(result.deviation) & np.isfinite(result.sigma)
        if finite.sum() >= 3:
            centred = result.deviation - np.median(result.deviation[finite])
            pull = np.where(finite, centred / result.sigma, 0.0)
            top = int(np.argmax(np.abs(pull)))
            summary[k] = {
                "max_row_deviation": float(centred[top]),
                "max_row_score": float(pull[top]),
                "rows_flagged": int(rows.sum()),
                "flagged_rows": np.flatnonzero(rows).tolist(),
            }
        if rows.any():
            where = np.flatnonzero(rows)
            peak = where[np.nanargmax(np.abs(result.deviation[where]))]
            found[k] = (
                f"undeclared source along the slit: rows {where.min()}-{where.max()} deviate "
                f"from the master by up to {100 * result.deviation[peak]:+.1f}%"
            )
    return found, summary



