"""The notebook-replacing commands: master, flag-pixels, msa-select, plot.

Each command is run through ``handle_args`` (the console script's code path) on
synthetic inputs; every test hashes the input files before and after.
"""

import hashlib
from pathlib import Path

import asdf
import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.cli import handle_args
from jwst_mbkg_plus.io.user_background import read_user_background
from jwst_mbkg_plus.jwst_internals import table_dtype
from jwst_mbkg_plus.tools import ToolInputError
from jwst_mbkg_plus.tools.hot_pixels import find_hot_pixels, flag_pixels, parse_pixel
from jwst_mbkg_plus.tools.master import combine_background_spectra, make_master_background
from jwst_mbkg_plus.tools.msa_select import msa_designations, select_msa_slitlets

COMMANDS = ("demo", "master", "flag-pixels", "msa-select", "plot")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REAL_MSA = "pid2736_o007/jw02736007001_01_msa.fits"


def _digest(paths):
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def _true_background(wave):
    """Smooth continuum rising 3x across the band plus an emission line (MJy/sr)."""
    return 0.2 * (1 + (wave - 1.7) / 0.75) + 0.1 * np.exp(-0.5 * ((wave - 2.0) / 0.004) ** 2)


def _x1d(path, n_spectra, *, seed, contaminated=(), noise=0.01):
    rng = np.random.default_rng(seed)
    model = datamodels.MultiSpecModel()
    model.meta.exposure.type = "NRS_MSASPEC"
    dtype = table_dtype(datamodels.SpecModel(), "spec_table")
    for i in range(n_spectra):
        wave = np.linspace(1.66 + 0.002 * i, 3.17 - 0.003 * i, 1800 + 7 * i)
        sb = _true_background(wave)
        if i in contaminated:
            sb = sb * 1.3
        err = noise * sb
        table = np.zeros(wave.size, dtype=dtype)
        table["WAVELENGTH"] = wave
        table["SURF_BRIGHT"] = sb + err * rng.standard_normal(wave.size)
        table["SB_ERROR"] = err
        table["BACKGROUND"] = table["SURF_BRIGHT"]
        table["BKGD_ERROR"] = err
        spec = datamodels.SpecModel(spec_table=table)
        spec.spec_table.columns["wavelength"].unit = "um"
        spec.spec_table.columns["surf_bright"].unit = "MJy/sr"
        spec.spec_table.columns["sb_error"].unit = "MJy/sr"
        spec.name = f"{100 + 10 * seed + i}"
        spec.source_name = f"9999_BKG{100 + 10 * seed + i}"
        model.spec.append(spec)
    model.save(path)
    return Path(path)


@pytest.fixture(scope="module")
def x1d_files(tmp_path_factory):
    """Two x1d files, 3 + 4 background spectra; spectrum 1 of the second is contaminated."""
    folder = tmp_path_factory.mktemp("x1d")
    return [
        _x1d(folder / "a_x1d.fits", 3, seed=1),
        _x1d(folder / "b_x1d.fits", 4, seed=2, contaminated=(1,)),
    ]


def _cal_file(path, *, n_slits=4, hot=True, subtracted=False, seed=5):
    """A MultiSlitModel with background slits carrying per-pixel wavelengths."""
    rng = np.random.default_rng(seed)
    model = datamodels.MultiSlitModel()
    model.meta.exposure.type = "NRS_MSASPEC"
    ny, nx = 20, 600
    for k in range(n_slits):
        x = np.arange(nx)[None, :] + 0.3 * k
        y = np.arange(ny)[:, None]
        wave = 1.7 + 1.4 * (x + 0.02 * y) / nx
        sb = _true_background(wave) * np.ones((ny, nx))
        err = 0.02 * sb
        data = sb + err * rng.standard_normal(sb.shape)
        if subtracted:
            data = data - sb
        if hot:
            data[5 + k, 100 + 37 * k] += 50.0
        slit = datamodels.SlitModel(data=data.astype(np.float32))
        slit.err = err.astype(np.float32)
        slit.var_rnoise = (err**2).astype(np.float32)
        slit.var_poisson = np.zeros_like(slit.var_rnoise)
        slit.var_flat = np.zeros_like(slit.var_rnoise)
        slit.dq = np.zeros(data.shape, np.uint32)
        slit.wavelength = wave.astype(np.float32)
        slit.name = str(20 + k)
        slit.slitlet_id = 20 + k
        slit.source_id = 20 + k
        slit.source_name = f"9999_BKG{20 + k}"
        slit.xstart, slit.ystart = 100, 200 + 30 * k
        model.slits.append(slit)
    if subtracted:
        model.meta.cal_step.master_background = "COMPLETE"
    model.save(path)
    return Path(path)


def _png_ok(path, min_bytes=5000):
    path = Path(path)
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    assert path.stat().st_size > min_bytes, (path, path.stat().st_size)


# ----------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as stop:
        handle_args([command, "--help"])
    assert stop.value.code == 0
    assert f"jwst-mbkg-plus {command}" in capsys.readouterr().out


# ----------------------------------------------------------------------------- master


def test_master_vets_combines_and_writes_user_background(x1d_files, tmp_path, capsys):
    before = _digest(x1d_files)
    out, png = tmp_path / "master_bkg.fits", tmp_path / "master_qa.png"
    status = handle_args(["master", *map(str, x1d_files), "-o", str(out), "--plot", str(png)])
    stdout = capsys.readouterr().out
    assert status == 0
    assert "[1/2] reading a_x1d.fits" in stdout and "[2/2]" in stdout
    rejected = [line for line in stdout.splitlines() if "REJECTED" in line]
    assert len(rejected) == 1 and "b_x1d.fits[1]" in rejected[0]
    assert "median relative deviation +0.3" in rejected[0]
    user = read_user_background(out)
    truth = _true_background(user.wavelength)
    assert abs(np.median(user.surf_bright / truth - 1)) < 0.003
    # 6 accepted spectra with 1% noise: the master's error is ~0.4%.
    assert np.median(user.sb_error / truth) == pytest.approx(0.01 / np.sqrt(6), rel=0.3)
    _png_ok(png, 20000)
    assert _digest(x1d_files) == before


def test_master_options_from_python(x1d_files, tmp_path):
    result = make_master_background(
        x1d_files, tmp_path / "m.fits", column="background", method="median",
        median_kernel=5, vet_threshold=5.0,
    )
    assert result.accepted.sum() == 6 and not result.accepted[4]
    assert result.output.is_file() and result.plot is None
    defined = np.isfinite(result.master)
    ratio = result.master[defined] / _true_background(result.wavelength[defined])
    assert abs(np.median(ratio) - 1) < 0.005
    no_vet = make_master_background(x1d_files, tmp_path / "m2.fits", vet=False)
    assert no_vet.accepted.all()
    # Without vetting the contaminated spectrum is only clipped point by point.
    assert no_vet.clipped_fraction > result.clipped_fraction


def test_master_from_cal_slits_bins_pixels(tmp_path):
    cal = _cal_file(tmp_path / "bkg_cal.fits")
    before = _digest([cal])
    result = make_master_background([cal], tmp_path / "m.fits", plot=tmp_path / "m.png")
    assert len(result.labels) == 4 and result.accepted.all()
    defined = np.isfinite(result.master)
    ratio = result.master[defined] / _true_background(result.wavelength[defined])
    assert abs(np.median(ratio) - 1) < 0.002
    assert np.max(np.abs(ratio - 1)) < 0.05  # the hot pixels were clipped in the binning
    _png_ok(result.plot)
    only_two = make_master_background([cal], tmp_path / "m2.fits", slits=["20", "21"])
    assert len(only_two.labels) == 2
    assert _digest([cal]) == before


def test_combine_rejects_with_reasons():
    from jwst_mbkg_plus.tools.master import BackgroundSpectrum

    wave = np.linspace(1.7, 3.1, 500)
    rng = np.random.default_rng(0)
    spectra = [
        BackgroundSpectrum(f"s{i}", wave, _true_background(wave) * (1.5 if i == 2 else 1.0)
                           * (1 + 0.01 * rng.standard_normal(wave.size)), None)
        for i in range(5)
    ]
    result = combine_background_spectra(spectra)
    assert list(result.accepted) == [True, True, False, True, True]
    assert result.reasons[2].startswith("rejected: median relative deviation +0.5")
    assert np.nanmedian(result.cv) == pytest.approx(0.01, rel=0.3)


@pytest.mark.parametrize("case", ["missing", "same_as_input", "exists", "not_a_product"])
def test_master_errors_name_the_file(case, x1d_files, tmp_path, capsys):
    out = tmp_path / "out.fits"
    inputs = [str(x1d_files[0])]
    if case == "missing":
        inputs = [str(tmp_path / "nope_x1d.fits")]
    elif case == "same_as_input":
        out = x1d_files[0]
    elif case == "exists":
        out.write_text("keep me")
    else:
        bad = tmp_path / "notes.fits"
        bad.write_text("not a FITS file")
        inputs = [str(bad)]
    before = _digest([p for p in [*inputs, out] if Path(p).exists()])
    status = handle_args(["master", *inputs, "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("error: ")
    assert "Traceback" not in err
    named = {"missing": "nope_x1d.fits", "same_as_input": "a_x1d.fits", "exists": "out.fits",
             "not_a_product": "notes.fits"}[case]
    assert named in err
    fix = {"missing": "no such file", "same_as_input": "choose another output",
           "exists": "--overwrite", "not_a_product": "x1d"}[case]
    assert fix in err
    assert _digest(before) == before


# ----------------------------------------------------------------------------- flag-pixels


def test_flag_pixels_auto_finds_injected_hot_pixels(noisy_mos_exposure, tmp_path, capsys):
    from jwst_mbkg_plus.synthetic import load_truth

    _, exposure = noisy_mos_exposure
    rate = exposure.rate_path
    truth = load_truth(exposure.truth_path)
    injected = {p for name in truth.background_names() for p in truth.hot_pixel_positions(name)}
    assert len(injected) >= 20
    before = _digest([rate])
    out = tmp_path / "flagged_rate.fits"
    status = handle_args(["flag-pixels", str(rate), "-o", str(out), "--auto",
                          "--pixel", "10,20", "--pixel", "2047,0"])
    stdout = capsys.readouterr().out
    assert status == 0
    assert "2 given" in stdout and "wrote" in stdout
    assert _digest([rate]) == before
    with datamodels.open(out) as flagged, datamodels.open(rate) as original:
        new = (flagged.dq & ~original.dq) != 0
        np.testing.assert_array_equal(flagged.data, original.data)
        assert flagged.dq[20, 10] & 1 and flagged.dq[0, 2047] & 2048
    assert "jwst-mbkg-plus flag-pixels" in str(fits.getheader(out).get("HISTORY"))
    ys, xs = np.nonzero(new)
    found = set(zip(xs.tolist(), ys.tolist(), strict=True)) - {(10, 20), (2047, 0)}
    recall = len(found & injected) / len(injected)
    false_positives = len(found - injected)
    assert recall >= 0.9, (recall, sorted(injected - found))
    assert false_positives <= 3, sorted(found - injected)


def test_find_hot_pixels_on_arrays():
    rng = np.random.default_rng(3)
    level = np.linspace(1.0, 5.0, 400)[None, :] * np.ones((50, 1))
    level[20:30] *= 4  # a bright trace with sharp edges across y
    err = 0.05 * level
    data = level + err * rng.standard_normal(level.shape)
    hot = [(50, 10), (51, 10), (52, 10), (300, 25), (300, 26), (301, 25), (301, 26)]
    for x, y in hot:
        data[y, x] += 10 * level[y, x]
    data[40, 7] = np.nan
    found = find_hot_pixels(data, err)
    assert {(int(x), int(y)) for y, x in zip(*np.nonzero(found), strict=True)} == set(hot)
    dq = np.zeros(data.shape, np.uint32)
    dq[10, 50] = 1
    assert not find_hot_pixels(data, err, dq)[10, 50]
    with pytest.raises(ValueError, match="window"):
        find_hot_pixels(data, window=4)


def test_parse_pixel():
    assert parse_pixel(" 12, 7") == (12, 7)
    for bad in ("12", "a,b", "-1,3", "1,2,3"):
        with pytest.raises(ValueError, match="X,Y|negative"):
            parse_pixel(bad)


def test_flag_pixels_refuses_to_touch_inputs(noisy_mos_exposure, tmp_path, capsys):
    _, exposure = noisy_mos_exposure
    rate = exposure.rate_path
    before = _digest([rate])
    assert handle_args(["flag-pixels", str(rate), "-o", str(rate), "--pixel", "1,1"]) == 2
    assert "is an input file" in capsys.readouterr().err
    existing = tmp_path / "exists_rate.fits"
    existing.write_bytes(b"x")
    assert handle_args(["flag-pixels", str(rate), "-o", str(existing), "--pixel", "1,1"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert existing.read_bytes() == b"x"
    out = tmp_path / "new_rate.fits"
    assert handle_args(["flag-pixels", str(rate), "-o", str(out), "--pixel", "5000,1"]) == 2
    err = capsys.readouterr().err
    assert rate.name in err and "outside the 2048 x 2048 image" in err
    assert handle_args(["flag-pixels", str(rate), "-o", str(out)]) == 2
    assert "--pixel X,Y and/or --auto" in capsys.readouterr().err
    assert handle_args(["flag-pixels", str(rate), "-o", str(out), "--pixel", "1,1",
                        "--flags", "HOTT"]) == 2
    assert "unknown DQ flag" in capsys.readouterr().err
    assert not out.exists()
    assert _digest([rate]) == before
    with pytest.raises(ToolInputError, match="MultiSpecModel"):
        x1d = _x1d(tmp_path / "s_x1d.fits", 1, seed=3)
        flag_pixels(x1d, tmp_path / "o.fits", pixels=["1,1"])


# ----------------------------------------------------------------------------- msa-select


def _open_slits(msa_path, program, metadata_id=1, dither=1):
    from jwst.assign_wcs.nirspec import get_open_msa_slits
    from jwst.master_background.nirspec_utils import is_background_msa_slit

    slits = get_open_msa_slits(program, str(msa_path), metadata_id, dither)

    class _Named:  # is_background_msa_slit reads .source_name
        def __init__(self, slit):
            self.source_name = slit.source_name

    return {int(s.name): is_background_msa_slit(_Named(s)) for s in slits}


def test_msa_select_swaps_designations_as_jwst_sees_them(noisy_mos_exposure, tmp_path, capsys):
    _, exposure = noisy_mos_exposure
    msa = exposure.msa_path
    before_hash = _digest([msa])
    program = str(fits.getheader(msa)["PROGRAM"])
    jwst_before = _open_slits(msa, program)
    background = sorted(k for k, v in jwst_before.items() if v)
    sources = sorted(k for k, v in jwst_before.items() if not v)
    out = tmp_path / "new_msa.fits"
    status = handle_args(["msa-select", str(msa), "-o", str(out),
                          "--background", str(sources[0]), "--source", str(background[0])])
    stdout = capsys.readouterr().out
    assert status == 0
    assert f"slitlet {sources[0]}: source -> background" in stdout
    assert f"slitlet {background[0]}: background -> source" in stdout
    jwst_after = _open_slits(out, program)
    expected = dict(jwst_before)
    expected[sources[0]], expected[background[0]] = True, False
    assert jwst_after == expected
    assert _digest([msa]) == before_hash
    # Every other extension and row is unchanged.
    with fits.open(msa) as a, fits.open(out) as b:
        assert [h.name for h in a] == [h.name for h in b]
        np.testing.assert_array_equal(a["SHUTTER_IMAGE"].data, b["SHUTTER_IMAGE"].data)
        rows = ~np.isin(a["SHUTTER_INFO"].data["slitlet_id"], [sources[0], background[0]])
        # str(): NaN source positions compare equal as text.
        assert str(a["SHUTTER_INFO"].data[rows].tolist()) == str(
            b["SHUTTER_INFO"].data[rows].tolist()
        )


def test_msa_select_seen_by_assign_wcs(noisy_mos_exposure, synthetic_crds, tmp_path):
    """The edited file, under the original name beside a copy of the rate file, is used."""
    import shutil

    from jwst.assign_wcs import AssignWcsStep
    from jwst.extract_2d import Extract2dStep

    from jwst_mbkg_plus.io.slits import is_msa_background

    _, exposure = noisy_mos_exposure
    designation = msa_designations(fits.getdata(exposure.msa_path, "SHUTTER_INFO"))
    source = min(k for k, v in designation.items() if v == "source")
    folder = tmp_path / "edited"
    folder.mkdir()
    rate = folder / exposure.rate_path.name
    shutil.copy(exposure.rate_path, rate)
    select_msa_slitlets(exposure.msa_path, folder / exposure.msa_path.name, background=[source])
    slits = Extract2dStep.call(AssignWcsStep.call(str(rate)))
    background = {int(s.name) for s in slits.slits if is_msa_background(s)}
    expected = {k for k, v in designation.items() if v == "background"} | {source}
    assert background == expected


def test_msa_select_errors(noisy_mos_exposure, tmp_path, capsys):
    _, exposure = noisy_mos_exposure
    msa = exposure.msa_path
    out = tmp_path / "o_msa.fits"
    assert handle_args(["msa-select", str(msa), "-o", str(out), "--background", "99999"]) == 2
    err = capsys.readouterr().err
    assert msa.name in err and "no slitlet 99999" in err and "slitlet ids in the file" in err
    assert handle_args(["msa-select", str(msa), "-o", str(out)]) == 2
    assert "nothing to change" in capsys.readouterr().err
    with pytest.raises(ToolInputError, match="both background and source"):
        select_msa_slitlets(msa, out, background=[1], source=["1"])
    with pytest.raises(ToolInputError, match="MSA metadata"):
        select_msa_slitlets(exposure.rate_path, out, background=[1])
    assert not out.exists()


def test_msa_select_real_program_2736(shared_data, tmp_path):
    msa = shared_data / REAL_MSA
    if not msa.is_file():
        pytest.skip(f"{msa} is absent")
    before = _digest([msa])
    table = fits.getdata(msa, "SHUTTER_INFO")
    designation = msa_designations(table)
    assert designation[3] == "mixed"  # background at dither 2 and 3 only (nodding)
    first = tmp_path / "bkg_msa.fits"
    result = select_msa_slitlets(msa, first, background=[2, 3])
    assert result.changed == [2, 3]
    for dither in (1, 2, 3):
        seen = _open_slits(first, "2736", 1, dither)
        assert seen[2] and seen[3]
        assert seen == {**_open_slits(msa, "2736", 1, dither), 2: True, 3: True}
    second = tmp_path / "src_msa.fits"
    back = select_msa_slitlets(first, second, source=[3])
    assert back.after[3] == "source" and back.new_source_ids[3] < 0
    for dither in (1, 2, 3):
        assert not _open_slits(second, "2736", 1, dither)[3]
    names = fits.getdata(second, "SOURCE_INFO")["source_name"]
    assert f"2736_{back.new_source_ids[3]}" in names
    assert _digest([msa]) == before


# ----------------------------------------------------------------------------- plot


def test_plot_command_writes_every_kind(x1d_files, tmp_path, capsys):
    from jwst_mbkg_plus.io.products import write_qa

    cal = _cal_file(tmp_path / "sub_cal.fits", n_slits=3, subtracted=True)
    master = tmp_path / "m_masterbg1d.fits"
    make_master_background(x1d_files, master)
    qa_path = tmp_path / "x_mbkgqa.asdf"
    labels = ["20:9999_BKG20", "21:9999_BKG21", "22:9999_BKG22"]
    write_qa({
        "slits": labels,
        "vetting": {"applied": True, "threshold": 5.0, "rejected": {labels[1]: "too bright"},
                    "scores": dict(zip(labels, [0.3, 12.0, -1.1], strict=True))},
        "clipped_fraction": 0.004,
        "coefficient_of_variation": 0.012,
        "residuals": {lab: {"median_relative": 0.001 * i, "pull_std": 1.0 + 0.01 * i,
                            "column_pull_std": 1.1} for i, lab in enumerate(labels)},
    }, str(qa_path))
    inputs = [cal, x1d_files[0], master, qa_path]
    before = _digest(inputs)
    outdir = tmp_path / "plots"
    status = handle_args(["plot", *map(str, inputs), "-o", str(outdir)])
    stdout = capsys.readouterr().out
    assert status == 0 and "[4/4]" in stdout
    names = sorted(p.name for p in outdir.iterdir())
    assert names == sorted([
        "sub_cal_slit20.png", "sub_cal_slit21.png", "sub_cal_slit22.png",
        "sub_cal_residuals.png", "a_x1d_spectra.png", "m_masterbg1d_spectra.png",
        "x_mbkgqa.png",
    ])
    for png in outdir.iterdir():
        _png_ok(png)
    assert _digest(inputs) == before
    status = handle_args(["plot", str(cal), "-o", str(tmp_path / "one"), "--slits", "21"])
    assert status == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [
        "sub_cal_residuals.png", "sub_cal_slit21.png"]


def test_plot_errors(tmp_path, capsys):
    bad = tmp_path / "thing.asdf"
    asdf.AsdfFile({"other": 1}).write_to(bad)
    assert handle_args(["plot", str(bad), "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "thing.asdf" in err and "mbkgqa" in err
    assert handle_args(["plot", str(tmp_path / "none.fits"), "-o", str(tmp_path / "p")]) == 2
    assert "none.fits: no such file" in capsys.readouterr().err
