"""The MOS background spectra combined into a master, with its variance and QA."""

import logging

import numpy as np

from jwst_mbkg_plus.algorithms import (
    combine,
    errors,
)
from jwst_mbkg_plus.algorithms.smoothing import median_filter_nan
from jwst_mbkg_plus.mos.options import MasterBackground, MasterBackgroundError

__all__ = [
    "combine_master",
    "smooth",
]

log = logging.getLogger(__name__)


def combine_master(grid_wave, flux, var, options):
    if flux.shape[0] == 0:
        raise MasterBackgroundError(
            "Every background spectrum was rejected (see the warnings above): no master "
            "background can be made. Check the background slitlets, name clean ones with "
            "bkg_slits, or supply user_background."
        )
    method = options.combine_method
    # Fewer spectra than min_spectra: the mean below, as documented (not a clamp).
    robust = combine.combine_spectra(
        flux,
        var,
        method=method,
        sigma=options.sigma_clip,
        min_spectra=options.min_spectra,
        # Weights from variances smoothed over wavelength: per-point weights
        # from photon-noise variances favour the spectra that fluctuated low.
        weight_window=31 if method == "weighted_mean" else 1,
    )
    sb, sb_var, n_used = robust.flux.copy(), robust.var.copy(), robust.n_used.astype(float)
    # Propagated variance, scaled up where the spectra scatter more than it allows
    # (pooled over wavelength: a few spectra cannot give it per wavelength).
    used = np.isfinite(flux) & ~robust.rejected_mask
    scatter_scale = errors.pooled_scatter_scale(flux, var, sb, used)
    sb_var = sb_var * scatter_scale
    # Where too few spectra remain for the robust estimate (usually the ends of
    # the band), use the plain mean of what is there rather than leave a hole.
    hole = ~np.isfinite(sb)
    if hole.any():
        fallback = combine.combine_spectra(flux, var, method="mean", min_spectra=1)
        sb[hole] = fallback.flux[hole]
        sb_var[hole] = fallback.var[hole]
        n_used[hole] = fallback.n_used[hole]
    sb, sb_var = smooth(sb, sb_var, options.median_kernel)
    clipped = robust.rejected_mask
    n_valid = np.isfinite(flux).sum()
    qa = {
        "clipped_fraction": float(clipped.sum() / n_valid) if n_valid else 0.0,
        "low_coverage_points": int(hole.sum()),
        "n_spectra_combined": int(flux.shape[0]),
        "coefficient_of_variation": _coefficient_of_variation(flux),
        "master_variance": {
            "method": "propagated from the pixel variances, scaled by the reduced chi2 of "
                      "the spectra about the master pooled over 51 wavelengths where > 1",
            "n_spectra": int(flux.shape[0]),
            "median_scatter_scale": float(np.median(scatter_scale)),
            "max_scatter_scale": float(np.max(scatter_scale)),
        },
    }
    defined = np.isfinite(sb)
    if not defined.any():
        raise MasterBackgroundError("No wavelength is covered by the background spectra.")
    return MasterBackground(
        wavelength=grid_wave[defined],
        surf_bright=sb[defined],
        var=np.where(np.isfinite(sb_var[defined]), sb_var[defined], 0.0),
        n_input=n_used[defined],
        qa=qa,
    )



def _coefficient_of_variation(flux):
    """Median over wavelength of the robust scatter / level of the spectra."""
    from jwst_mbkg_plus.algorithms._stats import nan_mad_std, nanmedian

    if flux.shape[0] < 2:
        return float("nan")
    level = nanmedian(flux, axis=0)
    scatter = nan_mad_std(flux, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = scatter / np.abs(level)
    cv = cv[np.isfinite(cv)]
    return float(np.median(cv)) if cv.size else float("nan")



def smooth(sb, var, kernel):
    if kernel is None or kernel <= 1:
        return sb, var
    if kernel >= sb.size:
        raise MasterBackgroundError(
            f"median_kernel={kernel} is not shorter than the master background spectrum "
            f"({sb.size} samples): the running median would flatten it. Use an odd value "
            "well below that, or 1 for none."
        )
    log.info("Applying a NaN-aware moving median of width %d to the master background", kernel)
    result = median_filter_nan(sb, var, kernel=kernel)
    return result



