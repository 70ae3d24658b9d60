"""Background slit selection and the calibration-factor arithmetic."""

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.io.products import masterbg1d_model
from jwst_mbkg_plus.io.slits import (
    BackgroundSelectionError,
    is_msa_background,
    select_background_slits,
    slit_variance,
)
from jwst_mbkg_plus.mos.calibration import correction_factors


def _slits():
    names = [(1, "source_1"), (2, "BKG_2"), (3, "background_3"), (4, "source_4"), (5, "bkg5")]
    slits = []
    for slitlet_id, source_name in names:
        slit = datamodels.SlitModel(data=np.ones((3, 4), dtype=np.float32))
        slit.name = str(slitlet_id)
        slit.slitlet_id = slitlet_id
        slit.source_id = 100 + slitlet_id
        slit.source_name = source_name
        slits.append(slit)
    return slits


def test_msa_designation_matches_jwst():
    from jwst.master_background.nirspec_utils import is_background_msa_slit

    for slit in _slits():
        assert is_msa_background(slit) == is_background_msa_slit(slit)


def test_default_selection_uses_msa_designation():
    sel = select_background_slits(_slits())
    assert sel.indices == (1, 2, 4)
    assert sel.source == "msa"
    assert sel.labels == ("2:BKG_2", "3:background_3", "5:bkg5")


def test_include_and_exclude_by_id_or_name():
    sel = select_background_slits(_slits(), include=["1", "source_4", "5"], exclude=["bkg5"])
    assert sel.indices == (0, 3)
    assert sel.source == "parameter"
    assert sel.excluded == ("5:bkg5",)
    sel = select_background_slits(_slits(), exclude=[2, "103"])
    assert sel.indices == (4,)
    assert set(sel.excluded) == {"2:BKG_2", "3:background_3"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"include": ["99"]}, "bkg_slits names slits not in this exposure: 99"),
        ({"exclude": ["nope"]}, "exclude_slits names slits not in this exposure: nope"),
        ({"exclude": ["2", "3", "5"]}, "No background slitlets remain.*after excluding"),
    ],
)
def test_selection_errors_are_clear(kwargs, match):
    with pytest.raises(BackgroundSelectionError, match=match):
        select_background_slits(_slits(), **kwargs)


def test_no_designated_background_says_how_to_fix():
    slits = [s for s in _slits() if not is_msa_background(s)]
    with pytest.raises(BackgroundSelectionError, match="bkg_slits, or supply user_background"):
        select_background_slits(slits)


def test_correction_factors_recover_a_product_of_corrections():
    rng = np.random.default_rng(1)
    raw = rng.normal(5, 2, size=(20, 30)).astype(np.float32)
    raw[raw == 0] = 1.0
    flat = rng.uniform(0.8, 1.2, raw.shape)
    conversion = rng.uniform(0.1, 10, raw.shape)
    cal = (raw / flat * conversion).astype(np.float32)
    cal[3, 4] = np.nan
    factor = correction_factors(raw, cal)
    assert np.isnan(factor[3, 4])
    good = np.isfinite(factor)
    np.testing.assert_allclose(factor[good], (conversion / flat)[good], rtol=2e-7)


def test_slit_variance_sums_components():
    slit = datamodels.SlitModel(data=np.ones((2, 3), dtype=np.float32))
    slit.var_poisson = np.full((2, 3), 2.0, dtype=np.float32)
    slit.var_rnoise = np.full((2, 3), 3.0, dtype=np.float32)
    np.testing.assert_allclose(slit_variance(slit), 5.0)
    bare = datamodels.SlitModel(data=np.ones((2, 3), dtype=np.float32))
    bare.err = np.full((2, 3), 2.0, dtype=np.float32)
    np.testing.assert_allclose(slit_variance(bare), 4.0)


def test_masterbg1d_reads_back_in_jwst_and_here(tmp_path):
    from jwst.master_background.expand_to_2d import expand_to_2d

    wave = np.linspace(1.7, 3.1, 50)
    sb = 0.5 + 0.1 * wave
    model = masterbg1d_model(wave, sb, np.full(50, 0.01), np.full(50, 7))
    path = tmp_path / "mb_masterbg1d.fits"
    model.save(path)

    science = datamodels.ImageModel(
        data=np.zeros((2, 2), dtype=np.float32), dq=np.zeros((2, 2), dtype=np.uint32)
    )
    science.meta.exposure.type = "NRS_FIXEDSLIT"
    science.wavelength = np.array([[2.0, 2.5], [3.0, 5.0]], dtype=np.float32)
    with datamodels.open(path) as reread:
        assert isinstance(reread, datamodels.MultiCombinedSpecModel)
        np.testing.assert_allclose(reread.spec[0].spec_table["N_INPUT"], 7)
        bkg = expand_to_2d(science, reread)
    np.testing.assert_allclose(bkg.data[0], 0.5 + 0.1 * np.array([2.0, 2.5]), rtol=1e-6)

    from jwst_mbkg_plus.io.user_background import read_user_background

    user = read_user_background(path)
    np.testing.assert_allclose(user.surf_bright, sb)
    np.testing.assert_allclose(user.sb_error, 0.01)
