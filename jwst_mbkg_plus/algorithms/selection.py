"""Vet background spectra: reject whole spectra that deviate from the consensus.

A background shutter contaminated by a faint source, a neighbour's spectrum,
a failed-open shutter or a bad flat shows up as a whole spectrum that is
systematically above (or below) the others. Per-wavelength clipping (see
`jwst_mbkg_plus.algorithms.combine`) cannot see such an offset when it is
below the per-point noise; a statistic over all wavelengths can.

Statistic
---------
For spectrum ``i`` and the leave-one-out consensus ``m_i(lambda)`` (median
of the other currently accepted spectra, wavelengths with at least
``min_consensus`` of them and ``m_i > 0``):

* relative deviation ``r_i = (f_i - m_i) / m_i`` (level-independent);
* ``D_i = median_lambda(r_i)`` (robust to cosmic rays and edges);
* its noise ``err_i = 1.2533 * sigma_r / sqrt(N_i)``, where ``sigma_r`` is the
  median over wavelength of ``sqrt(var_i + var_m) / m_i`` when ``var`` is given
  (``var_m`` the variance of the leave-one-out median), else the robust scatter
  (1.4826 MAD) of ``r_i`` over wavelength. This assumes independent samples
  along wavelength; resampling onto a finer grid correlates neighbours and
  makes ``err_i`` too small by ~sqrt(oversampling), which only matters near
  the ``threshold`` since ``min_deviation`` also applies;
* ``score_i = D_i / err_i``.

Spectrum ``i`` fails if ``|score_i| > threshold`` *and*
``|D_i| > min_deviation``: the deviation must be both significant given the
noise and large enough to matter (the PID 1448 notebook used a bare 5 %
cut). Failing spectra are removed one at a time, worst score first, and the
consensus is recomputed, so that two contaminated spectra out of nine do not
drag the consensus and get clean spectra rejected. Spectra with fewer finite
samples than ``max(min_points, min_finite_fraction * median count)`` are
rejected first. At most ``n_spectra - min_accepted`` spectra are rejected.

Shape test
----------
A level test needs the deviation to exceed ``min_deviation``; a source whose
light has a spectral shape of its own is found below that too. With
``shape_test``, each spectrum is also compared with its leave-one-out
consensus by `jwst_mbkg_plus.algorithms.excess.additive_excess`: a spectrum
holding an additive excess of more than ``min_excess`` at more than
``threshold`` sigma is rejected as well. A smooth level (a quadrant, a
gradient, drift) is no excess, so it never triggers this test. Shape
rejections, being evidence about the spectrum itself rather than a vote, may
go down to ``min_consensus`` accepted spectra (2 of 3), where level
rejections stop at ``min_accepted``.

Measured (tests/test_algorithms_selection.py): 9 spectra, 2000 wavelengths,
level rising 20x, 2 with an added smooth continuum of +30 %: both found and
no clean spectrum rejected at 20 % and at 2 % per-point noise (3 seeds,
with and without variances); 9 clean spectra: 0 false rejections out of
1800 spectra (100 seeds x 2 noise levels x 9, with variances) and 0 of 360
(40 seeds, 20 % noise, without); the scores of clean spectra have mean ~0
and standard deviation ~1 (calibrated significance), so a 5-sigma
``threshold`` alone would reject ~6e-7 of clean spectra.
"""

import logging
from dataclasses import dataclass, field

import numpy as np

from jwst_mbkg_plus.algorithms.errors import median_variance_factor
from jwst_mbkg_plus.algorithms.excess import additive_excess
from jwst_mbkg_plus.algorithms.stats import MAD_TO_SIGMA, nanmedian

__all__ = ["VettingResult", "vet_spectra"]

log = logging.getLogger(__name__)

_MEDIAN_EFF = np.sqrt(np.pi / 2)  # std(median) / std(mean) for large N


@dataclass(frozen=True)
class VettingResult:
    """Result of `vet_spectra`.

    Attributes
    ----------
    accepted : ndarray of bool, shape (n_spectra,)
        True for spectra to keep.
    score : ndarray, shape (n_spectra,)
        Significance ``D / err`` of each spectrum's median relative deviation
        from the final consensus (NaN if it could not be computed).
    deviation : ndarray, shape (n_spectra,)
        Median relative deviation ``D`` (0.1 = 10 % above the consensus).
    n_finite : ndarray of int, shape (n_spectra,)
        Number of usable samples per spectrum.
    reasons : list of str
        One entry per spectrum: ``"accepted"`` or why it was rejected.
    excess : ndarray, shape (n_spectra,)
        Additive excess over the consensus with a shape of its own (fraction;
        NaN without the shape test).
    excess_score : ndarray, shape (n_spectra,)
        Its significance (positive: the spectrum holds the excess).
    """

    accepted: np.ndarray
    score: np.ndarray
    deviation: np.ndarray
    n_finite: np.ndarray
    reasons: list = field(default_factory=list)
    excess: np.ndarray | None = None
    excess_score: np.ndarray | None = None


def _deviation(i, flux, var, valid, pool, min_consensus, shape=None):
    """
    Deviation of spectrum i from the median of ``pool`` (excluding i).

    Returns the median relative deviation, its significance and, with
    ``shape`` (keywords for `additive_excess`), the additive excess and its
    significance (NaN, NaN without).
    """
    none = (np.nan, np.nan, np.nan, np.nan)
    others = np.array([j for j in np.nonzero(pool)[0] if j != i], dtype=int)
    if others.size < min_consensus:
        return none
    sub = np.where(valid[others], flux[others], np.nan)
    m = nanmedian(sub, axis=0)
    n_m = np.sum(valid[others], axis=0)
    use = valid[i] & (n_m >= min_consensus) & np.isfinite(m) & (m > 0)
    n_use = int(use.sum())
    if n_use < 3:
        return none
    r = (flux[i, use] - m[use]) / m[use]
    d = float(np.median(r))
    var_m = None
    if var is not None:
        vm_sum = np.sum(np.where(valid[others], var[others], 0.0), axis=0)
        nm = np.maximum(n_m, 1)
        var_m = median_variance_factor(nm) * vm_sum / nm**2
        sig_r = float(np.median(np.sqrt(var[i, use] + var_m[use]) / m[use]))
    else:
        sig_r = float(MAD_TO_SIGMA * np.median(np.abs(r - d)))
    err = _MEDIAN_EFF * sig_r / np.sqrt(n_use)
    score = d / err if err > 0 else (0.0 if d == 0 else np.inf * np.sign(d))
    if shape is None:
        return d, score, np.nan, np.nan
    f_i = np.where(use, flux[i], np.nan)
    fit = additive_excess(
        f_i, m, None if var is None else var[i], var_m, **shape
    )
    return d, score, fit.excess, fit.score


def vet_spectra(flux, var=None, *, threshold=5.0, min_deviation=0.05, min_finite_fraction=0.5,
                min_points=10, min_consensus=2, min_accepted=3, shape_test=True,
                min_excess=0.02, wavelength=None):
    """Flag whole spectra that deviate from the consensus of the others.

    Parameters
    ----------
    flux : array_like, shape (n_spectra, n_wave)
        Spectra on a common grid (positive surface brightness, e.g. MJy/sr);
        NaN = no data.
    var : array_like, shape (n_spectra, n_wave), or None, optional
        Variances; if None the noise is estimated from each spectrum's
        scatter about the consensus.
    threshold : float, optional
        Significance (in sigma of the median relative deviation) above which
        a spectrum may be rejected.
    min_deviation : float, optional
        Minimum absolute median relative deviation (fraction) for rejection.
    min_finite_fraction : float, optional
        Spectra with fewer usable samples than this fraction of the median
        count over spectra are rejected.
    min_points : int, optional
        Absolute minimum number of usable samples.
    min_consensus : int, optional
        Minimum number of other spectra at a wavelength for it to be compared.
    min_accepted : int, optional
        Never reject below this many accepted spectra (deviation rejections
        stop there; it does not override the finite-sample rule).
    shape_test : bool, optional
        Also reject spectra holding an additive excess with a shape unlike
        the consensus (see the module notes); these may go down to
        ``min_consensus`` accepted spectra.
    min_excess : float, optional
        Smallest additive excess (fraction of the level) the shape test rejects.
    wavelength : array_like, shape (n_wave,), optional
        The common grid, for the shape test's smooth level (sample index if None).

    Returns
    -------
    result : VettingResult
        Acceptance flags, scores, deviations, usable counts and reasons.

    Raises
    ------
    ValueError
        For bad shapes or options.
    """
    flux = np.asarray(flux, dtype=np.float64)
    if flux.ndim != 2:
        raise ValueError(f"flux must be 2-D (n_spectra, n_wave), got shape {flux.shape}")
    if var is not None:
        var = np.asarray(var, dtype=np.float64)
        if var.shape != flux.shape:
            raise ValueError(f"var shape {var.shape} differs from flux shape {flux.shape}")
    if not threshold > 0 or not min_deviation >= 0:
        raise ValueError("threshold must be > 0 and min_deviation >= 0")
    n_spec = flux.shape[0]
    valid = np.isfinite(flux)
    if var is not None:
        with np.errstate(invalid="ignore"):
            valid &= np.isfinite(var) & (var >= 0)
    n_fin = valid.sum(axis=1)
    reasons = ["accepted"] * n_spec
    accepted = np.ones(n_spec, dtype=bool)
    need = max(min_points, min_finite_fraction * float(np.median(n_fin))) if n_spec else 0
    for i in np.nonzero(n_fin < need)[0]:
        accepted[i] = False
        reasons[i] = f"rejected: {n_fin[i]} usable samples < {need:.0f}"

    dev = np.full(n_spec, np.nan)
    score = np.full(n_spec, np.nan)
    excess = np.full(n_spec, np.nan)
    excess_score = np.full(n_spec, np.nan)
    shape = {"wavelength": wavelength} if shape_test else None
    if accepted.sum() <= min_consensus:
        log.warning("vet_spectra: %d usable spectra; at least %d are needed to compare each "
                    "with a consensus of %d others, so none is vetted",
                    int(accepted.sum()), min_consensus + 1, min_consensus)
    while True:
        for i in range(n_spec):
            dev[i], score[i], excess[i], excess_score[i] = _deviation(
                i, flux, var, valid, accepted, min_consensus, shape
            )
        failing = accepted & (np.abs(score) > threshold) & (np.abs(dev) > min_deviation)
        with np.errstate(invalid="ignore"):
            shaped = accepted & (excess_score > threshold) & (excess > min_excess)
        level_ok = accepted.sum() > min_accepted
        candidates = (failing if level_ok else np.zeros_like(failing)) | (
            shaped if accepted.sum() > min_consensus else np.zeros_like(shaped)
        )
        if not np.any(candidates):
            break
        strength = np.where(failing & level_ok, np.abs(score), 0.0)
        strength = np.maximum(strength, np.where(shaped, excess_score, 0.0))
        worst = int(np.nanargmax(np.where(candidates, strength, -np.inf)))
        accepted[worst] = False
        if failing[worst] and level_ok:
            reasons[worst] = (
                f"rejected: median relative deviation {dev[worst]:+.4f} "
                f"({score[worst]:+.1f} sigma) exceeds {min_deviation} and {threshold} sigma"
            )
        else:
            reasons[worst] = (
                f"rejected: additive excess {100 * excess[worst]:+.1f}% "
                f"({excess_score[worst]:+.1f} sigma) with a spectral shape unlike the others' "
                f"(median relative deviation {dev[worst]:+.4f})"
            )
        log.info("vet_spectra: %s (spectrum %d)", reasons[worst], worst)
    if np.any(failing):
        log.warning("vet_spectra: %d deviating spectra kept to keep min_accepted=%d",
                    int(failing.sum()), min_accepted)
    return VettingResult(accepted=accepted, score=score, deviation=dev, n_finite=n_fin,
                         reasons=reasons, excess=excess, excess_score=excess_score)
