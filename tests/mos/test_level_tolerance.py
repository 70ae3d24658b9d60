"""Vetting with calibration scatter: a merely mis-calibrated background spectrum is kept."""

import numpy as np

from jwst_mbkg_plus.algorithms import master as core
from jwst_mbkg_plus.mos.vetting import MIN_LEVEL_DEVIATION, level_tolerance


def _spectra(levels, rng, noise=0.01):
    wave = np.linspace(1.7, 3.1, 400)
    sky = 1 + 0.3 * np.exp(-0.5 * ((wave - 2.3) / 0.01) ** 2) + 0.2 * (wave - 1.7)
    flux = np.array([lev * sky * (1 + noise * rng.standard_normal(wave.size)) for lev in levels])
    return wave, flux, (noise * flux) ** 2


def test_miscalibrated_slitlet_is_not_rejected():
    rng = np.random.default_rng(2)
    levels = 1 + rng.normal(0, 0.03, 12)
    levels[5] = 0.92  # 8% low: its calibration, not a source
    wave, flux, var = _spectra(levels, rng)
    names = [str(i) for i in range(12)]
    strict = core.vet_by_count(flux, var, names, wavelength=wave)
    assert not strict.consensus.accepted[5]  # the fixed 5% would reject it
    tol = level_tolerance(flux)
    assert tol > 0.08
    vetted = core.vet_by_count(flux, var, names, wavelength=wave, min_deviation=tol)
    assert vetted.consensus.accepted.all()


def test_well_calibrated_spectra_keep_the_floor():
    rng = np.random.default_rng(3)
    wave, flux, _ = _spectra(1 + rng.normal(0, 0.002, 12), rng)
    assert level_tolerance(flux) == MIN_LEVEL_DEVIATION
    assert level_tolerance(flux[:3]) == MIN_LEVEL_DEVIATION


def test_clustered_levels_keep_a_miscalibrated_slitlet():
    # Levels measured in a G235M scene with 2.4 % injected scatter: 7 of 12 happen to
    # lie within 0.5 % of one another, and a biweight scale alone (0.6 %) left the
    # floor, which rejected the +5.4 % slitlet, a calibration offset.
    levels = np.array([0.9647, 0.998, 1.0045, 1.0049, 1.0035, 0.9982, 0.9695, 1.054,
                       0.9829, 1.0356, 1.003, 0.9998])
    rng = np.random.default_rng(4)
    wave, flux, var = _spectra(levels, rng)
    tol = level_tolerance(flux)
    assert tol > 0.08
    names = [str(i) for i in range(12)]
    vetted = core.vet_by_count(flux, var, names, wavelength=wave, min_deviation=tol)
    assert vetted.consensus.accepted.all()


def test_gross_level_excess_is_still_rejected():
    # One slitlet 30 % above eleven with a 3 % calibration scatter: beyond what the
    # scatter explains, whatever the estimator.
    for seed in range(5):
        rng = np.random.default_rng(10 + seed)
        levels = 1 + rng.normal(0, 0.03, 12)
        levels[3] = 1.30
        wave, flux, var = _spectra(levels, rng)
        tol = level_tolerance(flux)
        assert tol < 0.25
        names = [str(i) for i in range(12)]
        vetted = core.vet_by_count(flux, var, names, wavelength=wave, min_deviation=tol)
        assert not vetted.consensus.accepted[3]
        assert vetted.consensus.accepted.sum() == 11
