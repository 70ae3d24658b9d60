"""NIRSpec MOS master background: build it from background slitlets, subtract it.

The datamodel side of `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`. The
numerics live in `jwst_mbkg_plus.algorithms`; this module unpacks slits into
arrays, calls them, and packs the results into jwst's datamodels.

Building the master (``bkg_method='full_slitlet'``), iterated up to
``pixel_maxiters`` times:

1. every calibrated pixel of each background slitlet (all shutters) is
   binned on a common wavelength grid with a clipped mean per bin, giving one
   1-D spectrum per slitlet;
2. whole spectra that deviate from the consensus are rejected (vetting; with
   two spectra, the one holding an additive excess with a spectral shape of
   its own, `jwst_mbkg_plus.algorithms.excess`), and so are slitlets whose row
   profile against the master shows an undeclared source
   (`jwst_mbkg_plus.algorithms.profiles`), however few they are; a slitlet
   that shows one but cannot be replaced is flagged and kept without the rows
   holding the source;
3. the surviving spectra are combined per wavelength (``combine_method``);
4. the master is expanded to each background slitlet's pixels and outlying
   pixels (hot pixels, clusters, cosmic rays) are masked for the next round.

Each background slitlet is then subtracted with the master made without it
(leave one out), so its residuals are an independent check of the background;
every other slit gets the master from all accepted slitlets.
The pixels rejected in step 4 are flagged OUTLIER + DO_NOT_USE in the output
DQ (``flag_rejected``), so that later steps leave them out as well.

With ``bkg_method='extract_1d'`` the slitlets go through jwst's pixel_replace,
resample_spec and extract_1d (masked pixels set to NaN first) and the
extracted spectra are vetted and combined the same way.
"""

import logging

import numpy as np

from jwst_mbkg_plus.algorithms import (
    expand,
    grid,
    outliers,
    source_evidence,
)
from jwst_mbkg_plus.io.slits import (
    is_msa_background,
    select_background_slits,
)
from jwst_mbkg_plus.mos.combine import combine_master, smooth
from jwst_mbkg_plus.mos.extract import extract_1d_spectra, jwst_combination
from jwst_mbkg_plus.mos.msa_position import slit_position
from jwst_mbkg_plus.mos.options import (
    MasterBackground,
    MasterBackgroundError,
)
from jwst_mbkg_plus.mos.slit_spectra import (
    bin_slits,
    slit_arrays,
    slit_grid,
)
from jwst_mbkg_plus.mos.spatial_master import (
    fit_spatial_master,
    leave_one_out_spatial,
    spatial_record,
)
from jwst_mbkg_plus.mos.vetting import (
    grow_source_rows,
    report_vetting,
    undeclared_sources,
    vet_background_spectra,
)

__all__ = [
    "master_from_slits",
    "master_from_user",
]

log = logging.getLogger(__name__)


def master_from_user(user, path, options):
    """
    Make the master background of a user-supplied spectrum.

    Parameters
    ----------
    user : `~jwst_mbkg_plus.io.user_background.UserBackground`
        The spectrum as `~jwst_mbkg_plus.io.user_background.read_user_background`
        read and validated it (the step reads the file once, before calibrating;
        its coverage of the science range is checked on the result, with
        ``user_background_min_overlap``).
    path : str
        The file it was read from, for the QA record.
    options : MasterOptions
        Step options (only ``median_kernel`` and ``spatial_model`` apply).

    Returns
    -------
    MasterBackground
        The master background.
    """
    if options.spatial_model not in ("none", "auto"):
        log.warning(
            "spatial_model=%r is fitted to background slitlets and is not applied to a "
            "user_background; slit_scale still rescales point-source slitlets.",
            options.spatial_model,
        )
    var = user.sb_error**2 if user.sb_error is not None else np.zeros_like(user.surf_bright)
    sb, var = smooth(user.surf_bright, var, options.median_kernel)
    qa = {
        "source": "user_background",
        "user_background": str(path),
        "user_background_format": user.format,
        "warnings": list(user.warnings),
    }
    return MasterBackground(
        wavelength=user.wavelength,
        surf_bright=sb,
        var=var,
        n_used=np.ones_like(sb),
        qa=qa,
        input_range=(float(user.wavelength[0]), float(user.wavelength[-1])),
    )


# --------------------------------------------------------------------------- master


def master_from_slits(step, cal_model, options):
    """
    Build the master background from the background slitlets.

    Parameters
    ----------
    step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
        The step, for its nested pixel_replace, resample_spec and extract_1d
        (``bkg_method='extract_1d'``).
    cal_model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        All slits calibrated as extended (MJy/sr). Not modified.
    options : MasterOptions
        Step options.

    Returns
    -------
    MasterBackground
        The master background and its QA record.

    Raises
    ------
    BackgroundSelectionError
        If the requested slitlets do not exist or none remain.
    MasterBackgroundError
        If vetting rejects every spectrum or no wavelength is covered.
    """
    selection_ = select_background_slits(
        cal_model.slits, include=options.bkg_slits or None, exclude=options.exclude_slits or None
    )
    exp_type = cal_model.meta.exposure.type
    slits = [cal_model.slits[i] for i in selection_.indices]
    labels = list(selection_.labels)
    for label in labels:
        log.info("Using background slitlet %s", label)
    if selection_.excluded:
        log.info("Excluded background slitlets: %s", ", ".join(selection_.excluded))
    arrays = [slit_arrays(slit, exp_type) for slit in slits]
    waves = [a[0][a[3]] for a in arrays]
    if not any(w.size for w in waves):
        raise MasterBackgroundError(
            "The background slitlets have no valid calibrated pixel (all NaN or DO_NOT_USE): "
            "name other slitlets with bkg_slits, or supply user_background."
        )
    input_range = _coverage(waves, np.ones(len(waves), dtype=bool))

    # One wavelength per detector column and slit sets the native sampling.
    grid_wave, grid_qa = slit_grid(arrays)
    interpolation = grid_qa["interpolation"]
    masks = [np.zeros(a[1].shape, dtype=bool) for a in arrays]
    # slit position in the selection -> reason (a source in it)
    spatial_rejects = {}
    if options.bkg_slits:
        spatial_rejects = _named_sources(cal_model, selection_, arrays, grid_wave, options)
    qa = {
        "source": "background_slitlets",
        "selection": selection_.source,
        "slits": labels,
        "excluded_by_parameter": list(selection_.excluded),
        "bkg_method": options.bkg_method,
        "combine_method": options.combine_method,
        "grid": grid_qa,
    }

    bkg_x1d = None
    master = None
    profile_flags = {}  # label -> reason: a source along the slit, kept (no other background)
    profiles_qa = {}  # label -> row-profile summary
    source_rows = {}  # position -> rows masked in a flagged, kept slitlet
    # With a spatial model, each slitlet's level relative to the master (and
    # the factor fitted there) scales the master wherever it meets the slit.
    positions = None
    if options.spatial_model != "none":
        positions = np.array([slit_position(slit) for slit in slits], dtype=float)
    factors = np.ones(len(slits))
    accepted = np.ones(len(slits), dtype=bool)
    rejected_pixels = {label: 0 for label in labels}
    # Pixel rejection iterates; finding an undeclared source costs one more round.
    max_iterations = (options.pixel_maxiters if options.reject_pixels else 1) + 1
    for iteration in range(1, max_iterations + 1):
        if options.bkg_method == "extract_1d":
            if bkg_x1d is not None:
                bkg_x1d.close()
            spec_wave, spec_flux, spec_var, bkg_x1d = extract_1d_spectra(
                step, cal_model, selection_.indices, masks
            )
            if options.combine_method == "jwst":
                master = jwst_combination(bkg_x1d, options)
                master.bkg_x1d = bkg_x1d
                master.qa.update(qa)
                return master
            flux, var = grid.resample_spectra(spec_wave, spec_flux, spec_var, grid_wave)
            sum_var = var
        else:
            flux, var, sum_var = bin_slits(arrays, masks, grid_wave, sum_variance=True)

        if positions is None:
            accepted, vet_qa = vet_background_spectra(flux, var, labels, options, spatial_rejects,
                                                      grid_wave)
            master = combine_master(grid_wave, flux[accepted], var[accepted], options)
            master.spectra = (grid_wave, flux[accepted], var[accepted])
        else:
            master, accepted, vet_qa, ratios = fit_spatial_master(
                grid_wave, flux, var, positions, labels, options, spatial_rejects, accepted,
                previous=master, level_var=sum_var,
            )
            factors, _ = master.spatial_factors(positions, master.wavelength)
        master.qa.update(qa)
        # The range the slitlets that made the master cover, not the ones rejected.
        master.input_range = _coverage(waves, accepted) or input_range
        master.interpolation = interpolation
        master.qa["input_range_um"] = list(master.input_range)
        master.qa["vetting"] = vet_qa
        master.qa["iterations"] = iteration
        master.qa["rejected_pixels"] = rejected_pixels
        master.bkg_x1d = bkg_x1d
        if iteration == max_iterations:
            break

        changed = 0
        if options.vet_spectra and accepted.any():
            # Calibrated sky is flat along the slit: this needs no other slitlet.
            found, summary = undeclared_sources(arrays, masks, master, accepted, options,
                                                 factors)
            profiles_qa.update({labels[k]: v for k, v in summary.items()})
            if found and accepted.sum() - len(found) < 1:
                # Nothing clean would be left to make the master: flag, keep, and
                # leave out the rows that hold the source (and their neighbours).
                for k, reason in found.items():
                    profile_flags.setdefault(labels[k], reason)
                    grown = grow_source_rows(summary[k]["flagged_rows"], arrays[k][3],
                                         source_rows.get(k))
                    if grown is not None:
                        source_rows[k] = grown
                        changed += 1
                found = {}
            for k, reason in found.items():
                log.warning("Rejected background slitlet %s: %s", labels[k], reason)
            spatial_rejects.update(found)
            changed += len(found)
        if options.reject_pixels:
            new_masks = [
                _pixel_outliers(a, master, options, f)
                for a, f in zip(arrays, factors, strict=True)
            ]
            changed += sum(
                int((new != old).sum()) for new, old in zip(new_masks, masks, strict=True)
            )
            masks = new_masks
            rejected_pixels = {
                label: int(m.sum()) for label, m in zip(labels, masks, strict=True)
            }
        for k, rows in source_rows.items():
            masks[k] = masks[k] | rows[:, None]
        if changed == 0:
            break

    # Only where the master models the data is a pixel far from it an outlier:
    # in a slitlet rejected as a whole (an undeclared source) it may be the source,
    # and the rows masked in a kept slitlet for its source are not bad pixels.
    pixel_masks = [
        m & ~source_rows[k][:, None] if k in source_rows else m for k, m in enumerate(masks)
    ]
    master.rejected_masks = {
        selection_.indices[k]: mask for k, mask in enumerate(pixel_masks) if mask.any()
    }
    master.flag_masks = {
        selection_.indices[k]: pixel_masks[k]
        for k in np.flatnonzero(accepted)
        if pixel_masks[k].any()
    }
    if source_rows:
        master.qa.setdefault("vetting", {})["masked_rows"] = {
            labels[k]: np.flatnonzero(rows).tolist() for k, rows in source_rows.items()
        }
    report_vetting(master.qa, profiles_qa, profile_flags)
    if positions is not None:
        master.qa["spatial_model"] = spatial_record(
            master, positions, labels, ratios, accepted, options
        )
    if accepted.sum() >= 2:
        # The leave-one-out masters share the full master's grid and spectra: its
        # smoothing's variance factor (the noise its neighbouring samples share).
        factor = master.qa.get("master_smoothing", {}).get("variance_factor")
        for k in np.flatnonzero(accepted):
            others = accepted.copy()
            others[k] = False
            if positions is None:
                loo = combine_master(grid_wave, flux[others], var[others], options,
                                     variance_factor=factor)
            else:
                loo = leave_one_out_spatial(grid_wave, flux, var, positions, ratios, others,
                                             options, master.spatial, master.spatial_chromatic,
                                             variance_factor=factor)
            # Without slitlet k the master may stop short of its range: where the
            # others do not reach, subtract_master uses the full master, not the nearest value.
            loo.input_range = _coverage(waves, others)
            loo.interpolation = interpolation
            master.leave_one_out[selection_.indices[k]] = loo
        master.qa["leave_one_out"] = True
    master.qa["regime"] = _regime(master, options, int(accepted.sum()))
    return master


def _coverage(waves, use):
    """
    Wavelength range (micron) of the valid pixels of the slitlets in ``use``.

    Parameters
    ----------
    waves : list of ndarray
        Per background slitlet, the wavelengths of its valid pixels.
    use : ndarray of bool
        Which slitlets count.

    Returns
    -------
    tuple of float or None
        (lowest, highest) wavelength; None if those slitlets have no valid pixel.
    """
    chosen = [w for w, u in zip(waves, use, strict=True) if u and w.size]
    if not chosen:
        return None
    return float(min(w.min() for w in chosen)), float(max(w.max() for w in chosen))


def _regime(master, options, n_accepted):
    """Which regime applied, in one place of the QA record."""
    fit, chrom = master.spatial, master.spatial_chromatic
    regime = {
        "n_background_spectra": n_accepted,
        "spatial_model_requested": options.spatial_model,
        "spatial_model": fit.model if fit is not None else "none",
        "wavelength_dependent": chrom is not None,
        "wavelength_order": chrom.order if chrom is not None else 0,
        "master_variance": master.qa.get("master_variance", {}).get("method", "propagated"),
    }
    log.info(
        "Master background from %d background spectra; spatial model %s%s.",
        n_accepted, regime["spatial_model"],
        f" (order {regime['wavelength_order']} in wavelength)" if chrom is not None else "",
    )
    return regime


def _named_sources(cal_model, selection_, arrays, grid_wave, options):
    """
    Find the ``bkg_slits`` that name MSA source slitlets holding a source.

    The evidence is the slitlet's own row profile and its level against the
    slitlets the MSA file declares as background (never a master made with it).

    Returns
    -------
    dict
        Position in the selection -> reason, for the slitlets to leave out.

    Raises
    ------
    MasterBackgroundError
        If every named slitlet holds a source.
    """
    exp_type = cal_model.meta.exposure.type
    declared = [i for i, slit in enumerate(cal_model.slits) if is_msa_background(slit)]
    named_sources = [
        k for k, i in enumerate(selection_.indices) if not is_msa_background(cal_model.slits[i])
    ]
    if not named_sources:
        return {}
    reference = None
    if declared:
        ref_arrays = [slit_arrays(cal_model.slits[i], exp_type) for i in declared]
        reference, _ = bin_slits(
            ref_arrays, [np.zeros(a[1].shape, dtype=bool) for a in ref_arrays], grid_wave
        )
    found = {}
    for k in named_sources:
        _, sb, var, valid = arrays[k]
        evidence = source_evidence.row_profile_evidence(sb, var, valid,
                                                        threshold=max(options.vet_threshold, 5))
        if not evidence.has_source and reference is not None:
            flux, _ = bin_slits([arrays[k]], [np.zeros(sb.shape, dtype=bool)], grid_wave)
            evidence = source_evidence.level_excess(flux[0], reference)
        label = selection_.labels[k]
        if evidence.has_source:
            found[k] = (
                f"named in bkg_slits but a source slitlet in the MSA file, and {evidence.reason}"
            )
            log.warning("Rejected background slitlet %s: %s. Remove it from bkg_slits.",
                        label, found[k])
        else:
            log.info("bkg_slits: %s is a source slitlet in the MSA file but shows no source; "
                     "used as background.", label)
    if len(found) == len(selection_.indices):
        raise MasterBackgroundError(
            "Every slitlet named in bkg_slits is a source slitlet in the MSA file and holds a "
            "source (see the warnings above); subtracting them would over-subtract the "
            "background. Name background slitlets in bkg_slits, or leave it unset to use the "
            "MSA file's."
        )
    return found


def _pixel_outliers(arrays, master, options, factor=1.0):
    wave, sb, var, valid = arrays
    model, model_var = expand.expand_to_2d(
        wave, master.wavelength, master.surf_bright * factor, master.var * factor**2, edge="nan",
        interpolation=master.interpolation,
    )
    return outliers.find_pixel_outliers(
        sb, var, model, model_var, sigma=options.pixel_sigma, dq_mask=~valid
    )
