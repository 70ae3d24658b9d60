"""One forward calibration pass, and the per-pixel factors it applied.

flat_field, pathloss, barshadow and photom are each a per-pixel multiplication
(for an extended source), so the whole pass is ``cal = raw * C`` with one
factor ``C`` per pixel. Measuring ``C`` once lets the master background be
un-calibrated by a division instead of re-running the four steps with
``inverse=True``, which jwst's step does and which costs as much again.
"""

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["ForwardCalibration", "calibrate_as_extended", "correction_factors"]

log = logging.getLogger(__name__)

NESTED_CALIBRATION_STEPS = ("flat_field", "pathloss", "barshadow", "photom")


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
    """

    model: object
    factors: list


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


def calibrate_as_extended(step, model):
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

    Returns
    -------
    ForwardCalibration
        The calibrated copy and the per-slit factors.
    """
    work = model.copy()
    # Pixels whose raw value is 0 or not finite would leave C undefined: give them
    # a stand-in of 1 for the pass, then put the true calibrated value back.
    substituted = []
    for slit in work.slits:
        bad = ~np.isfinite(slit.data) | (slit.data == 0)
        substituted.append((bad, slit.data[bad].copy()))
        if bad.any():
            slit.data[bad] = 1.0
    stand_in = [slit.data.copy() for slit in work.slits]

    for name in ("pathloss", "barshadow", "photom"):
        getattr(step, name).source_type = "EXTENDED"
    for name in NESTED_CALIBRATION_STEPS:
        work = getattr(step, name).run(work)

    factors = []
    for slit, raw, (bad, original) in zip(work.slits, stand_in, substituted, strict=True):
        factor = correction_factors(raw, slit.data)
        if bad.any():
            slit.data[bad] = original * factor[bad]
        factors.append(factor)
    return ForwardCalibration(model=work, factors=factors)
