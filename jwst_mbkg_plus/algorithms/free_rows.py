"""The source-free pixels of a slitlet, from the source's measured profile along the slit.

A per-slitlet sky factor fitted to rows that still hold the source's wings
over-subtracts the source (jwst #8534 measures 3.5-6 % flux losses from
nodding for that reason). A fixed distance from the source is not enough for
a broad profile (Moffat wings, two sources, a slightly extended object), so
the profile is measured: the ratio data / modelled background in bins of
distance from the source, each bin's median against the median of the
farthest rows (the reference). The nearest rows up to the outer edge of the
farthest bin significantly brighter than the reference (``sigma``, both
errors) are left out, and then, as long as the nearer half of what is left
is significantly brighter than the farther half, the nearer half too.
"""

import logging

import numpy as np
from scipy import stats

from jwst_mbkg_plus.algorithms.stats import MAD_TO_SIGMA

__all__ = ["bin_threshold", "nearest_cut", "source_free_mask"]

log = logging.getLogger(__name__)

#: `nearest_cut`: the wings' error bounded at this multiple of its estimate ...
WING_COVERAGE = 2.0
#: ... stays below this fraction of the factor's noise.
WING_FRACTION = 0.25

# Standard error of a median relative to that of a mean (Gaussian).
_MEDIAN_EFFICIENCY = 1.2533


def _median_and_error(r):
    med = float(np.median(r))
    spread = MAD_TO_SIGMA * float(np.median(np.abs(r - med)))
    return med, _MEDIAN_EFFICIENCY * spread / np.sqrt(max(r.size, 1))


def bin_threshold(sigma, n_tests):
    """
    One-sided threshold of each of ``n_tests`` tests with the false-alarm rate of one at ``sigma``.

    Parameters
    ----------
    sigma : float
        Significance of a single test (one-sided, Gaussian).
    n_tests : int
        Number of independent tests.

    Returns
    -------
    float
        ``sigma`` for at most one test, larger for more (Sidak correction).
    """
    if n_tests <= 1:
        return float(sigma)
    p_one = stats.norm.sf(sigma)
    return float(stats.norm.isf(-np.expm1(np.log1p(-p_one) / n_tests)))


def source_free_mask(data, model, distance, valid=None, *, guard=1.0, bin_width=0.1,
                     sigma=3.0, reference_fraction=0.4, min_bin_pixels=30):
    """
    Pixels of a slitlet far enough from its source to measure the sky on.

    Parameters
    ----------
    data, model : ndarray
        Calibrated data and the modelled background (same shape).
    distance : ndarray
        Distance of each pixel from the source along the slit (slit-frame
        units; ``inf`` for a slitlet with no source).
    valid : ndarray of bool, optional
        Pixels that may be used.
    guard : float, optional
        Smallest distance from the source of any pixel used.
    bin_width : float, optional
        Distance bins of the profile (slit-frame units).
    sigma : float, optional
        Significance of a bin's excess over the reference that marks wings.
    reference_fraction : float, optional
        Fraction of the pixels, the farthest, whose median is the reference.
    min_bin_pixels : int, optional
        Fewest pixels of a profile bin.

    Returns
    -------
    mask : ndarray of bool
        The source-free pixels.
    cut : float
        Smallest distance from the source of the pixels kept (``inf`` when no
        source, NaN when none are kept).
    """
    data, model, distance = (np.asarray(a, dtype=float) for a in (data, model, distance))
    ok = np.isfinite(data) & np.isfinite(model) & (model > 0) & ~np.isnan(distance)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    ok &= distance >= guard
    finite = ok & np.isfinite(distance)
    if not finite.any():
        return ok, float("inf") if ok.any() else float("nan")
    ratio = np.where(ok, data / np.where(model > 0, model, 1.0), np.nan)
    d = distance[finite]
    r = ratio[finite]
    if d.size < 2 * min_bin_pixels:
        return ok, float(d.min()) if d.size else float("nan")
    split = np.quantile(d, 1 - reference_fraction)
    ref, ref_err = _median_and_error(r[d >= split])
    cut = float(guard)
    edges = np.arange(guard, split + bin_width, bin_width)
    bins = [(lo, hi, (d >= lo) & (d < hi)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    bins = [b for b in bins if b[2].sum() >= min_bin_pixels]
    # Every bin is a test: the threshold keeps the chance that any of them fires on
    # noise alone at that of one test at ``sigma`` (a false alarm far out would
    # throw away every row nearer, and keep the rows that fluctuated low).
    threshold = bin_threshold(sigma, len(bins))
    for _, hi, inside in bins:
        med, err = _median_and_error(r[inside])
        if med - ref > threshold * np.hypot(err, ref_err):
            cut = float(hi)
    keep = d >= cut
    # Halves: while the nearer half of what is left is brighter, drop it.
    while keep.sum() >= 4 * min_bin_pixels:
        half = np.median(d[keep])
        near = keep & (d <= half)
        far = keep & (d > half)
        if not near.any() or not far.any():
            break
        m_near, e_near = _median_and_error(r[near])
        m_far, e_far = _median_and_error(r[far])
        if m_near - m_far <= sigma * np.hypot(e_near, e_far):
            break
        cut = float(half)
        keep = far
    mask = ok.copy()
    mask[finite] = d >= cut
    kept = distance[mask]
    return mask, float(kept.min()) if kept.size else float("nan")


def nearest_cut(distance, wing_error, relative_var, usable, *, guard=1.0, floor=0.5,
                step=0.05, coverage=WING_COVERAGE, fraction=WING_FRACTION):
    """
    How near the source a sky factor's rows may come once the wings are taken out.

    Rows nearer the source add pixels (the factor's noise falls as
    ``sigma = 1 / sqrt(sum w)``, ``w = 1 / relative_var``) and the error of the
    wings subtracted from them, which is the same for every pixel of a row and so
    adds to the factor coherently: ``b = sum w e / sum w``. The cut is the nearest
    distance, between ``guard`` and ``floor``, at which ``coverage * b`` stays
    below ``fraction * sigma``: the wings' error, even at ``coverage`` times its
    estimate, is a small fraction of the factor's own noise there.

    Parameters
    ----------
    distance : ndarray
        Distance of each pixel from the source (slit-frame units).
    wing_error : ndarray
        Standard error of the wings subtracted, in units of the modelled background.
    relative_var : ndarray
        Variance of each pixel over the modelled background squared.
    usable : ndarray of bool
        Pixels that may be used.
    guard, floor : float, optional
        Farthest and nearest cuts considered.
    step : float, optional
        Spacing of the cuts tried.
    coverage : float, optional
        Multiple of the wings' estimated error bounded (their realised error was
        up to twice the estimate on synthetic Gaussian sources, whose Moffat index
        sits at its bound).
    fraction : float, optional
        Largest ratio of that bound to the factor's noise.

    Returns
    -------
    cut : float
        The distance (``guard`` when no nearer cut passes).
    bound : float
        ``coverage * b / sigma`` at that cut.
    """
    distance = np.asarray(distance, dtype=float)
    ok = (np.asarray(usable, dtype=bool) & np.isfinite(distance) & np.isfinite(wing_error)
          & np.isfinite(relative_var) & (relative_var > 0))
    best = (float(guard), 0.0)
    for cut in np.arange(guard, floor - 1e-9, -step):
        inside = ok & (distance >= cut)
        if not inside.any():
            continue
        w = 1.0 / relative_var[inside]
        ratio = float(coverage * np.sum(w * wing_error[inside]) / np.sqrt(w.sum()))
        if ratio > fraction:
            break
        best = (float(cut), ratio)
    return best
