"""QA plots: every plot function writes a valid, non-trivial PNG without touching pyplot."""

import sys

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus import plots as qa_plots
from jwst_mbkg_plus.io.products import read_qa
from jwst_mbkg_plus.jwst_internals import table_dtype
from jwst_mbkg_plus.plots.figure import natural_key
from jwst_mbkg_plus.tools import plot as tool_plot
from jwst_mbkg_plus.tools.plot import plot_files

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path, min_bytes=5000):
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > min_bytes, path.stat().st_size


@pytest.fixture
def stack():
    rng = np.random.default_rng(1)
    wave = np.linspace(1.7, 3.1, 700)
    level = 0.3 + 0.2 * (wave - 1.7)
    spectra = level * (1 + 0.02 * rng.standard_normal((6, wave.size)))
    spectra[4] *= 1.4
    spectra[1, 100] = 3.0
    clipped = np.zeros(spectra.shape, bool)
    clipped[1, 100] = True
    accepted = np.array([True, True, True, True, False, True])
    return wave, spectra, accepted, level, clipped


def test_plot_master_background(stack, tmp_path):
    wave, spectra, accepted, level, clipped = stack
    path = qa_plots.plot_master_background(
        wave, spectra, accepted, level, 0.01 * level, clipped_mask=clipped,
        labels=[f"slit {i}" for i in range(6)], path=tmp_path / "master.png",
    )
    _check_png(path, 20000)
    # Without labels, clipped mask or errors, and with many spectra (no legend).
    many = np.repeat(spectra[:4], 5, axis=0)
    path = qa_plots.plot_master_background(
        wave, many, np.ones(20, bool), level, None, path=tmp_path / "many.png"
    )
    _check_png(path)


def test_plot_residual_histograms(tmp_path):
    rng = np.random.default_rng(2)
    pulls = {f"{k}:BKG": rng.standard_normal(3000) for k in range(5)}
    pulls["empty"] = np.array([np.nan])
    path = qa_plots.plot_residual_histograms(pulls, tmp_path / "hist.png")
    _check_png(path, 10000)
    with pytest.raises(ValueError, match="no finite residual"):
        qa_plots.plot_residual_histograms({"a": [np.nan]}, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_plot_slit_and_image_model(tmp_path):
    rng = np.random.default_rng(3)
    slit = datamodels.SlitModel(data=rng.normal(1.0, 0.1, (25, 400)).astype(np.float32))
    slit.dq = np.zeros((25, 400), np.uint32)
    slit.dq[3:6, 10:20] = 1
    slit.name, slit.source_name, slit.xstart, slit.ystart = "7", "9999_BKG7", 900, 1200
    _check_png(qa_plots.plot_slit(slit, tmp_path / "slit.png"))
    image = datamodels.ImageModel(data=rng.normal(0, 1, (64, 64)).astype(np.float32))
    _check_png(qa_plots.plot_slit(image, tmp_path / "image.png", title="image"))
    with pytest.raises(ValueError, match="as an image|no data array"):
        qa_plots.plot_slit(datamodels.SpecModel(), tmp_path / "bad.png")


def test_plot_spectra_and_qa_record(tmp_path):
    wave = np.linspace(1, 2, 300)
    spectra = [("a", wave, np.sin(wave * 9) + 2, 0.05 + 0 * wave), ("b", wave, wave, None)]
    _check_png(qa_plots.plot_spectra(spectra, tmp_path / "spectra.png"))
    with pytest.raises(ValueError, match="no finite value"):
        qa_plots.plot_spectra([("x", wave, np.full(300, np.nan), None)], tmp_path / "n.png")
    # A record without vetting (user_background) still plots.
    qa = {"source": "user_background", "residuals": {"1:BKG": {"median_relative": 0.01,
                                                               "pull_std": 1.1,
                                                               "column_pull_std": 1.3}}}
    _check_png(qa_plots.plot_qa_record(qa, tmp_path / "qa.png"))


def test_no_pyplot_and_backend_untouched(stack, tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    had_pyplot = "matplotlib.pyplot" in sys.modules
    wave, spectra, accepted, level, _ = stack
    qa_plots.plot_master_background(wave, spectra, accepted, level, None,
                                    path=tmp_path / "m.png")
    assert matplotlib.get_backend() == backend
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot


def test_missing_matplotlib_is_a_clear_import_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        qa_plots.plot_residual_histograms({"a": [0.0, 1.0]}, tmp_path / "x.png")


def test_matplotlib_only_imported_inside_functions():
    # matplotlib is optional: no module of the package imports it at import time.
    import ast
    from pathlib import Path

    import jwst_mbkg_plus

    root = Path(jwst_mbkg_plus.__file__).parent
    for source in root.rglob("*.py"):
        tree = ast.parse(source.read_text())
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.startswith("matplotlib") for n in names), source


def test_master_spectrum_legend_says_what_it_is():
    """A masterbg1d spectrum has no slit name: its legend says 'master background', not '0'."""
    from jwst_mbkg_plus.io.products import masterbg1d_model

    wave = np.linspace(1.7, 3.1, 50)
    master = masterbg1d_model(wave, 0.1 + 0 * wave, 0.01 + 0 * wave, np.ones(50))
    ((label, _, flux, _),) = tool_plot._x1d_spectra(master)
    assert label == "master background" and np.isfinite(flux).all()
    x1d = datamodels.MultiSpecModel()
    for _ in range(2):
        spec = datamodels.SpecModel()
        spec.spec_table = np.zeros(5, dtype=table_dtype(spec, "spec_table"))
        x1d.spec.append(spec)
    assert [s[0] for s in tool_plot._x1d_spectra(x1d)] == ["spectrum 1", "spectrum 2"]


def test_qa_record_plot_reads_mos_and_spec3_records(tmp_path):
    """Both steps' ASDF records (and an older spec3 JSON record) plot through read_qa."""
    import json

    from jwst_mbkg_plus.io.products import write_qa

    pulls = {"pull_spread": 0.98, "pull_outlier_fraction": 0.0, "median_relative": 0.001,
             "rejected_pixels": 3}
    mos = {"step": "master_background_mos_plus", "slits": ["10:BKG10", "2:BKG2"],
           "vetting": {"applied": True, "threshold": 5.0, "scores": {"10:BKG10": 0.1,
                                                                    "2:BKG2": 9.0},
                       "rejected": {"2:BKG2": "too bright"}},
           "residuals": {"10:BKG10": {**pulls, "column_pull_spread": 1.04},
                         "2:BKG2": {**pulls, "column_pull_spread": 1.1}},
           "flagged_pixels": {"slits": {"10:BKG10": 3}, "total": 3},
           "pulls": {"pixels": "valid pixels not rejected", "target": [0.95, 1.05]},
           "pull_summary": {"pull_spread": 0.98, "n_pixels": 100}}
    spec3 = {"step": "master_background_plus", "slits": ["a[0]", "b[0]"],
             "vetting": {"applied": False, "scores": {}, "rejected": {}},
             "inputs": [{"name": "a[0]", "accepted": True, "score": None},
                        {"name": "b[0]", "accepted": True, "score": None}],
             "residuals": {"a[0]": pulls, "b[0]": pulls}}
    write_qa(mos, tmp_path / "mos_mbkgqa.asdf")
    write_qa(spec3, tmp_path / "spec3_mbkgqa.asdf")
    old = {"inputs": [{"name": "a[0]", "accepted": False, "score": 8.0, "reason": "bad"}]}
    (tmp_path / "old_mbkgqa.json").write_text(json.dumps(old))
    assert read_qa(tmp_path / "spec3_mbkgqa.asdf")["slits"] == ["a[0]", "b[0]"]
    written = plot_files(
        [tmp_path / f for f in ("mos_mbkgqa.asdf", "spec3_mbkgqa.asdf", "old_mbkgqa.json")],
        tmp_path / "png")
    assert [p.name for p in written] == ["mos_mbkgqa.png", "spec3_mbkgqa.png",
                                         "old_mbkgqa.png"]
    for path in written:
        _check_png(path)
    # Natural order: 2 before 10.
    assert sorted(mos["slits"], key=natural_key) == ["2:BKG2", "10:BKG10"]
