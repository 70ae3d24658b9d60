"""The MOS master background step of calwebb_spec2, plus."""

import logging

from jwst.master_background import MasterBackgroundMosStep

from jwst_mbkg_plus.steps._common import PlusMixin

__all__ = ["MasterBackgroundMosPlusStep"]

log = logging.getLogger(__name__)


class MasterBackgroundMosPlusStep(PlusMixin, MasterBackgroundMosStep):
    """
    Compute and subtract a NIRSpec MOS master background, plus.

    A drop-in replacement for `~jwst.master_background.MasterBackgroundMosStep`:
    the same nested steps (flat_field, pathloss, barshadow, photom,
    pixel_replace, resample_spec, extract_1d) and the same parameters, so
    existing ``steps`` dictionaries and parameter files keep working. It keeps
    recording its status under ``meta.cal_step.master_background``.
    """

    class_alias = "master_background_mos_plus"

    # Keys added here merge with the parent's spec along the MRO.
    spec = """
    """
