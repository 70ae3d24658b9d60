"""Vetting 1, 2 and 3 background members in every calwebb_spec3 mode, without a majority.

The plus step on jwst's real code paths (container splitting, wavelength
helpers, point-source corrections), with one member contaminated by +30 % of
the continuum or all clean; the background subtracted from the science
members is compared with the injected one.
"""

import json
import logging
from pathlib import Path

import asdf
import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus import MasterBackgroundPlusStep
from jwst_mbkg_plus.synthetic.spec3_inputs import MODES, make_container, make_spec3_inputs

#: jwst's calwebb_spec3 steps run on every test of this module.
pytestmark = pytest.mark.pipeline


def _arrays(model):
    return list(model.slits) if isinstance(model, datamodels.MultiSlitModel) else [model]


def bias(inputs, result):
    """Median over background-dominated pixels of (subtracted - injected) / injected."""
    rel = []
    for k, (before, after) in enumerate(zip(inputs.science, result, strict=True)):
        tb, mask = inputs.true_background[k], inputs.background_mask[k]
        tbs, masks = (tb, mask) if isinstance(tb, list) else ([tb], [mask])
        for a_in, a_out, t, m in zip(_arrays(before), _arrays(after), tbs, masks, strict=True):
            subtracted = np.asarray(a_in.data, float) - a_out.data
            rel.append(((subtracted - t) / t)[m])
    return float(np.median(np.concatenate(rel)))


def _scale_member(inputs, index, factor):
    """Multiply one member's background column (and its error) by ``factor``: a pure level."""
    table = inputs.backgrounds[index].spec[0].spec_table
    error = "BKGD_ERROR" if inputs.column == "BACKGROUND" else "SB_ERROR"
    table[inputs.column] = table[inputs.column] * factor
    table[error] = table[error] * factor


def run(inputs, tmp_path, **kwargs):
    """Run the plus step; return the result and its QA record."""
    Path(tmp_path).mkdir(exist_ok=True)
    result = MasterBackgroundPlusStep.call(make_container(inputs), save_qa=True,
                                           output_dir=str(tmp_path), **kwargs)
    (qa_file,) = Path(tmp_path).glob("*mbkgqa.asdf")
    with asdf.open(qa_file) as af:
        qa = af.tree["master_background_qa"]
        return result, json.loads(json.dumps(qa, default=_plain))


def _plain(value):
    """ASDF tree values (numpy scalars, arrays) as JSON types."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _rejected(qa):
    return [e["name"].split("[")[0] for e in qa["inputs"] if not e["accepted"]]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n_background", [2, 3])
@pytest.mark.parametrize("contaminate", [0, 1])
def test_contaminated_member_named_and_bias_small(mode, n_background, contaminate, tmp_path):
    inputs = make_spec3_inputs(mode, n_background=n_background, contaminate=contaminate,
                               seed=21)
    result, qa = run(inputs, tmp_path)
    assert all(m.meta.cal_step.master_background == "COMPLETE" for m in result)
    assert _rejected(qa) == [inputs.backgrounds[contaminate].meta.filename]
    reason = qa["inputs"][contaminate]["reason"]
    assert reason.startswith("rejected: additive excess")
    if n_background == 2:
        assert qa["pair"]["verdict"] == "contaminated"
        assert qa["pair"]["contaminated"] == qa["inputs"][contaminate]["name"]
        assert qa["pair"]["excess"] == pytest.approx(0.3, abs=0.05)
    assert abs(bias(inputs, result)) <= 0.003


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n_background", [1, 2, 3])
def test_clean_members_all_used(mode, n_background, tmp_path):
    inputs = make_spec3_inputs(mode, n_background=n_background, seed=22)
    result, qa = run(inputs, tmp_path)
    assert _rejected(qa) == []
    if n_background == 2:
        assert qa["pair"]["verdict"] == "consistent"
    if n_background == 1:
        assert qa["inputs"][0]["reason"] == "not vetted"
    assert abs(bias(inputs, result)) <= 0.003


@pytest.mark.parametrize("mode", MODES)
def test_three_percent_level_is_not_contamination(mode, tmp_path):
    inputs = make_spec3_inputs(mode, n_background=2, seed=23)
    _scale_member(inputs, 1, 1.03)
    result, qa = run(inputs, tmp_path, scale_master="off")
    assert _rejected(qa) == []
    pair = qa["pair"]
    assert pair["verdict"] == "consistent"
    assert pair["brighter"] == qa["inputs"][1]["name"]
    assert pair["level_difference"] == pytest.approx(0.03, abs=0.003)
    # Both are used: the master sits halfway.
    assert bias(inputs, result) == pytest.approx(0.015, abs=0.003)
    # Scaled to each exposure's own sky (the default), the halfway level is corrected.
    scaled, qa_scaled = run(inputs, tmp_path / "scaled")
    assert qa_scaled["pair"]["verdict"] == "consistent"
    assert abs(bias(inputs, scaled)) < 0.002


@pytest.mark.parametrize("mode", MODES)
def test_undecided_pair_warns_and_says_which_is_brighter(mode, tmp_path, caplog):
    """+8 % with the sky's own shape: no evidence which is contaminated, so a warning."""
    inputs = make_spec3_inputs(mode, n_background=2, seed=24)
    _scale_member(inputs, 0, 1.08)
    with caplog.at_level(logging.WARNING, logger="jwst_mbkg_plus"):
        result, qa = run(inputs, tmp_path)
    assert all(m.meta.cal_step.master_background == "COMPLETE" for m in result)
    assert _rejected(qa) == []
    pair = qa["pair"]
    assert pair["verdict"] == "undecided"
    assert pair["brighter"] == qa["inputs"][0]["name"]
    assert pair["level_difference"] == pytest.approx(0.08, abs=0.01)
    warned = [r.getMessage() for r in caplog.records if "differ" in r.getMessage()]
    assert warned and "user_background" in warned[0]
    assert inputs.backgrounds[0].meta.filename in warned[0]


@pytest.mark.parametrize("mode", MODES)
def test_pair_brighter_beyond_the_level_limit_is_rejected(mode, tmp_path, caplog):
    """+30 % with the sky's own shape: no sky differs so much between nods; named."""
    inputs = make_spec3_inputs(mode, n_background=2, seed=24)
    _scale_member(inputs, 0, 1.3)
    with caplog.at_level(logging.WARNING, logger="jwst_mbkg_plus"):
        result, qa = run(inputs, tmp_path)
    assert _rejected(qa) == [qa["inputs"][0]["name"].split("[")[0]]
    assert qa["pair"]["verdict"] == "contaminated" and qa["pair"]["basis"] == "level"
    assert abs(bias(inputs, result)) < 0.003
    warned = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert warned and "contamination only adds light" in warned[0]


@pytest.mark.parametrize("mode", MODES)
def test_single_contaminated_member_cannot_be_vetted(mode, tmp_path):
    """One x1d spectrum has no profile and nothing to compare with: used, recorded."""
    inputs = make_spec3_inputs(mode, n_background=1, contaminate=0, seed=25)
    result, qa = run(inputs, tmp_path, scale_master="off")
    assert all(m.meta.cal_step.master_background == "COMPLETE" for m in result)
    assert qa["n_accepted"] == 1
    assert qa["inputs"][0]["reason"] == "not vetted"
    assert bias(inputs, result) == pytest.approx(0.3, abs=0.02)
    # The science exposures' own sky pixels see the excess: the default scales it away
    # (the contamination has a smooth spectrum, which the factor follows).
    scaled, qa_scaled = run(inputs, tmp_path / "scaled")
    assert all(rec["applied"] for rec in qa_scaled["exposure_scale"])
    assert abs(bias(inputs, scaled)) < 0.01
