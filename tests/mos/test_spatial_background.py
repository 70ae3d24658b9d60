"""Background varying across the MSA: spatial_model and slit_scale on synthetic exposures.

Side by side with jwst's stock step on the same extracted slits: a background
with a 5% gradient along the MSA's y axis plus 2% opposite offsets of the two
quadrants on NRS1, a chromatic quadrant map with only 4 background slitlets, and a
scene with no spatial variation.
"""

import asdf
import numpy as np
import pytest
from jwst.master_background import MasterBackgroundMosStep

from jwst_mbkg_plus import MasterBackgroundMosPlusStep
from jwst_mbkg_plus.synthetic import extract_slits


def _residuals(truth, slits_in, slits_out):
    """Per slit: median noise-free residual (subtracted / true background - 1), and bkg pulls."""
    residual, pulls = {}, []
    for slit_in, slit_out in zip(slits_in, slits_out, strict=True):
        true_rate = truth.cutout(slit_in.name, "background", slit_in) / truth.cutout(
            slit_in.name, "factor", slit_in
        )
        subtracted = slit_in.data.astype(float) - slit_out.data
        ok = np.isfinite(subtracted) & np.isfinite(true_rate) & (true_rate > 0)
        residual[slit_in.name] = float(np.median(subtracted[ok] / true_rate[ok] - 1))
        if truth.slit(slit_in.name)["kind"] == "background":
            with np.errstate(divide="ignore", invalid="ignore"):
                pull = slit_out.data / slit_out.err
            pulls.append(pull[ok & np.isfinite(pull)])
    return residual, float(np.std(np.concatenate(pulls)))


def _rms(residual):
    values = np.array(list(residual.values()))
    return float(np.sqrt(np.mean(values**2)))


@pytest.fixture(scope="module")
def varying(synthetic_instrument, tmp_path_factory):
    """Stock, plus and plus with a spatial model and slit_scale on a varying background."""
    from jwst_mbkg_plus.synthetic import Scene, load_truth, local_crds_context, make_exposure

    scene = Scene(
        n_background=7,
        n_point=3,
        n_extended=1,
        detectors=("NRS1",),
        gradient_y=0.05,
        quadrant_offsets=(0.0, 0.0, 0.02, -0.02),
        noise_fraction=0.05,
        seed=31,
    )
    folder = tmp_path_factory.mktemp("varying_mos")
    exposure = make_exposure(scene, folder, instrument=synthetic_instrument)
    truth = load_truth(exposure.truth_path)
    out = {"truth": truth}
    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_path)
        out["input"] = slits
        out["stock"] = MasterBackgroundMosStep.call(slits)
        out["plus"] = MasterBackgroundMosPlusStep.call(slits, spatial_model="none")
        # One master, nothing rescaled: what a single spectrum leaves.
        out["plain"] = MasterBackgroundMosPlusStep.call(slits, spatial_model="none",
                                                        slit_scale=False)
        qa_dir = folder / "qa"
        qa_dir.mkdir()
        # spatial_model: the default ('auto').
        out["spatial"] = MasterBackgroundMosPlusStep.call(
            slits, slit_scale=True, save_qa=True, output_dir=str(qa_dir)
        )
        out["qa_path"] = next(qa_dir.glob("*_mbkgqa.asdf"))
    return out


def test_spatial_model_removes_gradient_and_quadrant_offsets(varying):
    truth = varying["truth"]
    slits = varying["input"].slits
    stock, stock_pull = _residuals(truth, slits, varying["stock"].slits)
    plain, _ = _residuals(truth, slits, varying["plain"].slits)
    spatial, spatial_pull = _residuals(truth, slits, varying["spatial"].slits)
    # One master for the whole MSA, nothing rescaled, leaves the gradient in every
    # slitlet ...
    assert _rms(stock) > 0.02
    assert _rms(plain) > 0.02
    # ... the spatial factor takes it out.
    assert _rms(spatial) < 0.005
    assert max(abs(v) for v in spatial.values()) < 0.01
    # Background slitlets (each against the model fitted without it) have honest errors.
    assert stock_pull > 1.05
    assert spatial_pull == pytest.approx(1.0, abs=0.05)


def test_spatial_qa_record(varying):
    qa = varying["spatial"].meta.master_background_qa.instance
    record = qa["spatial_model"]
    assert record["requested"] == "auto"
    assert record["model"] in ("plane", "plane_quadrant")
    assert "y" in record["parameters"]
    # 5% per MSA half-height: the plane's y term, in units of the slits' spread, is positive.
    assert record["parameters"]["y"]["value"] > 0.02
    assert len(record["background_slits"]) == 7
    for entry in record["background_slits"].values():
        assert {"x", "y", "quadrant", "ratio", "ratio_error", "factor", "factor_error"} <= set(
            entry
        )
    applied = qa["applied_scaling"]
    assert len(applied) == len(varying["input"].slits)
    point = [v for k, v in applied.items() if "BKG" not in k and "sky_factor" in v]
    assert point, "no point-source slit was rescaled"
    for entry in point:
        assert entry["sky_factor"]["applied"]
        assert entry["sky_factor"]["level_error"] > 0
        # No calibration error in this scene: each slit's factor is 1 within a few sigma.
        level = entry["sky_factor"]["level"]
        assert abs(level - 1) < 5 * entry["sky_factor"]["level_error"] + 0.003
    scatter = qa["calibration_scatter"]
    assert scatter["mode"] == "always" and scatter["rescaled"]
    with asdf.open(varying["qa_path"]) as af:
        assert af["master_background_qa"]["spatial_model"]["model"] == record["model"]


def test_spatial_map_plot(varying, tmp_path):
    pytest.importorskip("matplotlib")
    from jwst_mbkg_plus.tools.plot import plot_files

    written = plot_files([varying["qa_path"]], tmp_path)
    spatial = [p for p in written if p.name.endswith("_spatial.png")]
    assert len(spatial) == 1
    assert spatial[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert spatial[0].stat().st_size > 20_000


def test_default_is_auto_and_none_turns_it_off(varying):
    assert MasterBackgroundMosPlusStep().spatial_model == "auto"
    qa = varying["plus"].meta.master_background_qa.instance
    assert "spatial_model" not in qa
    # No spatial factor; the background slitlets' levels (a gradient the master does not
    # follow) show as scatter, so slit_scale='auto' rescales the slitlets it can.
    assert all("spatial_factor" not in v for v in qa.get("applied_scaling", {}).values())
    assert qa["calibration_scatter"]["mode"] == "auto"


def test_defaults_beat_stock_on_chromatic_quadrant_map(synthetic_instrument, tmp_path):
    """4 background slitlets; quadrant levels that change with wavelength (0.90-1.03)."""
    from jwst_mbkg_plus.synthetic import Scene, load_truth, local_crds_context, make_exposure

    scene = Scene(
        n_background=4, n_point=3, n_extended=1, detectors=("NRS1",), noise_fraction=0.05,
        chromatic_quadrants=((0.0, 0.0), (0.0, 0.0), (-0.08, -0.02), (0.01, 0.0)),
        chromatic_gradient_y=(0.02, -0.01), seed=8,
    )
    exposure = make_exposure(scene, tmp_path, instrument=synthetic_instrument)
    truth = load_truth(exposure.truth_path)
    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_path)
        stock = MasterBackgroundMosStep.call(slits)
        plus = MasterBackgroundMosPlusStep.call(slits)
    res_stock, _ = _residuals(truth, slits.slits, stock.slits)
    res_plus, pull = _residuals(truth, slits.slits, plus.slits)
    assert _rms(res_stock) > 0.015
    assert _rms(res_plus) < 0.005
    assert pull == pytest.approx(1.0, abs=0.05)
    qa = plus.meta.master_background_qa.instance
    record = qa["spatial_model"]
    assert record["model"] == "quadrant"
    assert record["wavelength_order"] >= 1
    assert qa["regime"]["wavelength_dependent"] is True
    assert qa["regime"]["n_background_spectra"] == 4


def test_no_spatial_variation_costs_nothing(synthetic_instrument, tmp_path):
    """With a uniform background, switching the spatial model on changes the result < 0.1%."""
    from jwst_mbkg_plus.synthetic import Scene, load_truth, local_crds_context, make_exposure

    scene = Scene(n_background=6, n_point=2, n_extended=1, detectors=("NRS1",),
                  noise_fraction=0.05, seed=32)
    exposure = make_exposure(scene, tmp_path, instrument=synthetic_instrument)
    truth = load_truth(exposure.truth_path)
    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_path)
        off = MasterBackgroundMosPlusStep.call(slits, spatial_model="none")
        on = MasterBackgroundMosPlusStep.call(slits)
    res_off, _ = _residuals(truth, slits.slits, off.slits)
    res_on, _ = _residuals(truth, slits.slits, on.slits)
    for name in res_off:
        assert abs(res_on[name] - res_off[name]) < 0.001
        assert abs(res_on[name]) < 0.002
    assert on.meta.master_background_qa.instance["spatial_model"]["model"] is not None


def test_spatial_model_rejected_with_jwst_combination(synthetic_instrument, tmp_path):
    from stdatamodels.jwst import datamodels

    from jwst_mbkg_plus.input_checks import ParameterError

    model = datamodels.MultiSlitModel()
    model.meta.exposure.type = "NRS_MSASPEC"
    # A configuration that contradicts itself raises, as jwst does, before any work.
    with pytest.raises(ParameterError, match="spatial_model='none'"):
        MasterBackgroundMosPlusStep.call(
            model, bkg_method="extract_1d", combine_method="jwst", spatial_model="plane"
        )
