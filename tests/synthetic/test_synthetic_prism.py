"""PRISM/CLEAR in the synthetic instrument: dispersion like the real WCS, jwst's chain on it."""


from pathlib import Path

import numpy as np
import pytest
from stdatamodels.jwst import datamodels
from synthetic_modes import (
    assert_background_equals_truth,
    background_slits,
    calibrated_exposure,
    mode_wcs,
)

from jwst_mbkg_plus.synthetic.instrument import GRATINGS

#: Wavelengths [micron] where the dispersion is compared.
CHECK_WAVELENGTHS = (0.6, 1.0, 1.54, 3.0, 5.3)
#: dlambda/dx [micron/px] of the real NIRSpec PRISM WCS at CHECK_WAVELENGTHS, evaluated
#: (slit_frame -> detector at the slit centre) on the CEERS cutout
#: jw01345062001_03101_00001_nrs2_phot.138.1345_933.fits (CRDS context jwst_1225).
REAL_DISPERSION = (0.00436, 0.01455, 0.02054, 0.01358, 0.00752)
CEERS_CUTOUT = "ceers_1345_o062_slit138/jw01345062001_03101_00001_nrs2_phot.138.1345_933.fits"


def _dispersion(slit_wcs, wavelengths):
    """dlambda/dx [micron/px] along the slit centre of a slit WCS."""
    lam = np.linspace(0.55e-6, 5.4e-6, 4000)
    x, _ = slit_wcs.get_transform("slit_frame", "detector")(
        np.zeros_like(lam), np.zeros_like(lam), lam, with_bounding_box=False
    )
    slope = np.gradient(lam * 1e6, np.asarray(x))
    return np.interp(wavelengths, lam * 1e6, slope)


def _real_dispersion():
    path = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real" / CEERS_CUTOUT
    if not path.is_file():
        return np.array(REAL_DISPERSION), "stored"
    with datamodels.SlitModel(str(path)) as model:
        return _dispersion(model.meta.wcs, CHECK_WAVELENGTHS), "real WCS"


@pytest.fixture(scope="module")
def prism_wcs(tmp_path_factory):
    """jwst's WCS on the synthetic instrument for a 4-slitlet PRISM scene on NRS1 and NRS2."""
    from jwst_mbkg_plus.synthetic import Scene

    scene = Scene(grating="PRISM", n_background=2, n_point=1, n_extended=1,
                  detectors=("NRS1", "NRS2"))
    return mode_wcs(tmp_path_factory.mktemp("prism_wcs"), scene)


def test_prism_reference_entries(prism_wcs):
    _, refs = prism_wcs
    with datamodels.WavelengthrangeModel(str(refs["wavelengthrange"])) as model:
        index = list(model.waverange_selector).index("CLEAR_PRISM")
        assert model.order[index] == 0
        assert model.wavelengthrange[index] == pytest.approx([0.6e-6, 5.3e-6])
    with datamodels.DisperserModel(str(refs["disperser"]["PRISM"])) as model:
        assert model.meta.instrument.grating == "PRISM"
        assert model.groovedensity is None
        # The real CaF2 Sellmeier coefficients.
        assert model.kcoef == pytest.approx([1.03293407, 0.01233043, 4.09337187])
        assert model.lcoef == pytest.approx([5.45608159e-3, 3.88174430e-2, 1.26400781e3])
    with datamodels.FOREModel(str(refs["fore"]["CLEAR"])) as model:
        assert model.meta.instrument.filter == "CLEAR"


@pytest.mark.parametrize("det", ("NRS1", "NRS2"))
def test_dispersion_follows_the_real_prism(prism_wcs, det):
    """dlambda/pixel within 10% of the real NIRSpec PRISM WCS at 0.6-5.3 micron."""
    from jwst.assign_wcs import nirspec

    models, _ = prism_wcs
    real, origin = _real_dispersion()
    # The real curve's shape: 4.7x from the blue end to the peak near 1.5 micron.
    assert real[2] / real[0] == pytest.approx(4.7, rel=0.05), origin
    slits = models[det].meta.wcs.get_transform("gwa", "slit_frame").slits
    assert len(slits) == 2
    for slit in slits:
        synthetic = _dispersion(nirspec.nrs_wcs_set_input(models[det], slit.name),
                                CHECK_WAVELENGTHS)
        np.testing.assert_allclose(synthetic, real, rtol=0.10, err_msg=f"{origin}, {slit.name}")


def test_placement_helper_agrees_with_the_wcs(prism_wcs):
    """The analytic x(lambda) the scene uses to place slitlets is jwst's WCS."""
    from jwst.assign_wcs import nirspec

    from jwst_mbkg_plus.synthetic.instrument import spectrum_pixel_range

    models, _ = prism_wcs
    for det, model in models.items():
        for slit in model.meta.wcs.get_transform("gwa", "slit_frame").slits:
            wcs = nirspec.nrs_wcs_set_input(model, slit.name)
            lam = np.array(GRATINGS["PRISM"]["wrange"])
            x, _ = wcs.get_transform("slit_frame", "detector")(
                np.zeros(2), np.zeros(2), lam, with_bounding_box=False
            )
            column = spectrum_pixel_range(slit.quadrant, slit.xcen, "PRISM", slit.ycen)[det]
            assert np.asarray(x) == pytest.approx(column, abs=2)
            # Without a column: the envelope over the quadrant's columns.
            lo, hi = spectrum_pixel_range(slit.quadrant, slit.xcen, "PRISM")[det]
            assert 380 < hi - lo < 480
            assert lo - 2 <= x[0] and x[1] <= hi + 2


# ------------------------------------------------------------ jwst's chain on PRISM
@pytest.fixture(scope="module")
def prism_chain(synthetic_instrument, tmp_path_factory):
    """A noiseless PRISM exposure on NRS1 and NRS2 through assign_wcs ... photom, extract_1d."""
    from jwst_mbkg_plus.synthetic import Scene

    scene = Scene(grating="PRISM", n_background=2, n_point=1, n_extended=1,
                  detectors=("NRS1", "NRS2"), background="prism_sky", seed=5)
    return calibrated_exposure(scene, tmp_path_factory.mktemp("prism_chain"),
                               synthetic_instrument)


@pytest.mark.parametrize("det", ("NRS1", "NRS2"))
def test_prism_calibrated_background_equals_truth(prism_chain, det):
    run = prism_chain[det]
    background = background_slits(run["cal"])
    assert len(background) == 1
    for slit in run["cal"].slits:
        assert slit.meta.wcsinfo.spectral_order == 0
        assert 380 < slit.data.shape[1] < 470
    assert_background_equals_truth(background, run["truth"], min_pixels=5000)


@pytest.mark.parametrize("det", ("NRS1", "NRS2"))
def test_prism_band_edges_are_nan(prism_chain, det):
    """As in real data: pixels inside the bounding box but beyond 0.6-5.3 micron are NaN."""
    from jwst_mbkg_plus.io.slits import DO_NOT_USE

    for slit in prism_chain[det]["cal"].slits:
        wl = slit.wavelength
        beyond = np.isfinite(wl) & ((wl < 0.6) | (wl > 5.3))
        assert beyond.sum() > 50
        assert not np.isfinite(slit.data[beyond]).any()
        assert np.all(slit.dq[beyond] & DO_NOT_USE)
        # Inside the band every pixel calibrates, up to its ends.
        inside = np.isfinite(wl) & (wl >= 0.6) & (wl <= 5.3)
        if "BKG" in str(slit.source_name).upper():
            usable = np.isfinite(slit.data) & ((slit.dq & DO_NOT_USE) == 0)
            assert usable[inside].mean() > 0.995
            ends = inside & ((wl < 0.61) | (wl > 5.29))
            assert ends.sum() > 20
            assert usable[ends].mean() > 0.99


@pytest.mark.parametrize("det", ("NRS1", "NRS2"))
def test_prism_extract_1d_extracts_order_0(prism_chain, det):
    """extract_1d skips spectral order 0 except for the prism: every slit is extracted."""
    run = prism_chain[det]
    specs = run["x1d"].spec
    assert len(specs) == len(run["cal"].slits)
    for spec in specs:
        assert spec.spectral_order == 0
        wave = np.asarray(spec.spec_table["WAVELENGTH"])
        sb = np.asarray(spec.spec_table["FLUX"])
        ok = np.isfinite(sb) & (sb != 0)
        assert ok.sum() > 350
        assert wave[ok].min() < 0.65 and wave[ok].max() > 5.25
