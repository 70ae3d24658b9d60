"""uncalibrate_like_jwst: stored corrections and jwst's inverse steps give the same background.

The stored barshadow and pathloss corrections and the kept flat must reproduce
exactly what jwst's nested steps compute again with ``inverse=True``; with
hooks on the nested steps (and so no kept flat) the steps themselves run again.
"""

import numpy as np
import pytest
from jwst.stpipe import Step
from stpipe.step import preserve_step_pars

from jwst_mbkg_plus import JWST_EQUIVALENT_SETTINGS, MasterBackgroundMosPlusStep
from jwst_mbkg_plus.mos.calibration import calibrate_as_extended, uncalibrate_like_jwst
from jwst_mbkg_plus.mos.master import master_from_slits
from jwst_mbkg_plus.mos.options import MasterOptions
from jwst_mbkg_plus.synthetic import extract_slits

HOOKED = ("flat_field", "pathloss", "barshadow")


class _CountingHook(Step):
    """A post-hook that passes the model on and counts its calls."""

    spec = ""
    calls = 0

    def process(self, model):
        type(self).calls += 1
        return model


@pytest.fixture(scope="module")
def backgrounds(synthetic_instrument, small_mos_exposure):
    """The un-calibrated master from stored corrections, and from re-running the steps."""
    from jwst_mbkg_plus.synthetic import local_crds_context

    _, exposure = small_mos_exposure
    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_paths["NRS1"])
        step = MasterBackgroundMosPlusStep(**JWST_EQUIVALENT_SETTINGS)
        with preserve_step_pars(step):
            forward = calibrate_as_extended(step, slits, keep_flat=True)
            master = master_from_slits(
                step, forward.model, MasterOptions.from_step(step)
            )
            stored = uncalibrate_like_jwst(step, forward, master.wavelength, master.surf_bright)
        assert forward.flat is not None
        forward.flat.close()

        hooked = MasterBackgroundMosPlusStep(
            steps={name: {"post_hooks": [_CountingHook()]} for name in HOOKED},
            **JWST_EQUIVALENT_SETTINGS,
        )
        _CountingHook.calls = 0
        with preserve_step_pars(hooked):
            forward_hooked = calibrate_as_extended(hooked, slits, keep_flat=True)
            forward_calls = _CountingHook.calls
            rerun = uncalibrate_like_jwst(
                hooked, forward_hooked, master.wavelength, master.surf_bright
            )
        inverse_calls = _CountingHook.calls - forward_calls
    return {
        "stored": stored,
        "rerun": rerun,
        "flat_kept_with_hooks": forward_hooked.flat is not None,
        "calls": (forward_calls, inverse_calls),
        "n_slits": len(slits.slits),
    }


def test_hooks_make_the_nested_steps_run_again(backgrounds):
    assert not backgrounds["flat_kept_with_hooks"]
    assert backgrounds["calls"] == (len(HOOKED), len(HOOKED))


def test_stored_corrections_equal_jwst_inverse_steps(backgrounds):
    stored, rerun = backgrounds["stored"], backgrounds["rerun"]
    assert len(stored) == len(rerun) == backgrounds["n_slits"]
    finite = 0
    for (data_s, dq_s), (data_r, dq_r) in zip(stored, rerun, strict=True):
        assert data_s.dtype.kind == data_r.dtype.kind == "f"
        assert data_s.dtype.itemsize == data_r.dtype.itemsize == 4
        np.testing.assert_array_equal(data_s, data_r)
        np.testing.assert_array_equal(dq_s, dq_r)
        finite += int(np.isfinite(data_s).sum())
    assert finite > 1000
