"""What the plus steps check of their own results before they call them COMPLETE.

Three rules, shared by the MOS step and the spec3 step:

* :func:`coverage_problem`: one coverage rule for every master, computed or
  given: a master whose defined wavelengths cover less than
  ``user_background_min_overlap`` of the science range ends FAILED, with the
  figure;
* :func:`guard_science_pixels`: no science pixel with DQ 0 holds a non-finite
  value, or a background far outside the robust range of the backgrounds
  subtracted in the exposure (those get DO_NOT_USE and NaN, and are counted);
* :func:`pull_warning`: when the background slitlets' error-model pulls (the
  QA record) are far from 1, the log says at WARNING level that the master
  does not describe them, and why if the QA record tells.
"""

import logging

import numpy as np

from jwst_mbkg_plus.io.user_background.values import robust_limits

__all__ = [
    "COLUMN_PULL_LIMITS",
    "PIXEL_PULL_LIMITS",
    "coverage_problem",
    "guard_science_pixels",
    "mos_result_checks",
    "pull_warning",
    "spec3_result_checks",
]

log = logging.getLogger(__name__)

#: Per-pixel error-model pull spreads outside this interval are warned about.
PIXEL_PULL_LIMITS = (0.67, 1.5)
#: Per-column pull spreads outside this interval are warned about.
COLUMN_PULL_LIMITS = (0.5, 2.0)

_DO_NOT_USE = 1


def coverage_problem(wavelength, surf_bright, science_range, min_overlap, what="master"):
    """
    Say why a master background covers too little of the science range, or ''.

    Parameters
    ----------
    wavelength, surf_bright : array_like
        The master (micron; any unit). Only wavelengths with a finite value count.
    science_range : tuple of float or None
        Lowest and highest science wavelength, micron (None: nothing to check).
    min_overlap : float
        Smallest fraction of the science range the master must cover, in [0, 1].
    what : str, optional
        What the master was made from, for the message.

    Returns
    -------
    str
        The figure and the fix, or ''.
    """
    if science_range is None or min_overlap <= 0:
        return ""
    wave = np.asarray(wavelength, dtype=float)
    defined = np.isfinite(wave) & np.isfinite(np.asarray(surf_bright, dtype=float))
    lo, hi = float(min(science_range)), float(max(science_range))
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        return ""
    if not defined.any():
        return f"the {what} has no defined value. Check the background inputs."
    wmin, wmax = float(wave[defined].min()), float(wave[defined].max())
    frac = max(0.0, min(hi, wmax) - max(lo, wmin)) / (hi - lo)
    if frac >= min_overlap:
        return ""
    return (
        f"the {what} is defined over {wmin:.4g}-{wmax:.4g} um, only {frac:.1%} of the science "
        f"range {lo:.4g}-{hi:.4g} um (user_background_min_overlap={min_overlap:g}): "
        "subtracting it would leave most science pixels without background. Check the "
        "background inputs (their valid range, their grating/filter), or lower "
        "user_background_min_overlap."
    )


def guard_science_pixels(slits, backgrounds, rejected_dq, background_indices=()):
    """
    Flag science pixels whose subtracted value cannot be trusted.

    A pixel whose result is non-finite, or whose subtracted background lies
    beyond the robust range of every background subtracted in the exposure
    (`~jwst_mbkg_plus.io.user_background.values.robust_limits`, pooled over all
    slits), and whose DQ lacks DO_NOT_USE, gets DO_NOT_USE (``rejected_dq`` in
    the slits of ``background_indices``) and NaN.

    Parameters
    ----------
    slits : sequence
        Objects with ``data`` and ``dq`` arrays: the subtracted science slits
        (or models), updated in place.
    backgrounds : sequence of ndarray or None
        The background subtracted from each (same shapes), in the science unit.
    rejected_dq : int
        DQ value given in the background slitlets (as for rejected pixels).
    background_indices : collection of int, optional
        Which slits are background slitlets that went into the master.

    Returns
    -------
    dict
        Per slit index, the number of pixels flagged (only those with any).
    """
    pooled = [np.asarray(b, dtype=float)[np.isfinite(b)] for b in backgrounds if b is not None]
    pooled = np.concatenate(pooled) if pooled else np.array([])
    lo, hi = robust_limits(pooled) if pooled.size else (-np.inf, np.inf)
    counts = {}
    for index, (slit, bkg) in enumerate(zip(slits, backgrounds, strict=True)):
        usable = (np.asarray(slit.dq) & _DO_NOT_USE) == 0
        bad = ~np.isfinite(slit.data)
        if bkg is not None:
            with np.errstate(invalid="ignore"):
                bad |= np.isfinite(bkg) & ((bkg < lo) | (bkg > hi))
        bad &= usable
        if bad.any():
            flag = rejected_dq if index in background_indices else _DO_NOT_USE
            slit.dq[bad] |= np.uint32(flag)
            slit.data[bad] = np.nan
            counts[index] = int(bad.sum())
    return counts


def pull_warning(qa, n_background=None):
    """
    Return a WARNING message if the QA pulls say the master does not describe the data.

    Parameters
    ----------
    qa : dict
        The step's QA record (``pull_summary``, ``column_pull_summary``,
        ``vetting``).
    n_background : int, optional
        Number of background spectra used, for the reason (with one, whose
        master is made of itself, nothing is said).

    Returns
    -------
    str
        The message, or '' if the pulls are near 1 or absent.
    """
    if n_background is not None and n_background < 2:
        return ""  # one slitlet: its master is made of itself, the pulls say nothing
    pixel = (qa.get("pull_summary") or {}).get("pull_spread")
    column = (qa.get("column_pull_summary") or {}).get("pull_spread")
    far = []
    if pixel is not None and np.isfinite(pixel) and not (
            PIXEL_PULL_LIMITS[0] <= pixel <= PIXEL_PULL_LIMITS[1]):
        far.append(f"{pixel:.2f} per pixel")
    if column is not None and np.isfinite(column) and not (
            COLUMN_PULL_LIMITS[0] <= column <= COLUMN_PULL_LIMITS[1]):
        far.append(f"{column:.2f} per column")
    if not far:
        return ""
    reasons = []
    vetting = qa.get("vetting") or {}
    rejected = vetting.get("rejected") or {}
    if rejected and n_background is not None:
        reasons.append(f"vetting rejected {len(rejected)} background slitlet"
                       f"{'s' if len(rejected) > 1 else ''} as deviating "
                       f"({', '.join(map(str, list(rejected)[:3]))}), so the "
                       f"{n_background} kept may hold sources too")
    pair = vetting.get("pair") or {}
    if pair.get("verdict") == "undecided":
        reasons.append("the two background spectra differ and vetting could not tell which "
                       "holds a source")
    if n_background == 2:
        reasons.append("only 2 background spectra, so a source in one cannot be outvoted")
    larger = [v for v in (pixel, column) if v is not None and np.isfinite(v)]
    if larger and min(larger) > 1:
        if column is not None and pixel is not None and column > 2 * pixel:
            reasons.append("the residuals are coherent along columns: the background "
                           "slitlets' spectra differ in level or shape (a source in them, "
                           "or a sky that varies across the MSA beyond spatial_model)")
    elif larger and max(larger) < 1:
        reasons.append("the residuals are smaller than the errors: the variance arrays "
                       "(VAR_POISSON, VAR_RNOISE) overstate the noise")
    why = ("; likely because " + "; ".join(reasons)) if reasons else ""
    return (
        "The master background does not describe the background slitlets: their "
        f"error-model pull spread is {' and '.join(far)} (1 if it did){why}. Check the QA "
        "record (save_qa=True; 'jwst-mbkg-plus plot'), and exclude slitlets that hold a "
        "source (exclude_slits) or give a user_background."
    )


def mos_result_checks(result, background_2d, master, rejected_dq, *, guard=True):
    """
    The MOS step's checks of its result: guarded pixels and the QA pulls.

    Parameters
    ----------
    result : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The subtracted slits (updated in place).
    background_2d : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The background subtracted from each slit, same order.
    master : `~jwst_mbkg_plus.mos.options.MasterBackground`
        The master; its QA record gains ``guarded_pixels``.
    rejected_dq : int
        The DQ value of rejected background-slitlet pixels.
    guard : bool, optional
        False in the jwst-equivalent mode (output equal to jwst's bit for bit).
    """
    from jwst_mbkg_plus.io.slits import slit_label

    if guard:
        counts = guard_science_pixels(
            result.slits, [s.data for s in background_2d.slits], rejected_dq,
            set(getattr(master, "flag_masks", {}) or {}),
        )
        named = {slit_label(result.slits[k]): n for k, n in counts.items()}
        master.qa["guarded_pixels"] = named
        if named:
            log.warning(
                "%d pixels with a non-finite result, or a background beyond 10 times the "
                "robust range of the backgrounds subtracted, flagged DO_NOT_USE and set to "
                "NaN (slits %s)", sum(named.values()),
                ", ".join(f"{k}: {v}" for k, v in list(named.items())[:8]))
    n_used = np.asarray(getattr(master, "n_used", []), dtype=float)
    n_background = int(np.nanmax(n_used)) if np.isfinite(n_used).any() else None
    if master.qa.get("source") == "user_background":
        n_background = None
    message = pull_warning(master.qa, n_background)
    if message:
        log.warning(message)


def spec3_result_checks(science_models, subtractions, qa):
    """
    The spec3 step's check of its result: guarded pixels.

    Parameters
    ----------
    science_models : sequence of `~stdatamodels.jwst.datamodels.JwstDataModel`
        The subtracted science models (updated in place).
    subtractions : sequence of `~jwst_mbkg_plus.spec3.subtract.SubtractionResult`
        Their backgrounds, same order.
    qa : dict
        The QA record; gains ``guarded_pixels``.
    """
    guarded = {}
    for model, sub in zip(science_models, subtractions, strict=True):
        targets = list(model.slits) if hasattr(model, "slits") else [model]
        counts = guard_science_pixels(targets, [b[0] for b in sub.backgrounds], _DO_NOT_USE)
        if counts:
            guarded[str(model.meta.filename)] = int(sum(counts.values()))
    qa["guarded_pixels"] = guarded
    if guarded:
        log.warning("%d science pixels with a non-finite result, or a background beyond 10 "
                    "times the robust range of the backgrounds subtracted, flagged DO_NOT_USE "
                    "and set to NaN (%s)", sum(guarded.values()),
                    ", ".join(f"{k}: {v}" for k, v in guarded.items()))
