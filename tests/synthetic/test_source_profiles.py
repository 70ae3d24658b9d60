"""Point sources with Moffat wings and slitlets holding two sources (synthetic.layout, exposure)."""

import dataclasses

import numpy as np
import pytest

from jwst_mbkg_plus.synthetic import Scene
from jwst_mbkg_plus.synthetic.point_sources import (
    PIXELS_PER_SLIT_UNIT,
    companion_slit_y,
    point_profile,
)

SHUTTER = 1.15  # slit-frame pitch of the shutters


def _layout_without_companions(slitlets):
    return [dataclasses.replace(s, companion_shutter=None, companion_y=0.5, companion_flux=0.0)
            for s in slitlets]


def test_companions_sit_next_to_the_primary_and_leave_the_layout_alone():
    plain = Scene(n_background=4, n_point=4, n_extended=1, seed=5)
    two = dataclasses.replace(plain, n_two_source=3, companion_flux=0.4)
    with_companions = two.layout()
    assert _layout_without_companions(with_companions) == plain.layout()
    held = [s for s in with_companions if s.companion_shutter is not None]
    assert [s.kind for s in held] == ["point"] * 3
    for s in held:
        assert abs(s.companion_shutter - s.primary) == 1
        assert 0 <= s.companion_shutter < s.n_shutters
        assert 0.35 <= s.companion_y <= 0.65
        assert s.companion_flux == 0.4


def test_new_options_keep_old_digests_and_change_new_ones():
    base = Scene(seed=3)
    assert "point_profile" not in base.to_dict()
    assert dataclasses.replace(base, point_profile="moffat").digest() != base.digest()
    assert dataclasses.replace(base, n_point=2, n_two_source=1).digest() != dataclasses.replace(
        base, n_point=2).digest()


@pytest.mark.parametrize("kwargs", [
    {"point_profile": "lorentz"},
    {"moffat_beta": 1.0},
    {"n_point": 1, "n_two_source": 2},
    {"n_point": 1, "n_two_source": 1, "shutters_per_slitlet": 1},
    {"companion_flux": -0.1},
])
def test_bad_source_options_raise(kwargs):
    with pytest.raises(ValueError):
        Scene(**kwargs)


def test_moffat_has_the_gaussian_fwhm_and_wings_in_the_next_shutters():
    y = np.linspace(-2.5, 2.5, 5001)
    slitlet = Scene(n_point=1).layout()[-2]
    gauss = point_profile(Scene(), slitlet, y, 0.0)
    moffat = point_profile(Scene(point_profile="moffat", moffat_beta=2.5), slitlet, y, 0.0)
    for p in (gauss, moffat):
        above = y[p >= 0.5]
        fwhm_px = (above.max() - above.min()) * PIXELS_PER_SLIT_UNIT
        assert fwhm_px == pytest.approx(2.3548 * 1.2, rel=0.01)
    # One shutter away the Gaussian is gone; the Moffat still has ~1% of its peak.
    at = np.abs(y - SHUTTER) < 0.05
    assert gauss[at].max() < 1e-3
    assert 0.01 < moffat[at].mean() < 0.05
    # Light farther than 1 from the source: a few percent of the Moffat's, ~none of the Gaussian's.
    out = np.abs(y) > 1.0
    assert moffat[out].sum() / moffat.sum() > 0.02
    assert gauss[out].sum() / gauss.sum() < 1e-3


def test_companion_is_painted_at_its_shutter_with_its_flux():
    scene = Scene(n_point=2, n_two_source=1, point_profile="moffat", companion_flux=0.5, seed=2)
    slitlet = next(s for s in scene.layout() if s.companion_shutter is not None)
    y_src = slitlet.source_y - 0.5
    y_c = companion_slit_y(slitlet, y_src)
    assert y_c - y_src == pytest.approx(
        SHUTTER * (slitlet.companion_shutter - slitlet.primary)
        + slitlet.companion_y - slitlet.source_y)
    y = np.linspace(-2.5, 2.5, 20001)
    profile = point_profile(scene, slitlet, y, y_src)
    single = point_profile(scene, dataclasses.replace(slitlet, companion_shutter=None), y, y_src)
    extra = profile - single
    assert y[np.argmax(extra)] == pytest.approx(y_c, abs=1e-3)
    assert extra.max() == pytest.approx(0.5, rel=1e-6)
