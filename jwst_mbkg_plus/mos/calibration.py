"""One forward calibration pass, and the per-pixel factors it applied.

flat_field, pathloss, barshadow and photom are each a per-pixel multiplication
(for an extended source), so the whole pass is ``cal = raw * C`` with one
factor ``C`` per pixel. Measuring ``C`` once lets the master background be
un-calibrated by a division instead of re-running the four steps with
``inverse=True``, which jwst's step does and which costs as much again.

The pass works on a private copy of the slits that shares their WCS objects
(the four steps read them, never write them) and skips stdatamodels'
validation of each assignment into that copy (a copy of valid slits stays
valid; the values stored are the same). On request it keeps the interpolated
NIRSpec flat that flat_field built, so that calwebb_spec2 can apply the very
same flat to the science instead of interpolating it again
(:class:`~jwst_mbkg_plus.mos.flat_handover.FlatHandover`).

For jwst-equivalent runs, :func:`uncalibrate_like_jwst` un-calibrates the
master instead with jwst's own float32 arithmetic (one float64 division by
``C`` and jwst's four float32 operations round differently, which matters
where the background-subtracted value is near zero): photom runs again with
``inverse=True``, the other three corrections come from the forward pass.
"""

import logging
from dataclasses import dataclass

import numpy as np
from jwst.flatfield import flat_field
from jwst.lib.pipe_utils import match_nans_and_flags
from jwst.lib.wcs_utils import get_wavelengths
from stdatamodels import DataModel

from jwst_mbkg_plus.io.slits import DO_NOT_USE
from jwst_mbkg_plus.jwst_internals import (
    can_interpolate_flat,
    quiet_below_error,
    validation_settings,
)
from jwst_mbkg_plus.mos.flat_handover import flat_field_keeping_flat

__all__ = [
    "NESTED_CALIBRATION_STEPS",
    "ForwardCalibration",
    "calibrate_as_extended",
    "correction_factors",
    "uncalibrate_like_jwst",
    "working_copy",
]

log = logging.getLogger(__name__)

NESTED_CALIBRATION_STEPS = ("flat_field", "pathloss", "barshadow", "photom")

#: Slit attributes barshadow and pathloss set on a slit they corrected.
_APPLIED_MARKERS = ("barshadow_corrected", "pathloss_correction_type")


@dataclass
class ForwardCalibration:
    """
    Result of one forward pass over every slit, calibrated as extended.

    Attributes
    ----------
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The calibrated copy (surface brightness, MJy/sr); the caller's model is
        untouched.
    factors : list of ndarray
        Per slit, the float64 factor ``C`` with ``cal = raw * C``; NaN where the
        calibration is undefined.
    flat : `~jwst_mbkg_plus.mos.flat_handover.FlatHandover` or None
        The interpolated NIRSpec flat, when it was asked for and built.
    """

    model: object
    factors: list
    flat: object = None


def correction_factors(raw, calibrated):
    """
    Return the per-pixel factor a calibration applied, ``calibrated / raw``.

    Parameters
    ----------
    raw : ndarray
        Data before calibration; must be finite and non-zero everywhere (see
        :func:`calibrate_as_extended`, which substitutes 1 where it is not).
    calibrated : ndarray
        The same pixels after calibration.

    Returns
    -------
    ndarray
        float64 factors, NaN where the calibration produced a non-finite value.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = calibrated.astype(np.float64) / raw.astype(np.float64)
    factor[~np.isfinite(factor)] = np.nan
    return factor


def working_copy(model):
    """
    Return a deep copy of a MultiSlitModel for an internal calibration pass.

    The slits' WCS objects are shared, not copied, and assignments into the
    copy are not validated one by one.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The slits. Not modified.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The copy.
    """
    memo = {}
    for slit in model.slits:
        wcs = slit.meta.wcs
        if wcs is not None:
            memo[id(wcs)] = wcs
    work = type(model)(
        init=None,
        **validation_settings(model),
        validate_on_assignment=False,
    )
    DataModel.clone(work, model, deepcopy=True, memo=memo)
    return work


def calibrate_as_extended(step, model, *, keep_flat=False):
    """
    Calibrate a copy of every slit as an extended source and measure ``C``.

    Runs the step's nested flat_field, pathloss, barshadow and photom, with
    their own reference files and parameters, forcing ``source_type`` to
    EXTENDED as jwst's master background step does.

    Parameters
    ----------
    step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
        The step whose nested steps run (parameters already set from a parent).
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The uncalibrated slits (count rate). Not modified.
    keep_flat : bool, optional
        Keep the interpolated NIRSpec flat (``ForwardCalibration.flat``) when
        the nested flat_field builds one from reference files (it is not
        skipped, has no user-supplied flat and no hooks): then the flat is
        interpolated with :func:`interpolated_flats` and applied by jwst's
        ``flat_field.do_correction``; otherwise the nested step runs as is.

    Returns
    -------
    ForwardCalibration
        The calibrated copy and the per-slit factors.
    """
    work = working_copy(model)
    # Pixels whose raw value is 0 or not finite would leave C undefined: give them
    # a stand-in of 1 for the pass, then put the true calibrated value back.
    # The caller's model keeps the raw values, so no second copy is needed.
    substituted = []
    for slit in work.slits:
        bad = ~np.isfinite(slit.data) | (slit.data == 0)
        substituted.append(bad)
        if bad.any():
            slit.data[bad] = 1.0
        # Set again by barshadow and pathloss where they apply a correction, which
        # is how uncalibrate_like_jwst knows which slits to un-correct.
        for name in _APPLIED_MARKERS:
            if getattr(slit, name, None) is not None:
                delattr(slit, name)

    for name in ("pathloss", "barshadow", "photom"):
        getattr(step, name).source_type = "EXTENDED"
    flat = None
    if can_interpolate_flat(step.flat_field, work):
        work, flat = flat_field_keeping_flat(step.flat_field, work)
        if not keep_flat:
            flat.close()
            flat = None
    else:
        work = step.flat_field.run(work)
    for name in NESTED_CALIBRATION_STEPS[1:]:
        work = getattr(step, name).run(work)

    factors = []
    for slit, raw_slit, bad in zip(work.slits, model.slits, substituted, strict=True):
        original = raw_slit.data
        raw = np.where(bad, np.float32(1.0), original) if bad.any() else original
        factor = correction_factors(raw, slit.data)
        if bad.any():
            slit.data[bad] = original[bad] * factor[bad]
        factors.append(factor)
    return ForwardCalibration(model=work, factors=factors, flat=flat)


def uncalibrate_like_jwst(step, forward, wavelength, surf_bright):
    """
    Un-calibrate a 1-D master background for every slit with jwst's own arithmetic.

    Reproduces, bit for bit, what ``MasterBackgroundMosStep`` does once it has
    its master: the master is interpolated at each pixel's wavelength into a
    copy of the calibrated slits (as ``expand_to_2d``: 0 and ``DO_NOT_USE``
    outside the master's range or where the wavelength is NaN), then photom,
    barshadow, pathloss and flat_field are inverted in that order, in place
    in the slits' float32 arrays, including each step's
    ``match_nans_and_flags``. photom runs again (``inverse=True``); the
    barshadow and pathloss corrections and the interpolated flat are those the
    forward pass left on its slits and in ``forward.flat``, identical to what
    jwst computes a second time. A nested step with hooks, or a flat the
    forward pass did not keep, runs again with ``inverse=True``, as in jwst.

    Parameters
    ----------
    step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
        The step whose nested steps made ``forward``, with the same parameters
        (call inside the same ``preserve_step_pars`` block: ``inverse`` is set
        here).
    forward : ForwardCalibration
        The forward pass. Not modified.
    wavelength, surf_bright : ndarray
        The master background (micron, MJy/sr), as jwst reads its table.

    Returns
    -------
    list of tuple
        Per slit, the background in the input's units (float32 ``data``, NaN
        where jwst's is) and its ``dq``, as jwst subtracts and ORs them.
    """
    wave, sb = np.asarray(wavelength), np.asarray(surf_bright)
    if not np.all(np.diff(wave) > 0):
        order = np.argsort(wave)
        wave, sb = wave[order], sb[order]
    low, high = np.amin(wave), np.amax(wave)

    background = working_copy(forward.model)
    exp_type = background.meta.exposure.type
    for slit in background.slits:
        wl = get_wavelengths(slit, exp_type)
        if wl is None:
            raise RuntimeError(f"Can't determine wavelengths for {type(slit)}")
        wl[np.isnan(wl)] = -1.0
        outside = (wl > high) | (wl < low)
        wl[outside] = -1
        slit.data[:] = np.interp(wl, wave, sb, left=0.0, right=0.0)
        slit.dq[outside] |= DO_NOT_USE

    def hooked(nested):
        return bool(nested.pre_hooks or nested.post_hooks)

    # Process-wide, as in jwst's step: the nested steps' second run would repeat their logs.
    with quiet_below_error():
        step.photom.inverse = True
        background = step.photom.run(background)

        if hooked(step.barshadow):
            step.barshadow.inverse = True
            background = step.barshadow.run(background)
        else:
            for slit in background.slits:
                if getattr(slit, "barshadow_corrected", None):
                    _multiply_correction(slit, slit.barshadow)

        if hooked(step.pathloss):
            step.pathloss.inverse = True
            background = step.pathloss.run(background)
        else:
            for slit in background.slits:
                kind = getattr(slit, "pathloss_correction_type", None)
                if kind is None:
                    continue
                point = kind.upper() == "POINT"
                _multiply_correction(slit, slit.pathloss_point if point else slit.pathloss_uniform)
                match_nans_and_flags(slit)

        if forward.flat is not None:
            # The returned model: jwst 1.19 and 1.20 flat-field a copy, 2.0 on in place.
            background, _ = flat_field.do_correction(
                background, user_supplied_flat=forward.flat.flats, inverse=True
            )
        else:
            step.flat_field.inverse = True
            background = step.flat_field.run(background)
    return [(slit.data, slit.dq) for slit in background.slits]


def _multiply_correction(slit, correction):
    """Undo a divisive correction (barshadow, pathloss) as jwst does with ``inverse=True``."""
    slit.data *= correction
    slit.err *= correction
    slit.var_poisson *= correction**2
    slit.var_rnoise *= correction**2
    if slit.var_flat is not None and np.size(slit.var_flat) > 0:
        slit.var_flat *= correction**2


