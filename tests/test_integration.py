"""The plugin's contract with stpipe: registration, aliases, parameters, files.

All on real stpipe machinery: ``build_config`` + ``from_config_section`` is
exactly what ``Step.call`` does before ``run``, and the ``strun`` runs are
real subprocesses of the installed console script.
"""

import os
import shutil
import subprocess
import sys

import pytest
from comparisons import skippable_multislit, strun_executable
from stdatamodels.jwst import datamodels
from stpipe import Pipeline, Step
from stpipe.utilities import import_class, resolve_step_class_alias

import jwst_mbkg_plus
from jwst_mbkg_plus import (
    MasterBackgroundMosPlusStep,
    MasterBackgroundPlusStep,
    Spec2PipelinePlus,
    Spec3PipelinePlus,
)
from jwst_mbkg_plus.integration import get_steps
from jwst_mbkg_plus.jwst_internals import ParameterValidationError as ValidationError

PLUS_ALIASES = {
    "master_background_mos_plus": MasterBackgroundMosPlusStep,
    "master_background_plus": MasterBackgroundPlusStep,
    "calwebb_spec2_plus": Spec2PipelinePlus,
    "calwebb_spec3_plus": Spec3PipelinePlus,
}

NOTEBOOK_STEPS = {
    "master_background_mos": {
        "save_background": True,
        "steps": {"barshadow": {"override_barshadow": "my_barshadow.fits"}},
    }
}




def _run_cli(*args, cwd=None):
    return subprocess.run(
        list(args), capture_output=True, text=True, cwd=cwd, env=os.environ.copy(), timeout=300
    )




def test_get_steps_matches_classes():
    for class_name, alias, is_pipeline in get_steps():
        cls = import_class(class_name)
        assert cls.class_alias == alias
        assert issubclass(cls, Pipeline) == is_pipeline
    assert {alias for _, alias, _ in get_steps()} == set(PLUS_ALIASES)


def test_plus_classes_extend_jwst():
    from jwst.master_background import MasterBackgroundMosStep, MasterBackgroundStep
    from jwst.pipeline import Spec2Pipeline, Spec3Pipeline

    assert issubclass(MasterBackgroundMosPlusStep, MasterBackgroundMosStep)
    assert issubclass(MasterBackgroundPlusStep, MasterBackgroundStep)
    assert issubclass(Spec2PipelinePlus, Spec2Pipeline)
    assert issubclass(Spec3PipelinePlus, Spec3Pipeline)
    # Only the master background sub-steps differ; names are jwst's.
    assert set(Spec2PipelinePlus.step_defs) == set(Spec2Pipeline.step_defs)
    from jwst_mbkg_plus.pipelines import FlatFieldReuseStep

    for name, cls in Spec2Pipeline.step_defs.items():
        if name == "master_background_mos":
            assert Spec2PipelinePlus.step_defs[name] is MasterBackgroundMosPlusStep
        elif name == "flat_field":  # reuses master_background_mos's interpolated flat
            assert Spec2PipelinePlus.step_defs[name] is FlatFieldReuseStep
            assert issubclass(FlatFieldReuseStep, cls)
            assert FlatFieldReuseStep.get_config_reftype() == cls.get_config_reftype()
        else:
            assert Spec2PipelinePlus.step_defs[name] is cls
    for name, cls in Spec3Pipeline.step_defs.items():
        expected = MasterBackgroundPlusStep if name == "master_background" else cls
        assert Spec3PipelinePlus.step_defs[name] is expected
    # jwst's own classes are untouched by importing the plugin.
    assert Spec2Pipeline.step_defs["master_background_mos"] is MasterBackgroundMosStep
    assert Spec3Pipeline.step_defs["master_background"] is MasterBackgroundStep


def test_crds_reftype_and_loggers_are_jwst_parents():
    assert MasterBackgroundMosPlusStep.get_config_reftype() == "pars-masterbackgroundmosstep"
    assert MasterBackgroundPlusStep.get_config_reftype() == "pars-masterbackgroundstep"
    assert Spec2PipelinePlus.get_config_reftype() == "pars-spec2pipeline"
    assert Spec3PipelinePlus.get_config_reftype() == "pars-spec3pipeline"
    for cls in PLUS_ALIASES.values():
        loggers = cls.get_stpipe_loggers()
        assert "jwst_mbkg_plus" in loggers
        assert "jwst" in loggers


def test_aliases_resolve_without_clash():
    assert resolve_step_class_alias("master_background_mos") == "jwst.step.MasterBackgroundMosStep"
    assert resolve_step_class_alias("calwebb_spec2") == "jwst.pipeline.Spec2Pipeline"
    assert resolve_step_class_alias("master_background") == "jwst.step.MasterBackgroundStep"
    assert resolve_step_class_alias("calwebb_spec3") == "jwst.pipeline.Spec3Pipeline"
    for alias, cls in PLUS_ALIASES.items():
        assert import_class(resolve_step_class_alias(alias)) is cls
        scoped = resolve_step_class_alias(f"jwst_mbkg_plus::{alias}")
        assert import_class(scoped) is cls


def test_stpipe_list_shows_plus_aliases():
    stpipe = shutil.which("stpipe", path=os.path.dirname(sys.executable))
    result = _run_cli(stpipe, "list")
    assert result.returncode == 0, result.stderr
    for alias in PLUS_ALIASES:
        assert f"({alias})" in result.stdout


@pytest.mark.pipeline
@pytest.mark.parametrize(
    ("alias", "expected_option"),
    [
        ("master_background_mos", "--sigma_clip"),
        ("calwebb_spec2", "--steps.master_background_mos.sigma_clip"),
        ("master_background_mos_plus", "--sigma_clip"),
        ("jwst_mbkg_plus::calwebb_spec2_plus", "--steps.master_background_mos.sigma_clip"),
        ("calwebb_spec3_plus", "--steps.master_background.median_kernel"),
        ("master_background_plus", "--median_kernel"),
    ],
)
def test_strun_help_resolves(alias, expected_option):
    result = _run_cli(strun_executable(), alias, "--help")
    assert result.returncode == 0, result.stderr
    assert "matched more than 1 step" not in result.stderr
    assert expected_option in result.stdout


def test_notebook_steps_dict_reaches_nested_plus_step():
    config, _ = Spec2PipelinePlus.build_config(None, steps=NOTEBOOK_STEPS)
    pipe = Spec2PipelinePlus.from_config_section(config)
    mb = pipe.master_background_mos
    assert type(mb) is MasterBackgroundMosPlusStep
    assert mb.save_background is True
    assert mb.barshadow.override_barshadow == "my_barshadow.fits"
    # jwst's pipeline built from the very same dict keeps jwst's step.
    from jwst.master_background import MasterBackgroundMosStep
    from jwst.pipeline import Spec2Pipeline

    config, _ = Spec2Pipeline.build_config(None, steps=NOTEBOOK_STEPS)
    stock = Spec2Pipeline.from_config_section(config)
    assert type(stock.master_background_mos) is MasterBackgroundMosStep


def test_export_config_asdf_round_trip(tmp_path):
    config, _ = Spec2PipelinePlus.build_config(None, steps=NOTEBOOK_STEPS)
    pipe = Spec2PipelinePlus.from_config_section(config)
    params = tmp_path / "params.asdf"
    pipe.export_config(params)

    import asdf

    with asdf.open(params) as af:
        assert af["class"] == "jwst_mbkg_plus.pipelines.Spec2PipelinePlus"
        mb_pars = next(s for s in af["steps"] if s["name"] == "master_background_mos")
        assert mb_pars["class"].endswith("MasterBackgroundMosPlusStep")
        assert mb_pars["parameters"]["save_background"] is True

    loaded = Step.from_config_file(params)
    assert type(loaded) is Spec2PipelinePlus
    assert type(loaded.master_background_mos) is MasterBackgroundMosPlusStep
    assert loaded.master_background_mos.save_background is True

    config, _ = Spec2PipelinePlus.build_config(None, config_file=str(params))
    from_file = Spec2PipelinePlus.from_config_section(config, config_file=str(params))
    assert from_file.master_background_mos.save_background is True


@pytest.mark.pipeline
def test_step_asdf_runs_plus_class_from_call_and_strun(tmp_path):
    step = MasterBackgroundMosPlusStep(save_background=True)
    params = tmp_path / "mbkg_params.asdf"
    step.export_config(params)
    data = skippable_multislit(tmp_path / "already_done_cal.fits")

    with datamodels.open(data) as model:
        result = MasterBackgroundMosPlusStep.call(model, config_file=str(params))
        assert result.meta.cal_step.master_background == "SKIPPED"
        # The input is left alone.
        assert model.meta.cal_step.master_background == "COMPLETE"

    out = _run_cli(
        strun_executable(), str(params), str(data), "--output_dir", str(tmp_path),
        "--log-level", "INFO", cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    log_text = out.stdout + out.stderr
    assert "MasterBackgroundMosPlusStep" in log_text
    assert "Background subtraction has already occurred" in log_text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": {"master_background_mos": {"no_such_parameter": 1}}}, "no_such_parameter"),
        ({"steps": {"master_background_mos": {"sigma_clip": "lots"}}}, "sigma_clip"),
        ({"steps": {"master_background_mos": {"median_kernel": 2.5}}}, "median_kernel"),
    ],
)
def test_bad_parameters_give_validation_error(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        config, _ = Spec2PipelinePlus.build_config(None, **kwargs)
        Spec2PipelinePlus.from_config_section(config)


def test_every_module_imports():
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(jwst_mbkg_plus.__path__, "jwst_mbkg_plus."):
        importlib.import_module(info.name)
