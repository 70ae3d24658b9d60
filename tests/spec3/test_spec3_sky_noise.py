"""The spec3 sky region keeps its sky (issue 26).

Pure numpy. A line that fluctuates above the source threshold costs that line, not a
block of sky grown from it as if it were a source's wings; a real source's wings,
bright or faint, are still masked.
"""

import numpy as np

from jwst_mbkg_plus.spec3.sky_region import find_sky_region
from jwst_mbkg_plus.synthetic.spec3_scenes import source_profile

NY, NX = 32, 400
# Noise of one line's median of data / model - 1 at 5 % per pixel (sqrt(pi/2) 0.05 / 20).
LINE_SIGMA = np.sqrt(np.pi / 2) * 0.05 / np.sqrt(NX)


def _flat_scene(line_offsets):
    """A noise-free sky whose lines sit ``line_offsets`` (in line sigma) above the floor."""
    wl = np.broadcast_to(np.linspace(1.7, 3.1, NX), (NY, NX))
    model = np.ones((NY, NX))
    data = model * (1.0 + np.asarray(line_offsets, float)[:, None] * LINE_SIGMA)
    var = np.full((NY, NX), 0.05**2)
    return data, var, model, wl


def test_one_line_above_threshold_costs_one_line():
    # Line 20 at 4 sigma (a fluctuation: with the 3 lines each side its light sums to
    # 1.9 sigma, not the 3 of a source), lines 21-27 each 0.8 sigma high, within their
    # noise, the rest at the floor. Grown as a source, the 3-line wing test (mean 1.4
    # sigma) walked over the 0.8-sigma lines and masked 18-29; only line 20 holds light
    # above the source threshold.
    offsets = np.zeros(NY)
    offsets[20] = 4.0
    offsets[21:28] = 0.8
    region = find_sky_region(*_flat_scene(offsets))
    assert region.usable
    assert region.source_lines.tolist() == [20]
    assert region.n_sky_lines == NY - 1


def test_real_source_keeps_its_wings_masked():
    # A Moffat source (peak 5 x the sky) at line 9, noise-free: every line whose wing
    # light is above ~1 sigma of a line is masked (the walk stops where the next 3
    # lines together fall below 1 sigma, then two lines of margin).
    y = np.arange(NY, dtype=float)
    wing = 5.0 * source_profile(y, 9.0, 3.0, wings=True)
    offsets = wing / LINE_SIGMA
    region = find_sky_region(*_flat_scene(offsets))
    above = np.flatnonzero(offsets > 1.0)
    masked = set(region.source_lines.tolist())
    assert set(above.tolist()) <= masked
    # The sky beyond is kept.
    assert min(masked) == 0 and max(masked) <= above.max() + 3
    assert region.n_sky_lines >= NY - above.max() - 4


def test_faint_connected_source_keeps_its_wings_masked():
    # A faint source: one line at 4 sigma, its neighbours at 2 and 1 sigma. Its light
    # is connected (the block and 3 lines each side sum to 3.8 sigma), so it is a
    # source and the lines around it are masked as its wings, not left in the sky.
    offsets = np.zeros(NY)
    offsets[18:23] = [1.0, 2.0, 4.0, 2.0, 1.0]
    region = find_sky_region(*_flat_scene(offsets))
    assert set(range(18, 23)) <= set(region.source_lines.tolist())
