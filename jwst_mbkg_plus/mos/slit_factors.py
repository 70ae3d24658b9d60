"""Per-slitlet calibration: measure the scatter, rescale the slitlets that can be, ERR for the rest.

Every slitlet's calibration (flat, pathloss, bar shadow) is a few percent off,
and differently in each. With ``slit_scale='auto'`` (the default):

1. every background slitlet that went into the master gets a sky factor in
   wavelength (`~jwst_mbkg_plus.algorithms.sky_factor.fit_sky_factor`),
   fitted to its pixels against its own modelled background (its leave-one-out
   master x spatial factor);
2. their levels give the slitlet-to-slitlet calibration scatter beyond their
   noise and beyond the spatial model
   (`~jwst_mbkg_plus.algorithms.calib_scatter.measure_calibration_scatter`);
3. only if that scatter is detected, each slitlet with enough source-free
   pixels is rescaled by its own factor: the background slitlets, and point
   sources in slitlets of several shutters (the source's wings fitted with a
   Moffat profile along the slit and subtracted, other sources in the slitlet
   left out, `~jwst_mbkg_plus.algorithms.source_wings.source_wings`, and what
   is left masked with the measured profile,
   `~jwst_mbkg_plus.algorithms.free_rows.source_free_mask`). A source of the
   exposure's common profile shape is also fitted as a term of the factor's
   fit, with a free amplitude per column, on the rows the shape's error
   allows (`~jwst_mbkg_plus.algorithms.wing_model.profile_sky_factor`): that fit is taken when
   its total error (noise and the shape's leak) is below the masked fit's. The
   factor's error joins the background's variance;
4. the slitlets that cannot be rescaled (extended sources, one-shutter
   slitlets, too few free pixels) get the measured scatter (at each
   wavelength) times their background as a systematic term of ERR, shared by
   every row of a column (`SlitCorrection.systematic_err_var`).

``slit_scale=True`` (or ``'always'``) rescales whether or not scatter is
detected; ``False`` (or ``'none'``) does none of this.
"""

import dataclasses
import logging

import numpy as np

from jwst_mbkg_plus.algorithms.calib_scatter import (
    SCATTER_P_VALUE,
    chromatic_scatter,
    measure_calibration_scatter,
)
from jwst_mbkg_plus.algorithms.fit_weights import variance_by_group, variance_by_wavelength
from jwst_mbkg_plus.algorithms.free_rows import nearest_cut, source_free_mask
from jwst_mbkg_plus.algorithms.pooled_profile import pooled_shape, wings_with_error
from jwst_mbkg_plus.algorithms.sky_factor import SKY_CLIP, dilution_corrected, fit_sky_factor
from jwst_mbkg_plus.algorithms.source_wings import PROFILE_BIN, source_wings
from jwst_mbkg_plus.algorithms.wing_model import profile_sky_factor
from jwst_mbkg_plus.algorithms.wing_profile import profile_width_floor, winged_or_gaussian
from jwst_mbkg_plus.io.slits import DO_NOT_USE, is_msa_background, slit_label, slit_variance
from jwst_mbkg_plus.mos.msa_position import source_distance

__all__ = ["SlitCorrection", "log_held", "slit_corrections"]

log = logging.getLogger(__name__)

#: Fewest source-free pixels for a slitlet's own factor.
MIN_FREE_PIXELS = 200

#: Nearest distance from the source (slit-frame units) of a factor's rows when the
#: source's wings have the exposure's common shape
#: (`~jwst_mbkg_plus.algorithms.free_rows.nearest_cut` chooses between it and the
#: guard); None: no rows nearer than the guard. Off: on the calibration-scatter scenes
#: (PRISM 20 %, 5 seeds) the rows from ~0.6 did not lower the rms of the source
#: slitlets' median residual (0.317 % against 0.311 %), though fresh noise draws on
#: the same scenes did (0.26 % against 0.29 %), and on G235M at 5 % the common shape's
#: tail, heavier than a Gaussian source's (its Moffat index at the bound), moved the
#: mean residual by -0.01 to -0.03 % (docs/validation.rst).
NEAREST_DISTANCE = None

# Width of the distance bins (slit-frame units) of the weights and of the free-row test.
_BIN = 0.1


@dataclasses.dataclass
class SlitCorrection:
    """
    What multiplies one slit's modelled background, or what its variance gets.

    Attributes
    ----------
    factor, factor_var : ndarray or None
        Per-pixel multiplicative factor and its variance (None: not rescaled).
    systematic_var : ndarray or None
        Variance of the background's calibration error (the calibration
        scatter) when the slit cannot be rescaled. It is not noise: one error
        per slitlet, shared by every pixel of a column and smooth in
        wavelength, so ERR gets it once per pixel of the column
        (`systematic_err_var`), not averaged down like the master's noise.
    record : dict
        For the QA record.
    sky : tuple of ndarray or None
        A rescaled source slit's source-free pixels (mask) and its data with
        the source's fitted wings taken out, as its factor was fitted
        (`~jwst_mbkg_plus.mos.source_sky`); None for the others.
    """

    factor: np.ndarray | None = None
    factor_var: np.ndarray | None = None
    systematic_var: np.ndarray | None = None
    record: dict = dataclasses.field(default_factory=dict)
    sky: tuple | None = None

    def apply(self, bkg, bkg_var):
        """
        The corrected background and its variance.

        Parameters
        ----------
        bkg, bkg_var : ndarray
            Modelled background (calibrated) and its variance.

        Returns
        -------
        bkg, bkg_var : ndarray
        """
        if self.factor is not None:
            f = np.where(np.isfinite(self.factor), self.factor, 1.0)
            fv = np.where(np.isfinite(self.factor_var), self.factor_var, 0.0)
            return bkg * f, f**2 * bkg_var + bkg**2 * fv
        return bkg, bkg_var

    def systematic_err_var(self, valid):
        """
        The calibration error's share of the science ERR**2 (0 when rescaled).

        The error is the same in every row of a column, so an extraction over
        the column's ``n`` rows carries ``n**2`` times its per-pixel variance,
        where ``n`` pixels of noise carry ``n`` times theirs. A diagonal ERR
        honest for the column sum adds ``n`` times the per-pixel variance to
        each pixel (``n`` the column's valid rows): extracted spectra get the
        calibration error in full; single pixels are then over-estimated by
        ``sqrt((v + n s) / (v + s))`` (``v`` their noise, ``s`` the systematic).

        Parameters
        ----------
        valid : ndarray of bool
            The slit's valid pixels.

        Returns
        -------
        ndarray
        """
        if self.systematic_var is None:
            return np.zeros(valid.shape)
        rows = np.maximum(np.asarray(valid, dtype=bool).sum(axis=0), 1)[None, :]
        return np.where(np.isfinite(self.systematic_var), self.systematic_var, 0.0) * rows


def _valid(cal_slit, extra_mask=None):
    valid = (cal_slit.dq & DO_NOT_USE) == 0
    if extra_mask is not None:
        valid &= ~extra_mask
    return valid


def _fit(cal_slit, wave, bkg, bkg_var, valid, apply, data=None, groups=None, **kwargs):
    # ``data``: the slit's data with a point source's fitted wings taken out (default: as is).
    # The modelled background is noisy itself (the master, the spatial factor):
    # without the correction the factor is diluted by 1 / (1 + var / bkg^2). The
    # clip is symmetric: the pixels are source-free, and [-3, +5] sigma biases a
    # Gaussian sky up by 0.0044 sigma per pixel.
    # Weights from the variance near each wavelength, not each pixel's own: VAR_POISSON
    # follows the pixel's own count, and would bias the factor low.
    # ``groups``: bands of distance from a source, whose rows are noisier near it.
    data = cal_slit.data if data is None else data
    if groups is None:
        var = variance_by_wavelength(wave, slit_variance(cal_slit), valid)
    else:
        var = variance_by_group(wave, slit_variance(cal_slit), valid, groups)
    data, var = dilution_corrected(np.asarray(data, dtype=float), var, bkg, bkg_var)
    return fit_sky_factor(wave, data, var, bkg, valid, apply=apply, clip=SKY_CLIP, **kwargs)


def _rescaled(fit, wave):
    factor, error = fit.evaluate(wave)
    return SlitCorrection(factor=factor, factor_var=error**2, record={"sky_factor": _brief(fit)})


def _brief(fit):
    rec = fit.to_record()
    return {k: rec[k] for k in ("model", "level", "level_error", "n_pixels", "n_rejected",
                                "deviation_chi2", "p_value", "significant", "applied",
                                "status", "params", "knots", "degree", "wave_range")}


def slit_corrections(cal_slits, waves, expanded, master, mode, *, guard=1.0,
                     expanded_var=None, nearest=NEAREST_DISTANCE, held=None):
    """
    Measure the calibration scatter and decide every slit's correction.

    Parameters
    ----------
    cal_slits : list of SlitModel
        Calibrated (as extended) slits.
    waves : list of ndarray
        Their pixel wavelengths.
    expanded : list of ndarray
        Their modelled backgrounds (master x spatial factor, calibrated units).
    master : MasterBackground
        The master (its ``leave_one_out`` keys are the background slitlets used,
        ``rejected_masks`` their rejected pixels, ``spatial`` the spatial fit).
    mode : str
        ``auto``, ``always`` or ``none``
        (`~jwst_mbkg_plus.mos.options.normalise_slit_scale`).
    guard : float, optional
        Smallest distance from the source of a pixel fitted (slit-frame units).
    expanded_var : list of ndarray, optional
        Variances of ``expanded`` (the fit's dilution correction; default none).
    nearest : float or None, optional
        With a source's wings from the exposure's common profile shape, the
        nearest distance of the rows fitted
        (`~jwst_mbkg_plus.algorithms.free_rows.nearest_cut` picks the cut between
        it and ``guard``); None (default, `NEAREST_DISTANCE`): ``guard``.
    held : list or None, optional
        A first pass whose factors may be fitted again (and logged) against a
        new master (`~jwst_mbkg_plus.mos.source_sky.add_source_sky`): its INFO
        lines are logged at DEBUG and appended to this list as ``(format,
        args)``, for `log_held` to log if the pass is kept. None (default):
        logged at INFO.

    Returns
    -------
    corrections : dict
        Slit index -> `SlitCorrection` (slits without any are absent).
    record : dict or None
        QA record (``calibration_scatter``), None when ``mode`` is ``none``.
    """
    if mode == "none":
        return {}, None

    def say(message, *args):
        if held is None:
            log.info(message, *args)
        else:
            log.debug(message, *args)
            held.append((message, args))

    if expanded_var is None:
        expanded_var = [None] * len(cal_slits)
    background = sorted(master.leave_one_out)
    valids = {k: _valid(cal_slits[k], master.rejected_masks.get(k)) for k in background}
    names = [slit_label(cal_slits[k]) for k in background]
    lines = {k: _fit(cal_slits[k], waves[k], expanded[k], expanded_var[k], valids[k],
                     apply=True, model="linear") for k in background}
    chromatic = chromatic_scatter([lines[k] for k in background])
    # Slitlets whose calibration errors differ in slope: a factor without one would
    # leave each slitlet's tilt whenever its own pixels cannot show it beyond doubt.
    min_params = 2 if chromatic["detected"] else 1
    fits = {k: _fit(cal_slits[k], waves[k], expanded[k], expanded_var[k], valids[k],
                    apply=True, min_params=min_params) for k in background}
    dof_lost = len(master.spatial.params) if master.spatial is not None else 1
    scatter = measure_calibration_scatter([fits[k] for k in background], names,
                                          dof_lost=dof_lost, leave_one_out=True)
    rescale = mode == "always" or scatter.detected
    record = {"mode": mode, **scatter.to_record(), "rescaled": rescale,
              "chromatic_scatter": {**chromatic, "min_model": ("linear" if min_params == 2
                                                               else "constant")},
              "rescaled_slits": [], "systematic_error_slits": {}, "unchanged_slits": {}}
    if scatter.detected:
        # Detected by the levels, or only by a band (a bend that keeps the levels alike).
        by_band = ("" if scatter.p_value < SCATTER_P_VALUE else
                   f"; detected in the bands, smallest band p = "
                   f"{float(np.min(scatter.band_p_value)):.2g}")
        say("Calibration scatter between background slitlets: %.2f%% (%d slitlets, "
            "level error %.2f%%, p = %.2g%s); per band %s", 100 * scatter.scatter,
            int(scatter.used.sum()), 100 * scatter.median_error, scatter.p_value, by_band,
            ", ".join(f"{w:.2f} um {100 * s:.2f}%" for w, s in
                      zip(scatter.band_wavelength, scatter.band_scatter, strict=True)))
    else:
        say("Calibration scatter between background slitlets not detected "
            "(estimate %.2f%%, level error %.2f%%, p = %.2g)%s", 100 * scatter.scatter,
            100 * scatter.median_error, scatter.p_value,
            "" if rescale else ": no slitlet rescaled")
    corrections = {}
    if not rescale:
        return corrections, record
    if chromatic["detected"]:
        say("Calibration scatter varies with wavelength: the background slitlets' slopes "
            "scatter by %.3g%% per micron beyond their errors (chi-square %.1f for %d, "
            "p = %.2g); every sky factor is at least a straight line", 100 * chromatic["scatter"],
            chromatic["chi2"], chromatic["dof"], chromatic["p_value"])
    # Every point source's wings (and other sources) first: their profiles share one
    # shape (the PSF), fitted to them all, which lets rows nearer the source in.
    wing_fits = {}
    for k, cal_slit in enumerate(cal_slits):
        if k in fits or is_msa_background(cal_slit) or _cannot_rescale(cal_slit):
            continue
        offset = source_distance(cal_slit, signed=True)
        valid = _valid(cal_slit)
        wing_fits[k] = (offset, valid, *source_wings(cal_slit.data, expanded[k], offset, valid,
                                                     return_profile=True))
    shape = pooled_shape({k: w[-1] for k, w in wing_fits.items()})
    if shape is not None:
        record["common_profile"] = shape.to_record()
        say("Common profile of %d point sources: sigma %.3f, beta %.3g, reduced "
            "chi-square %.2f; %d consistent with it", len(shape.slit_params), shape.width,
            record["common_profile"]["beta"], shape.reduced_chi2,
            record["common_profile"]["n_consistent"])
    for k, cal_slit in enumerate(cal_slits):
        label = slit_label(cal_slit)
        if k in fits:
            if fits[k].fitted and fits[k].applied:
                corrections[k] = _rescaled(fits[k], waves[k])
                record["rescaled_slits"].append(label)
            else:
                record["unchanged_slits"][label] = fits[k].status
            continue
        if is_msa_background(cal_slit):
            record["unchanged_slits"][label] = "background slitlet not in the master"
            continue
        reason = _cannot_rescale(cal_slit)
        fit = None
        if not reason:
            offset, valid, wings, other, wing_record, profile = wing_fits[k]
            distance = np.abs(offset)
            start = guard
            if shape is not None and shape.consistent.get(k):
                # The common shape's wings, and rows as near as their error allows.
                wings, wing_error = wings_with_error(offset, profile, shape, k)
                if nearest is not None:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        relative_var = slit_variance(cal_slit) / expanded[k] ** 2
                    usable = valid & ~other & np.isfinite(cal_slit.data) & (expanded[k] > 0)
                    start, _ = nearest_cut(distance, wing_error, relative_var, usable,
                                           guard=guard, floor=min(nearest, guard))
                wing_record = {**wing_record, "shape": "common"}
            data = cal_slit.data - expanded[k] * wings
            free, cut = source_free_mask(data, expanded[k], distance, valid & ~other,
                                         guard=start, bin_width=_BIN)
            if free.sum() < MIN_FREE_PIXELS:
                reason = (f"{int(free.sum())} source-free pixels (fewer than "
                          f"{MIN_FREE_PIXELS})")
            else:
                fit = _fit(cal_slit, waves[k], expanded[k], expanded_var[k], free,
                           apply=True, data=data,
                           groups=np.floor(np.nan_to_num(distance, posinf=99.0) / _BIN),
                           min_params=min_params)
                if not fit.applied:
                    reason = fit.status
            modelled = None
            if wing_record.get("shape") == "common" and cut < start + _BIN:
                # No light beyond the guard that the profile does not explain: the
                # source modelled in every row, if that lowers the factor's error.
                modelled = _modelled(cal_slit, waves[k], expanded[k], expanded_var[k],
                                     valid & ~other, offset, shape, k, min_params)
            if modelled is not None and modelled.fit.applied and (
                    fit is None or not fit.applied or modelled.total < fit.level_error):
                fit, reason, cut = modelled.fit, "", modelled.cut
                wing_record = {**wing_record, **modelled.to_record()}
        if fit is not None and fit.applied:
            corrections[k] = _rescaled(fit, waves[k])
            if "leak" in wing_record:
                corrections[k].factor_var = corrections[k].factor_var + wing_record["leak"] ** 2
            corrections[k].record["free_from_distance"] = float(cut)
            corrections[k].record["source_wings"] = wing_record
            corrections[k].sky = (free, data)
            record["rescaled_slits"].append(label)
            continue
        if scatter.detected:
            # The master's level is the mean of the used slitlets' errors: its own
            # share (s**2 / n) adds to this slitlet's. And s is measured from n
            # slitlets: a new slitlet's error follows Student's t with dof degrees
            # of freedom, of variance s**2 dof / (dof - 2) (1.22 s**2 for 12).
            dof = int(scatter.dof)
            share = (1.0 + 1.0 / max(int(scatter.used.sum()), 1)) * (
                dof / (dof - 2) if dof > 2 else 3.0)
            sys = share * (scatter.at(waves[k]) * expanded[k]) ** 2
            corrections[k] = SlitCorrection(systematic_var=sys, record={
                "calibration_systematic": reason})
            record["systematic_error_slits"][label] = reason
        else:
            record["unchanged_slits"][label] = reason
    if record["systematic_error_slits"]:
        say("%d slitlets cannot be rescaled; their ERR includes the calibration "
            "scatter: %s", len(record["systematic_error_slits"]),
            ", ".join(record["systematic_error_slits"]))
    say("Rescaled %d slitlets by their own sky factor", len(record["rescaled_slits"]))
    return corrections, record


def log_held(held):
    """
    Log at INFO the lines a `slit_corrections` pass held back, and empty ``held``.

    Parameters
    ----------
    held : list
        ``(format, args)`` pairs, as `slit_corrections` appends them.
    """
    for message, args in held:
        log.info(message, *args)
    held.clear()


def _modelled(cal_slit, wave, bkg, bkg_var, usable, offset, shape, key, min_params=1):
    """`~jwst_mbkg_plus.algorithms.wing_model.profile_sky_factor` on one slit."""
    usable = usable & np.isfinite(offset) & np.isfinite(cal_slit.data) & (bkg > 0)
    groups = np.floor(np.nan_to_num(np.abs(offset), posinf=99.0) / _BIN)
    var = variance_by_group(wave, slit_variance(cal_slit), usable, groups)
    data, var = dilution_corrected(np.asarray(cal_slit.data, dtype=float), var, bkg, bkg_var)
    _, _, centre = shape.slit_params[key]
    theta, cov = winged_or_gaussian(centre, shape.width, shape.q,
                                    np.asarray(shape.slit_cov[key])[1:, 1:])
    return profile_sky_factor(wave, data, var, bkg, usable, offset, *theta, cov,
                              width_floor=profile_width_floor(shape.width, PROFILE_BIN),
                              min_params=min_params)


def _cannot_rescale(cal_slit):
    """Why a source slit has no source-free pixels to fit, or ''."""
    if str(getattr(cal_slit, "source_type", "") or "").upper() == "EXTENDED":
        return "extended source: no source-free rows"
    shutter_state = str(getattr(cal_slit, "shutter_state", "") or "")
    if shutter_state and shutter_state.count("1") + shutter_state.count("x") < 2:
        return "one-shutter slitlet"
    return ""
