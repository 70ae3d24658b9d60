"""Robust pull statistics: the spread measures the errors, not a few hot pixels."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.pulls import (
    OUTLIER_THRESHOLD,
    pooled_summary,
    pull_definition,
    pull_statistics,
)


def test_spread_ignores_hot_pixels_the_std_does_not():
    rng = np.random.default_rng(5)
    pulls = rng.standard_normal(20000)
    hot = rng.choice(pulls.size, 10, replace=False)  # 0.05 %, as on the demo exposure
    pulls[hot] = 150.0
    stats = pull_statistics(pulls)
    assert stats["spread"] == pytest.approx(1.0, abs=0.02)
    assert stats["std"] > 3.0
    assert stats["outlier_fraction"] == pytest.approx(10 / 20000)
    assert stats["n"] == 20000


def test_spread_follows_wrong_errors():
    rng = np.random.default_rng(6)
    stats = pull_statistics(1.3 * rng.standard_normal(20000) + 0.2)
    assert stats["spread"] == pytest.approx(1.3, abs=0.03)
    assert stats["median"] == pytest.approx(0.2, abs=0.03)
    assert stats["outlier_fraction"] < 1e-3


def test_non_finite_ignored_and_empty():
    stats = pull_statistics([np.nan, np.inf, 1.0, -1.0, 0.0])
    assert stats["n"] == 3 and stats["spread"] == pytest.approx(1.4826, rel=1e-4)
    empty = pull_statistics([np.nan])
    assert empty["n"] == 0 and np.isnan(empty["spread"]) and np.isnan(empty["outlier_fraction"])


def test_pooled_summary_and_definition():
    rng = np.random.default_rng(7)
    groups = [rng.standard_normal(3000), 2 * rng.standard_normal(3000)]
    pooled = pooled_summary(groups)
    assert pooled["n_groups"] == 2 and pooled["n_pixels"] == 6000
    assert 1.0 < pooled["pull_spread"] < 2.0
    assert pooled_summary([])["n_pixels"] == 0
    definition = pull_definition("valid pixels")
    assert definition["pixels"] == "valid pixels"
    assert definition["outlier_threshold"] == OUTLIER_THRESHOLD
    assert definition["target"] == [0.95, 1.05]


def test_spread_error_is_the_scatter_of_the_spread():
    """400 unit-normal column pulls: the spread scatters by the recorded error (0.058)."""
    rng = np.random.default_rng(8)
    spreads, errors = [], []
    for _ in range(2000):
        stats = pull_statistics(rng.standard_normal(400))
        spreads.append(stats["spread"])
        errors.append(stats["spread_error"])
    assert np.mean(errors) == pytest.approx(0.058, abs=0.002)
    assert np.std(spreads) == pytest.approx(np.mean(errors), rel=0.08)
    assert pooled_summary([rng.standard_normal(400)])["pull_spread_error"] > 0
