"""Scene: validation, slitlet placement and the background model."""

import numpy as np
import pytest

from jwst_mbkg_plus.synthetic import Scene, default_background
from jwst_mbkg_plus.synthetic.instrument import N_COLUMNS, detector_of_shutter


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_background": -1},
        {"n_background": 0, "n_point": 0, "n_extended": 0},
        {"shutters_per_slitlet": 0},
        {"shutters_per_slitlet": 6},
        {"grating": "G140M"},
        {"detectors": ("NRS3",)},
        {"detectors": ("NRS1", "NRS1")},
        {"detectors": ()},
        {"noise_fraction": -0.1},
        {"slit_scatter": 0.6},
        {"n_contaminated": 5, "n_background": 4},
        {"quadrant_offsets": (0.0, 0.0)},
        {"gradient_x": 1.0},
        {"background": "/nonexistent.csv"},
        {"point_sigma": 0.0},
    ],
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(ValueError):
        Scene(**kwargs)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        Scene(4)  # positional options are refused


@pytest.mark.parametrize("detectors", [("NRS1",), ("NRS2",), ("NRS1", "NRS2")])
def test_layout_places_full_spectra_on_their_detector(detectors):
    scene = Scene(n_background=20, n_point=5, n_extended=5, detectors=detectors, seed=4)
    layout = scene.layout()
    assert [s.slitlet_id for s in layout] == list(range(1, 31))
    kinds = [s.kind for s in layout]
    assert kinds.count("background") == 20 and kinds.count("point") == 5
    assert {s.detector for s in layout} == set(detectors)
    for s in layout:
        assert detector_of_shutter(s.quadrant, s.row, scene.grating) == s.detector
        assert 1 <= s.first_column and s.columns[-1] <= N_COLUMNS
        assert (s.source_id == 0) == (s.kind == "background")
    # Slitlets in one quadrant are separated by at least one closed shutter.
    for q in {s.quadrant for s in layout}:
        cols = sorted((s.first_column, s.columns[-1]) for s in layout if s.quadrant == q)
        for (_, end), (start, _) in zip(cols[:-1], cols[1:], strict=True):
            assert start - end >= 2


def test_layout_is_seeded():
    a = Scene(n_background=6, seed=1).layout()
    b = Scene(n_background=6, seed=1).layout()
    c = Scene(n_background=6, seed=2).layout()
    assert a == b
    assert [s.row for s in a] != [s.row for s in c]


def test_too_many_slitlets_raise():
    with pytest.raises(ValueError, match="do not fit"):
        Scene(n_background=100, detectors=("NRS1",)).layout()


def test_150_slitlets_fit_on_two_detectors():
    scene = Scene(n_background=100, n_point=25, n_extended=25, detectors=("NRS1", "NRS2"))
    assert len(scene.layout()) == 150


def test_digest_tracks_parameters():
    assert Scene(seed=1).digest() == Scene(seed=1).digest()
    assert Scene(seed=1).digest() != Scene(seed=2).digest()
    assert Scene(noise_fraction=0.02).digest() != Scene(noise_fraction=0.2).digest()


def test_default_background_is_a_smooth_continuum_with_a_line():
    lam = np.linspace(1.6, 3.2, 4001)
    cont = default_background(lam)
    assert np.all(cont > 0) and np.all(np.diff(cont) < 0)  # zodi falls over G235M
    line = default_background(lam, line_center=2.3, line_amplitude=0.5)
    k = np.argmin(np.abs(lam - 2.3))
    assert line[k] / cont[k] == pytest.approx(1.5, rel=1e-3)
    assert np.allclose(line[np.abs(lam - 2.3) > 0.05], cont[np.abs(lam - 2.3) > 0.05])


def test_scene_background_default_line_inside_the_band():
    scene = Scene(background_scale=2.0)
    lam = np.linspace(1.66, 3.17, 3001)
    b = scene.background_spectrum(lam)
    peak = lam[np.argmax(b / default_background(lam))]
    assert 1.66 < peak < 3.17
    assert np.allclose(scene.background_spectrum(np.array([2.0])), 2.0 * default_background(2.0))


def test_background_from_real_sky_csv(shared_data):
    csv = shared_data / "msa_sky" / "jw01345062001_sky.csv"
    scene = Scene(background=str(csv))
    data = np.genfromtxt(csv, delimiter=",", names=True)
    lam = data["wave"][100:110]
    assert np.allclose(scene.background_spectrum(lam), data["flux"][100:110])
    assert np.isnan(scene.background_spectrum(np.array([10.0])))[0]


def test_background_modulation():
    scene = Scene(gradient_x=0.1, gradient_y=-0.2, quadrant_offsets=(0.0, 0.05, 0.0, 0.0))
    centre = scene.background_modulation(x_msa=0.0, y_msa=0.0, quadrant=1, slitlet_index=0)
    assert centre == pytest.approx(1.0)
    right = scene.background_modulation(x_msa=0.02, y_msa=0.0, quadrant=1, slitlet_index=0)
    up = scene.background_modulation(x_msa=0.0, y_msa=0.02, quadrant=1, slitlet_index=0)
    assert right > 1.0 > up
    q2 = scene.background_modulation(x_msa=0.0, y_msa=0.0, quadrant=2, slitlet_index=0)
    assert q2 == pytest.approx(1.05)
    scattered = Scene(n_background=50, slit_scatter=0.02, seed=3)
    values = [
        scattered.background_modulation(x_msa=0.0, y_msa=0.0, quadrant=1, slitlet_index=i)
        for i in range(scattered.n_slitlets)
    ]
    assert 0.01 < np.std(values) < 0.03
