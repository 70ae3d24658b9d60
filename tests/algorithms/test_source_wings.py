"""A point source's Moffat wings and a second source in the sky rows (algorithms.source_wings)."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.free_rows import source_free_mask
from jwst_mbkg_plus.algorithms.source_wings import source_wings

N_ROWS, N_COLS = 70, 600


def _slit(rng, *, beta=2.5, companion=None, sky_factor=1.03, noise=0.01, contrast=3.0):
    """Rows -1.7..1.7 about the source; a source spectrum with a slope; sky model 1."""
    offset = np.linspace(-1.7, 1.7, N_ROWS)[:, None] * np.ones((1, N_COLS))
    spectrum = contrast * np.linspace(0.6, 1.4, N_COLS)[None, :]
    # FWHM 0.67 slit-frame units (2.8 pixels, the synthetic scenes' point sources).
    alpha = 0.335 / np.sqrt(2 ** (1 / beta) - 1)
    source = spectrum * (1 + (offset / alpha) ** 2) ** -beta
    if companion is not None:
        source = source + 0.5 * spectrum * (1 + ((offset - companion) / alpha) ** 2) ** -beta
    model = np.ones(offset.shape)
    data = sky_factor * model + source
    data = data + noise * rng.standard_normal(data.shape)
    return data, model, offset, source


def _sky_level(data, model, offset, wings, other, guard=1.0):
    corrected = data - model * wings
    free, _ = source_free_mask(corrected, model, np.abs(offset), ~other, guard=guard)
    return float(np.median(corrected[free] / model[free])), free


@pytest.mark.parametrize(("beta", "tolerance"), [(1.5, 0.004), (2.5, 0.0015), (4.0, 0.0015)])
def test_moffat_wings_are_taken_out_of_the_sky_rows(beta, tolerance):
    rng = np.random.default_rng(1)
    data, model, offset, source = _slit(rng, beta=beta)
    # The wings alone bias a sky measured beyond one shutter by more than 0.3%.
    far = np.abs(offset) >= 1.0
    assert np.median(source[far]) > 0.003
    wings, other, record = source_wings(data, model, offset)
    assert record["status"] == "fitted"
    assert not other.any()
    level, free = _sky_level(data, model, offset, wings, other)
    assert level == pytest.approx(1.03, abs=tolerance)
    # What the wings model leaves in the free rows: a fraction of what they hold.
    assert abs(np.median((source - wings)[free])) < tolerance
    assert abs(np.median((source - wings)[free])) < 0.25 * np.median(source[free])


@pytest.mark.parametrize("companion", [1.25, -1.1, 0.9])
def test_second_source_is_fitted_and_left_out(companion):
    rng = np.random.default_rng(2)
    data, model, offset, source = _slit(rng, companion=companion)
    wings, other, record = source_wings(data, model, offset)
    assert record["status"] == "fitted"
    assert len(record["other_sources"]) == 1
    valley = record["other_sources"][0]
    assert np.sign(valley) == np.sign(companion) and 0.4 < abs(valley) < abs(companion)
    side = np.sign(companion) * offset
    assert other[side >= abs(companion)].all() and not other[side < 0].any()
    level, free = _sky_level(data, model, offset, wings, other)
    assert level == pytest.approx(1.03, abs=0.0025)
    # Without the second source's rows left out, the sky would be far off.
    naive, _ = _sky_level(data, model, offset, np.zeros(data.shape), np.zeros(data.shape, bool))
    assert abs(naive - 1.03) > 0.01


def test_gaussian_source_and_no_source():
    rng = np.random.default_rng(3)
    offset = np.linspace(-1.7, 1.7, N_ROWS)[:, None] * np.ones((1, N_COLS))
    gauss = 3.0 * np.exp(-0.5 * (offset / 0.28) ** 2)
    data = 0.98 + gauss + 0.01 * rng.standard_normal(offset.shape)
    wings, other, record = source_wings(data, np.ones(data.shape), offset)
    assert record["status"] == "fitted" and not other.any()
    assert record["sky"] == pytest.approx(0.98, abs=0.001)
    far = np.abs(offset) >= 1.0
    assert np.abs(wings - gauss)[far].max() < 3e-3
    assert abs(np.median((wings - gauss)[far])) < 5e-4
    # Too few pixels: nothing is fitted, nothing subtracted.
    wings, other, record = source_wings(data[:5, :10], np.ones((5, 10)), offset[:5, :10])
    assert record["status"] != "fitted" and not wings.any() and not other.any()


def test_gaussian_source_wings_are_not_overestimated():
    """A Gaussian profile is the Moffat's limit: its tail beyond one shutter is not inflated.

    The Moffat index used to be capped at 50, whose tail at 3.5 sigma holds ~1.5 times
    a Gaussian's: the wings subtracted from the sky rows were too bright there, and the
    sky factor came out low.
    """
    rng = np.random.default_rng(5)
    offset = np.linspace(-2.0, 2.0, 80)[:, None] * np.ones((1, N_COLS))
    gauss = 3.0 * np.exp(-0.5 * (offset / 0.28) ** 2)
    data = 1.0 + gauss + 0.005 * rng.standard_normal(offset.shape)
    wings, _, record = source_wings(data, np.ones(data.shape), offset)
    assert record["status"] == "fitted"
    ring = (np.abs(offset) >= 1.0) & (np.abs(offset) < 1.2)
    assert np.sum(wings[ring]) == pytest.approx(np.sum(gauss[ring]), rel=0.1)
