"""The MOS master is smoothed by evidence by default (``master_smoothing="adaptive"``)."""

import numpy as np
import pytest

from jwst_mbkg_plus.mos.combine import combine_master
from jwst_mbkg_plus.mos.options import MasterOptions

pytestmark = pytest.mark.filterwarnings("error")

N_WAVE = 800
GRID = np.linspace(1.7, 3.1, N_WAVE)
SKY = 0.3 * (GRID / 1.7) ** -2 + 0.02 * np.exp((GRID - 3.1) / 0.3)


def _spectra(noise=0.1, n=8, seed=3):
    rng = np.random.default_rng(seed)
    sigma = noise * SKY
    flux = SKY + rng.normal(size=(n, N_WAVE)) * sigma
    flux[:, 100:110] = np.nan  # a gap every spectrum shares
    return flux, np.broadcast_to(sigma**2, flux.shape).copy()


def test_adaptive_smooths_and_records_it():
    flux, var = _spectra()
    raw = combine_master(GRID, flux, var, MasterOptions(master_smoothing="none"))
    smooth = combine_master(GRID, flux, var, MasterOptions())  # the default smooths
    # The gap stays out of the master; the same wavelengths are defined.
    np.testing.assert_array_equal(raw.wavelength, smooth.wavelength)
    assert raw.wavelength.size == N_WAVE - 10
    truth = np.interp(smooth.wavelength, GRID, SKY)
    raw_err = np.std(raw.surf_bright / truth - 1)
    smooth_err = np.std(smooth.surf_bright / truth - 1)
    assert smooth_err < raw_err / 3
    # Its variance is the smoothed samples' own: honest pulls.
    pulls = (smooth.surf_bright - truth) / np.sqrt(smooth.var)
    assert 0.7 < np.std(pulls) < 1.3
    qa = smooth.qa["master_smoothing"]
    assert qa["method"] == "adaptive"
    assert qa["median_half_width"] >= 32
    assert qa["median_noise_reduction"] > 3
    assert raw.qa["master_smoothing"] == {"method": "none"}


def test_median_kernel_replaces_it():
    flux, var = _spectra()
    master = combine_master(GRID, flux, var,
                            MasterOptions(median_kernel=5, master_smoothing="adaptive"))
    assert master.qa["master_smoothing"]["method"] == "none"
    assert "median_kernel=5" in master.qa["master_smoothing"]["reason"]
    plain = combine_master(GRID, flux, var,
                           MasterOptions(median_kernel=5, master_smoothing="none"))
    np.testing.assert_array_equal(master.surf_bright, plain.surf_bright)
