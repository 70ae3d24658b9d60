"""Step and pipeline classes of jwst_mbkg_plus."""
