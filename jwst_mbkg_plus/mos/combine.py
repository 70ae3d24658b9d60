"""The MOS background spectra combined into a master, with its variance and QA.

The numerics are the package's one core (`jwst_mbkg_plus.algorithms.master`);
this module sets the MOS policy: the propagated variance is scaled to the
spectra's scatter, wavelengths with too few spectra for the robust estimate
get their plain mean, the master is smoothed in wavelength by evidence
(``master_smoothing='adaptive'``, `~jwst_mbkg_plus.algorithms.adaptive_smoothing`),
and the result is a `~jwst_mbkg_plus.mos.options.MasterBackground`.
"""

import logging

import numpy as np

from jwst_mbkg_plus.algorithms import master as core
from jwst_mbkg_plus.algorithms import qa_stats
from jwst_mbkg_plus.algorithms.adaptive_smoothing import DEFAULT_HALF_WIDTHS, adaptive_smooth
from jwst_mbkg_plus.algorithms.noise_correlation import neighbour_correlation
from jwst_mbkg_plus.mos.options import MasterBackground, MasterBackgroundError

__all__ = ["SMOOTHING_THRESHOLD", "combine_master", "smooth", "smooth_master"]

log = logging.getLogger(__name__)

#: Lepski threshold of ``master_smoothing='adaptive'``: two estimates of different
#: widths disagree beyond this many standard deviations of their difference.
SMOOTHING_THRESHOLD = 3.5


def combine_master(grid_wave, flux, var, options, weights=None, variance_factor=None):
    """
    Combine the accepted background spectra of the MOS step into a master.

    Parameters
    ----------
    grid_wave : ndarray, shape (n_wave,)
        The common grid (micron).
    flux, var : ndarray, shape (n, n_wave)
        The accepted spectra and their variances on it.
    options : `~jwst_mbkg_plus.mos.options.MasterOptions`
        Step options (``combine_method``, ``sigma_clip``, ``min_spectra``,
        ``median_kernel``, ``master_smoothing``).
    weights : ndarray, shape (n,), optional
        One weight per spectrum (default: equal), for spectra of different
        depths (`~jwst_mbkg_plus.mos.source_sky`).
    variance_factor : float, optional
        The smoothing's variance factor, measured already on a master of the
        same grid (`smooth_master`); default: measured here.

    Returns
    -------
    `~jwst_mbkg_plus.mos.options.MasterBackground`
        The master on the wavelengths where it is defined, with its QA record.

    Raises
    ------
    MasterBackgroundError
        If there is no spectrum, the running median is too long, or no
        wavelength is covered.
    """
    if flux.shape[0] == 0:
        raise MasterBackgroundError(
            "Every background spectrum was rejected (see the warnings above): no master "
            "background can be made. Check the background slitlets, name clean ones with "
            "bkg_slits, or supply user_background."
        )
    method = options.combine_method
    try:
        # Fewer spectra than min_spectra: the mean, as documented (not a clamp).
        combined = core.combine_master(
            flux, var, method=method, sigma=options.sigma_clip, min_spectra=options.min_spectra,
            # Weights from variances smoothed over wavelength: per-point weights
            # from photon-noise variances favour the spectra that fluctuated low.
            weight_window=31 if method == "weighted_mean" else 1, weights=weights,
            scale_to_scatter=True, fill_low_coverage=True,
            median_kernel=options.median_kernel, keep_nan=False,
        )
    except ValueError as err:
        raise MasterBackgroundError(str(err)) from err
    sb, sb_var = combined.flux, combined.var
    sb, sb_var, smoothing_qa = smooth_master(sb, sb_var, options, variance_factor)
    scale = combined.scatter_scale
    qa = {
        "clipped_fraction": qa_stats.clipped_fraction(flux, combined.rejected_mask),
        "low_coverage_points": int(combined.low_coverage.sum()),
        "n_spectra_combined": int(flux.shape[0]),
        "coefficient_of_variation": qa_stats.finite_median(combined.cv),
        "master_variance": {
            "method": "propagated from the pixel variances, scaled by the reduced chi2 of "
                      "the spectra about the master pooled over 51 wavelengths where > 1",
            "n_spectra": int(flux.shape[0]),
            "median_scatter_scale": float(np.median(scale)),
            "max_scatter_scale": float(np.max(scale)),
        },
        "master_smoothing": smoothing_qa,
    }
    defined = np.isfinite(sb)
    if not defined.any():
        raise MasterBackgroundError("No wavelength is covered by the background spectra.")
    return MasterBackground(
        wavelength=grid_wave[defined],
        surf_bright=sb[defined],
        var=np.where(np.isfinite(sb_var[defined]), sb_var[defined], 0.0),
        n_used=combined.n_used.astype(float)[defined],
        qa=qa,
    )


def smooth_master(sb, var, options, variance_factor=None):
    """
    Smooth a combined master in wavelength by evidence (``master_smoothing``).

    With ``master_smoothing='adaptive'`` and no running median
    (``median_kernel`` 1), `~jwst_mbkg_plus.algorithms.adaptive_smoothing.adaptive_smooth`
    fits local quadratics about every sample over a ladder of widths and keeps
    the widest that agrees with all narrower ones: wide on a smooth, noisy
    continuum, the sample itself across a line or a steep rise. The chosen
    kernels' own bias (the negative lobes of a wide quadratic kernel that
    reach a line or a curved stretch pull the master low) is corrected with
    the same kernels (twicing, ``(2 L - L L) y``). Its variance is the
    smoothed estimate's own (``sum_i m_i**2 var_i``), times the factor by
    which the noise shared by neighbouring samples raises a smooth sum's
    (`~jwst_mbkg_plus.algorithms.noise_correlation.neighbour_correlation`,
    measured on a first smoothing, which is then made again with it).

    Parameters
    ----------
    sb, var : ndarray, shape (n_wave,)
        The combined master on the grid (NaN where undefined) and its variance.
    options : `~jwst_mbkg_plus.mos.options.MasterOptions`
        Step options (``master_smoothing``, ``median_kernel``).
    variance_factor : float, optional
        The factor, measured already on a master of the same grid and the same
        kind of spectra (a leave-one-out master takes the full master's): the
        first smoothing is not needed.

    Returns
    -------
    sb, var : ndarray
        The master and its variance (the inputs when not smoothed).
    qa : dict
        What the smoothing did (method, chosen half-widths, noise reduction).
    """
    method = getattr(options, "master_smoothing", "adaptive")
    if method != "adaptive":
        return sb, var, {"method": "none"}
    if options.median_kernel > 1:
        return sb, var, {"method": "none",
                         "reason": f"median_kernel={options.median_kernel} smooths instead"}
    var_in = np.where(np.isfinite(var), var, np.nan)
    if variance_factor is None:
        result = adaptive_smooth(sb, var_in, threshold=SMOOTHING_THRESHOLD, twicing=True)
        # Neighbouring samples share pixels (the grid is finer than the bins it is
        # resampled from): a wide kernel's variance is larger than the independent
        # samples' sum, and the rule, judging by that sum, stopped its windows on noise.
        factor, rho = neighbour_correlation(sb, var_in, result)
    else:
        result, factor, rho = None, float(variance_factor), None
    if factor > 1.0 or result is None:
        result = adaptive_smooth(sb, var_in * factor, threshold=SMOOTHING_THRESHOLD,
                                 twicing=True)
    qa = {
        "method": "adaptive",
        "rule": "local quadratic, half-width per sample by Lepski's rule, twiced",
        "threshold_sigma": SMOOTHING_THRESHOLD,
        "half_widths_tried": [0, *DEFAULT_HALF_WIDTHS],
        "neighbour_correlation": rho,
        "variance_factor": factor,
        **result.summary(var_in * factor),
    }
    # A sample left as it is keeps its own variance; a smoothed one has its kernel's.
    smoothed_var = np.where(result.half_width > 0, result.var, var_in)
    out_var = np.where(np.isfinite(var), smoothed_var, var)
    return result.flux, out_var, qa


def smooth(sb, var, kernel):
    """
    The running median of a user background (``median_kernel``), as for a master.

    Parameters
    ----------
    sb, var : ndarray
        Surface brightness and variance.
    kernel : int
        Odd width (1: none).

    Returns
    -------
    sb, var : ndarray
        The smoothed spectrum and variance.

    Raises
    ------
    MasterBackgroundError
        If the kernel is not shorter than the spectrum.
    """
    try:
        return core.running_median(sb, var, kernel, keep_nan=False)
    except ValueError as err:
        raise MasterBackgroundError(str(err)) from err
