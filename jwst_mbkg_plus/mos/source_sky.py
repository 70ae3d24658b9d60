"""The source slitlets' own sky in the master background (``use_source_sky``).

A point source in a slitlet of several shutters leaves most of its rows to the
sky: 18 such slitlets hold about as many source-free pixels as 12 background
slitlets. ``slit_scale`` already finds those pixels (the source's wings fitted
and masked, `~jwst_mbkg_plus.algorithms.free_rows.source_free_mask`) and fits
each slitlet's own smooth sky factor ``F_k(lambda)`` against the master. Here a
second pass:

1. the source-free pixels of every rescaled source slitlet are divided by its
   fitted factor and its spatial factor, which puts them on the first
   master's scale (the factors were fitted relative to it, so the level does
   not drift), and outlying pixels are rejected against the master
   (``reject_pixels``, ``pixel_sigma``);
2. each slitlet's pixels are binned into one spectrum on the master's grid
   (`~jwst_mbkg_plus.mos.slit_spectra.bin_slits`, as the background slitlets);
3. these spectra are vetted against the consensus of all spectra (the
   additive-excess shape test and the sample count of
   `~jwst_mbkg_plus.algorithms.selection.vet_spectra`: a second source or
   wings in the sky rows show as an excess with a shape of their own; the
   level test cannot see them, the factor has taken the level out), and the
   accepted ones join the background spectra in the same robust
   per-wavelength combination, smoothing and variance propagation
   (`~jwst_mbkg_plus.mos.combine.combine_master`), each spectrum weighted by
   the inverse of its median relative variance (a slitlet's sky rows are
   fewer than a background slitlet's);
4. the step then expands this master and fits every slitlet's factor again,
   against it. When nothing is added, the master is unchanged and the step
   subtracts with this first pass's expansion and factors
   (`~jwst_mbkg_plus.mos.subtract.subtract_master`'s ``expanded``): they are
   made once.

Only slitlets with a fitted factor contribute: without one (no calibration
scatter detected, ``slit_scale='auto'``) a source slitlet's sky would enter at
its own unmeasured calibration level, and light of the source's wings in its
rows would go into the master unchecked; the fitted factor takes out both a
level error and a smooth excess before the pixels are used. The background
slitlets keep their leave-one-out masters of the first pass (their residuals
stay an independent check).
"""

import dataclasses
import logging

import numpy as np

from jwst_mbkg_plus.algorithms import expand, outliers
from jwst_mbkg_plus.algorithms import master as core
from jwst_mbkg_plus.io.slits import slit_label, slit_variance
from jwst_mbkg_plus.mos.combine import combine_master
from jwst_mbkg_plus.mos.slit_spectra import bin_slits
from jwst_mbkg_plus.mos.subtract import expand_and_correct
from jwst_mbkg_plus.mos.vetting import level_tolerance

__all__ = ["add_source_sky", "master_with_source_sky", "relative_weights", "source_sky_arrays"]

log = logging.getLogger(__name__)


def relative_weights(flux, var, reference):
    """
    One weight per spectrum: the inverse of its median relative variance.

    Parameters
    ----------
    flux, var : ndarray, shape (n, n_wave)
        Spectra and variances on one grid.
    reference : ndarray, shape (n_wave,)
        The master on that grid.

    Returns
    -------
    ndarray, shape (n,)
        Weights, the largest 1 (1 for a spectrum without a usable variance).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = var / reference[None, :] ** 2
    rel = np.where(np.isfinite(flux) & np.isfinite(rel) & (rel > 0), rel, np.nan)
    with np.errstate(invalid="ignore"):
        has = np.isfinite(rel).any(axis=1)
    median = np.full(flux.shape[0], np.nan)
    if has.any():
        median[has] = np.nanmedian(rel[has], axis=1)
    weights = np.where(np.isfinite(median) & (median > 0), 1.0 / median, np.nan)
    if not np.isfinite(weights).any():
        return np.ones(flux.shape[0])
    weights = weights / np.nanmax(weights)
    return np.where(np.isfinite(weights), weights, 1.0)


def source_sky_arrays(wave, data, var, valid, factor, model, model_var=None, *,
                      pixel_sigma=None):
    """
    A source slitlet's sky pixels on the master's scale.

    Parameters
    ----------
    wave, data, var : ndarray
        Pixel wavelengths, the slit's data (its source's wings taken out) and
        variances (calibrated units).
    valid : ndarray of bool
        Its source-free, valid pixels.
    factor : ndarray
        The per-pixel factor by which the master's scale becomes the slit's
        (its sky factor times its spatial factor).
    model, model_var : ndarray
        The master (without factors) expanded to the pixels, and its variance,
        for the pixel rejection.
    pixel_sigma : float or None, optional
        Reject pixels beyond this many sigma of ``model`` (None: none).

    Returns
    -------
    tuple
        ``(wave, sb, var, use)`` as `~jwst_mbkg_plus.mos.slit_spectra.slit_arrays`
        gives them, and the number of pixels rejected.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        sb = np.asarray(data, dtype=float) / factor
        sb_var = np.asarray(var, dtype=float) / factor**2
    use = (np.asarray(valid, dtype=bool) & np.isfinite(wave) & np.isfinite(sb)
           & np.isfinite(sb_var) & (sb_var > 0) & np.isfinite(factor) & (factor > 0))
    n_rejected = 0
    if pixel_sigma is not None and use.any():
        bad = outliers.find_pixel_outliers(sb, sb_var, model, model_var, sigma=pixel_sigma,
                                           dq_mask=~use | ~np.isfinite(model))
        n_rejected = int(bad.sum())
        use &= ~bad
    return wave, sb, sb_var, use, n_rejected


def master_with_source_sky(master, sky_flux, sky_var, labels, options):
    """
    The master combined again from its background spectra and the source slitlets' sky.

    Parameters
    ----------
    master : MasterBackground
        The first master; its ``spectra`` (grid, background spectra and
        variances as combined) are the base. Not modified.
    sky_flux, sky_var : ndarray, shape (n_sky, n_grid)
        The source slitlets' sky spectra on the same grid, on the master's scale.
    labels : sequence of str
        Their slit names.
    options : MasterOptions
        Step options (combination, smoothing, vetting threshold).

    Returns
    -------
    new : MasterBackground
        The master of both; everything else (leave-one-out masters, spatial
        factor, rejected pixels, range) is the first master's.
    record : dict
        Which sky spectra were added or rejected, and why.
    """
    grid, base_flux, base_var = master.spectra
    n_base = base_flux.shape[0]
    flux = np.vstack([base_flux, sky_flux])
    var = np.vstack([base_var, sky_var])
    names = [f"background {k}" for k in range(n_base)] + list(labels)
    accepted = np.ones(flux.shape[0], dtype=bool)
    reasons = {}
    if options.vet_spectra and flux.shape[0] >= 3:
        # The level tolerance of the background spectra (their calibration scatter):
        # the sky spectra, divided by their factors, sit at the master's level.
        vetting = core.vet_by_count(flux, var, names, threshold=options.vet_threshold,
                                    wavelength=grid, min_deviation=level_tolerance(base_flux))
        # The background spectra were vetted with the first master; here only the sky.
        for j in range(n_base, flux.shape[0]):
            if not vetting.accepted[j]:
                accepted[j] = False
                reasons[names[j]] = vetting.reasons[j]
    reference = np.interp(grid, master.wavelength, master.surf_bright, left=np.nan,
                          right=np.nan)
    weights = relative_weights(flux, var, reference)
    combined = combine_master(grid, flux[accepted], var[accepted], options,
                              weights=weights[accepted])
    qa = {**master.qa, **combined.qa}
    added = [names[j] for j in range(n_base, flux.shape[0]) if accepted[j]]
    on_both = np.isin(combined.wavelength, master.wavelength)
    first_var = np.interp(combined.wavelength, master.wavelength, master.var)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = combined.var[on_both] / first_var[on_both]
    ratio = ratio[np.isfinite(ratio)]
    record = {
        "applied": bool(added),
        "n_background_spectra": int(n_base),
        "n_source_slits": len(added),
        "source_slits": added,
        "rejected": reasons,
        "weights": {names[j]: float(weights[j]) for j in range(n_base, flux.shape[0])},
        "median_variance_ratio": float(np.median(ratio)) if ratio.size else float("nan"),
    }
    new = dataclasses.replace(master, wavelength=combined.wavelength,
                              surf_bright=combined.surf_bright, var=combined.var,
                              n_used=combined.n_used, qa=qa)
    return new, record


def add_source_sky(cal_model, master, options):
    """
    The master with the source-free sky of the rescaled source slitlets added.

    Parameters
    ----------
    cal_model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        All slits calibrated as extended. Not modified.
    master : MasterBackground
        The master of the background slitlets (only its QA record gets the
        ``source_sky`` entry when nothing is added).
    options : MasterOptions
        Step options.

    Returns
    -------
    master : MasterBackground
        The new master (``master`` itself when nothing could be added), with
        the QA record's ``source_sky`` entry.
    first : `~jwst_mbkg_plus.mos.subtract.Expanded` or None
        When ``master`` is returned unchanged, the expansion and slit
        corrections made against it, for
        `~jwst_mbkg_plus.mos.subtract.subtract_master` (their log lines held
        back); None when there is a new master or no first pass.
    """
    record = {"applied": False}
    reason = ""
    if master.spectra is None:
        reason = "the master was not combined from background spectra here"
    elif options.slit_scale == "none":
        reason = "slit_scale is off: the source slitlets have no fitted sky factor"
    if reason:
        return _unchanged(master, record, reason), None
    # With a new master, subtract_master expands it and fits the factors again, and
    # logs them; with this master, it takes this pass and logs its held lines.
    first = expand_and_correct(cal_model, master, options, quiet=True)
    corrections = first.corrections
    slits = list(cal_model.slits)
    sources = [k for k in sorted(corrections) if corrections[k].sky is not None
               and corrections[k].factor is not None and k not in master.leave_one_out]
    if not sources:
        return _unchanged(master, record, "no source slitlet was rescaled by its own sky "
                          "factor (calibration scatter not detected, or too few source-free "
                          "pixels)"), first
    low, high = expand.sample_range(master.wavelength, master.surf_bright, master.var)
    arrays, labels, pixels, rejected = [], [], {}, {}
    for k in sources:
        free, data = corrections[k].sky
        expansion = first.slits[k]
        wave = expansion.wave
        # The master without the spatial factor, none beyond its samples; the spatial
        # factor per pixel as the background carries it (bkg / plain: the factor the
        # expansion applied, to rounding; the ratio keeps the results to the last bit).
        with np.errstate(invalid="ignore"):
            inside = (wave >= low) & (wave <= high)
        plain = np.where(inside, expansion.plain, np.nan)
        plain_var = np.where(inside, expansion.plain_var, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            spatial = np.where(plain > 0, expansion.bkg / plain, np.nan)
        factor = corrections[k].factor * spatial
        *a, n_bad = source_sky_arrays(
            wave, data, slit_variance(slits[k]), free, factor, plain, plain_var,
            pixel_sigma=options.pixel_sigma if options.reject_pixels else None)
        label = slit_label(slits[k])
        arrays.append(tuple(a))
        labels.append(label)
        pixels[label] = int(a[3].sum())
        rejected[label] = n_bad
    grid = master.spectra[0]
    sky_flux, sky_var = bin_slits(arrays, [np.zeros(a[1].shape, dtype=bool) for a in arrays],
                                  grid)
    new, record = master_with_source_sky(master, sky_flux, sky_var, labels, options)
    record["pixels"] = {label: pixels[label] for label in record["source_slits"]}
    record["rejected_pixels"] = rejected
    for label, why in record["rejected"].items():
        log.warning("Source slitlet %s: its sky rows not added to the master: %s", label, why)
    log.info("Master background: the source-free sky of %d source slitlets (%d pixels) "
             "added to %d background spectra; the master's variance is %.2f of theirs alone",
             record["n_source_slits"], sum(record["pixels"].values()),
             record["n_background_spectra"], record["median_variance_ratio"])
    new.qa["source_sky"] = record
    return new, None


def _unchanged(master, record, reason):
    record["reason"] = reason
    log.info("Master background from the background slitlets alone (use_source_sky): %s",
             reason)
    master.qa["source_sky"] = record
    return master
