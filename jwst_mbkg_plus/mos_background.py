"""NIRSpec MOS master background: build it from background slitlets, subtract it.

The datamodel side of `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`. The
numerics live in `jwst_mbkg_plus.algorithms`; this module unpacks slits into
arrays, calls them, and packs the results into jwst's datamodels.

Building the master (``bkg_method='full_slitlet'``), iterated up to
``pixel_maxiters`` times:

1. every calibrated pixel of each background slitlet (all shutters) is
   binned on a common wavelength grid with a clipped mean per bin, giving one
   1-D spectrum per slitlet;
2. whole spectra that deviate from the consensus are rejected (vetting), and
   so are slitlets whose row profile against the master shows an undeclared
   source (`jwst_mbkg_plus.algorithms.profiles`);
3. the surviving spectra are combined per wavelength (``combine_method``);
4. the master is expanded to each background slitlet's pixels and outlying
   pixels (hot pixels, clusters, cosmic rays) are masked for the next round.

Each background slitlet is then subtracted with the master made without it
(leave one out), so its residuals are an independent check of the background;
every other slit gets the master from all accepted slitlets.

With ``bkg_method='extract_1d'`` the slitlets go through jwst's pixel_replace,
resample_spec and extract_1d (masked pixels set to NaN first) and the
extracted spectra are vetted and combined the same way.
"""

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.adapters import (
    DO_NOT_USE,
    is_msa_background,
    select_background_slits,
    slit_label,
    slit_variance,
)
from jwst_mbkg_plus.algorithms import (
    binning,
    combine,
    errors,
    expand,
    grid,
    local_scale,
    outliers,
    profiles,
    selection,
    spatial,
)
from jwst_mbkg_plus.algorithms.smoothing import median_filter_nan
from jwst_mbkg_plus.msa_position import slit_position, source_distance
from jwst_mbkg_plus.products import masterbg1d_model

__all__ = [
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
    propagate_errors: bool = True
    error_extraction_height: int | None = None
    outside_range: str = "flag"
    spatial_model: str = "none"
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
            propagate_errors=step.propagate_errors,
            error_extraction_height=step.error_extraction_height,
            outside_range=step.outside_range,
            spatial_model=step.spatial_model,
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
    interpolation: str = "linear"

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
    if options.spatial_model != "none":
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
        raise MasterBackgroundError("The background slitlets have no valid calibrated pixel.")
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
    spatial_rejects = {}  # slit position in the selection -> reason (undeclared source)
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
            accepted, vet_qa = _vet(flux, var, labels, options, spatial_rejects)
            master = _combine(grid_wave, flux[accepted], var[accepted], options)
        else:
            master, accepted, vet_qa, ratios = _spatial_master(
                grid_wave, flux, var, positions, labels, options, spatial_rejects, accepted,
                previous=master,
            )
            factors = _factors(master.spatial, positions)
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
        if options.vet_spectra and accepted.sum() > 2:
            found = _undeclared_sources(arrays, masks, master, accepted, options, factors)
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
        if changed == 0:
            break

    if positions is not None:
        master.qa["spatial_model"] = _spatial_record(
            master.spatial, positions, labels, ratios, accepted, options
        )
    if accepted.sum() >= 2:
        for k in np.flatnonzero(accepted):
            others = accepted.copy()
            others[k] = False
            if positions is None:
                loo = _combine(grid_wave, flux[others], var[others], options)
            else:
                loo = _leave_one_out_spatial(grid_wave, flux, var, positions, ratios, others,
                                             options, master.spatial)
            loo.input_range = input_range
            loo.interpolation = interpolation
            master.leave_one_out[selection_.indices[k]] = loo
        master.qa["leave_one_out"] = True
    return master


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
        factors = _factors(fit, positions)
        scaled, scaled_var = flux / factors[:, None], var / factors[:, None] ** 2
        accepted, vet_qa = _vet(scaled, scaled_var, labels, options, profile_rejects)
        master = _combine(grid_wave, scaled[accepted], scaled_var[accepted], options)
        master.spatial = fit
        reference = np.interp(grid_wave, master.wavelength, master.surf_bright,
                              left=np.nan, right=np.nan)
        use = accepted.copy()
    ratio, error = spatial.level_ratios(flux, var, reference)
    return master, accepted, vet_qa, (ratio, error)


def _factors(fit, positions):
    """Spatial factor at each position (1 without a fit or position)."""
    if fit is None:
        return np.ones(len(positions))
    factor, _ = fit.predict(positions[:, 0], positions[:, 1], positions[:, 2])
    return np.where(np.isfinite(factor) & (factor > 0), factor, 1.0)


def _leave_one_out_spatial(grid_wave, flux, var, positions, ratios, others, options, full):
    """
    The master and spatial factor fitted without one slitlet.

    The model is the one chosen with every slitlet (``full``), refitted: with
    ``auto`` a choice made again on each subset would let a leave-one-out
    check extrapolate a model the whole set does not support.
    """
    ratio, error = ratios
    model = full.model if full is not None else options.spatial_model
    subset = (positions[others, 0], positions[others, 1], positions[others, 2],
              ratio[others], error[others])
    fit = spatial.fit_spatial_factor(*subset, model=model)
    if fit is None and model != options.spatial_model:
        # Without this slitlet the model lacks support (a quadrant left with one).
        fit = spatial.fit_spatial_factor(*subset, model=options.spatial_model)
    factors = _factors(fit, positions)[others]
    loo = _combine(
        grid_wave, flux[others] / factors[:, None], var[others] / factors[:, None] ** 2, options
    )
    loo.spatial = fit
    return loo


def _spatial_record(fit, positions, labels, ratios, accepted, options):
    """QA record of the spatial fit: model, parameters, and every background slitlet."""
    ratio, error = ratios
    record = {"requested": options.spatial_model}
    if fit is None:
        log.warning(
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
        binned = binning.bin_pixels(
            wave[use], sb[use], pix_var[use], edges, method="clipped_mean", sigma=3.0
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


def _vet(flux, var, labels, options, profile_rejects):
    """Whole-spectrum vetting, plus the slits found to hold an undeclared source."""
    n = flux.shape[0]
    keep = np.ones(n, dtype=bool)
    keep[list(profile_rejects)] = False
    if not options.vet_spectra or keep.sum() < 3:
        rejected = {labels[k]: reason for k, reason in profile_rejects.items()}
        return keep, {"applied": False, "rejected": rejected}
    idx = np.flatnonzero(keep)
    result = selection.vet_spectra(flux[idx], var[idx], threshold=options.vet_threshold)
    accepted = np.zeros(n, dtype=bool)
    accepted[idx] = result.accepted
    rejected = {labels[k]: reason for k, reason in profile_rejects.items()}
    scores = {}
    for j, k in enumerate(idx):
        scores[labels[k]] = float(result.score[j])
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
        "threshold": options.vet_threshold,
        "scores": scores,
        "rejected": rejected,
    }


def _undeclared_sources(arrays, masks, master, accepted, options, factors):
    """Accepted slits whose row profile shows a source; position -> reason."""
    found = {}
    for k in np.flatnonzero(accepted):
        wave, sb, var, valid = arrays[k]
        model, _ = expand.expand_to_2d(
            wave, master.wavelength, master.surf_bright * factors[k], edge="nan",
            interpolation=master.interpolation,
        )
        result = profiles.row_profile(sb, var, model, valid & ~masks[k])
        rows = profiles.find_profile_outliers(result, threshold=options.vet_threshold)
        if rows.any():
            where = np.flatnonzero(rows)
            peak = where[np.nanargmax(np.abs(result.deviation[where]))]
            found[k] = (
                f"undeclared source along the slit: rows {where.min()}-{where.max()} deviate "
                f"from the master by up to {100 * result.deviation[peak]:+.1f}%"
            )
    return found


def _combine(grid_wave, flux, var, options):
    method = options.combine_method
    robust = combine.combine_spectra(
        flux,
        var,
        method=method,
        sigma=options.sigma_clip,
        min_spectra=min(options.min_spectra, flux.shape[0]),
    )
    sb, sb_var, n_used = robust.flux.copy(), robust.var.copy(), robust.n_used.astype(float)
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
                cal_slit, bkg_cal, bkg_var_cal, this, index in master.leave_one_out, options
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
        if options.propagate_errors:
            bkg_var = np.where(np.isfinite(bkg_var), bkg_var, 0.0)
            pixel_var = slit_variance(slit)
            # The master's error is shared along a column (algorithms.errors, C).
            inflation = errors.balanced_background_inflation(bkg_var, pixel_var, height)
            _add_variance(slit, pixel_var, bkg_var * inflation)
    if applied:
        master.qa["applied_scaling"] = applied
    return output_model, background_2d


def _scale_locally(cal_slit, bkg, bkg_var, master, is_background, options):
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
        bkg_var = factor**2 * bkg_var + (bkg * error) ** 2
        bkg = bkg * factor
        record.update(
            x=position.x, y=position.y, quadrant=position.quadrant,
            spatial_factor=float(factor), spatial_factor_error=float(error),
        )
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
    propagated ERR (the calibration factor cancels in both).

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
        ``{"residuals": {label: {"median_relative", "pull_std", "column_pull_std"}}}``
        for the slits used as background: median residual / background, and the
        standard deviations of residual / ERR per pixel and per column sum.
    """
    used = set(master.qa.get("slits", []))
    stats = {}
    for slit, factor, bg in zip(result.slits, forward.factors, background_2d.slits, strict=True):
        label = slit_label(slit)
        if label not in used:
            continue
        # The calibration factor cancels in the pull: data and ERR share units.
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = slit.data / bg.data
            pull = slit.data / slit.err
        good = np.isfinite(relative) & np.isfinite(pull) & (bg.dq == 0) & np.isfinite(factor)
        if not good.any():
            continue
        column = np.where(good, slit.data, 0.0).sum(axis=0)
        column_var = np.where(good, slit.err.astype(float) ** 2, 0.0).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            column_pull = column / np.sqrt(column_var)
        column_pull = column_pull[np.isfinite(column_pull) & (good.sum(axis=0) > 0)]
        stats[label] = {
            "median_relative": float(np.median(relative[good])),
            "pull_std": float(np.std(pull[good])),
            "column_pull_std": float(np.std(column_pull)) if column_pull.size else float("nan"),
        }
    return {"residuals": stats}


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

    asdf.AsdfFile({"master_background_qa": plain_record(qa)}).write_to(path)


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
