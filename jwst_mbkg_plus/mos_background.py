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

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from jwst_mbkg_plus.adapters import (
    DO_NOT_USE,
    is_msa_background,
    select_background_slits,
    slit_label,
    slit_variance,
)
from jwst_mbkg_plus.algorithms import (
    binning,
    chromatic,
    combine,
    errors,
    excess,
    expand,
    grid,
    local_scale,
    outliers,
    profiles,
    pulls,
    selection,
    source_evidence,
    spatial,
)
from jwst_mbkg_plus.algorithms.smoothing import median_filter_nan
from jwst_mbkg_plus.msa_position import slit_position, source_distance
from jwst_mbkg_plus.products import masterbg1d_model
from jwst_mbkg_plus.safe_io import atomic_output

__all__ = [
    "REJECTED_DQ",
    "MasterBackground",
    "MasterBackgroundError",
    "MasterOptions",
    "master_from_slits",
    "master_from_user",
    "plain_record",
    "residual_qa",
    "subtract_master",
    "write_qa",
]

log = logging.getLogger(__name__)

#: DQ bits set on the background-slitlet pixels rejected by ``reject_pixels``
#: (``flag_rejected``): OUTLIER, as jwst's outlier_detection sets, and
#: DO_NOT_USE, so that resample_spec and extract_1d leave them out.
REJECTED_DQ = dqflags.pixel["OUTLIER"] | dqflags.pixel["DO_NOT_USE"]
#: Native-step ratio (largest / smallest) above which the master's grid follows
#: the local dispersion (the prism: 4.7x; the gratings: < 1.3x).
DISPERSION_VARIES = 1.5
#: Grid samples per native pixel where the dispersion varies: He I 1.083 micron
#: is only ~2 prism pixels wide, and bins of one pixel smooth it by ~1%.
VARYING_DISPERSION_OVERSAMPLE = 2


class MasterBackgroundError(RuntimeError):
    """No usable master background could be made from the inputs."""


@dataclass(frozen=True)
class MasterOptions:
    """The step parameters the engine uses, read once (never written back)."""

    bkg_slits: tuple = ()
    exclude_slits: tuple = ()
    bkg_method: str = "full_slitlet"
    combine_method: str = "clipped_mean"
    sigma_clip: float | None = 3.0
    min_spectra: int = 2
    median_kernel: int = 1
    vet_spectra: bool = True
    vet_threshold: float = 5.0
    reject_pixels: bool = True
    pixel_sigma: float = 5.0
    pixel_maxiters: int = 3
    flag_rejected: bool = True
    propagate_errors: bool = True
    error_extraction_height: int | None = None
    outside_range: str = "flag"
    spatial_model: str = "auto"
    slit_scale: bool = False
    slit_scale_guard: float = 1.0

    @classmethod
    def from_step(cls, step):
        """
        Read the options from a step's parameters.

        Parameters
        ----------
        step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
            The step.

        Returns
        -------
        MasterOptions
            The options.
        """
        kernel = step.median_kernel or 1
        if kernel > 1 and kernel % 2 == 0:
            log.info("Even median_kernel %d rounded down to %d, as jwst does.", kernel, kernel - 1)
            kernel -= 1
        spatial_model = step.spatial_model
        if step.combine_method == "jwst" and spatial_model == "auto":
            # jwst's master has no spatial factor; 'auto' is the default, not a request.
            spatial_model = "none"
        return cls(
            bkg_slits=tuple(step.bkg_slits or ()),
            exclude_slits=tuple(step.exclude_slits or ()),
            bkg_method=step.bkg_method,
            combine_method=step.combine_method,
            sigma_clip=step.sigma_clip,
            min_spectra=step.min_spectra,
            median_kernel=kernel,
            vet_spectra=step.vet_spectra,
            vet_threshold=step.vet_threshold,
            reject_pixels=step.reject_pixels,
            pixel_sigma=step.pixel_sigma,
            pixel_maxiters=step.pixel_maxiters,
            flag_rejected=step.flag_rejected,
            propagate_errors=step.propagate_errors,
            error_extraction_height=step.error_extraction_height,
            outside_range=step.outside_range,
            spatial_model=spatial_model,
            slit_scale=step.slit_scale,
            slit_scale_guard=step.slit_scale_guard,
        )


@dataclass
class MasterBackground:
    """
    A 1-D master background with its provenance.

    Attributes
    ----------
    wavelength : ndarray
        Micron, strictly increasing.
    surf_bright : ndarray
        MJy/sr.
    var : ndarray
        Variance of ``surf_bright``, (MJy/sr)**2; zeros if unknown.
    n_input : ndarray
        Background spectra contributing at each wavelength.
    bkg_x1d : `~stdatamodels.jwst.datamodels.MultiSpecModel` or None
        The extracted background spectra (``bkg_method='extract_1d'``).
    qa : dict
        QA record: selection, vetting, clipping and residual statistics.
    input_range : tuple of float or None
        Wavelength range (micron) the inputs cover; pixels inside it always get
        a background, the master's end values where it stops a fraction of a
        sample short. None: the master's own range.
    leave_one_out : dict
        For each background slit (index into the model's slits) that went into
        the master, the master made without it: subtracted from that slit, so
        its residuals are an independent check of the background.
    spatial : `~jwst_mbkg_plus.algorithms.spatial.SpatialFit` or None
        The spatial factor across the MSA the master is multiplied by
        (``spatial_model``); None: the same background everywhere.
    spatial_chromatic : `~jwst_mbkg_plus.algorithms.chromatic.ChromaticSpatialFit` or None
        The wavelength dependence of that factor, where the background
        slitlets' levels show one; None: the factor is grey.
    rejected_masks : dict
        For each background slit (index into the model's slits) with pixels
        rejected by ``reject_pixels``, the boolean mask of those pixels (the
        final round's, that the master was made without).
    flag_masks : dict
        The subset of ``rejected_masks`` to flag in the output DQ
        (``flag_rejected``): the slitlets that went into the master.
    interpolation : str
        How the master is expanded to pixels: ``"linear"``, or ``"cubic"``
        where its grid follows a varying dispersion (the prism).
    """

    wavelength: np.ndarray
    surf_bright: np.ndarray
    var: np.ndarray
    n_input: np.ndarray
    bkg_x1d: object = None
    qa: dict = field(default_factory=dict)
    input_range: tuple | None = None
    leave_one_out: dict = field(default_factory=dict)
    spatial: object = None
    spatial_chromatic: object = None
    rejected_masks: dict = field(default_factory=dict)
    flag_masks: dict = field(default_factory=dict)
    interpolation: str = "linear"

    def spatial_factors(self, positions, wavelength):
        """
        The spatial factor and its error at some MSA positions and wavelengths.

        Parameters
        ----------
        positions : array_like, shape (n, 3)
            MSA x, y and quadrant of each slit.
        wavelength : array_like, shape (m,)
            Wavelengths (micron).

        Returns
        -------
        factor, error : ndarray, shape (n, m)
            1 and 0 without a spatial fit (or where the fit is not usable).
        """
        return _spatial_factors(self.spatial, self.spatial_chromatic, positions, wavelength)

    @property
    def covered_range(self):
        """Wavelength range (micron) in which every pixel gets a background."""
        if self.input_range is not None:
            return self.input_range
        return float(self.wavelength[0]), float(self.wavelength[-1])

    def to_model(self, template=None):
        """
        Return the ``masterbg1d`` product.

        Parameters
        ----------
        template : `~stdatamodels.jwst.datamodels.JwstDataModel`, optional
            Model whose primary metadata the product copies.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.MultiCombinedSpecModel`
            The product.
        """
        return masterbg1d_model(
            self.wavelength,
            self.surf_bright,
            np.sqrt(self.var),
            self.n_input,
            template=template,
        )


# --------------------------------------------------------------------------- inputs


def _slit_arrays(slit, exp_type):
    """Wavelength, surface brightness, variance and validity of one calibrated slit."""
    from jwst.lib.wcs_utils import get_wavelengths

    wave = np.asarray(get_wavelengths(slit, exp_type), dtype=np.float64)
    sb = slit.data.astype(np.float64)
    var = slit_variance(slit)
    valid = (
        np.isfinite(wave)
        & np.isfinite(sb)
        & np.isfinite(var)
        & (var > 0)
        & ((slit.dq & DO_NOT_USE) == 0)
    )
    return wave, sb, var, valid


def _wavelength_range(model):
    from jwst.lib.wcs_utils import get_wavelengths

    lo, hi = np.inf, -np.inf
    for slit in model.slits:
        wave = get_wavelengths(slit, model.meta.exposure.type)
        if wave is not None and np.isfinite(wave).any():
            lo = min(lo, float(np.nanmin(wave)))
            hi = max(hi, float(np.nanmax(wave)))
    return (lo, hi) if np.isfinite(lo) else None


def master_from_user(path, cal_model, options):
    """
    Read a user-supplied master background.

    Parameters
    ----------
    path : str
        File in any format `~jwst_mbkg_plus.user_background.read_user_background`
        accepts.
    cal_model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        Calibrated slits, for the wavelength-coverage check.
    options : MasterOptions
        Step options (only ``median_kernel`` applies).

    Returns
    -------
    MasterBackground
        The master background.
    """
    from jwst_mbkg_plus.user_background import UserBackgroundError, read_user_background

    try:
        user = read_user_background(path, science_wavelength_range=_wavelength_range(cal_model))
    except UserBackgroundError as err:
        raise MasterBackgroundError(str(err)) from err
    if options.spatial_model not in ("none", "auto"):
        log.warning(
            "spatial_model=%r is fitted to background slitlets and is not applied to a "
            "user_background; slit_scale still rescales point-source slitlets.",
            options.spatial_model,
        )
    var = user.sb_error**2 if user.sb_error is not None else np.zeros_like(user.surf_bright)
    sb, var = _smooth(user.surf_bright, var, options.median_kernel)
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
        n_input=np.ones_like(sb),
        qa=qa,
        input_range=(float(user.wavelength[0]), float(user.wavelength[-1])),
    )


def _smooth(sb, var, kernel):
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
    arrays = [_slit_arrays(slit, exp_type) for slit in slits]
    waves = [a[0][a[3]] for a in arrays]
    if not any(w.size for w in waves):
        raise MasterBackgroundError(
            "The background slitlets have no valid calibrated pixel (all NaN or DO_NOT_USE): "
            "name other slitlets with bkg_slits, or supply user_background."
        )
    input_range = (
        float(min(w.min() for w in waves if w.size)),
        float(max(w.max() for w in waves if w.size)),
    )

    # One wavelength per detector column and slit sets the native sampling.
    columns = [_column_wavelengths(a[0], a[3]) for a in arrays]
    grid_qa = _grid_policy(columns)
    grid_wave = grid.common_wavelength_grid(
        columns, sampling=grid_qa["sampling"], oversample=grid_qa["oversample"]
    )
    interpolation = grid_qa["interpolation"]
    grid_qa["n_samples"] = int(grid_wave.size)
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
            spec_wave, spec_flux, spec_var, bkg_x1d = _extract_1d_spectra(
                step, cal_model, selection_.indices, masks
            )
            if options.combine_method == "jwst":
                master = _jwst_combination(bkg_x1d, options)
                master.bkg_x1d = bkg_x1d
                master.qa.update(qa)
                return master
            flux, var = grid.resample_spectra(spec_wave, spec_flux, spec_var, grid_wave)
        else:
            flux, var = _bin_slits(arrays, masks, grid_wave, options)

        if positions is None:
            accepted, vet_qa = _vet(flux, var, labels, options, spatial_rejects, grid_wave)
            master = _combine(grid_wave, flux[accepted], var[accepted], options)
        else:
            master, accepted, vet_qa, ratios = _spatial_master(
                grid_wave, flux, var, positions, labels, options, spatial_rejects, accepted,
                previous=master,
            )
            factors, _ = master.spatial_factors(positions, master.wavelength)
        master.qa.update(qa)
        master.input_range = input_range
        master.interpolation = interpolation
        master.qa["input_range_um"] = list(input_range)
        master.qa["vetting"] = vet_qa
        master.qa["iterations"] = iteration
        master.qa["rejected_pixels"] = rejected_pixels
        master.bkg_x1d = bkg_x1d
        if iteration == max_iterations:
            break

        changed = 0
        if options.vet_spectra and accepted.any():
            # Calibrated sky is flat along the slit: this needs no other slitlet.
            found, summary = _undeclared_sources(arrays, masks, master, accepted, options,
                                                 factors)
            profiles_qa.update({labels[k]: v for k, v in summary.items()})
            if found and accepted.sum() - len(found) < 1:
                # Nothing clean would be left to make the master: flag, keep, and
                # leave out the rows that hold the source (and their neighbours).
                for k, reason in found.items():
                    profile_flags.setdefault(labels[k], reason)
                    grown = _source_rows(summary[k]["flagged_rows"], arrays[k][3],
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
    _report_vetting(master.qa, profiles_qa, profile_flags)
    if positions is not None:
        master.qa["spatial_model"] = _spatial_record(
            master, positions, labels, ratios, accepted, options
        )
    if accepted.sum() >= 2:
        for k in np.flatnonzero(accepted):
            others = accepted.copy()
            others[k] = False
            if positions is None:
                loo = _combine(grid_wave, flux[others], var[others], options)
            else:
                loo = _leave_one_out_spatial(grid_wave, flux, var, positions, ratios, others,
                                             options, master.spatial, master.spatial_chromatic)
            loo.input_range = input_range
            loo.interpolation = interpolation
            master.leave_one_out[selection_.indices[k]] = loo
        master.qa["leave_one_out"] = True
    master.qa["regime"] = _regime(master, options, int(accepted.sum()))
    return master


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
        ref_arrays = [_slit_arrays(cal_model.slits[i], exp_type) for i in declared]
        reference, _ = _bin_slits(
            ref_arrays, [np.zeros(a[1].shape, dtype=bool) for a in ref_arrays], grid_wave, options
        )
    found = {}
    for k in named_sources:
        _, sb, var, valid = arrays[k]
        evidence = source_evidence.row_profile_evidence(sb, var, valid,
                                                        threshold=max(options.vet_threshold, 5))
        if not evidence.has_source and reference is not None:
            flux, _ = _bin_slits([arrays[k]], [np.zeros(sb.shape, dtype=bool)], grid_wave,
                                 options)
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


def _spatial_master(grid_wave, flux, var, positions, labels, options, profile_rejects,
                    candidates, previous=None):
    """
    Master and spatial factor, fitted in turn.

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
    use = candidates.copy()
    use[list(profile_rejects)] = False
    for _ in range(rounds):
        ratio, error = spatial.level_ratios(flux, var, reference)
        fit = spatial.fit_spatial_factor(
            positions[use, 0], positions[use, 1], positions[use, 2], ratio[use], error[use],
            model=options.spatial_model,
        )
        bands = chromatic.band_levels(grid_wave, flux, var, reference)
        chrom = _chromatic_fit(fit, positions, use, bands, grid_wave)
        factors, _ = _spatial_factors(fit, chrom, positions, grid_wave)
        scaled, scaled_var = flux / factors, var / factors**2
        accepted, vet_qa = _vet(scaled, scaled_var, labels, options, profile_rejects,
                                grid_wave)
        master = _combine(grid_wave, scaled[accepted], scaled_var[accepted], options)
        master.spatial = fit
        master.spatial_chromatic = chrom
        reference = np.interp(grid_wave, master.wavelength, master.surf_bright,
                              left=np.nan, right=np.nan)
        use = accepted.copy()
    ratio, error = spatial.level_ratios(flux, var, reference)
    bands = chromatic.band_levels(grid_wave, flux, var, reference)
    return master, accepted, vet_qa, (ratio, error, *bands)


def _chromatic_fit(fit, positions, use, bands, grid_wave, order=None):
    """The wavelength dependence of ``fit`` (fitted to the ``use`` slitlets), or None."""
    band_wave, band_ratio, band_error = bands
    return chromatic.fit_chromatic_factor(
        fit, positions[use, 0], positions[use, 1], positions[use, 2], band_wave,
        band_ratio[use], band_error[use], order=order,
        wave_range=(float(np.nanmin(grid_wave)), float(np.nanmax(grid_wave))),
    )


def _spatial_factors(fit, chrom, positions, wavelength):
    """Factor and error, shape (n_positions, n_wavelengths); 1 and 0 where unusable."""
    positions = np.atleast_2d(np.asarray(positions, dtype=float))
    m = np.size(wavelength)
    if chrom is not None:
        factor, error = chrom.predict(
            positions[:, 0], positions[:, 1], positions[:, 2].astype(int), wavelength
        )
    elif fit is not None:
        f, e = fit.predict(positions[:, 0], positions[:, 1], positions[:, 2])
        factor, error = np.repeat(f[:, None], m, axis=1), np.repeat(e[:, None], m, axis=1)
    else:
        return np.ones((len(positions), m)), np.zeros((len(positions), m))
    good = np.isfinite(factor) & (factor > 0) & np.isfinite(error)
    return np.where(good, factor, 1.0), np.where(good, error, 0.0)


def _leave_one_out_spatial(grid_wave, flux, var, positions, ratios, others, options, full,
                           full_chromatic=None):
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
    factors, _ = _spatial_factors(fit, chrom, positions, grid_wave)
    factors = factors[others]
    loo = _combine(grid_wave, flux[others] / factors, var[others] / factors**2, options)
    loo.spatial = fit
    loo.spatial_chromatic = chrom
    return loo


def _spatial_record(master, positions, labels, ratios, accepted, options):
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


def _column_wavelengths(wave, valid):
    """Median wavelength of the valid pixels of each column, sorted."""
    with np.errstate(invalid="ignore"):
        masked = np.where(valid, wave, np.nan)
    counts = valid.sum(axis=0)
    columns = np.full(wave.shape[1], np.nan)
    has = counts > 0
    if has.any():
        columns[has] = np.nanmedian(masked[:, has], axis=0)
    return np.sort(columns[np.isfinite(columns)])


def _grid_policy(columns):
    """How the master is sampled and expanded, from the native sampling of the columns.

    Where the dispersion varies across the band (the prism), the grid follows
    the local native step with `VARYING_DISPERSION_OVERSAMPLE` samples per
    pixel and the master is interpolated with a cubic spline, so a line ~2
    pixels wide keeps the accuracy of the continuum. Elsewhere a uniform grid
    at the median native step and linear interpolation, as before.
    """
    ratio = grid.native_step_ratio(columns)
    if np.isfinite(ratio) and ratio > DISPERSION_VARIES:
        log.info(
            "Native sampling varies %.1fx across the band: the master's grid follows the "
            "local dispersion (%d samples per pixel), expanded with a cubic spline.",
            ratio,
            VARYING_DISPERSION_OVERSAMPLE,
        )
        return {"sampling": "native", "oversample": VARYING_DISPERSION_OVERSAMPLE,
                "interpolation": "cubic", "native_step_ratio": float(ratio)}
    return {"sampling": "linear", "oversample": 1, "interpolation": "linear",
            "native_step_ratio": float(ratio)}


def _bin_slits(arrays, masks, grid_wave, options):
    """One 1-D spectrum per slitlet from all of its valid, unmasked pixels."""
    edges = grid.grid_edges(grid_wave)
    flux = np.full((len(arrays), grid_wave.size), np.nan)
    var = np.full_like(flux, np.nan)
    for k, ((wave, sb, pix_var, valid), mask) in enumerate(zip(arrays, masks, strict=True)):
        use = valid & ~mask
        if not use.any():
            continue
        # 4 sigma: a 3-sigma clip of photon-counting noise (skewed) biases low
        # by ~0.1 % (algorithms.binning); outliers go in the pixel rejection.
        binned = binning.bin_pixels(
            wave[use], sb[use], pix_var[use], edges, method="clipped_mean", sigma=4.0
        )
        # A bin's value belongs at the mean wavelength of its pixels, which sits
        # off the bin centre by a slit-dependent phase: resample from there.
        keep = np.isfinite(binned.flux) & np.isfinite(binned.wavelength)
        w, f, v = binned.wavelength[keep], binned.flux[keep], binned.var[keep]
        increasing = np.concatenate([[True], np.diff(w) > 0])
        if increasing.sum() < 2:
            continue
        flux[k], var[k] = grid.resample_spectrum(
            w[increasing], f[increasing], v[increasing], grid_wave
        )

    return flux, var


_WHAT_TO_DO = (
    "If one of them holds a source, exclude it (exclude_slits), choose other background "
    "slitlets (bkg_slits) or supply a user_background."
)


def _vet(flux, var, labels, options, profile_rejects, wavelength=None):
    """
    Vet the background spectra not already rejected for a source along the slit.

    Three or more: against the leave-one-out consensus
    (`~jwst_mbkg_plus.algorithms.selection.vet_spectra`). Two: against each
    other, by the sign and significance of their difference and the shape of
    the excess (`~jwst_mbkg_plus.algorithms.excess.compare_pair`). One: its
    row profile is its only test.
    """
    n = flux.shape[0]
    keep = np.ones(n, dtype=bool)
    keep[list(profile_rejects)] = False
    rejected = {labels[k]: reason for k, reason in profile_rejects.items()}
    if not options.vet_spectra:
        return keep, {"applied": False, "rejected": rejected}
    idx = np.flatnonzero(keep)
    if idx.size < 2:
        return keep, {
            "applied": True,
            "method": "row profile only",
            "reason": "one background spectrum: nothing to compare it with",
            "rejected": rejected,
        }
    if idx.size == 2:
        verdict = excess.compare_pair(
            flux[idx], var[idx], wavelength=wavelength, threshold=options.vet_threshold
        )
        names = [labels[k] for k in idx]
        accepted = keep.copy()
        if verdict.contaminated is not None:
            bad = idx[verdict.contaminated]
            accepted[bad] = False
            rejected[labels[bad]] = (
                f"rejected: additive excess of {100 * abs(verdict.excess.excess):.1f}% "
                f"({abs(verdict.excess.score):.1f} sigma) with a spectral shape unlike "
                f"{names[1 - verdict.contaminated]}'s"
            )
        return accepted, {
            "applied": True,
            "method": "pair",
            "threshold": options.vet_threshold,
            "pair": verdict.to_record(names),
            "rejected": rejected,
        }
    result = selection.vet_spectra(
        flux[idx], var[idx], threshold=options.vet_threshold, wavelength=wavelength
    )
    accepted = np.zeros(n, dtype=bool)
    accepted[idx] = result.accepted
    scores, excess_scores = {}, {}
    for j, k in enumerate(idx):
        scores[labels[k]] = float(result.score[j])
        excess_scores[labels[k]] = float(result.excess_score[j])
        if not result.accepted[j]:
            rejected[labels[k]] = result.reasons[j]
            log.warning("Rejected background slitlet %s: %s", labels[k], result.reasons[j])
    if not accepted.any():
        raise MasterBackgroundError(
            "Vetting rejected every background spectrum; check the background slitlets "
            "or set vet_spectra=False."
        )
    return accepted, {
        "applied": True,
        "method": "consensus",
        "threshold": options.vet_threshold,
        "scores": scores,
        "excess_scores": excess_scores,
        "rejected": rejected,
    }


def _report_vetting(qa, profiles_qa, profile_flags):
    """Add the row profiles to the vetting record; log what could not be decided."""
    vet = qa.setdefault("vetting", {})
    if profiles_qa:
        vet["profiles"] = profiles_qa
    if profile_flags:
        vet["flagged"] = dict(profile_flags)
        masked = vet.get("masked_rows", {})
        for label, reason in profile_flags.items():
            rows = masked.get(label)
            how = (f"without its rows {min(rows)}-{max(rows)}, which hold the source"
                   if rows else "as it is")
            log.warning(
                "Background slitlet %s shows a source along the slit (%s), but no clean "
                "background slitlet is left to replace it, so it is used %s. Exclude it "
                "(exclude_slits), choose other background slitlets (bkg_slits) or supply a "
                "user_background.", label, reason, how,
            )
    pair = vet.get("pair")
    if pair is None:
        return
    if pair["verdict"] == "contaminated":
        log.warning("Rejected background slitlet %s: %s", pair["contaminated"],
                    vet["rejected"].get(pair["contaminated"], pair["message"]))
    elif pair["verdict"] == "undecided":
        log.warning(
            "The two background slitlets differ: %s is brighter by %.1f%% (%.0f sigma), "
            "and neither their spectra nor their profiles say which is contaminated; both "
            "are used. %s", pair["brighter"], 100 * (pair["level_difference"] or 0),
            pair["level_score"] or 0, _WHAT_TO_DO,
        )
    else:
        log.info("The two background slitlets agree: %s", pair["message"])


def _source_rows(flagged, valid, previous, margin=1, min_kept=0.25):
    """
    Rows to leave out of a kept slitlet that shows a source: the flagged ones and
    ``margin`` rows around them, added to ``previous``.

    Returns None if nothing new would be masked, or if fewer than ``min_kept`` of
    the slitlet's rows with data would remain.
    """
    n_rows = valid.shape[0]
    rows = np.zeros(n_rows, dtype=bool) if previous is None else previous.copy()
    for r in flagged:
        rows[max(r - margin, 0):r + margin + 1] = True
    if previous is not None and np.array_equal(rows, previous):
        return None
    has_data = valid.any(axis=1)
    if (has_data & ~rows).sum() < min_kept * has_data.sum():
        return None
    return rows


def _undeclared_sources(arrays, masks, master, accepted, options, factors):
    """
    Accepted slits whose row profile shows a source.

    Returns
    -------
    found : dict
        Position in the selection -> reason, for the slits with a source.
    summary : dict
        Position -> largest row deviation from a flat profile and its
        significance, for every accepted slit.
    """
    found, summary = {}, {}
    for k in np.flatnonzero(accepted):
        wave, sb, var, valid = arrays[k]
        model, _ = expand.expand_to_2d(
            wave, master.wavelength, master.surf_bright * factors[k], edge="nan",
            interpolation=master.interpolation,
        )
        result = profiles.row_profile(sb, var, model, valid & ~masks[k])
        rows = profiles.find_profile_outliers(result, threshold=options.vet_threshold)
        finite = np.isfinite(result.deviation) & np.isfinite(result.sigma)
        if finite.sum() >= 3:
            centred = result.deviation - np.median(result.deviation[finite])
            pull = np.where(finite, centred / result.sigma, 0.0)
            top = int(np.argmax(np.abs(pull)))
            summary[k] = {
                "max_row_deviation": float(centred[top]),
                "max_row_score": float(pull[top]),
                "rows_flagged": int(rows.sum()),
                "flagged_rows": np.flatnonzero(rows).tolist(),
            }
        if rows.any():
            where = np.flatnonzero(rows)
            peak = where[np.nanargmax(np.abs(result.deviation[where]))]
            found[k] = (
                f"undeclared source along the slit: rows {where.min()}-{where.max()} deviate "
                f"from the master by up to {100 * result.deviation[peak]:+.1f}%"
            )
    return found, summary


def _combine(grid_wave, flux, var, options):
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
    sb, sb_var = _smooth(sb, sb_var, options.median_kernel)
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


def _pixel_outliers(arrays, master, options, factor=1.0):
    wave, sb, var, valid = arrays
    model, model_var = expand.expand_to_2d(
        wave, master.wavelength, master.surf_bright * factor, master.var * factor**2, edge="nan",
        interpolation=master.interpolation,
    )
    return outliers.find_pixel_outliers(
        sb, var, model, model_var, sigma=options.pixel_sigma, dq_mask=~valid
    )


def _extract_1d_spectra(step, cal_model, indices, masks):
    """Run jwst's pixel_replace, resample_spec and extract_1d on the background slits."""
    bkg_model = datamodels.MultiSlitModel()
    bkg_model.update(cal_model)
    for i, mask in zip(indices, masks, strict=True):
        # pixel_replace works in place: hand it copies of the calibrated slits.
        bkg_model.slits.append(copy.deepcopy(cal_model.slits[i].instance))
        slit = bkg_model.slits[-1]
        if mask.any():
            slit.data[mask] = np.nan
            slit.dq[mask] |= DO_NOT_USE
    bkg_model = step.pixel_replace.run(bkg_model)
    bkg_model = step.resample_spec.run(bkg_model)
    x1d = step.extract_1d.run(bkg_model)
    waves, fluxes, variances = [], [], []
    for spec in x1d.spec:
        table = spec.spec_table
        wave = np.asarray(table["WAVELENGTH"], dtype=float)
        sb = np.asarray(table["SURF_BRIGHT"], dtype=float)
        err = np.asarray(table["SB_ERROR"], dtype=float)
        order = np.argsort(wave)
        waves.append(wave[order])
        fluxes.append(sb[order])
        variances.append(err[order] ** 2)
    return waves, fluxes, variances, x1d


def _jwst_combination(bkg_x1d, options):
    """jwst's own combine_1d + medfilt, for jwst-equivalent runs."""
    from jwst.master_background.nirspec_utils import create_background_from_multispec

    combined = create_background_from_multispec(
        bkg_x1d, sigma_clip=options.sigma_clip, median_kernel=options.median_kernel
    )
    table = combined.spec[0].spec_table
    wave = np.asarray(table["WAVELENGTH"], dtype=float)
    order = np.argsort(wave)
    sb = np.asarray(table["SURF_BRIGHT"], dtype=float)[order]
    err = np.asarray(table["SB_ERROR"], dtype=float)[order]
    n_input = np.asarray(table["N_INPUT"], dtype=float)[order]
    combined.close()
    return MasterBackground(
        wavelength=wave[order],
        surf_bright=sb,
        var=np.where(np.isfinite(err), err**2, 0.0),
        n_input=n_input,
        qa={"combine": "jwst combine_1d"},
    )


# --------------------------------------------------------------------------- subtraction


def subtract_master(output_model, forward, master, options, uncalibrated=None):
    """
    Expand the master to every slit, un-calibrate it and subtract it.

    With ``options.flag_rejected``, the pixels of ``master.flag_masks`` (those
    ``reject_pixels`` left out of the master, in the slitlets that went into
    it) get `REJECTED_DQ` in the output DQ; the count goes into the QA record
    (``flagged_pixels``).

    Parameters
    ----------
    output_model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        Uncalibrated slits; updated in place (the step hands it a copy when it
        runs standalone) and returned.
    forward : `~jwst_mbkg_plus.calibration_pass.ForwardCalibration`
        Calibrated slits and the per-pixel factors of the forward pass.
    master : MasterBackground
        The master background.
    options : MasterOptions
        Step options.
    uncalibrated : list of tuple, optional
        Per slit, the master already un-calibrated by jwst's inverse steps and
        its DQ (`~jwst_mbkg_plus.calibration_pass.uncalibrate_like_jwst`):
        used instead of the division by the factors inside the covered range,
        and its DQ ORed into the science DQ, as jwst does.

    Returns
    -------
    result : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        ``output_model`` with the background subtracted.
    background_2d : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The subtracted background in the input's units (``masterbg2d``).
    """
    from jwst.lib.wcs_utils import get_wavelengths

    exp_type = output_model.meta.exposure.type
    # Built from valid slits: validated as a whole when saved, not per assignment.
    background_2d = datamodels.MultiSlitModel(validate_on_assignment=False)
    background_2d.update(output_model)
    height = options.error_extraction_height or _typical_height(forward.model)
    master.qa["error_extraction_height"] = int(height)
    applied = {}  # slit label -> spatial factor and local scale used
    flagged = {}  # slit label -> pixels flagged REJECTED_DQ
    for index, (slit, cal_slit, factor) in enumerate(
        zip(output_model.slits, forward.model.slits, forward.factors, strict=True)
    ):
        this = master.leave_one_out.get(index, master)
        low, high = this.covered_range
        wave = np.asarray(get_wavelengths(cal_slit, exp_type), dtype=np.float64)
        # Inside the inputs' range every pixel gets a background (the master's
        # samples may stop a fraction of a sample short of it).
        bkg_cal, bkg_var_cal = expand.expand_to_2d(
            wave, this.wavelength, this.surf_bright, this.var, edge="nearest",
            interpolation=this.interpolation,
        )
        if options.spatial_model != "none" or options.slit_scale:
            bkg_cal, bkg_var_cal, record = _scale_locally(
                cal_slit, wave, bkg_cal, bkg_var_cal, this, index in master.leave_one_out, options
            )
            applied[slit_label(slit)] = record
        outside = ~((wave >= low) & (wave <= high))
        if options.outside_range == "nan":
            bkg_cal[outside] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            bkg = bkg_cal / factor
            bkg_var = bkg_var_cal / factor**2
        bg_slit = _background_slit(slit)
        dq = np.zeros(slit.data.shape, dtype=np.uint32)
        if uncalibrated is not None and this is master:
            # jwst's float32 values: subtracting them in float64 and rounding
            # to float32 gives exactly jwst's float32 subtraction.
            exact, exact_dq = uncalibrated[index]
            bkg = np.where(outside, bkg, exact)
            # jwst's DQ (DO_NOT_USE outside the range), except where 'nearest' subtracts.
            take = ~outside if options.outside_range == "nearest" else slice(None)
            dq[take] = exact_dq[take]
        if options.outside_range == "flag":
            bkg[outside] = 0.0
            bkg_var[outside] = 0.0
        if options.outside_range in ("flag", "nan"):
            dq[outside] |= DO_NOT_USE
        bg_slit.data = bkg.astype(np.float32)
        bg_slit.dq = dq
        bg_slit.err = np.sqrt(np.where(np.isfinite(bkg_var), bkg_var, 0)).astype(np.float32)
        background_2d.slits.append(bg_slit)

        # In place: same values as assigning new arrays, without re-validating them.
        slit.data[...] = slit.data - bkg
        slit.dq |= dq
        rejected = master.flag_masks.get(index) if options.flag_rejected else None
        if rejected is not None:
            slit.dq[rejected] |= REJECTED_DQ
            flagged[slit_label(slit)] = int(rejected.sum())
        if options.propagate_errors:
            bkg_var = np.where(np.isfinite(bkg_var), bkg_var, 0.0)
            pixel_var = slit_variance(slit)
            # The master's error is shared along a column (algorithms.errors, C).
            inflation = errors.balanced_background_inflation(bkg_var, pixel_var, height)
            _add_variance(slit, pixel_var, bkg_var * inflation)
    if applied:
        master.qa["applied_scaling"] = applied
    master.qa["flagged_pixels"] = {
        "applied": bool(options.flag_rejected and options.reject_pixels),
        "dq_value": int(REJECTED_DQ),
        "dq_flags": "OUTLIER, DO_NOT_USE",
        "total": int(sum(flagged.values())),
        "slits": flagged,
    }
    if flagged:
        log.info("Flagged %d background-slitlet pixels rejected by reject_pixels as "
                 "OUTLIER + DO_NOT_USE", sum(flagged.values()))
    return output_model, background_2d


def _scale_locally(cal_slit, wave, bkg, bkg_var, master, is_background, options):
    """
    Multiply a slit's expanded master by its spatial factor and local scale.

    Each factor's error is added to the background's variance (it is shared by
    every pixel of the slit, like the master's own error).

    Returns
    -------
    bkg, bkg_var : ndarray
        The scaled background (calibrated units) and its variance.
    record : dict
        Factor, local scale and their errors, for the QA record.
    """
    record = {}
    if master.spatial is not None:
        position = slit_position(cal_slit)
        factor, error = (v[0] for v in master.spatial.predict(*position))
        if not (np.isfinite(factor) and factor > 0):
            factor, error = 1.0, 0.0
        record.update(
            x=position.x, y=position.y, quadrant=position.quadrant,
            spatial_factor=float(factor), spatial_factor_error=float(error),
        )
        if master.spatial_chromatic is not None:
            # The factor per pixel, at the pixel's wavelength.
            finite = np.isfinite(wave)
            factor = np.ones(wave.shape)
            error = np.zeros(wave.shape)
            f, e = master.spatial_factors([tuple(position)], wave[finite])
            factor[finite], error[finite] = f[0], e[0]
            record["spatial_factor_range"] = [float(f.min()), float(f.max())] if f.size else []
        bkg_var = factor**2 * bkg_var + (bkg * error) ** 2
        bkg = bkg * factor
    if options.slit_scale:
        if is_background or is_msa_background(cal_slit):
            record["slit_scale"] = {"status": "background slitlet (checked, not rescaled)"}
        elif str(getattr(cal_slit, "source_type", "") or "").upper() == "EXTENDED":
            record["slit_scale"] = {"status": "extended source: no source-free rows assumed"}
        else:
            valid = (cal_slit.dq & DO_NOT_USE) == 0
            scale = local_scale.local_scale(
                cal_slit.data, slit_variance(cal_slit), bkg, source_distance(cal_slit), valid,
                guard=options.slit_scale_guard,
            )
            record["slit_scale"] = scale.to_record()
            if scale.applied:
                bkg_var = scale.scale**2 * bkg_var + (bkg * scale.error) ** 2
                bkg = bkg * scale.scale
            else:
                log.info("Slit %s keeps the modelled background level: %s",
                         slit_label(cal_slit), scale.status)
    return bkg, bkg_var, record


_SLIT_ARRAYS = ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat")


def _background_slit(slit):
    """A SlitModel with the slit's attributes and metadata, for ``masterbg2d``."""
    bg = datamodels.SlitModel(validate_on_assignment=False)
    # The WCS object is shared with the slit (read-only), not deep-copied.
    wcs = slit.meta.wcs
    memo = {} if wcs is None else {id(wcs): wcs}
    for key, value in slit.instance.items():
        if key in _SLIT_ARRAYS or (isinstance(value, np.ndarray) and key != "wavelength"):
            continue
        bg.instance[key] = value if isinstance(value, np.ndarray) else copy.deepcopy(value, memo)
    return bg


def _add_variance(slit, pixel_var, extra_var):
    """Add a signal-independent variance to VAR_RNOISE and ERR (``pixel_var``: current total)."""
    total = pixel_var + extra_var
    shape = slit.data.shape
    rnoise = slit.var_rnoise if slit.hasattr("var_rnoise") else None
    if rnoise is None or rnoise.shape != shape:
        rnoise = np.zeros(shape, dtype=np.float32)
    _store(slit, "var_rnoise", (rnoise + extra_var).astype(np.float32))
    _store(slit, "err", np.sqrt(total).astype(np.float32))


def _store(slit, name, values):
    """Write float32 values into a slit's array in place if it has one of that shape."""
    current = getattr(slit, name, None)
    if current is not None and current.shape == values.shape and current.dtype == values.dtype:
        current[...] = values
    else:
        setattr(slit, name, values)


def _typical_height(cal_model):
    """Median number of valid rows per column over all slits."""
    heights = []
    for slit in cal_model.slits:
        valid = np.isfinite(slit.data)
        rows = valid.sum(axis=0)
        rows = rows[rows > 0]
        if rows.size:
            heights.append(np.median(rows))
    return max(1, int(round(float(np.median(heights))))) if heights else 1


# --------------------------------------------------------------------------- QA


def residual_qa(result, forward, master, background_2d):
    """
    Residual statistics of the background slitlets after subtraction.

    Residuals are relative to the subtracted background; pulls divide by the
    propagated ERR (the calibration factor cancels in both). Pulls are taken
    over the pixels the step kept: valid (finite, not DO_NOT_USE before the
    step) and not rejected by ``reject_pixels``, and summarised robustly
    (`~jwst_mbkg_plus.algorithms.pulls.pull_statistics`): a plain standard
    deviation would measure the few hot pixels left in the data, not the
    error model.

    Parameters
    ----------
    result : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The subtracted slits.
    forward : `~jwst_mbkg_plus.calibration_pass.ForwardCalibration`
        The forward pass.
    master : MasterBackground
        The master background.
    background_2d : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The subtracted background.

    Returns
    -------
    dict
        ``residuals``: per background slit label, ``median_relative`` (median
        residual / background), ``pull_spread`` and ``column_pull_spread``
        (1.4826 x MAD of residual / ERR per pixel and per column sum),
        ``pull_outlier_fraction`` and ``column_pull_outlier_fraction`` (of
        ``|pull| > 5``), ``pull_std`` (plain, for comparison), ``n_pixels``
        and ``rejected_pixels`` (left out). ``pull_summary``: the pixel pulls
        of the slitlets that went into the master, pooled. ``pulls``: how they
        were computed.
    """
    used = set(master.qa.get("slits", []))
    vetted_out = set((master.qa.get("vetting") or {}).get("rejected") or {})
    stats = {}
    pooled = []  # pulls of the slitlets that went into the master
    for index, (slit, factor, bg) in enumerate(
        zip(result.slits, forward.factors, background_2d.slits, strict=True)
    ):
        label = slit_label(slit)
        if label not in used:
            continue
        # The calibration factor cancels in the pull: data and ERR share units.
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = slit.data / bg.data
            pull = slit.data / slit.err
        rejected = master.rejected_masks.get(index)
        if rejected is None:
            rejected = np.zeros(slit.data.shape, dtype=bool)
        good = np.isfinite(relative) & np.isfinite(pull) & (bg.dq == 0) & np.isfinite(factor)
        # DO_NOT_USE from before the step (the step's own flags are the rejected pixels).
        good &= ((slit.dq & DO_NOT_USE) == 0) | rejected
        good &= ~rejected
        if not good.any():
            continue
        column = np.where(good, slit.data, 0.0).sum(axis=0)
        column_var = np.where(good, slit.err.astype(float) ** 2, 0.0).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            column_pull = column / np.sqrt(column_var)
        column_pull = column_pull[np.isfinite(column_pull) & (good.sum(axis=0) > 0)]
        pixel = pulls.pull_statistics(pull[good])
        columns = pulls.pull_statistics(column_pull)
        if label not in vetted_out:
            pooled.append(pull[good])
        stats[label] = {
            "median_relative": float(np.median(relative[good])),
            "pull_spread": pixel["spread"],
            "pull_outlier_fraction": pixel["outlier_fraction"],
            "pull_std": pixel["std"],
            "column_pull_spread": columns["spread"],
            "column_pull_outlier_fraction": columns["outlier_fraction"],
            "n_pixels": pixel["n"],
            "rejected_pixels": int(rejected.sum()),
        }
    return {
        "residuals": stats,
        "pull_summary": pulls.pooled_summary(pooled),
        "pulls": pulls.pull_definition("valid pixels not rejected by reject_pixels"),
    }


def log_summary(master):
    """Log a one-paragraph summary of the master background."""
    qa = master.qa
    vet = qa.get("vetting", {})
    log.info(
        "Master background: %d wavelengths %.4f-%.4f um from %s; %d spectra rejected by vetting;"
        " %.2f%% of points clipped",
        master.wavelength.size,
        master.wavelength[0],
        master.wavelength[-1],
        qa.get("source", "?"),
        len(vet.get("rejected", {})),
        100 * qa.get("clipped_fraction", 0.0),
    )
    summary = qa.get("pull_summary") or {}
    if summary.get("n_pixels"):
        log.info(
            "Background slitlets after subtraction (pixels not rejected): pull spread %.3f "
            "(1.4826 MAD), %.2g of |pull| > 5",
            summary["pull_spread"],
            summary["pull_outlier_fraction"],
        )


def write_qa(qa, path):
    """
    Write the QA record to an ASDF file.

    Parameters
    ----------
    qa : dict
        The record.
    path : str
        Output path.
    """
    import asdf

    with atomic_output(path) as tmp:
        asdf.AsdfFile({"master_background_qa": plain_record(qa)}).write_to(tmp)


def plain_record(value):
    """
    Convert numpy scalars in a nested QA record to plain Python.

    Parameters
    ----------
    value : dict, list, tuple or scalar
        The record or a part of it.

    Returns
    -------
    dict, list or scalar
        The same content with string keys and Python scalars, as ASDF and
        datamodel metadata store it.
    """
    if isinstance(value, dict):
        return {str(k): plain_record(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_record(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
