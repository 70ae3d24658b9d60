"""jwst's calwebb_spec2 and calwebb_spec3 with the plus master background steps.

stpipe builds sub-steps from the class's ``step_defs`` and ignores any ``class``
key given for a sub-step, so the only clean way to swap a sub-step is a
pipeline subclass. The sub-step names are jwst's, so existing ``steps``
dictionaries and parameter files work after changing the pipeline class only.
"""

from jwst.pipeline import Spec2Pipeline, Spec3Pipeline

from jwst_mbkg_plus.steps._common import PlusMixin
from jwst_mbkg_plus.steps.mos_step import MasterBackgroundMosPlusStep
from jwst_mbkg_plus.steps.spec3_step import MasterBackgroundPlusStep

__all__ = ["Spec2PipelinePlus", "Spec3PipelinePlus"]


class Spec2PipelinePlus(PlusMixin, Spec2Pipeline):
    """
    `~jwst.pipeline.Spec2Pipeline` with `MasterBackgroundMosPlusStep`.

    The sub-step keeps jwst's name, ``master_background_mos``.
    """

    class_alias = "calwebb_spec2_plus"

    step_defs = {**Spec2Pipeline.step_defs, "master_background_mos": MasterBackgroundMosPlusStep}


class Spec3PipelinePlus(PlusMixin, Spec3Pipeline):
    """
    `~jwst.pipeline.Spec3Pipeline` with `MasterBackgroundPlusStep`.

    The sub-step keeps jwst's name, ``master_background``.
    """

    class_alias = "calwebb_spec3_plus"

    step_defs = {**Spec3Pipeline.step_defs, "master_background": MasterBackgroundPlusStep}
