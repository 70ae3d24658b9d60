"""Spatial factor across the MSA and per-slitlet local scale (pure numpy)."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.levels import level_ratios
from jwst_mbkg_plus.algorithms.spatial import fit_spatial_factor


def _positions(rng, n=10):
    """Slitlets scattered over two quadrants (y < 0: Q4, y > 0: Q3), metres."""
    x = rng.uniform(0.02, 0.04, n)
    y = rng.uniform(-0.035, 0.035, n)
    q = np.where(y > 0, 3, 4)
    return x, y, q


def _truth(x, y, q, gx=0.0, gy=0.0, offsets=None):
    factor = 1 + gx * (x - 0.03) / 0.01 + gy * y / 0.035
    if offsets:
        factor = factor + np.vectorize(offsets.get)(q)
    return factor


def test_plane_recovered_with_honest_errors():
    pulls = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        x, y, q = _positions(rng)
        truth = _truth(x, y, q, gx=0.01, gy=0.05)
        err = np.full(x.size, 0.002)
        ratio = truth * (1 + rng.normal(0, 0.002, x.size))
        fit = fit_spatial_factor(x, y, q, ratio, err, model="plane")
        assert fit.model == "plane"
        factor, ferr = fit.predict(x, y, q)
        # Normalised: mean 1 over the fitted slitlets; compare shapes.
        pulls.append(((factor - truth / truth.mean()) / ferr)[0])
        assert np.mean(factor[fit.used]) == pytest.approx(1.0, abs=1e-12)
    pulls = np.array(pulls)
    # The truth is normalised with its own mean, not the fit's: errors are an
    # upper bound, so the pull width may fall a little below 1.
    assert 0.8 < np.std(pulls) < 1.15
    assert abs(np.mean(pulls)) < 0.2


def test_quadrant_offsets_recovered():
    rng = np.random.default_rng(1)
    x, y, q = _positions(rng, 12)
    truth = _truth(x, y, q, offsets={3: 0.03, 4: -0.03})
    ratio = truth * (1 + rng.normal(0, 0.001, x.size))
    fit = fit_spatial_factor(x, y, q, ratio, np.full(x.size, 0.001), model="quadrant")
    factor, _ = fit.predict(x, y, q)
    np.testing.assert_allclose(factor, truth / truth.mean(), atol=0.002)
    assert set(fit.columns) == {"Q3", "Q4"}


def test_auto_picks_constant_when_flat_and_plane_when_tilted():
    flat_choices, tilted_choices = [], []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        x, y, q = _positions(rng)
        err = np.full(x.size, 0.002)
        flat = 1 + rng.normal(0, 0.002, x.size)
        flat_choices.append(fit_spatial_factor(x, y, q, flat, err, model="auto").model)
        tilted = _truth(x, y, q, gy=0.05) + rng.normal(0, 0.002, x.size)
        tilted_choices.append(fit_spatial_factor(x, y, q, tilted, err, model="auto").model)
    assert flat_choices.count("constant") >= 80
    assert all(c in ("plane", "plane_quadrant") for c in tilted_choices)


def test_auto_does_not_chase_unstructured_scatter():
    """2% random slit-to-slit scatter (errors quote 0.03%): mostly the constant model."""
    choices = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        x, y, q = _positions(rng, 8)
        ratio = 1 + rng.normal(0, 0.02, x.size)
        fit = fit_spatial_factor(x, y, q, ratio, np.full(x.size, 3e-4), model="auto")
        choices.append(fit.model)
        # Whatever it picks, the quoted error covers the scatter it cannot explain.
        _, err = fit.predict(x, y, q)
        if fit.model != "constant":
            assert np.median(err) > 0.002  # not the 0.0003 quoted
    assert choices.count("constant") >= 55


def test_outlying_slitlet_clipped():
    rng = np.random.default_rng(3)
    x, y, q = _positions(rng, 10)
    truth = _truth(x, y, q, gy=0.05)
    ratio = truth * (1 + rng.normal(0, 0.001, x.size))
    ratio[4] *= 1.3  # an undeclared source
    fit = fit_spatial_factor(x, y, q, ratio, np.full(x.size, 0.001), model="plane")
    assert not fit.used[4]
    assert fit.used.sum() == 9
    factor, _ = fit.predict(x, y, q)
    keep = np.arange(x.size) != 4
    np.testing.assert_allclose(factor[keep], (truth / truth[keep].mean())[keep], atol=0.003)


def test_unknown_quadrant_gets_mean_level():
    rng = np.random.default_rng(4)
    x, y, q = _positions(rng, 10)
    ratio = _truth(x, y, q, offsets={3: 0.02, 4: -0.02})
    fit = fit_spatial_factor(x, y, q, ratio, np.full(x.size, 1e-3), model="quadrant")
    factor, _ = fit.predict([0.03], [0.0], [1])
    levels = fit.params[[fit.columns.index("Q3"), fit.columns.index("Q4")]]
    assert factor[0] == pytest.approx(levels.mean())


def test_too_few_or_unsupported():
    assert fit_spatial_factor([0.0], [0.0], [3], [1.0], [0.01]) is None
    # One quadrant only: a per-quadrant model has nothing to fit.
    x, y = np.linspace(0, 1, 5), np.linspace(0, 1, 5)
    assert fit_spatial_factor(x, y, [3] * 5, np.ones(5), np.full(5, 0.01),
                              model="quadrant") is None
    assert fit_spatial_factor(x, y, [3] * 5, np.ones(5), np.full(5, 0.01),
                              model="auto").model == "constant"
    with pytest.raises(ValueError, match="model must be one of"):
        fit_spatial_factor(x, y, [3] * 5, np.ones(5), np.full(5, 0.01), model="cubic")
    with pytest.raises(ValueError, match="same length"):
        fit_spatial_factor(x, y[:3], [3] * 5, np.ones(5), np.full(5, 0.01))


def test_unexplained_scatter_inflates_errors():
    rng = np.random.default_rng(5)
    x, y, q = _positions(rng, 12)
    ratio = 1 + rng.normal(0, 0.02, x.size)  # 2% per-slit scatter, errors say 0.1%
    fit = fit_spatial_factor(x, y, q, ratio, np.full(x.size, 0.001), model="plane")
    _, err = fit.predict(x, y, q)
    assert fit.reduced_chi2 > 100
    assert np.median(err) > 0.004  # not the 0.0005 the quoted errors alone give


def test_level_ratios_recover_scale_and_clip_a_line():
    rng = np.random.default_rng(6)
    master = 1 + 0.5 * np.sin(np.linspace(0, 6, 500))
    var = np.full((3, 500), 0.01**2)
    scales = np.array([0.95, 1.0, 1.04])
    flux = scales[:, None] * master + rng.normal(0, 0.01, (3, 500))
    flux[2, 100:105] += 1.0  # an emission-line residual
    ratio, error = level_ratios(flux, var, master)
    assert np.all(np.abs(ratio - scales) < 5 * error)
    assert np.all(error < 1e-3)


# ------------------------------------------------------------------ local scale


def test_record_round_trip_predicts_the_same():
    from jwst_mbkg_plus.algorithms.spatial import SpatialFit

    rng = np.random.default_rng(10)
    x, y, q = _positions(rng, 10)
    ratio = _truth(x, y, q, gy=0.05, offsets={3: 0.01, 4: -0.01})
    fit = fit_spatial_factor(x, y, q, ratio, np.full(x.size, 1e-3), model="plane_quadrant")
    again = SpatialFit.from_record(fit.to_record())
    for a, b in zip(fit.predict(x, y, q), again.predict(x, y, q), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert again.model == fit.model and again.columns == fit.columns


def _four_slitlets():
    # Two per quadrant, the quadrants stacked along y (as NRS1 sees them).
    x = np.array([0.0382, 0.0320, 0.0332, 0.0373])
    y = np.array([0.0015, -0.0354, 0.0097, -0.0272])
    q = np.array([3, 4, 3, 4])
    return x, y, q


def test_four_slitlets_fit_a_gradient_but_rarely_chase_scatter():
    x, y, q = _four_slitlets()
    err = np.full(4, 3e-4)
    plane, chased = 0, 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        level = 1 + 0.05 * x / 0.04 + 0.05 * y / 0.036
        fit = fit_spatial_factor(x, y, q, level / level.mean() + rng.normal(0, 3e-4, 4), err)
        plane += fit.model == "plane"
        scatter = 1 + rng.normal(0, 0.01, 4)
        chased += fit_spatial_factor(x, y, q, scatter, err).model == "plane"
    # One degree of freedom left: admitted only on a decisive F-test.
    assert plane == 100
    assert chased <= 10


def test_auto_keeps_the_constant_on_a_uniform_sky():
    """Pure noise on 9 slitlets: BIC alone took a richer model in ~1 of 4 draws."""
    richer = 0
    n_draws = 400
    for seed in range(n_draws):
        rng = np.random.default_rng(1000 + seed)
        x, y, q = _positions(rng, n=9)
        err = np.full(x.size, 0.0023)  # 20 % noise, ~7,500 pixels per slitlet
        ratio = 1 + rng.normal(0, 0.0023, x.size)
        fit = fit_spatial_factor(x, y, q, ratio, err, model="auto")
        richer += fit.model != "constant"
    # Three nested candidates, each admitted at p < 0.01: a few percent at most.
    assert richer / n_draws < 0.04


@pytest.mark.parametrize("kind", ["gradient", "halves"])
def test_auto_still_finds_percent_level_structure_at_20_percent_noise(kind):
    found = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        x, y, q = _positions(rng, n=9)
        if kind == "gradient":
            truth = _truth(x, y, q, gx=0.01, gy=0.01)
        else:
            truth = _truth(x, y, q, offsets={3: 0.01, 4: -0.01})
        err = np.full(x.size, 0.0023)
        ratio = truth * (1 + rng.normal(0, 0.0023, x.size))
        fit = fit_spatial_factor(x, y, q, ratio, err, model="auto")
        found += fit.model != "constant"
    # A 2 % step or gradient is ~9 sigma per slitlet: missed only where the
    # random layout puts (nearly) every slitlet on one side (49 of 50 found).
    assert found >= 47


def test_auto_false_alarm_rate_holds_for_all_candidates_together():
    """3 % calibration scatter with no spatial structure on 12 slitlets, 400 draws.

    Each candidate tested at p = 0.01 took a richer model in 5.8 % of draws,
    and that model took part of the scatter; one probability for the three
    candidates together (Bonferroni) gives 3.0 %.
    """
    richer = 0
    n_draws = 400
    for seed in range(n_draws):
        rng = np.random.default_rng(seed)
        x = rng.uniform(0.01, 0.04, 12)
        y = rng.uniform(-0.035, 0.035, 12)
        q = np.where(y > 0, 3, 4)
        ratio = (1 + rng.normal(0, 0.03, 12)) * (1 + rng.normal(0, 0.0025, 12))
        fit = fit_spatial_factor(x, y, q, ratio, np.full(12, 0.0025), model="auto")
        richer += fit.model != "constant"
    assert richer / n_draws < 0.045
