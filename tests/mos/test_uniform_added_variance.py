"""The master's added variance is uniform along each column: ivm weights do not follow a source."""

import numpy as np

from jwst_mbkg_plus.mos.subtract import _uniform_along_columns


def test_column_mean_keeps_column_sums_and_leaves_invalid_pixels():
    rng = np.random.default_rng(4)
    extra = rng.uniform(1.0, 3.0, (9, 40))
    extra[4] *= 5  # a source's core would get more inflation than its wings
    valid = np.ones(extra.shape, bool)
    valid[0, :10] = False
    out = _uniform_along_columns(extra, valid)
    # Every valid pixel of a column has the same added variance ...
    for c in range(extra.shape[1]):
        assert np.ptp(out[valid[:, c], c]) == 0
    # ... whose column sum is the one before (an extracted column's error is kept) ...
    np.testing.assert_allclose(np.where(valid, out, 0).sum(axis=0),
                               np.where(valid, extra, 0).sum(axis=0), rtol=1e-12)
    # ... and invalid pixels keep theirs.
    np.testing.assert_array_equal(out[~valid], extra[~valid])
    assert extra[4, 0] != out[4, 0]  # the input array is not modified in place either
