"""The STScI NIRSpec MOS notebook's ``spec2_params`` dict, with Spec2PipelinePlus.

The notebook (written for jwst 1.19.1) runs ``Spec2Pipeline.call(rate, steps=spec2_params)``
with a barshadow override both for calwebb_spec2's own barshadow step and, nested
under ``master_background_mos``, for the one that calibrates the background
slitlets. CI runs this on every supported jwst version (marker ``compat``).
"""

import logging
import shutil
from pathlib import Path

import pytest

from jwst_mbkg_plus import MasterBackgroundMosPlusStep, Spec2PipelinePlus


@pytest.mark.compat
def test_notebook_spec2_params_honour_nested_barshadow_override(
    synthetic_instrument, small_mos_exposure, tmp_path, monkeypatch, caplog
):
    from jwst_mbkg_plus.synthetic import local_crds_context

    _, exposure = small_mos_exposure
    monkeypatch.chdir(exposure.folder)  # the MSA file is found beside the rate file
    stock = next(Path(synthetic_instrument.crds_path).rglob("*barshadow*.fits"))
    barshadow_reffile = str(tmp_path / "newest_barshadow.fits")
    shutil.copy(stock, barshadow_reffile)
    # The notebook gives both overrides the same file; a second copy for the nested one
    # tells which barshadow step read which.
    nested_reffile = str(tmp_path / "nested_barshadow.fits")
    shutil.copy(stock, nested_reffile)
    # The notebook's dict, verbatim but for extract_1d (not needed here).
    spec2_params = {
        "assign_wcs": {"slit_y_low": -0.55, "slit_y_high": 0.35},
        "master_background_mos": {
            "skip": False,
            "save_background": True,
            "median_kernel": 1,
            "sigma_clip": None,
            "steps": {"barshadow": {"override_barshadow": nested_reffile}},
        },
        "bkg_subtract": {"skip": True},
        "resample_spec": {"fillval": "nan", "weight_type": "ivm"},
        "barshadow": {"override_barshadow": barshadow_reffile},
        "extract_1d": {"skip": True},
    }
    config, _ = Spec2PipelinePlus.build_config(None, steps=spec2_params)
    pipe = Spec2PipelinePlus.from_config_section(config)
    pipe.output_dir = str(tmp_path)
    pipe.save_results = True
    mb = pipe.master_background_mos
    assert type(mb) is MasterBackgroundMosPlusStep
    assert mb.barshadow.override_barshadow == nested_reffile
    caplog.set_level(logging.INFO)
    with local_crds_context(synthetic_instrument):
        result = pipe.run(str(exposure.rate_paths["NRS1"]))
    model = result[0] if isinstance(result, list) else result
    assert model.meta.cal_step.master_background == "COMPLETE"
    assert any(p.name.endswith("_masterbg1d.fits") for p in tmp_path.iterdir())
    # The nested barshadow that calibrated the background slitlets read its override
    # (jwst's BarShadowStep logs the file it uses), calwebb_spec2's own barshadow its own.
    used = [r.getMessage() for r in caplog.records
            if r.getMessage().startswith("Using BARSHADOW reference file")]
    assert any(m.endswith("nested_barshadow.fits") for m in used), used
    assert any(m.endswith("newest_barshadow.fits") for m in used), used
    assert model.meta.ref_file.barshadow.name.endswith("newest_barshadow.fits")
