"""The MOS master with a spatial factor across the MSA, fitted in turn with the master.
"""


import logging

import numpy as np

from jwst_mbkg_plus.algorithms import (
    chromatic,
    combine,
    levels,
    spatial,
)
from jwst_mbkg_plus.mos.combine import combine_master
from jwst_mbkg_plus.mos.vetting import vet_background_spectra

__all__ = [
    "fit_spatial_master",
    "leave_one_out_spatial",
    "spatial_record",
]

log = logging.getLogger(__name__)

def fit_spatial_master(grid_wave, flux, var, positions, labels, options, profile_rejects,
                    candidates, previous=None, level_var=None):
    """
    Master and spatial factor, fitted in turn.

    The slitlets' levels are fitted with ``level_var`` (default ``var``), the
    variance that holds for sums over wavelength
    (`~jwst_mbkg_plus.mos.slit_spectra.bin_slits`); the spectra are vetted and
    combined with ``var``.

    Each slitlet's level relative to the master is fitted with the spatial
    model; the spectra divided by the fitted factor are vetted and combined
    into the next master. Starting from the median of the spectra, two rounds
    settle the levels to well below their noise; starting from the previous
    iteration's master (``previous``), one.

    Returns
    -------
    master : MasterBackground
        With ``spatial`` set (None if the fit was not possible).
    accepted : ndarray of bool
        Spectra that went into the master.
    vet_qa : dict
        Vetting record.
    ratios : tuple of ndarray
        Each slitlet's level relative to the master, and its error.
    """
    if previous is None:
        reference = combine.combine_spectra(
            flux[candidates], var[candidates], method="median", min_spectra=1
        ).flux
        rounds = 2
    else:
        reference = np.interp(grid_wave, previous.wavelength, previous.surf_bright,
                              left=np.nan, right=np.nan)
        rounds = 1
    level_var = var if level_var is None else level_var
    use = candidates.copy()
    use[list(profile_rejects)] = False
    for _ in range(rounds):
        ratio, error = levels.level_ratios(flux, level_var, reference)
        fit = spatial.fit_spatial_factor(
            positions[use, 0], positions[use, 1], positions[use, 2], ratio[use], error[use],
            model=options.spatial_model,
        )
        bands = chromatic.band_levels(grid_wave, flux, level_var, reference)
        chrom = _chromatic_fit(fit, positions, use, bands, grid_wave)
        factors, _ = chromatic.factors_at(fit, chrom, positions, grid_wave)
        scaled, scaled_var = flux / factors, var / factors**2
        accepted, vet_qa = vet_background_spectra(scaled, scaled_var, labels, options,
                                                  profile_rejects, grid_wave)
        master = combine_master(grid_wave, scaled[accepted], scaled_var[accepted], options)
        master.spatial = fit
        master.spatial_chromatic = chrom
        master.spectra = (grid_wave, scaled[accepted], scaled_var[accepted])
        reference = np.interp(grid_wave, master.wavelength, master.surf_bright,
                              left=np.nan, right=np.nan)
        use = accepted.copy()
    ratio, error = levels.level_ratios(flux, level_var, reference)
    bands = chromatic.band_levels(grid_wave, flux, level_var, reference)
    return master, accepted, vet_qa, (ratio, error, *bands)


def _chromatic_fit(fit, positions, use, bands, grid_wave, order=None):
    """The wavelength dependence of ``fit`` (fitted to the ``use`` slitlets), or None."""
    band_wave, band_ratio, band_error = bands
    return chromatic.fit_chromatic_factor(
        fit, positions[use, 0], positions[use, 1], positions[use, 2], band_wave,
        band_ratio[use], band_error[use], order=order,
        wave_range=(float(np.nanmin(grid_wave)), float(np.nanmax(grid_wave))),
    )


def leave_one_out_spatial(grid_wave, flux, var, positions, ratios, others, options, full,
                           full_chromatic=None, variance_factor=None):
    """
    The master and spatial factor fitted without one slitlet.

    The model is the one chosen with every slitlet (``full``), refitted: with
    ``auto`` a choice made again on each subset would let a leave-one-out
    check extrapolate a model the whole set does not support.
    """
    ratio, error, *bands = ratios
    model = full.model if full is not None else options.spatial_model
    subset = (positions[others, 0], positions[others, 1], positions[others, 2],
              ratio[others], error[others])
    # A quadrant the full fit gave a level keeps it when one of its slitlets is
    # left out, even if only one remains: else a background slitlet's check
    # would compare it with the other quadrant's level.
    # A plane refitted through the 3 slitlets left of 4 is exactly determined:
    # still the model's prediction for the one left out (min_dof=0).
    fit = spatial.fit_spatial_factor(*subset, model=model, min_per_quadrant=1, min_dof=0)
    if fit is not None and full is not None and len(fit.columns) > len(full.columns):
        fit = spatial.fit_spatial_factor(*subset, model=model, min_dof=0)
    if fit is None and model != options.spatial_model:
        # Without this slitlet the model lacks support (a quadrant left with one).
        fit = spatial.fit_spatial_factor(*subset, model=options.spatial_model)
    chrom = None
    if full_chromatic is not None and fit is not None and fit.model == full.model:
        chrom = _chromatic_fit(fit, positions, others, bands, grid_wave,
                               order=full_chromatic.order)
    factors, _ = chromatic.factors_at(fit, chrom, positions, grid_wave)
    factors = factors[others]
    loo = combine_master(grid_wave, flux[others] / factors, var[others] / factors**2, options,
                         variance_factor=variance_factor)
    loo.spatial = fit
    loo.spatial_chromatic = chrom
    return loo


def spatial_record(master, positions, labels, ratios, accepted, options):
    """QA record of the spatial fit: model, parameters, and every background slitlet."""
    fit, chrom = master.spatial, master.spatial_chromatic
    ratio, error, band_wave, band_ratio, band_error = ratios
    record = {"requested": options.spatial_model}
    if fit is None:
        (log.info if options.spatial_model == "auto" else log.warning)(
            "Too few background slitlets for spatial_model=%r; the master is used unscaled.",
            options.spatial_model,
        )
        record["model"] = None
        record["reason"] = "too few background slitlets (or positions) for the model"
    else:
        record.update(fit.to_record())
        log.info(
            "Spatial background model %s: %s; reduced chi2 %.2f over %d slitlets",
            fit.model,
            ", ".join(
                f"{k} {v['value']:.4f}+-{v['error']:.4f}"
                for k, v in record["parameters"].items()
            ),
            fit.reduced_chi2,
            int(fit.used.sum()),
        )
    record["wavelength_order"] = chrom.order if chrom is not None else 0
    if chrom is not None:
        record["chromatic"] = chrom.to_record()
        log.info("The spatial factor changes with wavelength (polynomial order %d).", chrom.order)
    record["band_wavelengths_um"] = [float(w) for w in band_wave]
    band_factor, _ = master.spatial_factors(positions, band_wave)
    factor, factor_err = (
        fit.predict(positions[:, 0], positions[:, 1], positions[:, 2])
        if fit is not None
        else (np.ones(len(positions)), np.zeros(len(positions)))
    )
    record["background_slits"] = {
        label: {
            "x": float(positions[k, 0]),
            "y": float(positions[k, 1]),
            "quadrant": int(positions[k, 2]),
            "ratio": float(ratio[k]),
            "ratio_error": float(error[k]),
            "factor": float(factor[k]),
            "factor_error": float(factor_err[k]),
            "accepted": bool(accepted[k]),
            "band_ratios": [float(v) for v in band_ratio[k]],
            "band_ratio_errors": [float(v) for v in band_error[k]],
            "band_factors": [float(v) for v in band_factor[k]],
        }
        for k, label in enumerate(labels)
    }
    return record



