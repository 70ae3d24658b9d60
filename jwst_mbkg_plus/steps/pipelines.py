"""Moved to `jwst_mbkg_plus.pipelines`; kept for parameter files exported by 0.1."""

from jwst_mbkg_plus.pipelines import FlatFieldReuseStep, Spec2PipelinePlus, Spec3PipelinePlus

__all__ = ["FlatFieldReuseStep", "Spec2PipelinePlus", "Spec3PipelinePlus"]
