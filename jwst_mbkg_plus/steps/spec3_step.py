"""The master background step of calwebb_spec3, plus."""

import logging

from jwst.master_background import MasterBackgroundStep

from jwst_mbkg_plus.steps._common import PlusMixin

__all__ = ["MasterBackgroundPlusStep"]

log = logging.getLogger(__name__)


class MasterBackgroundPlusStep(PlusMixin, MasterBackgroundStep):
    """
    Compute and subtract a master background for calwebb_spec3, plus.

    A drop-in replacement for `~jwst.master_background.MasterBackgroundStep`
    (NIRSpec fixed slit and IFU, MIRI LRS and MRS): same parameters and the
    same status keyword, ``meta.cal_step.master_background``.
    """

    class_alias = "master_background_plus"

    spec = """
    """
