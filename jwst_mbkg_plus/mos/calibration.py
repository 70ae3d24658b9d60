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
(:class:`~jwst_mbkg_plus.mos.calibration.FlatHandover`).

For jwst-equivalent runs, :func:`uncalibrate_like_jwst` un-calibrates the
master instead with jwst's own float32 arithmetic (one float64 division by
``C`` and jwst's four float32 operations round differently, which matters
where the background-subtracted value is near zero): photom runs again with
``inverse=True``, the other three corrections come from the forward pass.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stdatamodels import DataModel
from stdatamodels.jwst import datamodels

__all__ = [
    "FlatHandover",
    "ForwardCalibration",
    "calibrate_as_extended",
    "correction_factors",
    "flat_reference_files",
    "interpolate_slit_flat",
    "interpolated_flats",
    "open_flat_references",
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
    flat : FlatHandover or None
        The interpolated NIRSpec flat, when it was asked for and built.
    """

    model: object
    factors: list
    flat: "FlatHandover | None" = None


#: Slit attributes the NIRSpec MOS flat of a slit depends on, besides its
#: wavelengths, reference files and the exposure's subarray.
_FLAT_GEOMETRY = ("name", "quadrant", "xcen", "ycen", "xstart", "ystart", "xsize", "ysize")


@dataclass
class FlatHandover:
    """
    The interpolated NIRSpec flat of a forward pass, for the science flat_field.

    jwst's flat_field interpolates the NIRSpec MOS flat per slit from the
    slit's geometry and pixel wavelengths (``get_wavelengths(slit)``, which
    reads ``slit.wavelength``) and the f/s/d-flat reference files. The same
    slits reach calwebb_spec2's own flat_field after master background and
    wavecorr; wavecorr changes the wavelengths of point sources only. A slit's
    flat is reused only when all of these are unchanged, which
    :meth:`flat_for` checks exactly.

    Attributes
    ----------
    flats : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The interpolated flat of every slit, in the order of the input slits,
        as returned by ``jwst.flatfield.flat_field.do_correction``.
    reference_files : dict
        Reftype -> reference file name the flats were made from.
    exp_type : str
        EXP_TYPE of the exposure.
    subarray : tuple
        (xstart, ystart) of the exposure's subarray.
    geometry : list of tuple
        Per slit, the attributes in ``_FLAT_GEOMETRY`` of the slit the flat was made for.
    """

    flats: object
    reference_files: dict
    exp_type: str
    subarray: tuple
    geometry: list

    def flat_for(self, index, slit):
        """
        Return the stored flat of a slit if it is valid for it, else None.

        Parameters
        ----------
        index : int
            Position of the slit in its MultiSlitModel.
        slit : `~stdatamodels.jwst.datamodels.SlitModel`
            The slit about to be flat-fielded.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.SlitModel` or None
            The interpolated flat, identical to what flat_field would build.
        """
        from jwst.lib.wcs_utils import get_wavelengths

        if index >= len(self.geometry) or self.geometry[index] != slit_geometry(slit):
            return None
        flat = self.flats.slits[index]
        if flat.data is None or flat.data.shape != slit.data.shape:
            return None
        stored = flat.wavelength
        if stored is None:
            return None
        # flat_field interpolates at get_wavelengths(slit) with NaN set to 0 and
        # stores exactly that array with the flat.
        wave = get_wavelengths(slit, use_wavecorr=None)
        if wave is None or wave.shape != stored.shape:
            return None
        wave = np.where(np.isnan(wave), 0.0, wave)
        if not np.array_equal(wave, stored):
            return None
        return flat

    def close(self):
        """Close the stored flats."""
        self.flats.close()


def slit_geometry(slit):
    """
    Return the attributes of a slit its NIRSpec MOS flat depends on.

    Parameters
    ----------
    slit : `~stdatamodels.jwst.datamodels.SlitModel`
        A slit.

    Returns
    -------
    tuple
        Values of ``_FLAT_GEOMETRY``.
    """
    return tuple(getattr(slit, name, None) for name in _FLAT_GEOMETRY)


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
        pass_invalid_values=model._pass_invalid_values,
        strict_validation=model._strict_validation,
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
    if _can_interpolate_flat(step.flat_field, work):
        work, flat = _flat_field_keeping_flat(step.flat_field, work)
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
    from jwst.flatfield import flat_field
    from jwst.lib.basic_utils import disable_logging
    from jwst.lib.pipe_utils import match_nans_and_flags
    from jwst.lib.wcs_utils import get_wavelengths

    do_not_use = datamodels.dqflags.pixel["DO_NOT_USE"]
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
        slit.dq[outside] |= do_not_use

    def hooked(nested):
        return bool(nested.pre_hooks or nested.post_hooks)

    with disable_logging(level=logging.WARNING):
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
            flat_field.do_correction(
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


def _can_interpolate_flat(flat_step, model):
    """Whether flat_field would interpolate a NIRSpec MOS flat from reference files."""
    return (
        not flat_step.skip
        and not flat_step.inverse
        and flat_step.user_supplied_flat is None
        and not flat_step.pre_hooks
        and not flat_step.post_hooks
        and model.meta.exposure.type == "NRS_MSASPEC"
        and model.meta.instrument.lamp_mode != "IMAGE"
    )


#: Datamodel of each flat reftype for NRS_MSASPEC, as FlatFieldStep opens them.
_FLAT_MODELS = {
    "flat": datamodels.FlatModel,
    "fflat": datamodels.NirspecQuadFlatModel,
    "sflat": datamodels.NirspecFlatModel,
    "dflat": datamodels.NirspecFlatModel,
}


def open_flat_references(flat_step, model, names=None):
    """
    Look up and open flat_field's reference files as FlatFieldStep does.

    Parameters
    ----------
    flat_step : `~jwst.flatfield.FlatFieldStep`
        The step (its ``override_*`` parameters apply).
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The NRS_MSASPEC slits.
    names : dict, optional
        The files, if already looked up with :func:`flat_reference_files`.

    Returns
    -------
    names : dict
        Reftype -> file name, or None for 'N/A'.
    models : dict
        Reftype -> open reference model or None; the caller closes them.
    """
    if names is None:
        names = flat_reference_files(flat_step, model)
    models = {
        reftype: None if name is None else _FLAT_MODELS[reftype](name)
        for reftype, name in names.items()
    }
    return names, models


def flat_reference_files(flat_step, model):
    """
    Return flat_field's reference files, with one CRDS query for all flat reftypes.

    The same files ``flat_step.get_reference_file`` returns type by type, and
    recorded in the step's reference-file list as it records them; each CRDS
    query reads the model's header through its schema, which costs about a
    second, so one query instead of four.

    Parameters
    ----------
    flat_step : `~jwst.flatfield.FlatFieldStep`
        The step (its ``override_*`` parameters apply).
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The data the files are selected for.

    Returns
    -------
    dict
        Reftype -> file path, or None for 'N/A'.
    """
    from stpipe import crds_client

    names, fetch = {}, []
    for reftype in flat_step.reference_file_types:
        if flat_step.get_ref_override(reftype) is not None:
            names[reftype] = flat_step.get_reference_file(model, reftype)
        else:
            fetch.append(reftype)
    if fetch:
        parameters, observatory = flat_step._get_crds_parameters(model)
        found = crds_client.get_multiple_reference_paths(parameters, fetch, observatory)
        for reftype in fetch:
            path = found[reftype]
            header_name = "N/A" if path == "N/A" else "crds://" + Path(path).name
            flat_step._reference_files_used.append((reftype, header_name))
            names[reftype] = crds_client.check_reference_open(path)
    return {
        reftype: None if names[reftype] == "N/A" else names[reftype]
        for reftype in flat_step.reference_file_types
    }


def interpolate_slit_flat(slit, refs, *, exposure_type, dispaxis, subarray):
    """
    Interpolate one slit's NIRSpec flat as ``jwst.flatfield.flat_field.flat_for_nirspec_slit``.

    The numbers come from jwst's own ``create_flat_field``; what differs is
    that the returned SlitModel is not validated attribute by attribute
    (assigning the WCS to a validated model serializes it, which costs more
    than interpolating the flat).

    Parameters
    ----------
    slit : `~stdatamodels.jwst.datamodels.SlitModel`
        The slit (its ``wavelength`` or WCS, geometry and quadrant are used).
    refs : dict
        Open ``fflat``, ``sflat``, ``dflat`` reference models (or None).
    exposure_type : str
        EXP_TYPE.
    dispaxis : int
        Dispersion direction (1 horizontal, 2 vertical).
    subarray : object
        The exposure's ``meta.subarray``.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.SlitModel`
        The flat (``data``, ``dq``, ``err``, ``wavelength``), as jwst builds it.
    """
    from jwst.flatfield.flat_field import (
        BADFLAT,
        MICRONS_100,
        create_flat_field,
        flat_for_nirspec_slit,
    )
    from jwst.lib.wcs_utils import get_wavelengths

    slit_nt = slit if exposure_type == "NRS_MSASPEC" else None
    wl = get_wavelengths(slit, use_wavecorr=None)
    if wl is None:
        # jwst's placeholder flat of ones.
        return flat_for_nirspec_slit(
            slit,
            refs["fflat"],
            refs["sflat"],
            refs["dflat"],
            dispaxis,
            exposure_type,
            slit_nt,
            subarray,
            use_wavecorr=None,
        )
    ysize, xsize = slit.data.shape[-2:]
    xstart = slit.xstart - 1 + subarray.xstart - 1
    ystart = slit.ystart - 1 + subarray.ystart - 1
    wl[np.isnan(wl)] = 0.0
    max_wavelength = np.nanmax(wl)
    if 0.0 < max_wavelength < MICRONS_100:
        log.warning("Wavelengths in science data appear to be in meters.")
    flat_2d, flat_dq_2d, flat_err_2d = create_flat_field(
        wl,
        refs["fflat"],
        refs["sflat"],
        refs["dflat"],
        xstart,
        xstart + xsize,
        ystart,
        ystart + ysize,
        exposure_type,
        dispaxis,
        slit.name,
        slit_nt,
    )
    mask = flat_2d <= 0.0
    if mask.any():
        flat_2d[mask] = np.nan
        flat_dq_2d[mask] = np.bitwise_or(flat_dq_2d[mask], BADFLAT)
    flat = datamodels.SlitModel(
        data=flat_2d, dq=flat_dq_2d, err=flat_err_2d, validate_on_assignment=False
    )
    flat.name = slit.name
    flat.xstart = slit.xstart
    flat.xsize = slit.xsize
    flat.ystart = slit.ystart
    flat.ysize = slit.ysize
    flat.wavelength = wl.copy()
    if getattr(slit.meta, "wcs", None) is not None:
        flat.meta.wcs = slit.meta.wcs
    return flat


def dispersion_axis(model):
    """Return the dispersion direction as ``do_nirspec_flat_field`` reads it."""
    from jwst.flatfield.flat_field import HORIZONTAL

    try:
        dispaxis = model.meta.wcsinfo.dispersion_direction
    except AttributeError:  # pragma: no cover - as jwst
        dispaxis = model.slits[0].meta.wcsinfo.dispersion_direction if len(model.slits) else None
    return HORIZONTAL if dispaxis is None else dispaxis


def interpolated_flats(model, refs):
    """
    Interpolate the NIRSpec flat of every slit of a MultiSlitModel.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The slits.
    refs : dict
        Open flat reference models, as from :func:`open_flat_references`.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.MultiSlitModel`
        One flat per slit, in order, with the model's primary metadata.
    """
    exposure_type = model.meta.exposure.type
    dispaxis = dispersion_axis(model)
    flats = datamodels.MultiSlitModel(validate_on_assignment=False)
    flats.update(model, only="PRIMARY")
    for slit in model.slits:
        log.info("Interpolating the flat of slit %s", slit.name)
        flats.slits.append(
            interpolate_slit_flat(
                slit,
                refs,
                exposure_type=exposure_type,
                dispaxis=dispaxis,
                subarray=model.meta.subarray,
            )
        )
    return flats


def _flat_field_keeping_flat(flat_step, work):
    """
    Apply flat_field as ``FlatFieldStep.process`` does, and keep the interpolated flat.

    The flats come from :func:`interpolated_flats` with the step's own
    reference files; jwst's ``do_correction`` applies them (its
    ``user_supplied_flat`` path, the arithmetic of every flat_field run).
    """
    from jwst.flatfield import flat_field

    names, refs = open_flat_references(flat_step, work)
    try:
        flats = interpolated_flats(work, refs)
    finally:
        for ref in refs.values():
            if ref is not None:
                ref.close()
    work, interpolated = flat_field.do_correction(work, user_supplied_flat=flats, inverse=False)
    handover = FlatHandover(
        flats=interpolated,
        reference_files=names,
        exp_type=work.meta.exposure.type,
        subarray=(work.meta.subarray.xstart, work.meta.subarray.ystart),
        geometry=[slit_geometry(slit) for slit in work.slits],
    )
    return work, handover
