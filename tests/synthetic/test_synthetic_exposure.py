"""Rate files and truth of synthetic exposures (no pipeline run)."""

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.synthetic import Scene, load_truth, make_exposure
from jwst_mbkg_plus.synthetic.exposure import RNOISE_SHARE


@pytest.fixture(scope="module")
def noisy(noisy_mos_exposure):
    scene, result = noisy_mos_exposure
    model = datamodels.ImageModel(str(result.rate_path))
    yield scene, result, model, load_truth(result.truth_path)
    model.close()


def _full_frame(truth, key, fill=np.nan):
    out = np.full((2048, 2048), fill, dtype=float)
    for s in truth.slits.values():
        arr = np.asarray(s[key], dtype=float)
        ny, nx = arr.shape
        window = out[s["ystart"] - 1 : s["ystart"] - 1 + ny, s["xstart"] - 1 : s["xstart"] - 1 + nx]
        valid = np.asarray(s["valid"])
        window[valid] = arr[valid]
    return out


def test_rate_file_layout(noisy):
    scene, result, model, _ = noisy
    assert model.data.shape == (2048, 2048)
    assert model.data.dtype.kind == "f" and model.data.dtype.itemsize == 4
    assert model.meta.exposure.type == "NRS_MSASPEC"
    assert model.meta.instrument.grating == scene.grating
    assert model.meta.instrument.filter == scene.filter
    # MSAMETFL is relative to the rate file's folder.
    assert model.meta.instrument.msa_metadata_file == result.msa_path.name
    assert (result.rate_path.parent / model.meta.instrument.msa_metadata_file).is_file()
    assert not np.any(model.dq)
    np.testing.assert_allclose(model.err**2, model.var_poisson + model.var_rnoise, rtol=1e-5)
    np.testing.assert_allclose(
        model.var_rnoise, RNOISE_SHARE / (1 - RNOISE_SHARE) * model.var_poisson, rtol=1e-5
    )


def test_variance_is_the_injected_noise(noisy):
    scene, _, model, truth = noisy
    counts = _full_frame(truth, "counts")
    hot = np.zeros((2048, 2048), bool)
    hot[truth.hot_pixels["y"], truth.hot_pixels["x"]] = True
    good = np.isfinite(counts) & ~hot
    var = (model.var_poisson + model.var_rnoise)[good]
    # Variance = (noise_fraction * signal)^2 (plus a negligible floor).
    np.testing.assert_allclose(np.sqrt(var), scene.noise_fraction * counts[good], rtol=1e-3)
    z = (model.data[good] - counts[good]) / np.sqrt(var)
    assert abs(np.mean(z)) < 0.02
    assert np.std(z) == pytest.approx(1.0, abs=0.02)


def test_hot_pixels_are_unflagged_and_recorded(noisy):
    scene, _, model, truth = noisy
    hp = truth.hot_pixels
    n_bkg = len(truth.background_names())
    singles = sum(1 for c in hp["cluster"] if c == 0)
    assert singles == n_bkg * scene.hot_pixels_per_slit
    assert len({c for c in hp["cluster"] if c}) == n_bkg * scene.hot_clusters_per_slit
    counts = _full_frame(truth, "counts", fill=0.0)
    ys, xs = np.asarray(hp["y"]), np.asarray(hp["x"])
    assert np.all(model.dq[ys, xs] == 0)
    assert np.all(model.data[ys, xs] > 20 * np.maximum(counts[ys, xs], 1e-30))
    assert set(hp["slitlet_id"]) <= set(truth.background_names())


def test_contaminated_slitlet_is_recorded(noisy):
    _, _, _, truth = noisy
    assert len(truth.contaminated) == 1
    (name,) = truth.contaminated
    slit = truth.slit(name)
    assert slit["kind"] == "background" and slit["contaminated"]
    contaminant = np.asarray(slit["contaminant"])
    assert contaminant.max() > 0.1 * np.nanmedian(slit["background"])
    for other in truth.background_names():
        if other != name:
            assert not np.any(truth.slit(other)["contaminant"])


def test_noiseless_scene_is_exact(small_mos_exposure):
    _, result = small_mos_exposure
    truth = load_truth(result.truth_paths["NRS2"])
    with datamodels.ImageModel(str(result.rate_paths["NRS2"])) as model:
        counts = _full_frame(truth, "counts")
        good = np.isfinite(counts)
        np.testing.assert_allclose(model.data[good], counts[good], rtol=1e-6)
        # Outside the slits' cutouts nothing is painted.
        painted = np.zeros((2048, 2048), bool)
        for s in truth.slits.values():
            ny, nx = np.shape(s["counts"])
            painted[
                s["ystart"] - 1 : s["ystart"] - 1 + ny, s["xstart"] - 1 : s["xstart"] - 1 + nx
            ] = True
        assert np.all(model.data[~painted] == 0)


def test_truth_background_is_the_scene_background(small_mos_exposure):
    scene, result = small_mos_exposure
    truth = load_truth(result.truth_paths["NRS1"])
    wave, sb = truth.background_1d()
    np.testing.assert_allclose(sb, scene.background_spectrum(wave))
    for name in truth.background_names():
        s = truth.slit(name)
        valid = np.asarray(s["valid"])
        b = np.asarray(s["background"])[valid]
        b0 = scene.background_spectrum(np.asarray(s["wavelength"])[valid])
        modulation = b / b0
        # Gradient, quadrant offset and scatter: within a few percent of 1, smooth in a slit.
        assert np.all(np.abs(modulation - 1) < 0.15)
        assert np.std(modulation) < 0.01


def test_exposure_is_cached(synthetic_instrument, small_mos_exposure):
    scene, result = small_mos_exposure
    again = make_exposure(scene, result.folder, instrument=synthetic_instrument)
    assert again.seconds == 0.0
    assert again.rate_paths == result.rate_paths


def test_small_scene_builds(synthetic_instrument, tmp_path):
    # Build time is measured in benchmarks/bench_synthetic.py, not asserted here.
    scene = Scene(
        n_background=8, n_point=3, n_extended=3, noise_fraction=0.02, seed=21, hot_pixels_per_slit=1
    )
    result = make_exposure(scene, tmp_path, instrument=synthetic_instrument)
    truth = load_truth(result.truth_path)
    assert len(truth.slits) == 14


@pytest.mark.slow
def test_150_slitlet_scene_builds(synthetic_instrument, tmp_path):
    scene = Scene(
        n_background=100,
        n_point=25,
        n_extended=25,
        detectors=("NRS1", "NRS2"),
        noise_fraction=0.02,
        hot_pixels_per_slit=2,
        hot_clusters_per_slit=1,
        n_contaminated=5,
        gradient_x=0.05,
        slit_scatter=0.01,
        seed=5,
    )
    result = make_exposure(scene, tmp_path, instrument=synthetic_instrument)
    total_valid = 0
    for det in ("NRS1", "NRS2"):
        truth = load_truth(result.truth_paths[det])
        assert len(truth.slits) == 75
        total_valid += sum(int(np.sum(s["valid"])) for s in truth.slits.values())
        overlap = truth.tree["overlap_pixels"]
        assert overlap < 0.03 * total_valid
