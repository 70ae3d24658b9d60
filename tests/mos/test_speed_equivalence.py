"""The speed-ups change no result: one calibration pass, the flat handover, the working copy.

Runs jwst's real front end and calwebb_spec2 on the project's synthetic NIRSpec
MOS exposure (noiseless, 6 slitlets on NRS1 and NRS2) through the local CRDS
context. resample_spec and extract_1d are skipped: they do not touch ``_cal``.
"""

import logging

import numpy as np
import pytest
from comparisons import max_plain_relative_difference
from jwst.pipeline import Spec2Pipeline
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus import (
    JWST_EQUIVALENT_SETTINGS,
    MasterBackgroundMosPlusStep,
    Spec2PipelinePlus,
)
from jwst_mbkg_plus.mos.calibration import working_copy
from jwst_mbkg_plus.synthetic import extract_slits

SKIP_1D = {"resample_spec": {"skip": True}, "extract_1d": {"skip": True}}


class _NoHandoverPipeline(Spec2PipelinePlus):
    """Spec2PipelinePlus with the flat handover switched off, for comparison."""

    takes_flat_handover = False


def _run(cls, rate_path, mbkg_pars, output_dir):
    steps = {"master_background_mos": {"skip": False, **mbkg_pars}, **SKIP_1D}
    result = cls.call(str(rate_path), steps=steps, save_results=False, output_dir=str(output_dir))
    return result[0] if isinstance(result, list) else result


@pytest.fixture(scope="module")
def exposure(small_mos_exposure):
    _, exposure = small_mos_exposure
    return exposure


@pytest.fixture(scope="module")
def cal_products(synthetic_instrument, exposure, tmp_path_factory):
    """NRS1 _cal models: stock, plus (jwst-equivalent) with and without the handover."""
    from jwst_mbkg_plus.synthetic import local_crds_context

    rate = exposure.rate_paths["NRS1"]
    folders = {name: tmp_path_factory.mktemp(name) for name in ("stock", "plus", "plus_nh")}
    records = []
    handler = _ListHandler(records)
    logger = logging.getLogger("jwst_mbkg_plus")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with local_crds_context(synthetic_instrument):
            saved = {"save_background": True}
            out = {
                "stock": _run(Spec2Pipeline, rate, saved, folders["stock"]),
                "plus": _run(
                    Spec2PipelinePlus, rate, {**JWST_EQUIVALENT_SETTINGS, **saved}, folders["plus"]
                ),
                "plus_no_handover": _run(
                    _NoHandoverPipeline, rate, JWST_EQUIVALENT_SETTINGS, folders["plus_nh"]
                ),
            }
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    out["log"] = [r.getMessage() for r in records]
    for name in ("stock", "plus"):
        path = next(folders[name].glob("*_masterbg2d.fits"))
        out[f"{name}_bkg"] = datamodels.open(path)
    return out


class _ListHandler(logging.Handler):
    def __init__(self, records):
        super().__init__(level=logging.INFO)
        self.records = records

    def emit(self, record):
        self.records.append(record)


def test_flat_handover_is_bit_identical(cal_products):
    """Reusing master_background_mos's flat gives exactly the _cal of interpolating it again."""
    with_handover, without = cal_products["plus"], cal_products["plus_no_handover"]
    assert with_handover.meta.cal_step.flat_field == "COMPLETE"
    assert len(with_handover.slits) == len(without.slits) > 0
    for a, b in zip(with_handover.slits, without.slits, strict=True):
        assert a.name == b.name
        for name in ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert with_handover.meta.ref_file.fflat.name == without.meta.ref_file.fflat.name
    reuse = [m for m in cal_products["log"] if "reusing the flat" in m]
    assert len(reuse) == 1, cal_products["log"]


def test_reused_flat_rejected_where_wavelengths_changed(synthetic_instrument, exposure, caplog):
    """A slit whose wavelengths changed (as wavecorr does for point sources) gets a new flat."""
    from jwst.flatfield import FlatFieldStep
    from jwst.lib.wcs_utils import get_wavelengths

    from jwst_mbkg_plus.synthetic import local_crds_context

    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_paths["NRS1"])
        pipeline = Spec2PipelinePlus()
        subtracted = pipeline.master_background_mos.run(slits)
        changed = subtracted.slits[-1]
        changed.wavelength = get_wavelengths(changed) * (1 + 1e-5)
        reference = FlatFieldStep.call(subtracted.copy())
        with caplog.at_level(logging.INFO, logger="jwst_mbkg_plus"):
            reused = pipeline.flat_field.run(subtracted)
        assert pipeline.master_background_mos.take_flat_handover() is None
    n = len(reused.slits)
    assert f"for {n - 1} of {n} slits" in caplog.text
    for a, b in zip(reused.slits, reference.slits, strict=True):
        for name in ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_cal_matches_stock_pipeline(cal_products):
    """
    With jwst-equivalent settings, calwebb_spec2_plus's results are calwebb_spec2's.

    The ``masterbg2d`` backgrounds and the ``_cal`` arrays agree within 1e-5
    plain relative difference wherever both are finite, and are finite at the
    same pixels: the plus step un-calibrates the master with jwst's own
    float32 arithmetic, so even ``_cal`` pixels whose background-subtracted
    value is near zero agree.
    """
    stock, plus = cal_products["stock"], cal_products["plus"]
    assert stock.meta.cal_step.master_background == "COMPLETE"
    assert plus.meta.cal_step.master_background == "COMPLETE"
    compared = 0
    slits = zip(
        stock.slits,
        plus.slits,
        cal_products["stock_bkg"].slits,
        cal_products["plus_bkg"].slits,
        strict=True,
    )
    for cal_s, cal_p, bkg_s, bkg_p in slits:
        for s, p in ((cal_s, cal_p), (bkg_s, bkg_p)):
            np.testing.assert_array_equal(np.isfinite(s.data), np.isfinite(p.data))
            assert max_plain_relative_difference(s.data, p.data) <= 1e-5, cal_s.name
        compared += int(np.isfinite(cal_s.data).sum())
    assert compared > 1000


def test_working_copy_shares_wcs_and_leaves_input_alone(synthetic_instrument, exposure):
    from jwst_mbkg_plus.synthetic import local_crds_context

    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_paths["NRS1"])
    before = [s.data.copy() for s in slits.slits]
    work = working_copy(slits)
    for original, copied, data in zip(slits.slits, work.slits, before, strict=True):
        assert copied.meta.wcs is original.meta.wcs
        assert not np.shares_memory(copied.data, original.data)
        copied.data[...] = 0
        copied.meta.photometry.pixelarea_steradians = 1.0
        np.testing.assert_array_equal(original.data, data)
        assert original.meta.photometry.pixelarea_steradians is None
    # Valid on its own: it serializes and reads back.
    assert isinstance(work, datamodels.MultiSlitModel)
    work.validate()


@pytest.mark.parametrize("pars", [{}, JWST_EQUIVALENT_SETTINGS], ids=["default", "jwst"])
def test_standalone_step_keeps_no_flat(synthetic_instrument, exposure, pars):
    from jwst_mbkg_plus.synthetic import local_crds_context

    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_paths["NRS1"])
        step = MasterBackgroundMosPlusStep(**pars)
        result = step.run(slits)
    assert result.meta.cal_step.master_background == "COMPLETE"
    assert step.take_flat_handover() is None
