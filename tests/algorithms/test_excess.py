"""Tests for jwst_mbkg_plus.algorithms.excess: an additive excess is not a smooth level."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.excess import additive_excess, compare_pair
from jwst_mbkg_plus.algorithms.selection import vet_spectra

pytestmark = pytest.mark.filterwarnings("error")

N_WAVE = 400
T = np.linspace(0.0, 1.0, N_WAVE)


def _continuum(t=T):
    return 1.0 + 0.4 * t + 0.1 * np.sin(3.0 * t)


def _sky(width=0.012, shift=0.0):
    """Continuum plus one emission line (25 % peak, fixed flux), as in spec3_inputs."""
    c = _continuum()
    return c + 0.25 * (0.012 / width) * c * np.exp(-0.5 * ((T - 0.6 - shift) / width) ** 2)


def _pair(rng, noise, *, level=0.0, tilt=0.0, contamination=0.0, holder=1, second=None):
    sky = _sky()
    flux = np.vstack([sky, (sky if second is None else second) * (1 + level + tilt * (T - 0.5))])
    flux[holder] += contamination * _continuum()
    sigma = noise * sky
    flux = flux + rng.normal(size=flux.shape) * sigma
    return flux, np.vstack([sigma**2, sigma**2])


@pytest.mark.parametrize("noise", [0.05, 0.2])
def test_clean_pairs_never_called_contaminated(noise):
    """100 seeds of clean pairs, random level and chromatic tilt of up to 4 %."""
    scores, verdicts = [], []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        flux, var = _pair(rng, noise, level=rng.uniform(-0.04, 0.04),
                          tilt=rng.uniform(-0.04, 0.04))
        result = compare_pair(flux, var)
        verdicts.append(result.verdict)
        scores.append(result.excess.score)
        # spec3's level limit (10 %) never fires on clean pairs either.
        assert compare_pair(flux, var, level_limit=0.1).verdict == result.verdict
    assert "contaminated" not in verdicts
    assert verdicts.count("consistent") == 100
    # The shape test's significance is calibrated.
    assert abs(np.mean(scores)) < 0.3
    assert 0.8 < np.std(scores) < 1.2


def test_three_percent_level_is_not_contamination():
    for seed in range(10):
        flux, var = _pair(np.random.default_rng(seed), 0.003, level=0.03)
        result = compare_pair(flux, var)
        assert result.verdict == "consistent", result.message
        assert result.contaminated is None
        assert result.brighter == 1
        assert result.level_difference == pytest.approx(0.03, abs=0.002)
        assert result.level_score > 20  # significant, yet only a level
        assert abs(result.excess.score) < 5


@pytest.mark.parametrize("holder", [0, 1])
@pytest.mark.parametrize("noise", [0.003, 0.01])
def test_contamination_found_and_named(holder, noise):
    for seed in range(5):
        flux, var = _pair(np.random.default_rng(seed), noise, contamination=0.3, holder=holder)
        result = compare_pair(flux, var)
        assert result.verdict == "contaminated", result.message
        assert result.contaminated == holder
        assert result.brighter == holder
        if noise == 0.003:
            assert result.excess.excess == pytest.approx(0.3, abs=0.05)


def test_contaminated_fainter_spectrum_named():
    """The clean spectrum is 10 % brighter (another quadrant); the fainter holds the source."""
    flux, var = _pair(np.random.default_rng(3), 0.003, level=0.3, contamination=0.1, holder=0)
    result = compare_pair(flux, var)
    assert result.brighter == 1
    assert result.verdict == "contaminated"
    assert result.contaminated == 0


def test_same_shape_excess_is_undecided():
    """+30 % with the sky's own shape: the brighter is suspect, nothing proves it."""
    flux, var = _pair(np.random.default_rng(4), 0.003, level=0.3)
    result = compare_pair(flux, var)
    assert result.verdict == "undecided"
    assert result.contaminated is None
    assert result.brighter == 1
    record = result.to_record(("a", "b"))
    assert record["brighter"] == "b"
    assert record["level_difference"] == pytest.approx(0.3, abs=0.01)


@pytest.mark.parametrize("noise", [0.003, 0.05, 0.2])
@pytest.mark.parametrize("holder", [0, 1])
def test_level_beyond_the_limit_names_the_brighter(noise, holder):
    """+30 % (sky's shape or continuum): beyond level_limit the brighter holds it."""
    for seed in range(5):
        for kind in ("level", "contamination"):
            flux, var = _pair(np.random.default_rng(seed), noise, **{kind: 0.3})
            if holder == 0:
                flux, var = flux[::-1].copy(), var[::-1].copy()
            result = compare_pair(flux, var, level_limit=0.1)
            assert result.verdict == "contaminated", result.message
            assert result.contaminated == holder == result.brighter
            if kind == "level":
                assert result.basis == "level"
                assert result.to_record(("a", "b"))["basis"] == "level"


def test_level_between_tolerance_and_limit_stays_undecided():
    """+8 %: too much for a nod offset, not enough to say a sky cannot be that bright."""
    flux, var = _pair(np.random.default_rng(9), 0.003, level=0.08)
    result = compare_pair(flux, var, level_limit=0.1)
    assert result.verdict == "undecided" and result.contaminated is None


def test_faint_lines_leave_it_undecided():
    """At 5 % noise one line is too faint to show the excess's shape: no guess."""
    flux, var = _pair(np.random.default_rng(5), 0.05, contamination=0.3)
    assert compare_pair(flux, var).verdict == "undecided"


@pytest.mark.parametrize(("width", "shift"), [(0.0126, 0.0), (0.0108, 0.0), (0.012, 0.004)])
def test_resolution_and_shift_are_no_excess(width, shift):
    for seed in range(5):
        flux, var = _pair(np.random.default_rng(seed), 0.003, level=0.02,
                          second=_sky(width, shift))
        result = compare_pair(flux, var)
        assert result.verdict == "consistent", result.message


def test_without_variances():
    flux, var = _pair(np.random.default_rng(6), 0.003, contamination=0.3)
    assert compare_pair(flux).contaminated == 1
    flux, var = _pair(np.random.default_rng(6), 0.003, level=0.03)
    assert compare_pair(flux).verdict == "consistent"


def test_too_few_samples_and_bad_input():
    flux = np.full((2, N_WAVE), np.nan)
    flux[:, :5] = 1.0
    result = compare_pair(flux)
    assert result.verdict == "undecided"
    assert additive_excess(flux[0], flux[1]).score == 0
    with pytest.raises(ValueError, match="shape"):
        compare_pair(np.ones((3, 10)))
    with pytest.raises(ValueError, match="shape"):
        additive_excess(np.ones(10), np.ones(11))


def _many(rng, noise, n=9, bad=()):
    sky = _sky()
    levels = 1 + rng.uniform(-0.03, 0.03, n)[:, None] + rng.uniform(-0.03, 0.03, n)[:, None] * (
        T - 0.5)
    flux = sky * levels
    for b in bad:
        flux[b] += 0.1 * _continuum()
    sigma = noise * sky
    return flux + rng.normal(size=flux.shape) * sigma, np.broadcast_to(sigma**2, flux.shape)


@pytest.mark.parametrize("noise", [0.05, 0.2])
def test_shape_test_rejects_no_clean_spectrum_among_many(noise):
    """9 clean spectra with smooth chromatic levels within +-3 %, 30 seeds."""
    for seed in range(30):
        flux, var = _many(np.random.default_rng(seed), noise)
        assert vet_spectra(flux, var).accepted.all()


def test_shape_test_finds_what_the_level_test_cannot():
    """+10 % of continuum in one of 9: found by its shape with the level test made blind."""
    flux, var = _many(np.random.default_rng(1), 0.003, bad=(4,))
    result = vet_spectra(flux, var, min_deviation=0.2)
    np.testing.assert_array_equal(np.flatnonzero(~result.accepted), [4])
    assert "additive excess" in result.reasons[4]
    assert vet_spectra(flux, var, min_deviation=0.2, shape_test=False).accepted.all()


def test_three_spectra_one_contaminated():
    """A majority of one: the shape test may reject down to two spectra."""
    flux, var = _many(np.random.default_rng(2), 0.003, n=3, bad=(0,))
    result = vet_spectra(flux, var)
    np.testing.assert_array_equal(result.accepted, [False, True, True])
    clean, clean_var = _many(np.random.default_rng(2), 0.003, n=3)
    assert vet_spectra(clean, clean_var).accepted.all()


def test_low_signal_to_noise_per_sample_is_no_excess():
    """Clean spectra at ~50 % noise per sample (photon counting, a few electrons of sky).

    The contrast of two such spectra is a ratio of noisy numbers whose mean shifts
    at the sky's lines: unbinned, clean spectra scored +4 sigma and some were
    rejected. The samples are averaged to `MAX_SAMPLE_NOISE` first.
    """
    t = np.linspace(0.0, 1.0, 1167)
    centres = np.random.default_rng(0).uniform(0.02, 0.98, 25)
    sky = (1.0 + 0.4 * t + 0.6 * np.exp(-0.5 * ((centres[:, None] - t) / 0.004) ** 2).sum(axis=0))
    scores = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        sigma = 0.5 * sky
        flux = sky + rng.normal(size=(9, t.size)) * sigma
        result = vet_spectra(flux, np.broadcast_to(sigma**2, flux.shape), wavelength=t)
        assert result.accepted.all()
        scores.append(result.excess_score)
    scores = np.concatenate(scores)
    scores = scores[np.isfinite(scores)]
    assert scores.size > 50
    assert abs(np.mean(scores)) < 1.0
