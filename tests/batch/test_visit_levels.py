"""The visit master's level fit, on plain slits (no pipeline)."""

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.mos.visit import exposure_name, fit_levels


def _slit(slitlet_id, level, rng, *, shape=(20, 400), noise=0.05, ystart=100, xstart=300):
    wave = np.linspace(1.7, 3.1, shape[1])
    sky = 0.3 * (wave / 1.5) ** -2.2 * np.ones(shape)
    flat = 1 + 0.1 * np.sin(np.arange(shape[1]) / 7.0)  # cancels: same pixels
    truth = level * sky * flat
    slit = datamodels.SlitModel(shape)
    slit.data = (truth + rng.normal(0, noise, shape) * truth).astype(np.float32)
    slit.var_poisson = ((noise * truth) ** 2).astype(np.float32)
    slit.var_rnoise = np.zeros(shape, np.float32)
    slit.var_flat = np.zeros(shape, np.float32)
    slit.dq = np.zeros(shape, np.uint32)
    slit.name = str(slitlet_id)
    slit.slitlet_id = slitlet_id
    slit.xstart, slit.ystart = xstart, ystart + 30 * slitlet_id
    return slit


def test_fit_levels_recovers_a_drift():
    rng = np.random.default_rng(3)
    true = np.array([0.99, 1.0, 1.01])
    exposures = [[_slit(k, lev, rng) for k in (1, 2, 3)] for lev in true]
    # A hot pixel in one exposure is left out of the fit.
    exposures[1][0].data[5, 50] *= 500
    levels = fit_levels(["a", "b", "c"], exposures)
    assert levels.levels.mean() == pytest.approx(1.0)
    assert np.max(np.abs(levels.levels - true)) < 0.002
    assert np.all(levels.errors > 0) and np.all(levels.errors < 0.002)
    record = levels.to_record()
    assert set(record["levels"]) == {"a", "b", "c"}
    assert set(record["level_slits"]) == {"1", "2", "3"}


def test_fit_levels_needs_a_shared_slitlet():
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="shared"):
        fit_levels(["a", "b"], [[_slit(1, 1.0, rng)], [_slit(2, 1.0, rng)]])


def test_exposure_name():
    assert exposure_name("/x/jw1_00001_nrs1_rate.fits") == "jw1_00001_nrs1"
    assert exposure_name("jw1_00001_nrs1_bkgcal.fits") == "jw1_00001_nrs1"
    assert exposure_name("jw1_00001_nrs1_cal.fits") == "jw1_00001_nrs1"


def test_fit_levels_leaves_out_a_slitlet_with_a_moving_source():
    rng = np.random.default_rng(5)
    true = np.array([0.99, 1.0, 1.01])
    exposures = [[_slit(k, lev, rng) for k in (1, 2, 3, 4)] for lev in true]
    # A source in slitlet 4 in the second nod only (+5%).
    exposures[1][3].data *= 1.05
    levels = fit_levels(["a", "b", "c"], exposures)
    assert levels.excluded == ["4"]
    assert np.max(np.abs(levels.levels - true)) < 0.002
    assert levels.to_record()["level_slits"]["4"]["used"] is False
