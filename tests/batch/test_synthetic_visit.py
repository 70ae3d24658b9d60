"""Synthetic visits: nods of one MSA configuration, source shifts, sky drift, truth."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from jwst_mbkg_plus.synthetic import Scene, load_truth
from jwst_mbkg_plus.synthetic.visit import (
    make_visit,
    nod_levels,
    nod_shifts,
    real_msa_layout,
)

REAL_MSA = "pid2736_o007/jw02736007001_01_msa.fits"


def test_nod_shifts_and_levels():
    assert nod_shifts(3) == [-1, 0, 1]
    assert nod_shifts(2) == [0, 1]
    assert nod_levels(3, 0.01) == pytest.approx([0.99, 1.0, 1.01])
    assert nod_levels(1, 0.05) == [1.0]


@pytest.fixture(scope="module")
def small_visit(synthetic_instrument, tmp_path_factory):
    scene = Scene(n_background=2, n_point=1, n_extended=1, detectors=("NRS1", "NRS2"),
                  noise_fraction=0.0, seed=21)
    folder = tmp_path_factory.mktemp("visit")
    return scene, make_visit(scene, folder, instrument=synthetic_instrument, n_nods=3,
                             drift=0.01)


def test_visit_files_and_msa(small_visit):
    scene, visit = small_visit
    assert sorted(visit.rate_paths) == [(k, d) for k in (1, 2, 3) for d in ("NRS1", "NRS2")]
    for key, path in visit.rate_paths.items():
        header = fits.getheader(path)
        assert header["PATT_NUM"] == key[0]
        assert header["DETECTOR"] == key[1]
        assert header["MSAMETFL"] == visit.msa_path.name
    info = Table(fits.open(visit.msa_path)["SHUTTER_INFO"].data)
    assert sorted(set(info["dither_point_index"])) == [1, 2, 3]
    # The same shutters are open in every nod; sources move one shutter per nod.
    layout = scene.layout()
    for s in layout:
        rows = info[info["slitlet_id"] == s.slitlet_id]
        per_nod = [sorted(rows[rows["dither_point_index"] == k]["shutter_column"])
                   for k in (1, 2, 3)]
        assert per_nod[0] == per_nod[1] == per_nod[2] == s.columns
        primaries = [list(rows[(rows["dither_point_index"] == k)
                               & (rows["primary_source"] == "Y")]["shutter_column"])
                     for k in (1, 2, 3)]
        if s.kind == "background":
            assert primaries == [[], [], []]
        else:
            cols = [p[0] for p in primaries]
            assert np.diff(cols).tolist() == [1, 1]


def test_visit_truth_records_drift(small_visit):
    _, visit = small_visit
    assert visit.levels == pytest.approx([0.99, 1.0, 1.01])
    for det in ("NRS1", "NRS2"):
        truths = [load_truth(visit.truth_paths[(k, det)]) for k in (1, 2, 3)]
        for k, t in enumerate(truths, start=1):
            assert t.visit["nod"] == k
            assert t.visit["n_nods"] == 3
            assert t.visit["level"] == pytest.approx(visit.levels[k - 1])
            assert len(t.visit["exposures"]) == 3
        # The true background of a background slitlet scales with the nod's level.
        name = truths[0].background_names()[0]
        b1 = truths[0].slit(name)["background"]
        b3 = truths[2].slit(name)["background"]
        good = np.isfinite(b1) & np.isfinite(b3)
        assert np.median(b3[good] / b1[good]) == pytest.approx(1.01 / 0.99, rel=1e-6)
        # Sources do not drift with the sky.
        w1, s1 = truths[0].background_1d()
        _, s3 = truths[2].background_1d()
        assert np.nanmedian(s3 / s1) == pytest.approx(1.01 / 0.99, rel=1e-6)
        assert w1.size > 100


def test_visit_reused_when_unchanged(small_visit, synthetic_instrument):
    scene, visit = small_visit
    again = make_visit(scene, visit.folder, instrument=synthetic_instrument, n_nods=3,
                       drift=0.01)
    assert again.seconds == 0.0


def test_real_msa_layout(shared_data):
    path = shared_data / REAL_MSA
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    layout = real_msa_layout(path, grating="G395M")
    assert layout.n_real == 74
    assert layout.n_nods == 3
    placed = len(layout.nods[0])
    assert placed + len(layout.unplaced) == 74
    assert placed > 40
    kinds = {s.kind for s in layout.nods[0]}
    assert {"background", "extended"} <= kinds
    for u in layout.unplaced:
        assert u["reason"]
    # Source slitlets keep the real nod pattern: the primary shutter changes.
    moving = [i for i, s in enumerate(layout.nods[0]) if s.kind != "background"
              and len({layout.nods[k][i].primary for k in range(3)}) > 1]
    assert moving


def test_synthetic_visit_command_prints_batch_command(synthetic_instrument, tmp_path,
                                                      capsys):
    from jwst_mbkg_plus.cli import handle_args

    folder = tmp_path / "v"
    code = handle_args(["synthetic-visit", str(folder), "--nods", "2",
                        "--background-slitlets", "2", "--sources", "2", "--noise", "0.05"])
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    last = lines[-1]
    assert last.startswith("jwst-mbkg-plus batch ")
    assert str(folder.resolve()) in last
    assert "--crds" in last
    assert len(list(folder.glob("*_rate.fits"))) == 4
