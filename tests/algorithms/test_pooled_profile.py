"""Rows nearer a point source for its sky factor (pooled_profile, free_rows.nearest_cut)."""

import numpy as np

from jwst_mbkg_plus.algorithms.free_rows import nearest_cut, source_free_mask
from jwst_mbkg_plus.algorithms.pooled_profile import pooled_shape, wings_with_error
from jwst_mbkg_plus.algorithms.source_wings import source_wings

N_COLS = 240
NOISE = 0.2


def _exposure(rng, n_slits, beta):
    """Slitlets of 3 shutters (rows -1.7..1.7 about the source), each with its own sky level."""
    offset = np.linspace(-1.7, 1.7, 15)[:, None] * np.ones((1, N_COLS))
    # FWHM 0.67 slit-frame units, as the synthetic scenes' point sources.
    alpha = 0.335 / np.sqrt(2 ** (1 / beta) - 1)
    slits = []
    for _ in range(n_slits):
        level = 1 + 0.03 * rng.standard_normal()
        spectrum = 3.0 * np.linspace(0.6, 1.4, N_COLS)[None, :]
        source = spectrum * (1 + (offset / alpha) ** 2) ** -beta
        clean = level + source
        data = clean * (1 + NOISE * rng.standard_normal(clean.shape))
        slits.append((data, (NOISE * clean) ** 2, offset, level))
    return slits


def _levels(slits):
    """Each slitlet's sky level: own wings beyond one shutter, and the common shape's cut."""
    model = np.ones(slits[0][0].shape)
    wings = {k: source_wings(d, model, o, return_profile=True) for k, (d, _, o, _) in
             enumerate(slits)}
    shape = pooled_shape({k: w[-1] for k, w in wings.items()})
    old, new = [], []
    for k, (data, var, offset, level) in enumerate(slits):
        distance = np.abs(offset)
        own, other = wings[k][0], wings[k][1]
        free, _ = source_free_mask(data - own, model, distance, ~other, guard=1.0)
        old.append((np.mean((data - own)[free]) - level, free.sum()))
        common, error = wings_with_error(offset, wings[k][-1], shape, k)
        start, _ = nearest_cut(distance, error, var, ~other, guard=1.0, floor=0.5)
        free, _ = source_free_mask(data - common, model, distance, ~other, guard=start)
        new.append((np.mean((data - common)[free]) - level, free.sum()))
    return np.array(old), np.array(new), shape


def _many(beta, draws=6):
    rng = np.random.default_rng(7)
    old, new = [], []
    for _ in range(draws):
        o, n, shape = _levels(_exposure(rng, 8, beta))
        assert all(shape.consistent.values())
        old.append(o)
        new.append(n)
    return np.concatenate(old), np.concatenate(new)


def _rms(x):
    return float(np.sqrt(np.mean(x**2)))


def test_common_shape_wings_beat_each_slitlets_own():
    """Moffat (index 2.5) sources at 20 % noise per pixel, rows beyond one shutter.

    One slitlet's own profile barely constrains the Moffat index: its wings beyond one
    shutter (~1 % of the sky there) are off by tens of percent, which is most of its
    sky level's error. The exposure's common shape knows them: the levels scatter ~35 %
    less (measured 1.10 % -> 0.72 %), and stay unbiased.
    """
    old, new = _many(2.5)
    assert _rms(new[:, 0]) < 0.8 * _rms(old[:, 0])
    assert abs(np.mean(new[:, 0])) < 2.5 * _rms(new[:, 0]) / np.sqrt(new.shape[0])


def test_nearest_cut_lets_nearer_rows_in_without_source_light():
    """Nearly Gaussian sources at 20 % noise: rows nearer than one shutter, as the wings allow.

    More sky pixels (1430 -> 1900), a smaller scatter of the levels, and no more
    source light in them than the levels' noise can show.
    """
    old, new = _many(1e3)
    assert np.mean(new[:, 1]) > 1.15 * np.mean(old[:, 1])
    assert _rms(new[:, 0]) < 0.95 * _rms(old[:, 0])
    assert abs(np.mean(new[:, 0])) < 2.5 * _rms(new[:, 0]) / np.sqrt(new.shape[0])
