"""The calibration scatter in the ERR of slitlets that cannot be rescaled: honest column sums."""

import numpy as np
import pytest

from jwst_mbkg_plus.mos.slit_factors import SlitCorrection


@pytest.mark.parametrize("noise", [0.05, 0.2])
def test_column_sums_of_unrescaled_slitlets_have_honest_errors(noise):
    # 400 slitlets of 24 rows: each one's background is off by its own calibration
    # error (3 % rms, the same in every row of a column), plus pixel noise.
    rng = np.random.default_rng(5)
    rows, cols, scatter = 24, 60, 0.03
    sky = np.ones((rows, cols)) * (1 + 0.5 * np.linspace(0, 1, cols))
    valid = np.ones((rows, cols), dtype=bool)
    valid[:2, ::7] = False
    pix, col = [], []
    for _ in range(400):
        delta = rng.normal(0, scatter)
        residual = delta * sky + noise * sky * rng.standard_normal(sky.shape)
        corr = SlitCorrection(systematic_var=(scatter * sky) ** 2)
        err2 = (noise * sky) ** 2 + corr.systematic_err_var(valid)
        assert corr.apply(sky, err2)[1] is err2  # nothing rescaled
        pix.append((residual / np.sqrt(err2))[valid])
        col.append(np.where(valid, residual, 0).sum(axis=0)
                   / np.sqrt(np.where(valid, err2, 0).sum(axis=0)))
    column_pull = np.std(np.concatenate(col))
    pixel_pull = np.std(np.concatenate(pix))
    assert column_pull == pytest.approx(1.0, abs=0.07)
    # Single pixels carry the column's share: over-estimated, as documented.
    v, s = noise**2, scatter**2
    assert pixel_pull == pytest.approx(np.sqrt((v + s) / (v + rows * s)), rel=0.1)


def test_no_systematic_adds_nothing():
    corr = SlitCorrection(factor=np.ones((3, 4)), factor_var=np.zeros((3, 4)))
    assert not corr.systematic_err_var(np.ones((3, 4), dtype=bool)).any()
