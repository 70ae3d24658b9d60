"""Comparisons shared by the tests that hold the plus step against jwst's step."""

import numpy as np


def max_plain_relative_difference(stock, plus):
    """Largest ``|plus - stock| / |stock|`` where both are finite (equal values: 0)."""
    stock, plus = np.asarray(stock, dtype=np.float64), np.asarray(plus, dtype=np.float64)
    differ = np.isfinite(stock) & np.isfinite(plus) & (plus != stock)
    if not differ.any():
        return 0.0
    with np.errstate(divide="ignore"):
        return float(np.max(np.abs(plus[differ] - stock[differ]) / np.abs(stock[differ])))


def strun_executable():
    """The ``strun`` console script beside this interpreter; skip the test without it."""
    import os
    import shutil
    import sys

    import pytest

    exe = shutil.which("strun", path=os.path.dirname(sys.executable))
    if exe is None:  # pragma: no cover - strun comes with stpipe
        pytest.skip("strun console script not found beside the interpreter")
    return exe


def skippable_multislit(path):
    """Save a MultiSlitModel whose master background is already done: a cheap real run."""
    from stdatamodels.jwst import datamodels

    model = datamodels.MultiSlitModel()
    model.meta.instrument.name = "NIRSPEC"
    model.meta.exposure.type = "NRS_MSASPEC"
    model.meta.cal_step.master_background = "COMPLETE"
    model.slits.append(datamodels.SlitModel())
    model.save(path)
    model.close()
    return path
