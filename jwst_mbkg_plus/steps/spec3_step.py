"""Moved to `jwst_mbkg_plus.spec3.step`; kept for parameter files exported by 0.1."""

from jwst_mbkg_plus.spec3.step import MasterBackgroundPlusStep

__all__ = ["MasterBackgroundPlusStep"]
