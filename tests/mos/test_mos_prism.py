"""The MOS plus step on PRISM/CLEAR with a real sky: He I and the 10x thermal rise."""

import asdf
import numpy as np
import pytest

from jwst_mbkg_plus import MasterBackgroundMosPlusStep
from jwst_mbkg_plus.mos.options import MasterOptions
from jwst_mbkg_plus.synthetic import extract_slits, load_truth, local_crds_context

#: He I 1.083 micron sits in the second of the ten bands over 0.6-5.3 micron.
BANDS = np.linspace(0.6, 5.3, 11)


@pytest.fixture(scope="module")
def prism_run(synthetic_instrument, tmp_path_factory):
    """A 2%-noise PRISM scene on the built-in real sky, through the plus step."""
    from jwst_mbkg_plus.synthetic import Scene, make_exposure

    scene = Scene(grating="PRISM", background="prism_sky", n_background=7, n_point=2,
                  n_extended=1, noise_fraction=0.02, seed=21)
    folder = tmp_path_factory.mktemp("mos_prism")
    exposure = make_exposure(scene, folder, instrument=synthetic_instrument)
    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_path)
        result = MasterBackgroundMosPlusStep.call(slits, save_background=True,
                                                  output_dir=str(folder))
    with asdf.open(next(folder.glob("*_mbkgqa.asdf"))) as af:
        qa = dict(af["master_background_qa"])
    return slits, result, load_truth(exposure.truth_path), qa


def _residuals(slits, result, truth, kind):
    waves, rel, pulls = [], [], []
    for slit_in, slit_out in zip(slits.slits, result.slits, strict=True):
        if (truth.slit(slit_in.name)["kind"] == "background") != (kind == "background"):
            continue
        true_rate = truth.cutout(slit_in.name, "background", slit_in) / truth.cutout(
            slit_in.name, "factor", slit_in
        )
        subtracted = slit_in.data - slit_out.data
        ok = np.isfinite(subtracted) & np.isfinite(true_rate) & (true_rate > 0)
        waves.append(truth.cutout(slit_in.name, "wavelength", slit_in)[ok])
        rel.append(subtracted[ok] / true_rate[ok] - 1)
        pulls.append((slit_out.data / slit_out.err)[ok])
    return np.concatenate(waves), np.concatenate(rel), np.concatenate(pulls)


def test_grid_follows_the_prism_dispersion(prism_run):
    *_, qa = prism_run
    grid = qa["grid"]
    assert grid["sampling"] == "native" and grid["interpolation"] == "cubic"
    assert grid["native_step_ratio"] > 2  # 5th-95th percentile of the 4.7x range
    # Two samples per pixel over ~405 pixels.
    assert 700 < grid["n_samples"] < 900


def test_source_slits_unbiased_in_every_band(prism_run, synthetic_instrument):
    """Noise-free residual of the subtracted background in the source slitlets."""
    slits, result, truth, _ = prism_run
    wave, rel, _ = _residuals(slits, result, truth, "source")
    assert abs(np.median(rel)) < 1e-3
    which = np.digitize(wave, BANDS) - 1
    for k in range(10):
        assert abs(np.median(rel[which == k])) < 3e-3, f"band {BANDS[k]:.2f}-{BANDS[k + 1]:.2f}"
    # He I itself (1.06-1.11 micron) unbiased. The adaptive smoothing of the master
    # (master_smoothing='adaptive') keeps it as combined: its scatter is the unsmoothed
    # master's (within 2.5 times the unsmoothed continuum's), while the smoothed
    # continuum's is lower.
    line = (wave > 1.06) & (wave < 1.11)
    assert abs(np.median(rel[line])) < 3e-3
    runs = {MasterOptions().master_smoothing: (wave, rel)}
    for setting in {"adaptive", "none"} - set(runs):
        with local_crds_context(synthetic_instrument):
            other = MasterBackgroundMosPlusStep.call(slits, master_smoothing=setting)
        runs[setting] = _residuals(slits, other, truth, "source")[:2]
    stats = {}
    for setting, (w, r) in runs.items():
        on_line, continuum = (w > 1.06) & (w < 1.11), (w > 0.8) & (w < 1.0)
        assert abs(np.median(r[on_line])) < 3e-3
        stats[setting] = np.std(r[on_line]), np.std(r[continuum])
    assert stats["none"][0] < 2.5 * stats["none"][1]
    assert stats["adaptive"][0] < 1.1 * stats["none"][0]
    assert stats["adaptive"][1] < 0.8 * stats["none"][1]


def test_background_slit_pulls(prism_run):
    slits, result, truth, _ = prism_run
    wave, _, pulls = _residuals(slits, result, truth, "background")
    assert np.std(pulls) == pytest.approx(1.0, abs=0.07)
    # Blue end (0.0044 micron/px), He I and the thermal red end alike.
    for lo, hi in ((0.6, 0.8), (1.0, 1.15), (4.5, 5.3)):
        sel = (wave > lo) & (wave < hi)
        assert np.std(pulls[sel]) == pytest.approx(1.0, abs=0.1), (lo, hi)
