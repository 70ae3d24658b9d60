"""NIRSpec MOS master background (calwebb_spec2): the plus step and its engine.

* :mod:`.step`: `MasterBackgroundMosPlusStep` (parameters, orchestration, products);
* :mod:`.calibration`, :mod:`.flat_handover`: the one calibration pass (flat_field,
  pathloss, barshadow, photom as extended) and its inverse;
* :mod:`.master`: the master background from the background slitlets;
* :mod:`.subtract`: its expansion to each slit, un-calibration and subtraction;
* :mod:`.qa`: the residual QA record.

Nothing is imported here, so that ``import jwst_mbkg_plus.mos`` loads no jwst code.
"""
