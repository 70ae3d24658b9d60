"""jwst_mbkg_plus: a better JWST master background subtraction for stpipe.

The four classes are imported on first use (PEP 562), so that importing the
package, its ``algorithms``, ``stpipe list`` and ``jwst-mbkg-plus --help`` load
no jwst module.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jwst_mbkg_plus")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Public name -> module that defines it.
_LAZY = {
    "JWST_EQUIVALENT_SETTINGS": "jwst_mbkg_plus.mos.options",
    "MasterBackgroundMosPlusStep": "jwst_mbkg_plus.mos.step",
    "MasterBackgroundPlusStep": "jwst_mbkg_plus.spec3.step",
    "Spec2PipelinePlus": "jwst_mbkg_plus.pipelines",
    "Spec3PipelinePlus": "jwst_mbkg_plus.pipelines",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
