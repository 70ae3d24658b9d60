"""Tests for jwst_mbkg_plus.algorithms.adaptive_smoothing: smoothing a master by evidence."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.adaptive_smoothing import adaptive_smooth, local_polynomial

pytestmark = pytest.mark.filterwarnings("error")

N = 1500
X = np.arange(N, dtype=float)
#: A smooth sky continuum (a slow wave and a rise), and a narrow emission line
#: (Gaussian, sigma 1.5 samples: about a resolution element) at sample 700.
CONTINUUM = 1.0 + 0.4 * np.sin(X / 300.0) + 0.3 * (X / N) ** 3
LINE_AT, LINE_SIGMA, LINE_PEAK = 700, 1.5, 0.3
LINE = LINE_PEAK * np.exp(-0.5 * ((X - LINE_AT) / LINE_SIGMA) ** 2)
TRUTH = CONTINUUM + LINE
NEAR_LINE = np.abs(X - LINE_AT) <= 10
FAR = np.abs(X - LINE_AT) > 40


def _noisy(noise, seed):
    sigma = noise * TRUTH
    return TRUTH + np.random.default_rng(seed).normal(size=N) * sigma, sigma


@pytest.mark.parametrize("noise", [0.01, 0.05])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_noise_drops_and_line_is_kept(noise, seed):
    flux, sigma = _noisy(noise, seed)
    res = adaptive_smooth(flux, sigma**2)
    # The continuum's noise drops by more than 3 (a 129-sample local quadratic
    # could reach about 7; the rule gives up some of it near structure).
    raw_rms = np.std((flux - TRUTH)[FAR] / sigma[FAR])
    smooth_rms = np.std((res.flux - TRUTH)[FAR] / sigma[FAR])
    assert smooth_rms < raw_rms / 3
    # The line: its peak within the noise of one sample, its equivalent width
    # (sum over +/- 10 samples above the continuum) within the noise of that
    # sum (4 sigma for one seed; the bias over seeds is tested below).
    peak_bias, ew_bias = _line_biases(res.flux, sigma)
    assert abs(peak_bias) < 4
    assert abs(ew_bias) < 4
    # On the continuum the rule takes wide windows; across a line detected at
    # 23 sigma per sample (1 %) narrow ones.
    assert np.median(res.half_width[FAR]) >= 32
    if noise == 0.01:
        assert np.all(res.half_width[LINE_AT - 3:LINE_AT + 4] <= 6)


def _line_biases(smoothed, sigma):
    """The line's peak and equivalent width minus the truth, in units of their noise."""
    peak = smoothed[LINE_AT] - CONTINUUM[LINE_AT]
    ew = np.sum(smoothed[NEAR_LINE] - CONTINUUM[NEAR_LINE])
    return ((peak - LINE_PEAK) / sigma[LINE_AT],
            (ew - LINE[NEAR_LINE].sum()) / np.sqrt(np.sum(sigma[NEAR_LINE] ** 2)))


@pytest.mark.parametrize("noise", [0.01, 0.05])
def test_line_bias_over_seeds_is_within_its_noise(noise):
    """Over 20 seeds the smoothed line's peak and EW are biased by < 1.5 sigma."""
    biases = np.array([_line_biases(adaptive_smooth(f, s**2).flux, s)
                       for f, s in (_noisy(noise, seed) for seed in range(100, 120))])
    mean_peak, mean_ew = biases.mean(axis=0)
    assert abs(mean_peak) < 1.5
    assert abs(mean_ew) < 1.5
    # One wide window whatever the evidence (so the check can fail) loses the peak.
    flat = np.array([_line_biases(adaptive_smooth(f, s**2, half_widths=(64,),
                                                  threshold=1e6).flux, s)
                     for f, s in (_noisy(noise, seed) for seed in range(100, 103))])
    assert np.all(np.abs(flat[:, 0]) > 3)


def test_variance_is_honest():
    """Over seeds, (smoothed - truth) / sqrt(var) has unit spread (the continuum)."""
    pulls = []
    for seed in range(10, 30):
        flux, sigma = _noisy(0.02, seed)
        res = adaptive_smooth(flux, sigma**2)
        pulls.append(((res.flux - TRUTH) / np.sqrt(res.var))[FAR])
    pulls = np.concatenate(pulls)
    assert 0.9 < np.std(pulls) < 1.1
    assert abs(np.mean(pulls)) < 0.1


def test_noise_free_spectrum_passes_unchanged():
    # No variance: nothing is known about the noise, nothing is smoothed.
    res = adaptive_smooth(TRUTH, np.zeros(N))
    np.testing.assert_array_equal(res.flux, TRUTH)
    np.testing.assert_array_equal(res.var, np.zeros(N))
    assert not res.half_width.any()
    # A tiny variance on a noise-free spectrum: nothing moves beyond it.
    sigma = 1e-7 * TRUTH
    res = adaptive_smooth(TRUTH, sigma**2)
    assert np.max(np.abs(res.flux - TRUTH) / sigma) < 4
    assert res.half_width[LINE_AT] == 0


def test_steep_rise_is_followed():
    """An exponential thermal rise: no bias beyond the smoothed estimate's noise."""
    truth = 0.2 + np.exp((X - N) / 60.0) * 50
    biases = []
    for seed in range(5):
        sigma = 0.02 * truth
        flux = truth + np.random.default_rng(seed).normal(size=N) * sigma
        res = adaptive_smooth(flux, sigma**2)
        biases.append((res.flux - truth) / np.sqrt(res.var))
    mean_pull = np.mean(biases, axis=0)
    # Averaged over 5 seeds a bias of 1 sigma would show as > 1 sigma / sqrt(5) * 3.
    assert np.max(np.abs(mean_pull[-300:])) < 3 / np.sqrt(5) + 1


def test_gaps_stay_nan_and_are_bridged():
    flux, sigma = _noisy(0.05, 7)
    flux[300:320] = np.nan
    var = sigma**2
    var[900] = np.nan
    res = adaptive_smooth(flux, var)
    assert np.all(np.isnan(res.flux[300:320]))
    assert np.all(np.isfinite(res.flux[:300])) and np.all(np.isfinite(res.flux[320:]))
    # A sample without a variance is left as it is (and is no one's neighbour).
    assert res.flux[900] == flux[900]
    assert res.half_width[900] == 0
    assert np.std((res.flux - TRUTH)[280:340][np.isfinite(res.flux[280:340])]) < 0.02


def test_local_polynomial_reproduces_a_quadratic():
    """The equivalent kernels of a local quadratic reproduce any quadratic exactly."""
    y = 2.0 - 0.01 * X[:200] + 3e-4 * X[:200] ** 2
    w = np.ones(200)
    w[50:55] = 0  # a gap
    kern = local_polynomial(w, 8, degree=2)
    padded = np.pad(y, 8)
    fit = np.array([kern[j] @ padded[j:j + 17] for j in range(200)])
    np.testing.assert_allclose(fit, y, rtol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"half_widths": (4, 3)}, "half_widths"),
        ({"half_widths": (1, 3)}, "half_widths"),
        ({"threshold": 0.0}, "threshold"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adaptive_smooth(TRUTH, np.ones(N), **kwargs)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="1-D of one shape"):
        adaptive_smooth(TRUTH, np.ones(N - 1))


def test_inputs_not_modified():
    flux, sigma = _noisy(0.05, 9)
    var = sigma**2
    before = flux.copy(), var.copy()
    adaptive_smooth(flux, var)
    np.testing.assert_array_equal(flux, before[0])
    np.testing.assert_array_equal(var, before[1])
