"""Moved to `jwst_mbkg_plus.mos.step`; kept for parameter files exported by 0.1."""

from jwst_mbkg_plus.mos.step import JWST_EQUIVALENT_SETTINGS, MasterBackgroundMosPlusStep

__all__ = ["JWST_EQUIVALENT_SETTINGS", "MasterBackgroundMosPlusStep"]
