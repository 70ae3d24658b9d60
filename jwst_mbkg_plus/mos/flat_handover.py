"""The NIRSpec MOS flat interpolated once: by the forward pass, reused by calwebb_spec2.

jwst's flat_field interpolates the MOS flat of every slit from the f/s/d-flat
reference files, the slit's geometry and its pixel wavelengths; the plus step's
forward pass does that work already. :func:`flat_field_keeping_flat` keeps
that flat (:class:`FlatHandover`), and :class:`FlatFieldReuseStep`, the
flat_field of `~jwst_mbkg_plus.Spec2PipelinePlus`, applies it to the science
where it is valid, slit by slit. Both apply flats through jwst's own
``flat_field.do_correction``; the guards of ``FlatFieldStep.process`` they
re-code are fenced in `jwst_mbkg_plus.jwst_internals`.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jwst.flatfield import FlatFieldStep, flat_field
from jwst.flatfield.flat_field import create_flat_field, flat_for_nirspec_slit
from jwst.lib.wcs_utils import get_wavelengths
from stdatamodels.jwst import datamodels
from stpipe import crds_client

from jwst_mbkg_plus.jwst_internals import (
    BADFLAT,
    HORIZONTAL,
    MICRONS_100,
    crds_parameters,
    prepare_output,
    record_reference_file,
)
from jwst_mbkg_plus.plus_step import PlusMixin

__all__ = [
    "FlatFieldReuseStep",
    "FlatHandover",
    "dispersion_axis",
    "flat_field_keeping_flat",
    "flat_reference_files",
    "interpolate_slit_flat",
    "interpolated_flats",
    "open_flat_references",
    "slit_geometry",
]

log = logging.getLogger(__name__)

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
    names, fetch = {}, []
    for reftype in flat_step.reference_file_types:
        if flat_step.get_ref_override(reftype) is not None:
            names[reftype] = flat_step.get_reference_file(model, reftype)
        else:
            fetch.append(reftype)
    if fetch:
        parameters, observatory = crds_parameters(flat_step, model)
        found = crds_client.get_multiple_reference_paths(parameters, fetch, observatory)
        for reftype in fetch:
            path = found[reftype]
            header_name = "N/A" if path == "N/A" else "crds://" + Path(path).name
            record_reference_file(flat_step, reftype, header_name)
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


def flat_field_keeping_flat(flat_step, work):
    """
    Apply flat_field as ``FlatFieldStep.process`` does, and keep the interpolated flat.

    The flats come from :func:`interpolated_flats` with the step's own
    reference files; jwst's ``do_correction`` applies them (its
    ``user_supplied_flat`` path, the arithmetic of every flat_field run).
    """
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


class FlatFieldReuseStep(PlusMixin, FlatFieldStep):
    """
    jwst's FlatFieldStep that reuses the NIRSpec MOS flat master_background_mos made.

    Same parameters, reference files and results as
    `~jwst.flatfield.FlatFieldStep`. When the parent pipeline's
    master_background_mos step interpolated the flat of these very slits
    (same reference files, geometry and pixel wavelengths, checked slit by
    slit), that flat is applied through jwst's own ``do_correction``
    (its ``user_supplied_flat`` path, in memory); slits whose wavelengths
    changed since (wavecorr of point sources) get a freshly interpolated
    flat. Otherwise the step is jwst's.
    """

    class_alias = "flat_field"

    def process(self, input_data):
        """
        Flat-field the data, reusing an interpolated flat where it is valid.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.JwstDataModel`
            Input data to correct.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.JwstDataModel`
            The flat-fielded data.
        """
        mbkg = getattr(self.parent, "master_background_mos", None)
        take = getattr(mbkg, "take_flat_handover", None)
        handover = take() if take is not None else None
        if handover is None:
            return super().process(input_data)
        try:
            output_model = prepare_output(self, input_data)
            flats = self._reusable_flats(output_model, handover)
            if flats is None:
                return super().process(output_model)
            return self._apply(output_model, flats)
        finally:
            handover.close()

    def _reusable_flats(self, model, handover):
        """The flat of every slit (reused or rebuilt), or None to run jwst's step."""
        if (
            self.user_supplied_flat is not None
            or self.inverse
            or model.meta.exposure.type != handover.exp_type
            or model.meta.instrument.lamp_mode == "IMAGE"
            or model.meta.cal_step.extract_2d != "COMPLETE"
            or not hasattr(model, "slits")
            or (model.meta.subarray.xstart, model.meta.subarray.ystart) != handover.subarray
        ):
            return None
        names = flat_reference_files(self, model)
        if names != handover.reference_files:
            log.info("flat_field: reference files differ from master_background_mos's; not reused")
            return None
        flats = [handover.flat_for(i, slit) for i, slit in enumerate(model.slits)]
        missing = [i for i, flat in enumerate(flats) if flat is None]
        log.info(
            "flat_field: reusing the flat interpolated by master_background_mos for %d of %d slits",
            len(flats) - len(missing),
            len(flats),
        )
        if missing:
            _, refs = open_flat_references(self, model, names)
            try:
                for i in missing:
                    flats[i] = interpolate_slit_flat(
                        model.slits[i],
                        refs,
                        exposure_type=model.meta.exposure.type,
                        dispaxis=dispersion_axis(model),
                        subarray=model.meta.subarray,
                    )
            finally:
                for ref in refs.values():
                    if ref is not None:
                        ref.close()
        return flats

    def _apply(self, model, flats):
        supplied = datamodels.MultiSlitModel(validate_on_assignment=False)
        supplied.update(model, only="PRIMARY")
        supplied.slits.extend(flats)
        model, flat_applied = flat_field.do_correction(
            model, user_supplied_flat=supplied, inverse=False
        )
        if self.save_interpolated_flat and flat_applied is not None:
            ff_path = self.save_model(flat_applied, suffix=self.flat_suffix, force=True)
            log.info(f'Interpolated flat written to "{ff_path}".')
        supplied.close()
        return model
