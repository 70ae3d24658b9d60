"""Source flux with winged profiles, through the real calwebb_spec2_plus and extract_1d.

Runs ``validation/validate_source_flux.py`` on a small scene: point sources with a
Moffat profile (beta 2.5) whose wings reach the neighbouring shutters, two of the
point-source slitlets holding a second, undeclared source in a neighbouring
shutter, every slitlet with its own calibration error (3% level, 2% tilt), 1%
noise per pixel. The x1d flux of calwebb_spec2_plus (master background on, plus
defaults) is compared with the x1d of the same rate file with the true background
subtracted (master background off): the difference is the subtraction's error
(both resampled with ``weight_type='exptime'``, see the script).
"""

import importlib.util
from argparse import Namespace
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "validation" / "validate_source_flux.py"


def _script():
    spec = importlib.util.spec_from_file_location("validate_source_flux", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def source_flux(synthetic_instrument, tmp_path_factory):
    script = _script()
    args = Namespace(grating="G235M", n_background=6, n_point=4, n_two=2, profile="moffat",
                     beta=2.5, calibration=[0.03, 0.02, 0.0], stock=False, weight_type="exptime",
                     work=str(tmp_path_factory.mktemp("source_flux")))
    return script.run_scene(args, 0.01, 1, synthetic_instrument)


def test_scene_has_winged_and_two_source_slitlets(source_flux):
    assert source_flux["scene"]["point_profile"] == "moffat"
    assert len(source_flux["two_source_slits"]) == 2
    assert source_flux["undefined_truth_pixels"] == 0
    # Every point source slitlet is rescaled by its own sky (calibration scatter found).
    plus = source_flux["plus"]
    assert set(plus["x1d"]) and plus["x1d"].keys() == {
        k.split("/")[0] for k in plus["box"]}


def test_x1d_flux_within_0p3_percent_of_the_true_subtraction(source_flux):
    plus = source_flux["plus"]
    for name, entry in plus["x1d"].items():
        assert abs(entry["flux_rel_diff"]) < 0.003, (name, entry)


def test_every_source_box_flux_within_0p3_percent(source_flux):
    """Declared sources and the undeclared companions, in the _cal product."""
    boxes = source_flux["plus"]["box"]
    assert sum(k.endswith("/1") for k in boxes) == 2
    for key, value in boxes.items():
        assert abs(value) < 0.003, (key, value)
