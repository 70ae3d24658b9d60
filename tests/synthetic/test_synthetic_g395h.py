"""G395H/F290LP in the synthetic instrument: spectra longer than a detector, split by the gap."""

import numpy as np
import pytest
from stdatamodels.jwst import datamodels
from synthetic_modes import (
    assert_background_equals_truth,
    background_slits,
    calibrated_exposure,
    mode_wcs,
)

from jwst_mbkg_plus.synthetic.instrument import (
    GRATINGS,
    PARTIAL_MIN_FRACTION,
    detector_fractions,
    spectrum_pixel_range,
)

#: Wavelengths [micron] where the dispersion is recorded (docs/synthetic.rst).
CHECK_WAVELENGTHS = (2.87, 3.5, 4.0, 4.5, 5.27)
#: dlambda/dx [nm/px] of the synthetic G395H at CHECK_WAVELENGTHS for the innermost
#: shutter of quadrant 3 (row 1, 1 mm from the MSA centre), from jwst's WCS. The real
#: G395H has ~0.66 nm/px at 4 micron (R ~2700); the synthetic one falls faster towards
#: the red because its short camera sees the red end far off axis.
SYNTHETIC_DISPERSION = (0.736, 0.705, 0.662, 0.606, 0.491)
BAND = tuple(w * 1e6 for w in GRATINGS["G395H"]["wrange"])


def _x_of_lambda(slit_wcs, lam):
    """Detector x of wavelengths [m] along the slit centre (no bounding box)."""
    x, _ = slit_wcs.get_transform("slit_frame", "detector")(
        np.zeros_like(lam), np.zeros_like(lam), lam, with_bounding_box=False
    )
    return np.asarray(x)


@pytest.fixture(scope="module")
def g395h_wcs(tmp_path_factory):
    """jwst's WCS on the synthetic instrument for a 6-slitlet G395H scene on NRS1 and NRS2."""
    from jwst_mbkg_plus.synthetic import Scene

    scene = Scene(grating="G395H", n_background=4, n_point=1, n_extended=1,
                  detectors=("NRS1", "NRS2"), seed=5)
    models, refs = mode_wcs(tmp_path_factory.mktemp("g395h_wcs"), scene)
    return models, refs, scene


def test_g395h_reference_entries(g395h_wcs):
    _, refs, _ = g395h_wcs
    with datamodels.WavelengthrangeModel(str(refs["wavelengthrange"])) as model:
        index = list(model.waverange_selector).index("F290LP_G395H")
        assert model.order[index] == -1
        assert model.wavelengthrange[index] == pytest.approx([2.87e-6, 5.27e-6])
    with datamodels.DisperserModel(str(refs["disperser"]["G395H"])) as model:
        assert model.meta.instrument.grating == "G395H"
        assert model.groovedensity == pytest.approx(GRATINGS["G395H"]["groovedensity"])
        assert model.tilt_y == pytest.approx(GRATINGS["G395H"]["tilt_y"])
    # The medium-resolution gratings stay untilted.
    with datamodels.DisperserModel(str(refs["disperser"]["G395M"])) as model:
        assert model.tilt_y == 0.0


def test_g395h_dispersion_is_real_like(g395h_wcs):
    """~0.66 nm/px at 4 micron through jwst's WCS (real G395H: R ~2700, ~0.66 nm/px)."""
    from jwst.assign_wcs import nirspec

    models, _, scene = g395h_wcs
    inner = next(s for s in scene.layout() if s.quadrant == 3 and s.row == 1)
    lam = np.linspace(2.8e-6, 5.35e-6, 6000)
    for det, model in models.items():
        wcs = nirspec.nrs_wcs_set_input(model, inner.slitlet_id)
        slope = np.gradient(lam * 1e9, _x_of_lambda(wcs, lam))
        dispersion = np.interp(CHECK_WAVELENGTHS, lam * 1e6, slope)
        np.testing.assert_allclose(dispersion, SYNTHETIC_DISPERSION, rtol=0.01, err_msg=det)
        assert dispersion[2] == pytest.approx(0.66, rel=0.03)
        # So the band spans ~3800 px: more than one detector.
        span = np.ptp(_x_of_lambda(wcs, np.array(GRATINGS["G395H"]["wrange"])))
        assert 3600 < span < 4000


def test_centred_slitlet_is_split_by_the_gap(g395h_wcs):
    """A centred shutter's band: the blue part on NRS1, the red on NRS2, mid-band in the gap."""
    from jwst.assign_wcs import nirspec

    models, _, scene = g395h_wcs
    inner = next(s for s in scene.layout() if s.quadrant == 3 and s.row == 1)
    lam = np.linspace(*GRATINGS["G395H"]["wrange"], 2401)
    on = {}
    for det, model in models.items():
        names = [int(s.name) for s in model.meta.wcs.get_transform("gwa", "slit_frame").slits]
        assert inner.slitlet_id in names, det  # jwst opens it on both detectors
        x = _x_of_lambda(nirspec.nrs_wcs_set_input(model, inner.slitlet_id), lam)
        on[det] = (x >= 0) & (x <= 2047)
    blue, red = lam[on["NRS1"]] * 1e6, lam[on["NRS2"]] * 1e6
    assert blue.min() == pytest.approx(BAND[0]) and red.max() == pytest.approx(BAND[1])
    assert blue.max() < red.min()  # nothing on both detectors
    gap = ~on["NRS1"] & ~on["NRS2"]
    assert 0.02 < gap.mean() < 0.08  # the 145 px gap
    assert 3.95 < blue.max() < 4.1 < red.min() < 4.2
    assert 0.45 < on["NRS1"].mean() < 0.52 and 0.44 < on["NRS2"].mean() < 0.5


def test_placement_helper_agrees_with_the_wcs(g395h_wcs):
    """The analytic x(lambda) the scene uses to place slitlets is jwst's WCS (tilted grating)."""
    from jwst.assign_wcs import nirspec

    models, _, _ = g395h_wcs
    lam = np.array(GRATINGS["G395H"]["wrange"])
    for det, model in models.items():
        for slit in model.meta.wcs.get_transform("gwa", "slit_frame").slits:
            x = _x_of_lambda(nirspec.nrs_wcs_set_input(model, slit.name), lam)
            column = spectrum_pixel_range(slit.quadrant, slit.xcen, "G395H", slit.ycen)[det]
            assert x == pytest.approx(column, abs=2)


def test_layout_places_partial_spectra():
    """No G395H spectrum fits on one detector: slitlets get >= 30% of the band on theirs."""
    from jwst_mbkg_plus.synthetic import Scene

    for det in ("NRS1", "NRS2"):
        scene = Scene(grating="G395H", n_background=9, n_point=3, n_extended=2,
                      detectors=(det,), seed=7)
        layout = scene.layout()
        fractions = [detector_fractions(s.quadrant, s.row, "G395H")[det] for s in layout]
        assert min(fractions) >= PARTIAL_MIN_FRACTION
        assert max(fractions) < 0.6
        # The background rows reach the innermost and the outermost row of the
        # quadrants, so they cover every source wavelength on the detector.
        bkg_rows = sorted(s.row for s in layout if s.kind == "background")
        src_rows = [s.row for s in layout if s.kind != "background"]
        assert bkg_rows[0] == 1 and bkg_rows[-1] == 365
        assert all(bkg_rows[0] <= r <= bkg_rows[-1] for r in src_rows)
    both = Scene(grating="G395H", n_background=9, n_point=3, n_extended=2,
                 detectors=("NRS1", "NRS2"), seed=7).layout()
    # Alternate column slots: spectra of Q1/Q3 (Q2/Q4) share detector rows.
    for a, b in ((1, 3), (2, 4)):
        cols_a = {c for s in both if s.quadrant == a for c in range(s.first_column - 1,
                                                                      s.first_column + 4)}
        assert not cols_a & {c for s in both if s.quadrant == b for c in s.columns}


# ----------------------------------------------------------- jwst's chain on G395H
@pytest.fixture(scope="module")
def g395h_chain(synthetic_instrument, tmp_path_factory):
    """
    A noiseless G395H exposure on NRS1 and NRS2 through assign_wcs ... photom, extract_1d.

    extract_1d runs on resample_spec's rectified slits, as in Spec2Pipeline: G395H
    traces curve by up to ~70 px over a detector, too much for a fixed aperture on
    the cutouts.
    """
    from jwst_mbkg_plus.synthetic import Scene

    scene = Scene(grating="G395H", n_background=2, n_point=1, n_extended=1,
                  detectors=("NRS1", "NRS2"), seed=5)
    return calibrated_exposure(scene, tmp_path_factory.mktemp("g395h_chain"),
                               synthetic_instrument, resample_before_extract=True)


@pytest.mark.parametrize("det", ("NRS1", "NRS2"))
def test_g395h_calibrated_background_equals_truth(g395h_chain, det):
    """Every slit on both detectors, each holding part of the band: calibrated = truth to 1e-4."""
    run = g395h_chain[det]
    slits = run["cal"].slits
    assert len(slits) == 4  # every slitlet has a part of its band on each detector
    background = background_slits(run["cal"])
    assert len(background) == 2
    for slit in slits:
        assert slit.meta.wcsinfo.spectral_order == -1
        wl = slit.wavelength[np.isfinite(slit.data)]
        # A part of the band only.
        assert BAND[0] - 0.01 < wl.min() and wl.max() < BAND[1] + 0.01
        assert wl.max() - wl.min() < 0.65 * (BAND[1] - BAND[0])
    assert_background_equals_truth(background, run["truth"], min_pixels=1000)


@pytest.mark.parametrize("det", ("NRS1", "NRS2"))
def test_g395h_extract_1d_follows_the_part_of_the_band(g395h_chain, det):
    """extract_1d extracts order -1 on each detector over the part of the band it holds."""
    run = g395h_chain[det]
    specs = run["x1d"].spec
    assert len(specs) == len(run["cal"].slits)
    for spec, slit in zip(specs, run["cal"].slits, strict=True):
        assert spec.spectral_order == -1
        wave = np.asarray(spec.spec_table["WAVELENGTH"])
        # Point sources fill FLUX, extended ones (and background) SURF_BRIGHT.
        sb = np.asarray(spec.spec_table["FLUX"]) + np.asarray(spec.spec_table["SURF_BRIGHT"])
        ok = np.isfinite(sb) & (sb != 0)
        assert ok.sum() > 200
        wl = slit.wavelength[np.isfinite(slit.data)]
        assert wave[ok].min() == pytest.approx(wl.min(), abs=0.005)
        assert wave[ok].max() == pytest.approx(wl.max(), abs=0.005)
        # ~0.5-0.75 nm per pixel along the extracted spectrum.
        step = np.median(np.diff(wave[ok])) * 1e3
        assert 0.45 < step < 0.76
