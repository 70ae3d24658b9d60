"""The master-background core: vet whole spectra, combine them per wavelength, fill, smooth.

The MOS step (`jwst_mbkg_plus.mos`), the spec3 step (`jwst_mbkg_plus.spec3`)
and ``jwst-mbkg-plus master`` (`jwst_mbkg_plus.tools.master`) all turn a set
of background spectra on one wavelength grid into a master with these two
functions; they differ only in their parameters:

1. `vet_by_count` rejects whole spectra: three or more against the
   leave-one-out consensus (`~jwst_mbkg_plus.algorithms.selection.vet_spectra`),
   two against each other by the shape of an additive excess
   (`~jwst_mbkg_plus.algorithms.excess.compare_pair`), one not at all;
2. `combine_master` combines the accepted ones per wavelength
   (`~jwst_mbkg_plus.algorithms.combine.combine_spectra`), optionally scales the
   propagated variance up where the spectra scatter more than it allows
   (`~jwst_mbkg_plus.algorithms.errors.pooled_scatter_scale`), optionally fills
   the wavelengths with too few spectra for the robust estimate with their plain
   mean, and applies jwst's running median
   (`~jwst_mbkg_plus.algorithms.smoothing.median_filter_nan`).

`MasterSpectrum` is the one result type of a master background.
"""

import logging
from dataclasses import dataclass, field

import numpy as np

from jwst_mbkg_plus.algorithms import combine, errors, excess, qa_stats, selection
from jwst_mbkg_plus.algorithms.smoothing import median_filter_nan

__all__ = [
    "CombinedMaster",
    "MasterSpectrum",
    "SpectrumVetting",
    "check_kernel",
    "combine_master",
    "odd_kernel",
    "pair_rejection_reason",
    "running_median",
    "vet_by_count",
]

log = logging.getLogger(__name__)


@dataclass
class MasterSpectrum:
    """
    A 1-D master background.

    Attributes
    ----------
    wavelength : ndarray
        Micron, increasing.
    surf_bright : ndarray
        MJy/sr (NaN where undefined).
    var : ndarray or None
        Its variance, (MJy/sr)**2.
    n_used : ndarray
        Number of background spectra combined at each wavelength.
    qa : dict
        How it was made (JSON-serialisable).
    """

    wavelength: np.ndarray
    surf_bright: np.ndarray
    var: np.ndarray
    n_used: np.ndarray
    qa: dict = field(default_factory=dict)

    @property
    def rejected(self):
        """list of str: names of the background spectra the vetting rejected."""
        if "inputs" in self.qa:
            return [s["name"] for s in self.qa["inputs"] if not s.get("accepted", True)]
        return list(self.qa.get("vetting", {}).get("rejected", {}))


def odd_kernel(kernel):
    """
    jwst's rule for the running median: an even width is rounded down to odd.

    Parameters
    ----------
    kernel : int or None
        Requested width (None or < 2: none).

    Returns
    -------
    int
        The width used, at least 1.
    """
    kernel = int(kernel or 1)
    if kernel > 1 and kernel % 2 == 0:
        log.info("Even median_kernel %d rounded down to %d, as jwst does.", kernel, kernel - 1)
        kernel -= 1
    return max(kernel, 1)


def check_kernel(kernel, n_samples):
    """
    Refuse a running median that is not shorter than the spectrum.

    Parameters
    ----------
    kernel : int or None
        Width of the running median.
    n_samples : int
        Samples of the master.

    Raises
    ------
    ValueError
        If ``kernel > 1`` and ``kernel >= n_samples``.
    """
    kernel = int(kernel or 1)
    if kernel > 1 and kernel >= n_samples:
        raise ValueError(
            f"median_kernel={kernel} is not shorter than the master background spectrum "
            f"({n_samples} samples): the running median would flatten it. Use an odd value "
            "well below that, or 1 for none."
        )


def running_median(sb, var, kernel, *, keep_nan=True):
    """
    jwst's running median of a master background, with its variance.

    Parameters
    ----------
    sb, var : ndarray
        The master and its variance.
    kernel : int
        Odd width (see `odd_kernel`); 1 or less: returned as they are.
    keep_nan : bool, optional
        Keep undefined points undefined.

    Returns
    -------
    sb, var : ndarray
        The smoothed master and variance.

    Raises
    ------
    ValueError
        If ``kernel`` is not shorter than the spectrum (`check_kernel`).
    """
    kernel = int(kernel or 1)
    if kernel <= 1:
        return sb, var
    check_kernel(kernel, sb.size)
    log.info("Applying a NaN-aware moving median of width %d to the master background", kernel)
    return median_filter_nan(sb, var, kernel=kernel, keep_nan=keep_nan)


def pair_rejection_reason(verdict, other):
    """
    The reason recorded for the spectrum a pair comparison found contaminated.

    Parameters
    ----------
    verdict : `~jwst_mbkg_plus.algorithms.excess.PairVerdict`
        The comparison (``contaminated`` is not None).
    other : str
        Name of the other spectrum.

    Returns
    -------
    str
        The reason.
    """
    if verdict.basis == "level":
        return (
            f"rejected: brighter than {other} by {100 * verdict.level_difference:.1f}% "
            f"({verdict.level_score:.0f} sigma), more than any sky difference between nods "
            "(contamination only adds light)"
        )
    return (
        f"rejected: additive excess of {100 * abs(verdict.excess.excess):.1f}% "
        f"({abs(verdict.excess.score):.1f} sigma) with a spectral shape unlike {other}'s"
    )


@dataclass(frozen=True)
class SpectrumVetting:
    """
    Result of `vet_by_count`.

    Attributes
    ----------
    accepted : ndarray of bool, shape (n,)
        Spectra kept.
    reasons : list of str
        ``"accepted"`` or why each was rejected.
    method : {"consensus", "pair", "single"}
        Which test applied (by the number of spectra).
    consensus : `~jwst_mbkg_plus.algorithms.selection.VettingResult` or None
        The consensus test's scores (three or more spectra).
    pair : `~jwst_mbkg_plus.algorithms.excess.PairVerdict` or None
        The pair comparison (two spectra).
    """

    accepted: np.ndarray
    reasons: list
    method: str
    consensus: object = None
    pair: object = None


def vet_by_count(flux, var, names, *, threshold=5.0, min_deviation=0.05, wavelength=None,
                 pair_level_limit=None):
    """
    Reject whole background spectra, with the test their number allows.

    Parameters
    ----------
    flux : ndarray, shape (n, n_wave)
        Spectra on one grid (NaN = no data).
    var : ndarray or None
        Their variances.
    names : sequence of str
        Name of each spectrum (for the pair's reason).
    threshold : float, optional
        Significance (sigma) above which a spectrum is rejected.
    min_deviation : float, optional
        Smallest relative deviation (consensus) or level difference (pair)
        that can reject a spectrum.
    wavelength : ndarray, optional
        The grid (micron), for the shape tests.
    pair_level_limit : float or None, optional
        Two spectra only: level difference beyond which the brighter is
        rejected without shape evidence (`~jwst_mbkg_plus.algorithms.excess.compare_pair`'s
        ``level_limit``; None: never).

    Returns
    -------
    SpectrumVetting
        The decisions.
    """
    n = flux.shape[0]
    if n < 2:
        return SpectrumVetting(np.ones(n, dtype=bool), ["accepted"] * n, "single")
    if n == 2:
        verdict = excess.compare_pair(flux, var, wavelength=wavelength, threshold=threshold,
                                      level_tolerance=min_deviation,
                                      level_limit=pair_level_limit)
        accepted, reasons = np.ones(2, dtype=bool), ["accepted", "accepted"]
        if verdict.contaminated is not None:
            bad = verdict.contaminated
            accepted[bad] = False
            reasons[bad] = pair_rejection_reason(verdict, names[1 - bad])
        return SpectrumVetting(accepted, reasons, "pair", pair=verdict)
    result = selection.vet_spectra(flux, var, threshold=threshold, min_deviation=min_deviation,
                                   wavelength=wavelength)
    return SpectrumVetting(np.asarray(result.accepted, dtype=bool), list(result.reasons),
                           "consensus", consensus=result)


@dataclass(frozen=True)
class CombinedMaster:
    """
    Result of `combine_master`.

    Attributes
    ----------
    flux, var : ndarray, shape (n_wave,)
        The master and its variance (NaN where undefined).
    n_used : ndarray, shape (n_wave,)
        Spectra combined at each wavelength.
    rejected_mask : ndarray of bool, shape (n, n_wave)
        Input points the per-wavelength combination rejected.
    low_coverage : ndarray of bool, shape (n_wave,)
        Wavelengths filled with the plain mean (``fill_low_coverage``).
    scatter_scale : ndarray or None
        Factor the propagated variance was multiplied by (``scale_to_scatter``).
    cv : ndarray, shape (n_wave,)
        `~jwst_mbkg_plus.algorithms.qa_stats.coefficient_of_variation` of the
        combined points about the master before the running median.
    median_kernel : int
        Width of the running median applied (1: none).
    robust : `~jwst_mbkg_plus.algorithms.combine.CombinedSpectrum`
        The per-wavelength combination itself, before any fill, scaling or
        running median (the reference of leave-one-out residuals).
    """

    flux: np.ndarray
    var: np.ndarray
    n_used: np.ndarray
    rejected_mask: np.ndarray
    low_coverage: np.ndarray
    scatter_scale: np.ndarray | None
    cv: np.ndarray
    median_kernel: int
    robust: object


def combine_master(flux, var, *, method="clipped_mean", sigma=3.0, maxiters=5, min_spectra=1,
                   weights=None, weight_window=1, scale_to_scatter=False,
                   fill_low_coverage=False, median_kernel=1, keep_nan=True):
    """
    Combine accepted background spectra into a master.

    Parameters
    ----------
    flux : ndarray, shape (n, n_wave)
        The accepted spectra on one grid (NaN = no data).
    var : ndarray or None
        Their variances (required by ``scale_to_scatter`` and ``"weighted_mean"``).
    method, sigma, maxiters, min_spectra, weights, weight_window
        As for `~jwst_mbkg_plus.algorithms.combine.combine_spectra`.
    scale_to_scatter : bool, optional
        Multiply the propagated variance by the reduced chi2 of the spectra
        about the master, pooled over wavelength, where it exceeds 1.
    fill_low_coverage : bool, optional
        Where the robust estimate is undefined (fewer than ``min_spectra``
        spectra), use the plain mean of what is there.
    median_kernel : int, optional
        Odd width of the running median (1: none); see `odd_kernel`.
    keep_nan : bool, optional
        Keep undefined points undefined through the running median.

    Returns
    -------
    CombinedMaster
        The master, its variance and how it was made.

    Raises
    ------
    ValueError
        If ``median_kernel`` is not shorter than the spectra.
    """
    robust = combine.combine_spectra(flux, var, method=method, sigma=sigma, maxiters=maxiters,
                                     min_spectra=min_spectra, weights=weights,
                                     weight_window=weight_window)
    sb, sb_var, n_used = robust.flux.copy(), robust.var.copy(), robust.n_used.copy()
    scale = None
    if scale_to_scatter:
        # Pooled over wavelength: a few spectra cannot give it per wavelength.
        used = np.isfinite(flux) & ~robust.rejected_mask
        scale = errors.pooled_scatter_scale(flux, var, sb, used)
        sb_var = sb_var * scale
    hole = np.zeros(sb.shape, dtype=bool)
    if fill_low_coverage:
        # Usually the ends of the band: the plain mean rather than a hole.
        hole = ~np.isfinite(sb)
        if hole.any():
            fallback = combine.combine_spectra(flux, var, method="mean", min_spectra=1)
            sb[hole] = fallback.flux[hole]
            sb_var[hole] = fallback.var[hole]
            n_used[hole] = fallback.n_used[hole]
    cv = qa_stats.coefficient_of_variation(np.where(robust.rejected_mask, np.nan, flux), sb)
    kernel = int(median_kernel or 1)
    sb, sb_var = running_median(sb, sb_var, kernel, keep_nan=keep_nan)
    return CombinedMaster(flux=sb, var=sb_var, n_used=n_used, rejected_mask=robust.rejected_mask,
                          low_coverage=hole, scatter_scale=scale, cv=cv, median_kernel=kernel,
                          robust=robust)
