"""jwst's calwebb_spec2 and calwebb_spec3 with the plus master background steps.

stpipe builds sub-steps from the class's ``step_defs`` and ignores any ``class``
key given for a sub-step, so the only clean way to swap a sub-step is a
pipeline subclass. The sub-step names are jwst's, so existing ``steps``
dictionaries and parameter files work after changing the pipeline class only.
"""

import logging

from jwst.pipeline import Spec2Pipeline, Spec3Pipeline

from jwst_mbkg_plus.mos.flat_handover import FlatFieldReuseStep
from jwst_mbkg_plus.mos.step import MasterBackgroundMosPlusStep
from jwst_mbkg_plus.plus_step import PipelinePlusMixin
from jwst_mbkg_plus.spec3.step import MasterBackgroundPlusStep

__all__ = ["FlatFieldReuseStep", "Spec2PipelinePlus", "Spec3PipelinePlus"]

log = logging.getLogger(__name__)


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

