"""Small in-memory datamodels shared by the bad-input tests."""

import numpy as np
from stdatamodels.jwst import datamodels


def fake_mos_model(n_slits=2, exp_type="NRS_MSASPEC", shape=(20, 300)):
    """A MultiSlitModel as after srctype (enough for the checks made before any work)."""
    model = datamodels.MultiSlitModel()
    model.meta.exposure.type = exp_type
    model.meta.filename = "fake_mos.fits"
    for i in range(n_slits):
        slit = datamodels.SlitModel(np.ones(shape, dtype=np.float32))
        slit.name = str(i + 1)
        slit.slitlet_id = i + 1
        slit.source_name = f"9999_BKG{i + 1}" if i % 2 == 0 else f"9999_{1000 + i}"
        slit.source_id = i + 1
        model.slits.append(slit)
    return model
