"""calwebb_spec3 master background (NIRSpec FS/IFU, MIRI LRS/MRS): the plus step and its engine.

* :mod:`.step`: `MasterBackgroundPlusStep`;
* :mod:`.collect`: background spectra from the ``exptype: background`` x1d members;
* :mod:`.master`: the master background from them, or from a user spectrum;
* :mod:`.subtract`: its expansion to each science exposure and subtraction;
* :mod:`.run`: the driver the step calls.

Nothing is imported here, so that ``import jwst_mbkg_plus.spec3`` loads no jwst code.
"""
