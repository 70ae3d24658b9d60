"""Per-slitlet calibration errors of synthetic scenes: sizes, correlation, and the painted truth."""

import numpy as np
import pytest

import jwst_mbkg_plus.synthetic.instrument as instrument
from jwst_mbkg_plus.synthetic import Scene, load_truth, make_exposure
from jwst_mbkg_plus.synthetic.calib_error import (
    calibration_error_factor,
    check_calibration_error,
)


def test_terms_have_the_requested_rms():
    scene = Scene(n_background=40, n_point=40, n_extended=0, detectors=("NRS1", "NRS2"),
                  calibration_error=(0.03, 0.02, 0.01), seed=3)
    terms = scene.calibration_errors()
    assert terms.shape == (80, 3)
    rms = np.sqrt(np.mean(terms**2, axis=0))
    # 80 draws: the rms is within ~25 % of the requested one.
    np.testing.assert_allclose(rms, [0.03, 0.02, 0.01], rtol=0.25)
    # Reproducible, and different for another seed.
    np.testing.assert_array_equal(terms, scene.calibration_errors())
    other = Scene(**{**scene.to_dict(), "detectors": ("NRS1", "NRS2"), "seed": 4,
                     "calibration_error": (0.03, 0.02, 0.01)})
    assert not np.allclose(other.calibration_errors(), terms)


def test_correlated_part_follows_position():
    kw = dict(n_background=40, n_point=0, n_extended=0, detectors=("NRS1",), seed=5)
    full = Scene(calibration_error=(0.03, 0.0, 0.0, 1.0), **kw).calibration_errors()[:, 0]
    layout = Scene(**kw).layout()
    # Fully correlated: a plane per quadrant in (row, column) describes it exactly.
    for q in {s.quadrant for s in layout}:
        sel = [i for i, s in enumerate(layout) if s.quadrant == q]
        a = np.array([[1, layout[i].row, layout[i].first_column] for i in sel], float)
        coef, *_ = np.linalg.lstsq(a, full[sel], rcond=None)
        np.testing.assert_allclose(a @ coef, full[sel], atol=1e-12)


def test_factor_shape_and_none():
    lo, hi = instrument.GRATINGS["G235M"]["wrange"]
    lam = np.linspace(lo * 1e6, hi * 1e6, 101)
    f = calibration_error_factor([0.02, 0.04, 0.0], lam, "G235M")
    assert f[-1] - f[0] == pytest.approx(0.04, abs=1e-3)
    assert np.mean(f) == pytest.approx(1.02, abs=1e-3)
    curved = calibration_error_factor([0.0, 0.0, 0.03], lam, "G235M")
    assert np.mean(curved) == pytest.approx(1.0, abs=2e-3)
    assert check_calibration_error(()) == ()
    assert check_calibration_error((0, 0, 0)) == ()
    assert Scene().to_dict().get("calibration_error") is None
    with pytest.raises(ValueError, match="calibration_error"):
        Scene(calibration_error=(0.5, 0, 0))
    with pytest.raises(ValueError, match="correlation"):
        Scene(calibration_error=(0.01, 0, 0, 2))


@pytest.mark.pipeline
def test_painted_slits_carry_their_factor(synthetic_instrument, tmp_path):
    scene = Scene(n_background=3, n_point=1, n_extended=0, noise_fraction=0.0,
                  calibration_error=(0.05, 0.04, 0.0), seed=2)
    result = make_exposure(scene, tmp_path, instrument=synthetic_instrument)
    truth = load_truth(result.truth_path)
    terms = dict(zip((s.slitlet_id for s in scene.layout()), scene.calibration_errors(),
                     strict=True))
    for name, slit in truth.slits.items():
        ok = slit["valid"]
        expected = calibration_error_factor(terms[name], slit["wavelength"][ok], "G235M")
        np.testing.assert_allclose(slit["calibration_error"][ok], expected, rtol=1e-6)
        np.testing.assert_allclose(slit["calibration_terms"], terms[name])
        # The painted rate is the calibrated truth over the (ideal) calibration.
        total = slit["background"][ok] + slit["source"][ok] + slit["contaminant"][ok]
        np.testing.assert_allclose(slit["counts"][ok], total / slit["factor"][ok], rtol=1e-5)
    # Truth background = scene background x modulation x the slit's own error.
    wave, sb = truth.background_1d()
    name = truth.background_names()[0]
    slit = truth.slit(name)
    ok = slit["valid"]
    ratio = slit["background"][ok] / np.interp(slit["wavelength"][ok], wave, sb)
    # (the 1-D truth is sampled: compare medians, not the pixels on the line's flanks)
    assert np.median(ratio / slit["calibration_error"][ok]) == pytest.approx(1.0, abs=1e-3)
