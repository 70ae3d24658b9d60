"""jwst_mbkg_plus: a better JWST master background subtraction for stpipe."""

from importlib.metadata import PackageNotFoundError, version

from jwst_mbkg_plus.steps.mos_step import JWST_EQUIVALENT_SETTINGS, MasterBackgroundMosPlusStep
from jwst_mbkg_plus.steps.pipelines import Spec2PipelinePlus, Spec3PipelinePlus
from jwst_mbkg_plus.steps.spec3_step import MasterBackgroundPlusStep

try:
    __version__ = version("jwst_mbkg_plus")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "JWST_EQUIVALENT_SETTINGS",
    "MasterBackgroundMosPlusStep",
    "MasterBackgroundPlusStep",
    "Spec2PipelinePlus",
    "Spec3PipelinePlus",
    "__version__",
]
