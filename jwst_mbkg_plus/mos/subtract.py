"""The MOS master expanded to every slit, un-calibrated and subtracted.

The expansion and every slit's correction against one master
(`expand_and_correct`) are made once per master: `subtract_master` takes those
of a first pass (`~jwst_mbkg_plus.mos.source_sky.add_source_sky`) when the
master is the same.
"""


import copy
import dataclasses
import logging

import numpy as np
from jwst.lib.wcs_utils import get_wavelengths
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.algorithms import (
    errors,
    expand,
)
from jwst_mbkg_plus.io.slits import (
    DO_NOT_USE,
    slit_label,
    slit_variance,
)
from jwst_mbkg_plus.mos import slit_factors
from jwst_mbkg_plus.mos.msa_position import slit_position
from jwst_mbkg_plus.mos.options import REJECTED_DQ

__all__ = [
    "Expanded",
    "SlitBackground",
    "expand_and_correct",
    "expanded_backgrounds",
    "subtract_master",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SlitBackground:
    """
    The master expanded to one slit's pixels (`expanded_backgrounds`).

    Attributes
    ----------
    master : MasterBackground
        The master expanded: a background slitlet's leave-one-out master, for
        the others the master itself.
    wave : ndarray
        The pixel wavelengths.
    bkg, var : ndarray
        The background (calibrated units, times the spatial factor) and its
        variance.
    plain, plain_var : ndarray
        ``master`` expanded before the spatial factor (the master's end values
        beyond its samples), and its variance; ``bkg`` and ``var`` themselves
        without a spatial model.
    outside : ndarray of bool
        The pixels outside the covered range.
    is_background : bool
        Whether the slit is a background slitlet of the master.
    """

    master: object
    wave: np.ndarray
    bkg: np.ndarray
    var: np.ndarray
    plain: np.ndarray
    plain_var: np.ndarray
    outside: np.ndarray
    is_background: bool


@dataclasses.dataclass
class Expanded:
    """
    The master expanded to every slit, and every slit's correction against it.

    Attributes
    ----------
    master : MasterBackground
        The master they were made against.
    slits : list of SlitBackground
        Per slit, the expanded master.
    applied : dict
        Slit label -> spatial factor record (QA).
    corrections : dict
        Slit index -> `~jwst_mbkg_plus.mos.slit_factors.SlitCorrection`.
    scatter_record : dict or None
        The ``calibration_scatter`` QA record (None: ``slit_scale`` off).
    held : list
        Log lines of the corrections not logged yet (a quiet pass,
        `~jwst_mbkg_plus.mos.slit_factors.log_held`).
    """

    master: object
    slits: list
    applied: dict
    corrections: dict
    scatter_record: dict | None
    held: list = dataclasses.field(default_factory=list)


def expand_and_correct(cal_model, master, options, *, quiet=False):
    """
    The master expanded to every slit, and every slit's correction against it.

    Parameters
    ----------
    cal_model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The slits calibrated as extended.
    master : MasterBackground
        The master background.
    options : MasterOptions
        Step options.
    quiet : bool, optional
        Hold the corrections' log lines back (in ``held``, logged at DEBUG):
        a first pass whose corrections are made again against a new master
        if the master changes.

    Returns
    -------
    Expanded
    """
    slits, applied = expanded_backgrounds(cal_model, master)
    held = [] if quiet else None
    corrections, record = slit_factors.slit_corrections(
        list(cal_model.slits), [s.wave for s in slits], [s.bkg for s in slits], master,
        options.slit_scale, guard=options.slit_scale_guard,
        expanded_var=[s.var for s in slits], held=held)
    return Expanded(master, slits, applied, corrections, record, [] if held is None else held)


def subtract_master(output_model, forward, master, options, uncalibrated=None, expanded=None):
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
    forward : `~jwst_mbkg_plus.mos.calibration.ForwardCalibration`
        Calibrated slits and the per-pixel factors of the forward pass.
    master : MasterBackground
        The master background.
    options : MasterOptions
        Step options.
    uncalibrated : list of tuple, optional
        Per slit, the master already un-calibrated by jwst's inverse steps and
        its DQ (`~jwst_mbkg_plus.mos.calibration.uncalibrate_like_jwst`):
        used instead of the division by the factors inside the covered range,
        and its DQ ORed into the science DQ, as jwst does.
    expanded : Expanded, optional
        The expansion and corrections already made against this ``master``
        (`~jwst_mbkg_plus.mos.source_sky.add_source_sky`'s first pass, when it
        left the master unchanged): used, and its held log lines logged, instead
        of making them again. None: made here.

    Returns
    -------
    result : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        ``output_model`` with the background subtracted.
    background_2d : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The subtracted background in the input's units (``masterbg2d``).
    """
    # Built from valid slits: validated as a whole when saved, not per assignment.
    background_2d = datamodels.MultiSlitModel(validate_on_assignment=False)
    background_2d.update(output_model)
    height = options.error_extraction_height or _typical_height(forward.model)
    master.qa["error_extraction_height"] = int(height)
    flagged = {}  # slit label -> pixels flagged REJECTED_DQ
    if expanded is None:
        expanded = expand_and_correct(forward.model, master, options)
    elif expanded.master is not master:
        raise ValueError("subtract_master: the expansion handed over was made against "
                         "another master")
    else:
        slit_factors.log_held(expanded.held)
    applied, corrections = expanded.applied, expanded.corrections
    if expanded.scatter_record is not None:
        master.qa["calibration_scatter"] = expanded.scatter_record
    for index, (slit, cal_slit, factor, expansion) in enumerate(
        zip(output_model.slits, forward.model.slits, forward.factors, expanded.slits,
            strict=True)
    ):
        this, outside = expansion.master, expansion.outside
        bkg_cal, bkg_var_cal = expansion.bkg, expansion.var
        if index in corrections:
            bkg_cal, bkg_var_cal = corrections[index].apply(bkg_cal, bkg_var_cal)

            applied.setdefault(slit_label(cal_slit), {}).update(corrections[index].record)
        if options.outside_range == "nan":
            bkg_cal = np.where(outside, np.nan, bkg_cal)
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
        bg_var = np.where(np.isfinite(bkg_var), bkg_var, 0)
        if index in corrections and corrections[index].systematic_var is not None:
            # masterbg2d's ERR per pixel includes the calibration error.
            sys_var = corrections[index].systematic_var / factor**2
            bg_var = bg_var + np.where(np.isfinite(sys_var) & (bkg != 0), sys_var, 0.0)
        bg_slit.err = np.sqrt(bg_var).astype(np.float32)
        background_2d.slits.append(bg_slit)

        # In place: same values as assigning new arrays, without re-validating them.
        slit.data[...] = slit.data - bkg
        slit.dq |= dq
        # Pixels whose added variance is averaged per column: before the OUTLIER flags,
        # so that flag_rejected changes the DQ alone.
        column_pixels = np.isfinite(slit.data) & ((slit.dq & DO_NOT_USE) == 0)
        rejected = master.flag_masks.get(index) if options.flag_rejected else None
        if rejected is not None:
            slit.dq[rejected] |= REJECTED_DQ
            flagged[slit_label(slit)] = int(rejected.sum())
        if options.propagate_errors:
            bkg_var = np.where(np.isfinite(bkg_var), bkg_var, 0.0)
            pixel_var = slit_variance(slit)
            # The master's error is shared along a column (algorithms.errors, C).
            inflation = errors.balanced_background_inflation(bkg_var, pixel_var, height)
            extra = bkg_var * inflation
            if index in corrections:
                # A calibration error (not rescaled) is shared by the whole column.
                valid = np.isfinite(slit.data) & ((slit.dq & DO_NOT_USE) == 0)
                sys_var = corrections[index].systematic_err_var(valid) / factor**2
                extra = extra + np.where(bkg != 0, sys_var, 0.0)
            extra = _uniform_along_columns(np.where(np.isfinite(extra), extra, 0.0),
                                          column_pixels)
            _add_variance(slit, pixel_var, extra)
    if applied:
        master.qa["applied_scaling"] = applied
    if master.self_subtracted:
        master.qa["beyond_leave_one_out"] = {
            slit_label(output_model.slits[k]): int(mask.sum())
            for k, mask in master.self_subtracted.items()
        }
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


def expanded_backgrounds(cal_model, master):
    """
    The master expanded to every slit's pixels, with its spatial factor.

    Each background slitlet that went into the master gets its leave-one-out
    master (where the others cover its wavelengths; the full master beyond,
    recorded in ``master.self_subtracted``).

    Parameters
    ----------
    cal_model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The slits calibrated as extended.
    master : MasterBackground
        The master background.

    Returns
    -------
    slits : list of SlitBackground
        Per slit, the expanded master.
    applied : dict
        Slit label -> spatial factor record (QA).
    """
    exp_type = cal_model.meta.exposure.type
    applied = {}  # slit label -> spatial factor and local scale used
    slits = []
    for index, cal_slit in enumerate(cal_model.slits):
        this = master.leave_one_out.get(index, master)
        wave = np.asarray(get_wavelengths(cal_slit, exp_type), dtype=np.float64)
        is_background = index in master.leave_one_out
        bkg_cal, bkg_var_cal, plain, plain_var, record = _expanded(cal_slit, wave, this)
        if record is not None:
            applied[slit_label(cal_slit)] = record
        outside = _outside(wave, this)
        if this is not master:
            # Where the other slitlets stop short of this one's wavelengths, the
            # full master (this slitlet included) still gives the background
            # jwst would subtract; the QA leaves those pixels out (not independent).
            fallback = outside & ~_outside(wave, master)
            if fallback.any():
                full, full_var, full_plain, full_plain_var, _ = _expanded(cal_slit, wave, master)
                bkg_cal = np.where(fallback, full, bkg_cal)
                bkg_var_cal = np.where(fallback, full_var, bkg_var_cal)
                plain = np.where(fallback, full_plain, plain)
                plain_var = np.where(fallback, full_plain_var, plain_var)
                outside &= ~fallback
                master.self_subtracted[index] = fallback
        slits.append(SlitBackground(this, wave, bkg_cal, bkg_var_cal, plain, plain_var,
                                    outside, is_background))
    return slits, applied


def _outside(wave, master):
    """Pixels beyond the wavelengths in which ``master`` gives every pixel a background."""
    low, high = master.covered_range
    return ~((wave >= low) & (wave <= high))


def _expanded(cal_slit, wave, master):
    """
    The master expanded to a slit's pixels, with its spatial factor and local scale.

    Inside the inputs' range every pixel gets a background (the master's samples
    may stop a fraction of a sample short of it).

    Returns
    -------
    bkg, bkg_var : ndarray
        The background (calibrated units) and its variance.
    plain, plain_var : ndarray
        The same before the spatial factor.
    record : dict or None
        `_scale_locally`'s record; None without spatial model.
    """
    plain, plain_var = expand.expand_to_2d(
        wave, master.wavelength, master.surf_bright, master.var, edge="nearest",
        interpolation=master.interpolation,
    )
    if master.spatial is None:
        return plain, plain_var, plain, plain_var, None
    bkg, bkg_var, record = _scale_locally(cal_slit, wave, plain, plain_var, master)
    return bkg, bkg_var, plain, plain_var, record


def _scale_locally(cal_slit, wave, bkg, bkg_var, master):
    """
    Multiply a slit's expanded master by its spatial factor.

    Each factor's error is added to the background's variance (it is shared by
    every pixel of the slit, like the master's own error).

    Returns
    -------
    bkg, bkg_var : ndarray
        The scaled background (calibrated units) and its variance.
    record : dict
        Factor and its error, for the QA record.
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


def _uniform_along_columns(extra_var, valid):
    """
    The added variance of each column's valid pixels replaced by their mean.

    The inflation of the master's variance depends on each pixel's own variance
    (a point source's core gets more than its wings), and resample_spec's default
    ``weight_type='ivm'`` weighs pixels by 1 / VAR_RNOISE: an added variance that
    follows the source profile reweights the core against the wings and biases the
    resampled point-source flux low (-0.2 to -0.6 % on a photon-counting scene).
    The column mean keeps each column sum's variance.
    """
    n = valid.sum(axis=0)
    mean = np.where(valid, extra_var, 0.0).sum(axis=0) / np.maximum(n, 1)
    return np.where(valid, mean[None, :], extra_var)


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



