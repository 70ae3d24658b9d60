"""``bkg_method='extract_1d'``: the background slitlets through jwst's own extraction.
"""


import copy
import logging

import numpy as np
from jwst.master_background.nirspec_utils import create_background_from_multispec
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.io.slits import (
    DO_NOT_USE,
)
from jwst_mbkg_plus.io.spectra import sort_by_wavelength, table_columns
from jwst_mbkg_plus.mos.options import MasterBackground

__all__ = [
    "extract_1d_spectra",
    "jwst_combination",
]

log = logging.getLogger(__name__)

def extract_1d_spectra(step, cal_model, indices, masks):
    """Run jwst's pixel_replace, resample_spec and extract_1d on the background slits."""
    bkg_model = datamodels.MultiSlitModel()
    bkg_model.update(cal_model)
    for i, mask in zip(indices, masks, strict=True):
        # pixel_replace works in place: hand it copies of the calibrated slits.
        bkg_model.slits.append(copy.deepcopy(cal_model.slits[i].instance))
        slit = bkg_model.slits[-1]
        if mask.any():
            slit.data[mask] = np.nan
            slit.dq[mask] |= DO_NOT_USE
    bkg_model = step.pixel_replace.run(bkg_model)
    bkg_model = step.resample_spec.run(bkg_model)
    x1d = step.extract_1d.run(bkg_model)
    waves, fluxes, variances = [], [], []
    for spec in x1d.spec:
        columns = sort_by_wavelength(
            table_columns(spec.spec_table, ("WAVELENGTH", "SURF_BRIGHT", "SB_ERROR"))
        )
        waves.append(columns["WAVELENGTH"])
        fluxes.append(columns["SURF_BRIGHT"])
        variances.append(columns["SB_ERROR"] ** 2)
    return waves, fluxes, variances, x1d


def jwst_combination(bkg_x1d, options):
    """jwst's own combine_1d + medfilt, for jwst-equivalent runs."""
    combined = create_background_from_multispec(
        bkg_x1d, sigma_clip=options.sigma_clip, median_kernel=options.median_kernel
    )
    columns = sort_by_wavelength(table_columns(
        combined.spec[0].spec_table, ("WAVELENGTH", "SURF_BRIGHT", "SB_ERROR", "N_INPUT")
    ))
    combined.close()
    sb, err, n_input = columns["SURF_BRIGHT"], columns["SB_ERROR"], columns["N_INPUT"]
    return MasterBackground(
        wavelength=columns["WAVELENGTH"],
        surf_bright=sb,
        var=np.where(np.isfinite(err), err**2, 0.0),
        n_used=n_input,
        qa={"combine": "jwst combine_1d"},
    )



