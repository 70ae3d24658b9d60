"""Tests of jwst_mbkg_plus.io.user_background: formats, units, validation, writer."""

import dataclasses
import hashlib
import logging

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.io.user_background import (
    UserBackgroundColumnError,
    UserBackgroundCoverageError,
    UserBackgroundError,
    UserBackgroundFileNotFoundError,
    UserBackgroundFormatError,
    UserBackgroundUnitError,
    UserBackgroundValueError,
    read_user_background,
    write_user_background,
)
from jwst_mbkg_plus.jwst_internals import table_dtype

N = 40
WAVE = np.linspace(0.6, 5.3, N)
SB = 0.1 + 0.02 * WAVE
ERR = np.full(N, 0.005)
JY_ARCSEC2_IN_MJY_SR = (1 * u.Jy / u.arcsec**2).to_value(u.MJy / u.sr)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(path, **kwargs):
    """Read, asserting the file is left byte-identical, even on failure."""
    before = _sha(path) if path.exists() else None
    try:
        return read_user_background(path, **kwargs)
    finally:
        if before is not None:
            assert _sha(path) == before, f"{path} was modified"


def _csv(path, header, rows):
    lines = [header] + [
        ",".join(repr(float(v)) if isinstance(v, float) else str(v) for v in r) for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _fits_table(path, columns, units):
    cols = [
        fits.Column(name=name, format="D", unit=units.get(name), array=np.asarray(arr, float))
        for name, arr in columns.items()
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    return path


def _x1d(path, n_spectra=1, offsets=None):
    model = datamodels.MultiSpecModel()
    for k in range(n_spectra):
        spec = datamodels.SpecModel()
        tab = np.zeros(N, dtype=table_dtype(spec, "spec_table"))
        tab["WAVELENGTH"] = WAVE
        tab["FLUX"] = 1e-6
        tab["SURF_BRIGHT"] = SB + (0 if offsets is None else offsets[k])
        tab["SB_ERROR"] = ERR
        spec.spec_table = tab
        cols = spec.spec_table.columns
        cols["wavelength"].unit = "um"
        cols["flux"].unit = "Jy"
        cols["surf_bright"].unit = "MJy/sr"
        cols["sb_error"].unit = "MJy/sr"
        model.spec.append(spec)
    model.save(path)
    model.close()
    return path


# --- Malformed files: (id, builder, kwargs, error class, message fragment) ---------


def _b_missing(tmp):
    return tmp / "nope_x1d.fits"


def _b_binary(tmp):
    p = tmp / "sky.dat"
    p.write_bytes(b"\x00\x01\x02garbage\x00" * 50)
    return p


def _b_truncated_fits(tmp):
    good = _fits_table(tmp / "full.fits", {"WAVELENGTH": WAVE, "SURF_BRIGHT": SB}, {})
    p = tmp / "trunc.fits"
    p.write_bytes(good.read_bytes()[:100])
    return p


def _b_image_only(tmp):
    p = tmp / "image.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((5, 5)))]).writeto(p)
    return p


def _b_empty(tmp):
    p = tmp / "empty.csv"
    p.write_text("\n\n")
    return p


def _b_bad_ecsv(tmp):
    p = tmp / "bad.ecsv"
    p.write_text("# %ECSV 1.0\n# ---\n# datatype: [not yaml\nwave sb\n1 2\n")
    return p


def _b_no_wave(tmp):
    return _csv(tmp / "nowave.csv", "x,flux", zip(WAVE, SB, strict=True))


def _b_no_sb(tmp):
    return _csv(tmp / "nosb.csv", "wave,counts", zip(WAVE, SB, strict=True))


def _b_x1d_without_sb(tmp):
    cols = {"WAVELENGTH": WAVE, "FLUX": SB}
    p = tmp / "nosb_x1d.fits"
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name=k, format="D", array=v) for k, v in cols.items()], name="EXTRACT1D"
    )
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(p)
    return p


def _b_text_column(tmp):
    rows = [(w, s) for w, s in zip(WAVE, SB, strict=True)]
    rows[3] = ("n/a", rows[3][1])
    return _csv(tmp / "text.csv", "wave,sb", rows)


def _b_point_jy(tmp):
    return _fits_table(tmp / "jy.fits", {"WAVE": WAVE, "FLUX": SB}, {"WAVE": "um", "FLUX": "Jy"})


def _b_point_flambda(tmp):
    return _csv(tmp / "flam.csv", "wave[um],flux[erg/s/cm2/Angstrom]", zip(WAVE, SB, strict=True))


def _b_wave_seconds(tmp):
    return _fits_table(tmp / "sec.fits", {"WAVE": WAVE, "SB": SB}, {"WAVE": "s", "SB": "MJy/sr"})


def _b_sb_counts(tmp):
    return _fits_table(tmp / "dn.fits", {"WAVE": WAVE, "SB": SB}, {"WAVE": "um", "SB": "DN/s"})


def _b_bad_unit(tmp):
    return _csv(tmp / "furlong.csv", "wave[furlongs],sb[MJy/sr]", zip(WAVE, SB, strict=True))


def _b_all_nan(tmp):
    return _csv(tmp / "nan.csv", "wave,sb", [(w, "nan") for w in WAVE])


def _b_three_points(tmp):
    return _csv(tmp / "three.csv", "wave,sb", zip(WAVE[:3], SB[:3], strict=True))


def _b_negative_wave(tmp):
    return _csv(tmp / "negw.csv", "wave,sb", zip(WAVE - 1.0, SB, strict=True))


def _b_unitless_nm(tmp):
    return _csv(tmp / "nm.csv", "wave,sb", zip(WAVE * 1000, SB, strict=True))


def _b_negative_error(tmp):
    err = ERR.copy()
    err[5] = -0.01
    return _csv(tmp / "negerr.csv", "wave,sb,sb_error", zip(WAVE, SB, err, strict=True))


def _b_headerless_4cols(tmp):
    p = tmp / "four.txt"
    p.write_text("\n".join(f"{w} {s} 1 2" for w, s in zip(WAVE, SB, strict=True)))
    return p


def _b_x1d_for_index(tmp):
    return _x1d(tmp / "one_x1d.fits")


def _b_narrow_coverage(tmp):
    return _csv(
        tmp / "narrow.csv", "wave[um],sb[MJy/sr]", zip(np.linspace(0.6, 1.0, N), SB, strict=True)
    )


MALFORMED = [
    ("missing-file", _b_missing, {}, UserBackgroundFileNotFoundError, "file not found"),
    ("binary-garbage", _b_binary, {}, UserBackgroundFormatError, "unsupported format"),
    ("truncated-fits", _b_truncated_fits, {}, UserBackgroundFormatError, "cannot be read as FITS"),
    ("fits-image-only", _b_image_only, {}, UserBackgroundFormatError, "with no table"),
    ("empty-text", _b_empty, {}, UserBackgroundFormatError, "is empty"),
    ("broken-ecsv", _b_bad_ecsv, {}, UserBackgroundFormatError, "looks like ECSV"),
    ("no-wavelength-col", _b_no_wave, {}, UserBackgroundColumnError, "no wavelength column"),
    ("no-sb-col", _b_no_sb, {}, UserBackgroundColumnError, "no surface-brightness column"),
    ("x1d-no-surf-bright", _b_x1d_without_sb, {}, UserBackgroundColumnError, "SURF_BRIGHT"),
    ("text-in-numbers", _b_text_column, {}, UserBackgroundColumnError, "is not numeric"),
    ("headerless-4-cols", _b_headerless_4cols, {}, UserBackgroundColumnError, "no header line"),
    ("point-source-Jy", _b_point_jy, {}, UserBackgroundUnitError, "point-source flux density"),
    ("point-source-flambda", _b_point_flambda, {}, UserBackgroundUnitError, "not a surface"),
    ("wavelength-in-seconds", _b_wave_seconds, {}, UserBackgroundUnitError, "is not a length"),
    ("sb-in-DN/s", _b_sb_counts, {}, UserBackgroundUnitError, "not a spectral surface"),
    ("unparsable-unit", _b_bad_unit, {}, UserBackgroundUnitError, "cannot parse the unit"),
    ("unitless-nm", _b_unitless_nm, {}, UserBackgroundUnitError, "not plausible in micron"),
    ("all-nan", _b_all_nan, {}, UserBackgroundValueError, "no finite values"),
    ("three-points", _b_three_points, {}, UserBackgroundValueError, "only 3 finite points"),
    ("negative-wavelength", _b_negative_wave, {}, UserBackgroundValueError, "zero or negative"),
    (
        "negative-sb-error",
        _b_negative_error,
        {},
        UserBackgroundValueError,
        "negative values in error",
    ),
    (
        "spectrum-index-out-of-range",
        _b_x1d_for_index,
        {"spectrum_index": 3},
        UserBackgroundFormatError,
        "out of range",
    ),
    (
        "too-little-overlap",
        _b_narrow_coverage,
        {"science_wavelength_range": (0.6, 5.3)},
        UserBackgroundCoverageError,
        "of the science range",
    ),
]


@pytest.mark.parametrize(
    ("builder", "kwargs", "exc", "fragment"),
    [m[1:] for m in MALFORMED],
    ids=[m[0] for m in MALFORMED],
)
def test_malformed_raises(tmp_path, builder, kwargs, exc, fragment):
    path = builder(tmp_path)
    with pytest.raises(exc, match=None) as info:
        _read(path, **kwargs)
    msg = str(info.value)
    assert isinstance(info.value, UserBackgroundError)
    assert isinstance(info.value, ValueError)
    assert fragment in msg, msg
    assert path.name in msg, msg


def test_missing_file_is_also_filenotfounderror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_user_background(tmp_path / "gone.fits")


def test_point_source_message_says_how_to_convert(tmp_path):
    with pytest.raises(UserBackgroundUnitError, match="solid angle") as info:
        _read(_b_point_jy(tmp_path))
    assert "MJy/sr" in str(info.value)


def test_missing_column_lists_found_and_recognised(tmp_path):
    with pytest.raises(UserBackgroundColumnError) as info:
        _read(_b_no_wave(tmp_path))
    msg = str(info.value)
    assert "'x'" in msg and "'flux'" in msg
    assert "wavelength, wave, wav, lambda" in msg


# --- Warnings: (id, builder, kwargs, fragment) -------------------------------------


def _w_unsorted(tmp):
    order = np.r_[np.arange(10, N), np.arange(10)]
    return _csv(
        tmp / "unsorted.csv", "wave[um],sb[MJy/sr]", zip(WAVE[order], SB[order], strict=True)
    )


def _w_decreasing(tmp):
    return _csv(tmp / "dec.csv", "wave[um],sb[MJy/sr]", zip(WAVE[::-1], SB[::-1], strict=True))


def _w_duplicates(tmp):
    w = np.r_[WAVE, WAVE[5:8]]
    s = np.r_[SB, SB[5:8] + 0.2]
    return _csv(tmp / "dup.csv", "wave[um],sb[MJy/sr]", zip(w, s, strict=True))


def _w_nan_rows(tmp):
    s = SB.copy()
    s[[2, 9]] = np.nan
    return _csv(tmp / "nanrows.csv", "wave[um],sb[MJy/sr]", zip(WAVE, s, strict=True))


def _w_partial(tmp):
    return _csv(tmp / "partial.csv", "wave[um],sb[MJy/sr]", zip(WAVE, SB, strict=True))


def _w_negative(tmp):
    return _csv(tmp / "neg.csv", "wave[um],sb[MJy/sr]", zip(WAVE, -SB, strict=True))


def _w_no_units(tmp):
    return _csv(tmp / "nounits.csv", "wave,sb", zip(WAVE, SB, strict=True))


def _w_multi_x1d(tmp):
    return _x1d(tmp / "multi_x1d.fits", n_spectra=3, offsets=[0, 1, 2])


def _w_headerless(tmp):
    p = tmp / "plain.txt"
    p.write_text("\n".join(f"{w} {s}" for w, s in zip(WAVE, SB, strict=True)))
    return p


def _w_ampere(tmp):
    return _fits_table(
        tmp / "amp.fits",
        {"WAVE": WAVE * 1e4, "SB": SB},
        {"WAVE": "A", "SB": "erg s-1 cm-2 A-1 sr-1"},
    )


def _w_zero(tmp):
    return _csv(tmp / "zero.csv", "wave[um],sb[MJy/sr]", [(w, 0.0) for w in WAVE])


def _w_mislabelled_unit(tmp):
    return _csv(tmp / "mislabel.csv", "wave[um],sb[MJy/sr]", zip(WAVE * 1000, SB, strict=True))


WARNING_CASES = [
    ("unsorted", _w_unsorted, {}, "not sorted"),
    ("decreasing", _w_decreasing, {}, "decreasing order"),
    ("duplicates", _w_duplicates, {}, "averaged"),
    ("nan-rows", _w_nan_rows, {}, "dropped 2 of 40 rows"),
    ("partial-coverage", _w_partial, {"science_wavelength_range": (0.5, 5.5)}, "not covered"),
    ("mostly-negative", _w_negative, {}, "is negative"),
    ("no-units", _w_no_units, {}, "assuming micron"),
    ("multi-spectrum-x1d", _w_multi_x1d, {}, "holds 3 spectra"),
    ("headerless-text", _w_headerless, {}, "no header line"),
    ("A-means-Angstrom", _w_ampere, {}, "as Angstrom"),
    ("all-zero", _w_zero, {}, "zero everywhere"),
    ("nm-labelled-um", _w_mislabelled_unit, {}, "outside JWST"),
]


@pytest.mark.parametrize(
    ("builder", "kwargs", "fragment"),
    [w[1:] for w in WARNING_CASES],
    ids=[w[0] for w in WARNING_CASES],
)
def test_warning_cases(tmp_path, caplog, builder, kwargs, fragment):
    path = builder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="jwst_mbkg_plus.io.user_background"):
        bkg = _read(path, **kwargs)
    hits = [w for w in bkg.warnings if fragment in w]
    assert hits, bkg.warnings
    assert all(path.name in w for w in bkg.warnings)
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(fragment in m and path.name in m for m in logged)
    assert np.all(np.diff(bkg.wavelength) > 0)


def test_warning_repairs(tmp_path):
    bkg = _read(_w_unsorted(tmp_path))
    np.testing.assert_allclose(bkg.wavelength, WAVE)
    np.testing.assert_allclose(bkg.surf_bright, SB)
    bkg = _read(_w_duplicates(tmp_path))
    assert bkg.n_points == N
    np.testing.assert_allclose(bkg.surf_bright[5:8], SB[5:8] + 0.1)
    bkg = _read(_w_nan_rows(tmp_path))
    assert bkg.n_points == N - 2 and np.all(np.isfinite(bkg.surf_bright))
    bkg = _read(_w_multi_x1d(tmp_path))
    np.testing.assert_allclose(bkg.surf_bright, SB)
    bkg = _read(_w_ampere(tmp_path))
    expect = (SB * u.erg / u.s / u.cm**2 / u.AA / u.sr).to_value(
        u.MJy / u.sr, u.spectral_density(WAVE * u.um)
    )
    np.testing.assert_allclose(bkg.wavelength, WAVE)
    np.testing.assert_allclose(bkg.surf_bright, expect, rtol=1e-12)


def test_partial_coverage_names_uncovered_range(tmp_path):
    bkg = _read(_w_partial(tmp_path), science_wavelength_range=(0.5, 5.5) * u.um)
    msg = " ".join(bkg.warnings)
    assert "0.5-0.6 um" in msg and "5.3-5.5 um" in msg


# --- Positive round trips ------------------------------------------------------------


def test_x1d_round_trip(tmp_path):
    bkg = _read(_x1d(tmp_path / "bkg_x1d.fits"))
    assert bkg.format == "jwst-x1d"
    assert (bkg.wavelength_column, bkg.surf_bright_column, bkg.sb_error_column) == (
        "WAVELENGTH",
        "SURF_BRIGHT",
        "SB_ERROR",
    )
    assert bkg.warnings == []
    np.testing.assert_array_equal(bkg.wavelength, WAVE)
    np.testing.assert_array_equal(bkg.surf_bright, SB)
    np.testing.assert_array_equal(bkg.sb_error, ERR)


def test_x1d_spectrum_index(tmp_path):
    bkg = _read(_w_multi_x1d(tmp_path), spectrum_index=2)
    np.testing.assert_allclose(bkg.surf_bright, SB + 2)
    assert bkg.warnings == []


def test_c1d_round_trip(tmp_path):
    tab = np.zeros(N, dtype=table_dtype(datamodels.CombinedSpecModel(), "spec_table"))
    tab["WAVELENGTH"], tab["SURF_BRIGHT"], tab["SB_ERROR"] = WAVE, SB, ERR
    tab["FLUX"] = 1.0
    with datamodels.CombinedSpecModel(spec_table=tab) as model:
        model.spec_table.columns["wavelength"].unit = "um"
        model.spec_table.columns["surf_bright"].unit = "MJy/sr"
        model.spec_table.columns["sb_error"].unit = "MJy/sr"
        model.save(tmp_path / "bkg_c1d.fits")
    bkg = _read(tmp_path / "bkg_c1d.fits")
    assert bkg.format == "jwst-c1d"
    assert bkg.warnings == []
    np.testing.assert_array_equal(bkg.surf_bright, SB)


def test_fits_table_nm_and_jy_per_arcsec2(tmp_path):
    assert JY_ARCSEC2_IN_MJY_SR == pytest.approx(42545.17, rel=1e-6)
    path = _fits_table(
        tmp_path / "sky.fits",
        {"Lambda": WAVE * 1000, "Sky": SB * 1e-6, "Sigma": ERR * 1e-6},
        {"Lambda": "nm", "Sky": "Jy/arcsec2", "Sigma": "Jy/arcsec2"},
    )
    bkg = _read(path)
    assert bkg.format == "fits-table"
    assert (bkg.wavelength_column, bkg.surf_bright_column, bkg.sb_error_column) == (
        "Lambda",
        "Sky",
        "Sigma",
    )
    np.testing.assert_allclose(bkg.wavelength, WAVE, rtol=1e-12)
    np.testing.assert_allclose(bkg.surf_bright, SB * 1e-6 * JY_ARCSEC2_IN_MJY_SR, rtol=1e-12)
    np.testing.assert_allclose(bkg.sb_error, ERR * 1e-6 * JY_ARCSEC2_IN_MJY_SR, rtol=1e-12)
    assert bkg.warnings == []


def test_fits_table_frequency_axis(tmp_path):
    freq = (WAVE * u.um).to_value(u.THz, u.spectral())
    fnu = SB * 1e6 * 1e-23  # erg/s/cm2/Hz/sr
    path = _fits_table(
        tmp_path / "freq.fits",
        {"WAVE": freq, "SB": fnu},
        {"WAVE": "THz", "SB": "erg s-1 cm-2 Hz-1 sr-1"},
    )
    bkg = _read(path)
    np.testing.assert_allclose(bkg.wavelength, WAVE, rtol=1e-12)
    np.testing.assert_allclose(bkg.surf_bright, SB, rtol=1e-12)
    assert bkg.warnings == []  # decreasing in frequency: reversed silently


def test_ecsv_with_units(tmp_path):
    path = tmp_path / "sky.ecsv"
    Table(
        {
            "WAVELENGTH": WAVE * 1e4 * u.AA,
            "background": SB * 1e6 * u.Jy / u.sr,
            "err": ERR * u.MJy / u.sr,
        }
    ).write(path)
    bkg = _read(path)
    assert bkg.format == "ecsv"
    assert bkg.sb_error_column == "err"
    np.testing.assert_allclose(bkg.wavelength, WAVE, rtol=1e-12)
    np.testing.assert_allclose(bkg.surf_bright, SB, rtol=1e-12)
    assert bkg.warnings == []


def test_csv_bracketed_units(tmp_path):
    path = _csv(
        tmp_path / "sky.csv",
        "Wave [nm],flux[Jy/sr],e_flux[Jy/sr]",
        zip(WAVE * 1000, SB * 1e6, ERR * 1e6, strict=True),
    )
    bkg = _read(path)
    assert bkg.format == "csv"
    assert bkg.wavelength_unit == "nm"
    np.testing.assert_allclose(bkg.wavelength, WAVE, rtol=1e-12)
    np.testing.assert_allclose(bkg.surf_bright, SB, rtol=1e-12)
    np.testing.assert_allclose(bkg.sb_error, ERR, rtol=1e-12)
    assert bkg.warnings == []


def test_text_commented_header_with_parentheses(tmp_path):
    path = tmp_path / "sky.txt"
    body = "\n".join(f"{w * 1e4} {s}" for w, s in zip(WAVE, SB, strict=True))
    path.write_text(f"# sky from my shutters\n# lambda(Angstrom) sky(MJy/sr)\n{body}\n")
    bkg = _read(path)
    np.testing.assert_allclose(bkg.wavelength, WAVE, rtol=1e-12)
    assert bkg.warnings == []


def test_result_is_immutable(tmp_path):
    bkg = _read(_x1d(tmp_path / "bkg_x1d.fits"))
    with pytest.raises(ValueError, match="read-only"):
        bkg.surf_bright[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        bkg.format = "csv"


def test_in_memory_model_not_modified(tmp_path):
    with datamodels.open(_w_multi_x1d(tmp_path)) as model:
        before = [np.array(s.spec_table, copy=True) for s in model.spec]
        bkg = read_user_background(model, spectrum_index=1)
        np.testing.assert_allclose(bkg.surf_bright, SB + 1)
        for orig, spec in zip(before, model.spec, strict=True):
            np.testing.assert_array_equal(np.asarray(spec.spec_table), orig)


# --- Writer -------------------------------------------------------------------------


def test_writer_round_trip_and_jwst_reads_it(tmp_path):
    from jwst.master_background.expand_to_2d import expand_to_2d

    wave_q = WAVE * u.um
    sb_in, err_in = SB.copy(), ERR.copy()
    path = write_user_background(
        tmp_path / "mine_masterbg1d.fits", wave_q, sb_in, err_in, n_inputs=7
    )
    np.testing.assert_array_equal(sb_in, SB)  # inputs untouched
    bkg = _read(path)
    assert bkg.format == "masterbg1d"
    assert bkg.warnings == []
    np.testing.assert_array_equal(bkg.wavelength, WAVE)
    np.testing.assert_array_equal(bkg.surf_bright, SB)
    np.testing.assert_array_equal(bkg.sb_error, ERR)
    with datamodels.open(path) as model:
        # The masterbg1d layout jwst 3.0 writes.
        assert isinstance(model, datamodels.MultiCombinedSpecModel)
        assert np.all(model.spec[0].spec_table["N_INPUT"] == 7)
        assert model.spec[0].spec_table.columns["surf_bright"].unit == "MJy/sr"

    # jwst's own user-background path: masterbg1d -> np.interp per pixel.
    pix_wave = np.tile(np.linspace(1.0, 5.0, 12), (4, 1))
    # A MultiSlitModel: what every supported jwst's expand_to_2d accepts (jwst 1.19
    # takes no bare SlitModel).
    slits = datamodels.MultiSlitModel()
    slits.slits.append(datamodels.SlitModel(
        data=np.zeros((4, 12), np.float32), dq=np.zeros((4, 12), np.uint32), wavelength=pix_wave
    ))
    slits.meta.exposure.type = "NRS_FIXEDSLIT"
    slits.slits[0].source_type = "EXTENDED"
    before = _sha(path)
    bkg2d = expand_to_2d(slits, str(path))
    assert _sha(path) == before
    np.testing.assert_allclose(bkg2d.slits[0].data, np.interp(pix_wave, WAVE, SB), rtol=1e-6)


def test_writer_units_and_overwrite(tmp_path):
    path = tmp_path / "sky_c1d.fits"
    write_user_background(path, WAVE * 1e3 * u.nm, SB * u.MJy / u.sr)
    with pytest.raises(FileExistsError):
        write_user_background(path, WAVE, SB)
    write_user_background(
        path, WAVE, SB * 1e-6 / JY_ARCSEC2_IN_MJY_SR * u.Jy / u.arcsec**2, overwrite=True
    )
    bkg = _read(path)
    assert bkg.format == "jwst-c1d" and bkg.sb_error is None
    np.testing.assert_allclose(bkg.surf_bright, SB * 1e-6, rtol=1e-12)
    with pytest.raises(ValueError, match="strictly increasing"):
        write_user_background(tmp_path / "bad.fits", WAVE[::-1], SB)


# --- Real data ----------------------------------------------------------------------


def test_real_msa_sky_csv(shared_data):
    path = shared_data / "msa_sky" / "jw01345062001_sky.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    bkg = _read(path, science_wavelength_range=(0.6, 5.3))
    assert bkg.format == "csv"
    assert (bkg.wavelength_column, bkg.surf_bright_column) == ("wave", "flux")
    assert bkg.n_points > 1000
    assert 0.55 < bkg.wavelength[0] < 0.7 and 5.2 < bkg.wavelength[-1] < 5.4
    assert np.median(bkg.surf_bright) > 0
    assert any("assuming micron" in w for w in bkg.warnings)
    assert any("assuming MJy/sr" in w for w in bkg.warnings)


def test_real_x1d_pid2736(shared_data):
    paths = sorted((shared_data / "pid2736_o007").glob("*_x1d.fits"))
    if not paths:
        pytest.skip("no real x1d in shared data")
    bkg = _read(paths[0], science_wavelength_range=(2.87, 5.27))
    assert bkg.format == "jwst-x1d"
    assert bkg.surf_bright_unit == "MJy / sr"
    assert bkg.n_points == 1215
    assert 2.8 < bkg.wavelength[0] and bkg.wavelength[-1] < 5.3
    assert bkg.sb_error is not None
    # G395M: the NRS1/NRS2 gap is reported.
    assert any("gap in the background" in w for w in bkg.warnings)


def test_vector_column_tables(tmp_path):
    # One row of array columns (HST-style) is flattened; several rows are several spectra.
    def write(path, nrow):
        wave = np.tile(WAVE, (nrow, 1))
        sb = np.vstack([SB + k for k in range(nrow)])
        cols = [
            fits.Column(name="WAVELENGTH", format=f"{N}D", unit="um", array=wave),
            fits.Column(name="SURF_BRIGHT", format=f"{N}D", unit="MJy/sr", array=sb),
        ]
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
        return path

    bkg = _read(write(tmp_path / "one_row.fits", 1))
    np.testing.assert_allclose(bkg.surf_bright, SB)
    assert bkg.warnings == []
    path = write(tmp_path / "rows.fits", 3)
    bkg = _read(path)
    assert any("3 spectra as table rows" in w for w in bkg.warnings)
    np.testing.assert_allclose(bkg.surf_bright, SB)
    np.testing.assert_allclose(_read(path, spectrum_index=2).surf_bright, SB + 2)
    with pytest.raises(UserBackgroundFormatError, match="out of range"):
        _read(path, spectrum_index=5)
