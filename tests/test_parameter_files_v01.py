"""Parameter files exported by jwst_mbkg_plus 0.1 (before the feature-first layout) still work.

stpipe records the full class path in an exported file; 0.1 wrote
``jwst_mbkg_plus.steps.pipelines.Spec2PipelinePlus`` and
``jwst_mbkg_plus.steps.mos_step.MasterBackgroundMosPlusStep``. The files in
``tests/data`` were exported by 0.1 (commit cdc1d15) and are kept unchanged.
"""

import os
import subprocess
from pathlib import Path

import asdf
import pytest
from comparisons import skippable_multislit, strun_executable
from stpipe import Step

from jwst_mbkg_plus import (
    MasterBackgroundMosPlusStep,
    MasterBackgroundPlusStep,
    Spec2PipelinePlus,
    Spec3PipelinePlus,
)
from jwst_mbkg_plus.jwst_internals import JWST_MINOR
from jwst_mbkg_plus.pipelines import FlatFieldReuseStep

DATA = Path(__file__).parent / "data"


def test_fixtures_name_the_old_class_paths():
    with asdf.open(DATA / "calwebb_spec2_plus_v0.1.asdf") as af:
        assert af["class"] == "jwst_mbkg_plus.steps.pipelines.Spec2PipelinePlus"
    with asdf.open(DATA / "master_background_mos_plus_v0.1.asdf") as af:
        assert af["class"] == "jwst_mbkg_plus.steps.mos_step.MasterBackgroundMosPlusStep"


def _loadable_here(name, pipeline_class, tmp_path):
    """
    The 0.1 pipeline file with only the parameters the installed jwst knows.

    The files were exported on jwst 3.0: a full calwebb_spec2 file lists that version's
    steps and parameters, which older jwst refuse (``Extra value 'clean_flicker_noise'``
    on 1.19, a wfss_contam ``maximum_cores`` of "1"), as they refuse jwst's own 3.0
    files. The plus steps and the flat_field that reuses their flat, with their class
    paths and values, are kept.
    """
    if JWST_MINOR == "3.0":
        return DATA / name
    known = pipeline_class()
    with asdf.open(DATA / name) as af:
        tree = {key: af.tree[key] for key in ("class", "name")}
        pars = known.get_pars()
        tree["parameters"] = {k: v for k, v in af.tree["parameters"].items() if k in pars}
        tree["steps"] = []
        for step in af.tree["steps"]:
            if not step["class"].startswith("jwst_mbkg_plus."):
                continue
            mine = getattr(known, step["name"])
            step_pars = mine.get_pars()
            tree["steps"].append({
                "class": step["class"],
                "name": step["name"],
                "parameters": {k: v for k, v in step["parameters"].items() if k in step_pars},
            })
        path = tmp_path / name
        asdf.AsdfFile(tree).write_to(path)
    return path


def test_v01_pipeline_file_loads_plus_classes_and_values(tmp_path):
    path = _loadable_here("calwebb_spec2_plus_v0.1.asdf", Spec2PipelinePlus, tmp_path)
    pipe = Step.from_config_file(str(path))
    assert type(pipe) is Spec2PipelinePlus
    assert type(pipe.master_background_mos) is MasterBackgroundMosPlusStep
    assert type(pipe.flat_field) is FlatFieldReuseStep
    assert pipe.master_background_mos.median_kernel == 5
    assert pipe.master_background_mos.pixel_sigma == 5.0
    path = _loadable_here("calwebb_spec3_plus_v0.1.asdf", Spec3PipelinePlus, tmp_path)
    spec3 = Step.from_config_file(str(path))
    assert type(spec3) is Spec3PipelinePlus
    assert type(spec3.master_background) is MasterBackgroundPlusStep


@pytest.mark.pipeline
def test_v01_step_file_runs_plus_class_with_strun(tmp_path):
    """``strun <0.1 file> <data>`` runs the plus step with the file's parameters."""
    params = DATA / "master_background_mos_plus_v0.1.asdf"
    step = Step.from_config_file(str(params))
    assert type(step) is MasterBackgroundMosPlusStep
    assert (step.combine_method, step.pixel_sigma) == ("median", 4.0)

    data = skippable_multislit(tmp_path / "already_done_cal.fits")
    strun = strun_executable()
    out = subprocess.run(
        [strun, str(params), str(data), "--output_dir", str(tmp_path), "--log-level", "INFO"],
        capture_output=True, text=True, cwd=tmp_path, env=os.environ.copy(), timeout=300,
    )
    assert out.returncode == 0, out.stderr
    log_text = out.stdout + out.stderr
    assert "MasterBackgroundMosPlusStep" in log_text
    assert "Background subtraction has already occurred" in log_text
