"""jwst's calwebb_spec2 and calwebb_spec3 with the plus master background steps.

stpipe builds sub-steps from the class's ``step_defs`` and ignores any ``class``
key given for a sub-step, so the only clean way to swap a sub-step is a
pipeline subclass. The sub-step names are jwst's, so existing ``steps``
dictionaries and parameter files work after changing the pipeline class only.
"""

import logging

from jwst.flatfield import FlatFieldStep
from jwst.pipeline import Spec2Pipeline, Spec3Pipeline

from jwst_mbkg_plus.mos.step import MasterBackgroundMosPlusStep
from jwst_mbkg_plus.plus_step import PipelinePlusMixin, PlusMixin
from jwst_mbkg_plus.spec3.step import MasterBackgroundPlusStep

__all__ = ["FlatFieldReuseStep", "Spec2PipelinePlus", "Spec3PipelinePlus"]

log = logging.getLogger(__name__)


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
            output_model = self.prepare_output(input_data)
            flats = self._reusable_flats(output_model, handover)
            if flats is None:
                return super().process(output_model)
            return self._apply(output_model, flats)
        finally:
            handover.close()

    def _reusable_flats(self, model, handover):
        """The flat of every slit (reused or rebuilt), or None to run jwst's step."""
        from jwst_mbkg_plus.mos.calibration import (
            dispersion_axis,
            flat_reference_files,
            interpolate_slit_flat,
            open_flat_references,
        )

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
        from jwst.flatfield import flat_field
        from stdatamodels.jwst import datamodels

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


class Spec2PipelinePlus(PipelinePlusMixin, Spec2Pipeline):
    """
    `~jwst.pipeline.Spec2Pipeline` with `MasterBackgroundMosPlusStep`.

    The sub-step keeps jwst's name, ``master_background_mos``. For NIRSpec MOS
    with the master background on, the pipeline's flat_field applies the flat
    the master background step already interpolated, where it is valid for
    the slit, instead of interpolating it a second time; the results are
    jwst's.
    """

    class_alias = "calwebb_spec2_plus"

    #: master_background_mos keeps its interpolated flat for flat_field.
    takes_flat_handover = True

    step_defs = {
        **Spec2Pipeline.step_defs,
        "master_background_mos": MasterBackgroundMosPlusStep,
        "flat_field": FlatFieldReuseStep,
    }

    def process_exposure_product(self, *args, **kwargs):
        """
        Calibrate one exposure; a flat kept for another exposure is never reused.

        Parameters
        ----------
        *args, **kwargs
            As for `~jwst.pipeline.Spec2Pipeline.process_exposure_product`.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.JwstDataModel`
            The calibrated product.
        """
        self._drop_flat_handover()
        try:
            return super().process_exposure_product(*args, **kwargs)
        finally:
            self._drop_flat_handover()

    def _drop_flat_handover(self):
        handover = self.master_background_mos.take_flat_handover()
        if handover is not None:
            handover.close()


class Spec3PipelinePlus(PipelinePlusMixin, Spec3Pipeline):
    """
    `~jwst.pipeline.Spec3Pipeline` with `MasterBackgroundPlusStep`.

    The sub-step keeps jwst's name, ``master_background``.
    """

    class_alias = "calwebb_spec3_plus"

    step_defs = {**Spec3Pipeline.step_defs, "master_background": MasterBackgroundPlusStep}

