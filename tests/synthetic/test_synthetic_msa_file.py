"""MSA metadata file: jwst's layout, and what jwst's assign_wcs reads from it."""

import numpy as np
import pytest
from astropy.io import fits

from jwst_mbkg_plus.synthetic import Scene
from jwst_mbkg_plus.synthetic.msa_file import PROGRAM, write_msa_file


@pytest.fixture(scope="module")
def scene_and_file(tmp_path_factory):
    scene = Scene(n_background=3, n_point=1, n_extended=1, shutters_per_slitlet=3, seed=8)
    path = tmp_path_factory.mktemp("msa") / "test_msa.fits"
    write_msa_file(path, scene.layout())
    return scene, path


def test_layout_matches_the_real_msa_file(scene_and_file, shared_data):
    _, path = scene_and_file
    real = shared_data / "pid2736_o007" / "jw02736007001_01_msa.fits"
    with fits.open(real) as ref, fits.open(path) as ours:
        assert [h.name for h in ours] == [h.name for h in ref]
        for ext in ("SHUTTER_INFO", "SOURCE_INFO"):
            ref_cols = {c.name: c.format for c in ref[ext].columns}
            our_cols = {c.name: c.format for c in ours[ext].columns}
            # Every real column, same format; ours adds fixed_slit (newer files have it).
            for name, fmt in ref_cols.items():
                assert our_cols[name] == fmt, (ext, name)
        assert ours["SHUTTER_IMAGE"].data.shape == ref["SHUTTER_IMAGE"].data.shape


def test_jwst_reads_slitlets_and_background(scene_and_file):
    from jwst.assign_wcs.nirspec import get_open_msa_slits
    from jwst.master_background.nirspec_utils import is_background_msa_slit

    scene, path = scene_and_file
    layout = {s.slitlet_id: s for s in scene.layout()}
    slits = get_open_msa_slits(str(PROGRAM), str(path), 1, 1)
    assert sorted(s.name for s in slits) == sorted(layout)
    for slit in slits:
        planned = layout[slit.name]
        is_bkg = planned.kind == "background"
        assert is_background_msa_slit(slit) == is_bkg
        assert slit.quadrant == planned.quadrant
        assert slit.xcen == planned.row
        assert slit.shutter_state == "1x1"
        if is_bkg:
            assert slit.source_name == f"{PROGRAM}_BKG{slit.name}"
            assert slit.stellarity == 0.0
        else:
            assert slit.source_id == planned.source_id
            assert slit.stellarity == (1.0 if planned.kind == "point" else 0.0)
            assert slit.source_ypos == pytest.approx(planned.source_y - 0.5)
        # Three shutters: +-(0.55 + 0.5 margin + 1.15) around the central one.
        assert (slit.ymin, slit.ymax) == pytest.approx((-2.2, 2.2))


def test_shutter_image_marks_open_shutters(scene_and_file):
    scene, path = scene_and_file
    with fits.open(path) as hdul:
        image = hdul["SHUTTER_IMAGE"].data
        rows = hdul["SHUTTER_INFO"].data
    assert image.sum() == sum(s.n_shutters for s in scene.layout()) == len(rows)
    assert set(np.unique(rows["background"][rows["primary_source"] == "Y"])) == {"N"}
