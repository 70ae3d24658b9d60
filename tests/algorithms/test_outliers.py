"""Tests for jwst_mbkg_plus.algorithms.outliers: 2-D pixel and 1-D binned outliers."""

import numpy as np
import pytest
from scipy.stats import norm

from jwst_mbkg_plus.algorithms.outliers import find_pixel_outliers, flag_binned_outliers

pytestmark = pytest.mark.filterwarnings("error")

NY, NX = 60, 500


def _slit(seed):
    """Noisy background slit, model = expanded master (small own variance)."""
    rng = np.random.default_rng(seed)
    model = np.tile(np.linspace(5.0, 100.0, NX), (NY, 1))
    var = 0.5 + 0.05 * model
    model_var = var / 50.0
    data = model + rng.normal(size=model.shape) * np.sqrt(var)
    model_obs = model + rng.normal(size=NX)[None, :] * np.sqrt(model_var)
    return rng, data, var, model_obs, model_var


def _inject(rng, data, var):
    """18 single hot pixels and 3 2x2 clusters (one bright, three faint members)."""
    truth = np.zeros(data.shape, dtype=bool)
    data = data.copy()
    cells = np.array([(y, x) for y in range(3, NY - 3, 6) for x in range(3, NX - 3, 10)])
    ys, xs = cells[rng.choice(len(cells), 21, replace=False)].T
    sd = np.sqrt(var)
    for y, x in zip(ys[:18], xs[:18], strict=True):
        data[y, x] += rng.uniform(8, 40) * sd[y, x]
        truth[y, x] = True
    for y, x in zip(ys[18:], xs[18:], strict=True):
        data[y, x] += 25 * sd[y, x]
        for dy, dx in ((0, 1), (1, 0), (1, 1)):
            data[y + dy, x + dx] += 4.0 * sd[y + dy, x + dx]
        truth[y:y + 2, x:x + 2] = True
    return data, truth


def test_hot_pixels_and_clusters_recovered():
    rng, data, var, model, model_var = _slit(0)
    dirty, truth = _inject(rng, data, var)
    assert truth.sum() == 30
    before = dirty.copy()
    mask = find_pixel_outliers(dirty, var, model, model_var, sigma=5.0, grow=1)
    assert mask[truth].all()
    false = int((mask & ~truth).sum())
    # core false positives ~ N 2Phi(-5) = 0.02; grown ones: ~24 neighbours of the
    # bright cores above 2.5 sigma with p = 1.2 % -> ~0.3 expected
    assert false <= 3
    np.testing.assert_array_equal(dirty, before)
    # without growth most faint (4 sigma) cluster members are missed
    core = find_pixel_outliers(dirty, var, model, model_var, sigma=5.0, grow=0)
    assert 21 <= core[truth].sum() <= 25


def test_false_positive_rate_matches_gaussian():
    _, data, var, model, model_var = _slit(1)
    mask = find_pixel_outliers(data, var, model, model_var, sigma=3.0, grow=0)
    expect = 2 * norm.sf(3.0)
    n = data.size
    assert abs(mask.mean() - expect) < 5 * np.sqrt(expect / n), (mask.mean(), expect)
    assert not find_pixel_outliers(data, var, model, model_var, sigma=5.0).any()


def test_rescale_absorbs_misscaled_variance():
    _, data, var, model, model_var = _slit(2)
    # variances underestimated by 2x: without rescaling, many false positives
    wrong = find_pixel_outliers(data, var / 4, model, model_var / 4, sigma=4.0, rescale=False)
    right = find_pixel_outliers(data, var / 4, model, model_var / 4, sigma=4.0)
    assert wrong.sum() > 50 and right.sum() <= 8  # ~2 expected at 4 sigma


def test_dq_nan_and_sign():
    rng, data, var, model, model_var = _slit(3)
    data = data.copy()
    data[10, 10] += 50 * np.sqrt(var[10, 10])
    data[20, 20] -= 50 * np.sqrt(var[20, 20])
    data[30, 30] = np.nan
    dq = np.zeros(data.shape, dtype=bool)
    dq[10, 10] = True
    m = find_pixel_outliers(data, var, model, model_var, dq_mask=dq)
    assert not m[10, 10] and m[20, 20] and not m[30, 30]
    pos = find_pixel_outliers(data, var, model, model_var, sign="positive")
    assert not pos[20, 20]


def test_bad_arguments():
    a = np.ones((4, 4))
    with pytest.raises(ValueError, match="model shape"):
        find_pixel_outliers(a, a, np.ones((4, 5)))
    with pytest.raises(ValueError, match="sign must be"):
        find_pixel_outliers(a, a, a, sign="up")
    with pytest.raises(ValueError, match="integer"):
        flag_binned_outliers(np.ones(3), np.ones(3))


def test_binned_outliers_recovered_and_rate():
    rng = np.random.default_rng(4)
    n, nb = 200_000, 400
    lab = rng.integers(0, nb, n)
    lab[:100] = -1  # not in any bin: never flagged
    level = 1.0 + lab.clip(0) / 20.0
    sig = 0.1 * level
    x = level + rng.normal(size=n) * sig
    hot = rng.choice(np.arange(100, n), 500, replace=False)
    x[hot] += 20 * sig[hot]
    xc = x.copy()
    rej = flag_binned_outliers(x, lab, sig**2, sigma=3.0)
    assert rej[hot].all()
    assert not rej[:100].any()
    clean = np.setdiff1d(np.arange(100, n), hot)
    assert abs(rej[clean].mean() - 2 * norm.sf(3.0)) < 0.001
    np.testing.assert_array_equal(x, xc)
    rej_nv = flag_binned_outliers(x, lab, sigma=3.0)
    assert rej_nv[hot].all() and rej_nv[clean].mean() < 0.006
