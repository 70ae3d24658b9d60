"""Tests for jwst_mbkg_plus.algorithms.expand: 1-D master to 2-D, subtraction."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.expand import expand_to_2d, sample_range, subtract_background

pytestmark = pytest.mark.filterwarnings("error")

MW = np.linspace(1.0, 2.0, 101)


def _wave2d():
    # a tilted trace: wavelength varies along x and slightly along y
    y, x = np.mgrid[0:20, 0:300]
    w = 0.9 + x * (1.3 / 299) + 0.002 * y
    w[5, 7] = np.nan
    return w


def test_linear_master_exact_and_variance_monte_carlo():
    w2 = _wave2d()
    flux = 3.0 + 2.0 * MW
    var = np.linspace(0.1, 0.2, MW.size)
    bkg, bvar = expand_to_2d(w2, MW, flux, var)
    inside = (w2 >= 1.0) & (w2 <= 2.0)
    np.testing.assert_allclose(bkg[inside], 3.0 + 2.0 * w2[inside])
    assert np.isnan(bkg[~inside]).all() and np.isnan(bvar[~inside]).all()
    assert np.isnan(bkg[5, 7])
    rng = np.random.default_rng(0)
    draws = np.stack([expand_to_2d(w2[0], MW, flux + rng.normal(size=MW.size) * np.sqrt(var))[0]
                      for _ in range(3000)])
    ok = inside[0]
    np.testing.assert_allclose(draws[:, ok].var(axis=0), bvar[0, ok], rtol=0.12)


def test_edge_policies():
    flux = 1.0 + MW
    var = np.full(MW.size, 0.01)
    w = np.array([0.9, 0.95, 1.0, 1.5, 2.0, 2.05, 2.2])
    nan, _ = expand_to_2d(w, MW, flux, var)
    assert np.isnan(nan[[0, 1, 5, 6]]).all()
    near, nvar = expand_to_2d(w, MW, flux, var, edge="nearest")
    np.testing.assert_allclose(near, [2.0, 2.0, 2.0, 2.5, 3.0, 3.0, 3.0])
    np.testing.assert_allclose(nvar, 0.01)
    lin, lvar = expand_to_2d(w, MW, flux, var, edge="extrapolate_linear")
    np.testing.assert_allclose(lin, 1.0 + w)
    assert lvar[0] > lvar[1] > 0.01  # extrapolation error grows
    lim, _ = expand_to_2d(w, MW, flux, var, edge="nearest", edge_limit=0.06)
    np.testing.assert_array_equal(np.isnan(lim), [True, False, False, False, False, False, True])


def test_master_nan_trimmed_and_gaps():
    flux = 1.0 + MW
    flux[:10] = np.nan  # trailing/leading NaN define the finite range
    flux[50] = np.nan  # interior gap
    w = np.array([1.0, 1.1, 1.495, 1.5, 1.505, 1.6])
    near, _ = expand_to_2d(w, MW, flux, edge="nearest")
    assert near[0] == pytest.approx(2.1)  # nearest finite end, not NaN
    assert np.isnan(near[2]) and np.isnan(near[3]) and np.isnan(near[4])
    assert near[5] == pytest.approx(2.6)
    with pytest.raises(ValueError, match="no finite sample"):
        expand_to_2d(w, MW, np.full(MW.size, np.nan))


def test_bad_master():
    with pytest.raises(ValueError, match="master_wave must be strictly increasing"):
        expand_to_2d(np.ones(3), MW[::-1], MW)
    with pytest.raises(ValueError, match="edge must be one of"):
        expand_to_2d(np.ones(3), MW, MW, edge="zero")
    with pytest.raises(ValueError, match="master_var shape"):
        expand_to_2d(np.ones(3), MW, MW, np.ones(3))


def test_subtract_returns_new_arrays():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(5, 6))
    var = np.ones((5, 6))
    bkg = np.full(6, 0.5)
    bvar = np.full(6, 0.1)
    dc, vc = data.copy(), var.copy()
    nd, nv = subtract_background(data, var, bkg, bvar)
    np.testing.assert_allclose(nd, data - 0.5)
    np.testing.assert_allclose(nv, 1.1)
    assert nd is not data and nv is not var
    np.testing.assert_array_equal(data, dc)
    np.testing.assert_array_equal(var, vc)
    nd2, nv2 = subtract_background(data, None, bkg)
    assert nv2 is None
    _, nv3 = subtract_background(data, var, bkg)
    np.testing.assert_array_equal(nv3, var)
    assert nv3 is not var
    with pytest.raises(ValueError, match="does not broadcast"):
        subtract_background(data, var, np.ones(7))


def _prism_like_master(samples_per_pixel):
    """He I-like line (sigma 0.85 px, 18% of the continuum) on a sloped continuum."""
    grid = np.arange(0, 60.001, 1 / samples_per_pixel)
    sky = 1.0 + 0.002 * grid + 0.18 * np.exp(-0.5 * ((grid - 30) / 0.85) ** 2)
    pixels = np.linspace(20, 40, 2001)
    truth = 1.0 + 0.002 * pixels + 0.18 * np.exp(-0.5 * ((pixels - 30) / 0.85) ** 2)
    return grid, sky, pixels, truth


def test_cubic_keeps_a_narrow_line_at_continuum_accuracy():
    """Two samples per pixel: the spline misses the line by < 0.05%, the line by > 0.5%."""
    grid, sky, pixels, truth = _prism_like_master(2)
    cubic, _ = expand_to_2d(pixels, grid, sky, interpolation="cubic")
    linear, _ = expand_to_2d(pixels, grid, sky)
    assert np.max(np.abs(cubic / truth - 1)) < 5e-4
    assert np.max(np.abs(linear / truth - 1)) > 5e-3


def test_cubic_variance_and_edges():
    grid, sky, pixels, _ = _prism_like_master(2)
    var = np.full(grid.size, 4e-4)
    var[30] = np.nan  # an unusable sample (at 15.0): NaN wherever the line would use it
    sky = sky.copy()
    sky[30] = np.nan
    at = np.array([-1.0, 0.0, 4.9, 5.0, 5.25, 15.2, 60.5])
    cubic, cvar = expand_to_2d(at, grid, sky, var, interpolation="cubic", edge="nearest")
    linear, lvar = expand_to_2d(at, grid, sky, var, edge="nearest")
    np.testing.assert_array_equal(np.isfinite(cubic), np.isfinite(linear))
    assert np.isnan(cubic[5]) and np.isfinite(cubic[4])
    # Outside the samples the edge policy's values; at a sample its variance.
    assert cubic[0] == linear[0] and cubic[-1] == linear[-1]
    assert cvar[3] == pytest.approx(4e-4) == lvar[3]
    assert lvar[2] < cvar[2] < 4e-4
    with pytest.raises(ValueError, match="interpolation must be one of"):
        expand_to_2d(at, grid, sky, interpolation="quadratic")


def test_cubic_variance_matches_monte_carlo():
    """The spline's variance between independent noisy samples (0.756 v half-way)."""
    rng = np.random.default_rng(5)
    grid = np.arange(40.0)
    at = np.array([20.0, 20.25, 20.5, 20.75])
    sigma = 0.01
    values = np.array([
        expand_to_2d(at, grid, 1 + rng.normal(0, sigma, grid.size), interpolation="cubic")[0]
        for _ in range(4000)
    ])
    _, cvar = expand_to_2d(at, grid, np.ones(grid.size), np.full(grid.size, sigma**2),
                           interpolation="cubic")
    np.testing.assert_allclose(values.var(axis=0), cvar, rtol=0.08)
    assert cvar[2] == pytest.approx(0.756 * sigma**2, rel=0.01)


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_sample_range_is_where_the_edge_policies_agree(interpolation):
    """Inside sample_range every edge policy gives the same values, bit for bit; beyond, none."""
    w2 = _wave2d()
    rng = np.random.default_rng(4)
    flux = 3.0 + np.sin(5 * MW) + 0.01 * rng.normal(size=MW.size)
    var = np.full(MW.size, 0.01)
    flux[:3] = np.nan  # leading and trailing NaN are trimmed
    var[-2:] = np.nan
    low, high = sample_range(MW, flux, var)
    assert (low, high) == (MW[3], MW[-3])
    inside = (w2 >= low) & (w2 <= high)
    nan_edge = expand_to_2d(w2, MW, flux, var, edge="nan", interpolation=interpolation)
    nearest = expand_to_2d(w2, MW, flux, var, edge="nearest", interpolation=interpolation)
    for a, b in zip(nan_edge, nearest, strict=True):
        assert np.array_equal(np.where(inside, b, np.nan), a, equal_nan=True)
    assert np.isfinite(nearest[0][~inside & np.isfinite(w2)]).all()
