"""Evidence that a slitlet chosen as background holds a source.

A slitlet the user names as background (``bkg_slits``) but the MSA file
declares a source slitlet is checked against two signatures of a source:

* its row profile: a source adds light to some rows at every wavelength, so
  the slitlet divided by its own per-column median shows a bump along the slit
  (a point source, a compact galaxy);
* its excess: the slitlet is brighter, as a whole, than the slitlets the MSA
  file declares as background (a source filling the slitlet).

Both are measured from the slitlet itself and the declared background
slitlets, never from a master made with the suspect slitlet.
"""

import logging
from dataclasses import dataclass

import numpy as np

from jwst_mbkg_plus.algorithms import profiles
from jwst_mbkg_plus.algorithms.stats import nan_mad_std, nanmedian

__all__ = ["SourceEvidence", "level_excess", "row_profile_evidence"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceEvidence:
    """
    What was found in one slitlet.

    Attributes
    ----------
    has_source : bool
        Whether either signature is significant.
    reason : str
        The evidence in words ('' if none).
    """

    has_source: bool
    reason: str = ""


def row_profile_evidence(sb, var, valid, *, threshold=5.0, min_deviation=0.05):
    """
    Look for rows brighter than the rest of the slitlet.

    Parameters
    ----------
    sb, var : ndarray, shape (n_rows, n_cols)
        Calibrated surface brightness and its variance.
    valid : ndarray of bool, shape (n_rows, n_cols)
        Pixels to use.
    threshold : float, optional
        Significance of a row's excess, in units of its noise.
    min_deviation : float, optional
        Smallest relative excess of a row counted.

    Returns
    -------
    SourceEvidence
        Whether some rows stand out, and which.
    """
    sb = np.asarray(sb, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool) & np.isfinite(sb)
    with np.errstate(invalid="ignore"):
        column_level = nanmedian(np.where(valid, sb, np.nan), axis=0)
    model = np.broadcast_to(column_level, sb.shape)
    result = profiles.row_profile(sb, var, model, valid)
    rows = profiles.find_profile_outliers(result, threshold=threshold,
                                          min_deviation=min_deviation)
    dev = result.deviation
    finite = np.isfinite(dev)
    if not rows.any() or finite.sum() < 3:
        return SourceEvidence(False)
    centred = dev - np.median(dev[finite])
    bright = rows & (centred > 0)
    if not bright.any():
        return SourceEvidence(False)
    where = np.flatnonzero(bright)
    peak = where[np.argmax(centred[where])]
    return SourceEvidence(
        True,
        f"its row profile shows a source (rows {where.min()}-{where.max()} up to "
        f"{100 * centred[peak]:+.0f}% above the rest of the slitlet)",
    )


def level_excess(flux, reference, *, threshold=5.0, min_excess=0.05):
    """
    Compare a slitlet's spectrum with those of declared background slitlets.

    Parameters
    ----------
    flux : ndarray, shape (n_wave,)
        The suspect slitlet's spectrum on a common grid.
    reference : ndarray, shape (n_ref, n_wave)
        Spectra of declared background slitlets on the same grid.
    threshold : float, optional
        Significance of the excess, in units of the references' own scatter.
    min_excess : float, optional
        Smallest relative excess counted.

    Returns
    -------
    SourceEvidence
        Whether the slitlet is significantly brighter than the references.
    """
    reference = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    if reference.shape[0] == 0:
        return SourceEvidence(False)
    level = nanmedian(reference, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = nanmedian(np.asarray(flux, dtype=np.float64) / level - 1.0)
        if reference.shape[0] >= 2:
            ref_excess = nanmedian(reference / level - 1.0, axis=1)
            scatter = float(nan_mad_std(ref_excess)) if ref_excess.size >= 3 else float(
                np.nanmax(np.abs(ref_excess)))
        else:
            scatter = 0.0
    if not np.isfinite(excess):
        return SourceEvidence(False)
    if excess > max(min_excess, threshold * scatter):
        return SourceEvidence(
            True,
            f"it is {100 * excess:+.0f}% brighter than the declared background slitlets",
        )
    return SourceEvidence(False)
