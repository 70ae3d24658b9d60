"""Where the step classes lived before 0.2: re-exports, so that old parameter files load.

stpipe writes the full class path into exported parameter files
(``class: jwst_mbkg_plus.steps.pipelines.Spec2PipelinePlus``); files exported by
jwst_mbkg_plus 0.1 name these modules. The classes now live in
`jwst_mbkg_plus.mos.step`, `jwst_mbkg_plus.spec3.step` and `jwst_mbkg_plus.pipelines`.
"""
