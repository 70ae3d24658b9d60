"""The cases of issue 27 for validation/bad_inputs.py: values inside files, malformed models,
what users type, files as users have them, full disk, batches, QA pulls.

Registered into ``bad_inputs.CASES`` by :func:`register`. Every MOS and spec3 case
that returns subtracted data also reports, over its science pixels with DQ 0,
how many hold a non-finite value (``dq0_nonfinite``) and how many had a
background subtracted more than 10 times the reference run's robust range beyond
that range (``dq0_absurd``; the reference is the default step on the clean
input, its range the 1-99th percentiles of what it subtracted).
"""

import contextlib
import errno
import json
import shutil
from pathlib import Path

import _common
import numpy as np

DO_NOT_USE = 1


# --------------------------------------------------------------------------- measures


def _limits(values):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    lo, hi = np.percentile(values, [1, 99])
    width = max(hi - lo, abs(float(np.median(values))))
    return lo - 10 * width, hi + 10 * width


def _mos_metrics(work, result):
    """Status and the DQ-0 science-pixel checks of a MOS result against the clean run."""
    from stdatamodels.jwst import datamodels

    out = {"status": str(result.meta.cal_step.master_background)}
    if out["status"] != "COMPLETE":
        return out
    with datamodels.open(work / "mos_slits.fits") as before, \
            datamodels.open(work / "mos_cal.fits") as ref:
        names = [s.name for s in before.slits]
        ref_bkg = np.concatenate([(b.data - r.data)[(r.dq & DO_NOT_USE) == 0].ravel()
                                  for b, r in zip(before.slits, ref.slits, strict=True)])
        lo, hi = _limits(ref_bkg)
        nonfinite = absurd = 0
        by_name = {s.name: s for s in before.slits}
        for slit in result.slits:
            if slit.name not in names:
                continue
            good = (slit.dq & DO_NOT_USE) == 0
            nonfinite += int((good & ~np.isfinite(slit.data)).sum())
            bkg = by_name[slit.name].data - slit.data
            with np.errstate(invalid="ignore"):
                absurd += int((good & np.isfinite(bkg) & ((bkg < lo) | (bkg > hi))).sum())
    out["dq0_nonfinite"] = nonfinite
    out["dq0_absurd"] = absurd
    return out


def _spec3_metrics(work, result, asn=None):
    """Status and DQ-0 checks of a spec3 result against the clean FS run."""
    from jwst.datamodels import ModelContainer
    from stdatamodels.jwst import datamodels

    from jwst_mbkg_plus import MasterBackgroundPlusStep

    models = list(result) if isinstance(result, ModelContainer | list | tuple) else [result]
    out = {"status": ",".join(sorted({str(m.meta.cal_step.master_background) for m in models}))}
    if out["status"] != "COMPLETE":
        return out
    folder = Path(asn).parent if asn else work / "spec3_NRS_FIXEDSLIT"
    clean = MasterBackgroundPlusStep.call(str(next((work / "spec3_NRS_FIXEDSLIT")
                                                   .glob("*_asn.json"))))
    nonfinite = absurd = 0
    for model, ref in zip(models, clean, strict=True):
        with datamodels.open(folder / model.meta.filename) as before:
            pairs = list(zip(before.slits, model.slits, ref.slits, strict=True))
            ref_bkg = np.concatenate([(b.data - r.data).ravel() for b, _, r in pairs])
            lo, hi = _limits(ref_bkg)
            for b, s, _ in pairs:
                good = (s.dq & DO_NOT_USE) == 0
                nonfinite += int((good & ~np.isfinite(s.data)).sum())
                bkg = b.data - s.data
                with np.errstate(invalid="ignore"):
                    absurd += int((good & np.isfinite(bkg) & ((bkg < lo) | (bkg > hi))).sum())
    out["dq0_nonfinite"] = nonfinite
    out["dq0_absurd"] = absurd
    return out


# --------------------------------------------------------------------------- files


def _csv_from_masterbg1d(work, name, edit=None, *, bom=False, crlf=False, semicolon=False):
    """The run's masterbg1d as a CSV a user would write; ``edit(rows)`` changes values."""
    from jwst_mbkg_plus.io.user_background import read_user_background

    bkg = read_user_background(next((work / "products").glob("*_masterbg1d.fits")))
    wave, sb = np.array(bkg.wavelength), np.array(bkg.surf_bright)
    if edit is not None:
        edit(sb)
    sep = ";" if semicolon else ","
    rows = [f"wave[um]{sep}surf_bright[MJy/sr]"]
    for w, s in zip(wave, sb, strict=True):
        text = f"{w:.7g}{sep}{s:.7g}"
        rows.append(text.replace(".", ",") if semicolon else text)
    newline = "\r\n" if crlf else "\n"
    data = newline.join(rows) + newline
    path = work / "out" / name
    path.write_bytes((("\ufeff" if bom else "") + data).encode("utf-8"))
    return path


def _png(work):
    path = work / "out" / "plot.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    return path


def _qa_record(work):
    return next((work / "products").glob("*_mbkgqa.asdf"))


def _rate(work):
    return next((work / "exposure").glob("*_rate.fits"))


def _edited_slits(work, name, edit):
    from stdatamodels.jwst import datamodels

    path = work / "out" / name
    with datamodels.open(work / "mos_slits.fits") as model:
        copy = model.copy()
    edit(copy)
    copy.save(path)
    copy.close()
    return path


def _bkg_slit(model, k=0):
    return [s for s in model.slits if "BKG" in str(s.source_name)][k]


def _set_pixels(value):
    """An edit for `_edited_slits`: about 30 spaced finite pixels of a background slitlet set."""

    def edit(model):
        slit = _bkg_slit(model)
        rows, cols = np.nonzero(np.isfinite(slit.data))
        pick = slice(0, None, max(1, rows.size // 30))
        slit.data[rows[pick], cols[pick]] = value

    return edit


# --------------------------------------------------------------------------- cases


def register(m):  # noqa: C901 - one registration per case
    """Add the cases of issue 27 to ``m.CASES`` (``m`` is the bad_inputs module)."""
    case, _mos, _spec3 = m.case, m._mos, m._spec3

    # ---- values inside files
    def fill(rows_values):
        def edit(sb):
            for row, value in rows_values:
                sb[row] = value
        return edit

    @case("user_background CSV, 3 rows -9999")
    def _(work):
        path = _csv_from_masterbg1d(work, "fill9999.csv",
                                    fill([(100, -9999), (500, -9999), (800, -9999)]))
        return _mos_metrics(work, _mos(work, user_background=str(path)))

    @case("user_background CSV, one row 1e30")
    def _(work):
        path = _csv_from_masterbg1d(work, "fill1e30.csv", fill([(400, 1e30)]))
        return _mos_metrics(work, _mos(work, user_background=str(path)))

    @case("user_background CSV, rows inf")
    def _(work):
        path = _csv_from_masterbg1d(work, "fillinf.csv", fill([(300, np.inf), (301, -np.inf)]))
        return _mos_metrics(work, _mos(work, user_background=str(path)))

    @case("user_background CSV, one row 1e4 x sky")
    def _(work):
        def edit(sb):
            sb[600] = 1e4 * np.nanmedian(sb)
        path = _csv_from_masterbg1d(work, "far.csv", edit)
        return _mos_metrics(work, _mos(work, user_background=str(path)))

    @case("spec3 user_background CSV, 3 rows -9999", kind="spec3")
    def _(work):
        from stdatamodels.jwst import datamodels

        from jwst_mbkg_plus.io.user_background import write_user_background

        folder = m._spec3_dir(work)
        asn = json.loads(next(folder.glob("*_asn.json")).read_text())
        member = next(x["expname"] for x in asn["products"][0]["members"]
                      if x["exptype"] == "background")
        with datamodels.open(folder / member) as x1d:
            table = x1d.spec[0].spec_table
            wave = np.array(table["WAVELENGTH"], dtype=float)
            col = "BACKGROUND" if np.isfinite(table["BACKGROUND"]).any() and \
                np.nanmax(np.abs(table["BACKGROUND"])) > 0 else "SURF_BRIGHT"
            sb = np.array(table[col], dtype=float)
        sb[[20, 60, 90]] = -9999.0
        path = write_user_background(work / "out" / "spec3_fill.fits", wave, sb,
                                     overwrite=True)
        science = next(x["expname"] for x in asn["products"][0]["members"]
                       if x["exptype"] == "science")
        result = _spec3(work, str(folder / science), user_background=str(path))
        return _spec3_metrics(work, result)

    @case("spec3 background member with 3 rows -9999", kind="spec3")
    def _(work):
        def fill_rows(spec):
            for col in ("SURF_BRIGHT", "BACKGROUND"):
                values = np.array(spec.spec_table[col], dtype=float)
                values[[10, 40, 70]] = -9999.0
                spec.spec_table[col] = values

        asn = m._asn_copy(work, "spec3_fill_member", m.edit_spectra(fill_rows))
        return _spec3_metrics(work, _spec3(work, asn), asn)

    @case("inf pixels in a background slitlet")
    def _(work):
        path = _edited_slits(work, "inf_slits.fits", _set_pixels(np.inf))
        result = _mos(work, data=str(path))
        out = _mos_metrics(work, result)
        slit = _bkg_slit(result)
        out["inf_pixels_flagged"] = int(((~np.isfinite(slit.data))
                                         & ((slit.dq & DO_NOT_USE) != 0)).sum())
        out["inf_pixels_dq0"] = int(((~np.isfinite(slit.data))
                                     & ((slit.dq & DO_NOT_USE) == 0)).sum())
        return out

    @case("1e30 pixels in a background slitlet")
    def _(work):
        result = _mos(work, data=str(_edited_slits(work, "big_slits.fits", _set_pixels(1e30))))
        return _mos_metrics(work, result)

    def _blue_only(spec, fraction=0.05):
        wave = np.array(spec.spec_table["WAVELENGTH"], dtype=float)
        cut = np.nanmin(wave) + fraction * (np.nanmax(wave) - np.nanmin(wave))
        for col in ("SURF_BRIGHT", "BACKGROUND", "FLUX"):
            values = np.array(spec.spec_table[col], dtype=float)
            values[wave > cut] = np.nan
            spec.spec_table[col] = values

    @case("spec3 members valid over the bluest 5%", kind="spec3")
    def _(work):
        asn = m._asn_copy(work, "spec3_blue", m.edit_spectra(_blue_only), every=True)
        return _spec3_metrics(work, _spec3(work, asn), asn)

    # ---- checks before any work
    @case("MOS exposure type None")
    def _(work):
        def edit(model):
            model.meta.exposure.type = None
        return _mos_metrics(work, _mos(work, data=str(_edited_slits(work, "noexp.fits", edit))))

    @case("MOS slit without WCS")
    def _(work):
        from stdatamodels.jwst import datamodels

        with datamodels.open(work / "mos_slits.fits") as model:
            copy = model.copy()
        copy.slits[2].meta.wcs = None
        return _mos_metrics(work, _mos(work, data=copy))

    @case("MOS slit with zero-size data")
    def _(work):
        from stdatamodels.jwst import datamodels

        with datamodels.open(work / "mos_slits.fits") as model:
            copy = model.copy()
        slit = copy.slits[1]
        for name in ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat"):
            if getattr(slit, name, None) is not None:
                setattr(slit, name, getattr(slit, name)[:0, :0])
        return _mos_metrics(work, _mos(work, data=copy))

    # ---- what users type
    def _strun(work, *args):
        """strun's arguments, into out/strun: the step's list parameters, the status saved."""
        from jwst_mbkg_plus import MasterBackgroundMosPlusStep

        argv = [str(a) for a in args] + [f"--output_dir={_strun_dir(work)}"]
        with m.synthetic_crds():
            step = MasterBackgroundMosPlusStep.from_cmdline(argv)
        return {"bkg_slits": step.bkg_slits, "exclude_slits": step.exclude_slits,
                "status": m._status(_read_cal(work))}

    @case("strun --bkg_slits=1 (one value)")
    def _(work):
        return _strun(work, "master_background_mos_plus", work / "mos_slits.fits",
                      "--bkg_slits=1")

    @case("strun --exclude_slits=2 (one value)")
    def _(work):
        return _strun(work, "master_background_mos_plus", work / "mos_slits.fits",
                      "--exclude_slits=2")

    @case("ASDF parameter file with bkg_slits: '1,3'")
    def _(work):
        import asdf

        pars = work / "out" / "mbkg_pars.asdf"
        asdf.AsdfFile({"class": "jwst_mbkg_plus.mos.step.MasterBackgroundMosPlusStep",
                       "name": "master_background_mos_plus",
                       "parameters": {"bkg_slits": "1,3"}}).write_to(pars)
        return _strun(work, pars, work / "mos_slits.fits")

    @case("steps dict bkg_slits=[1, 3] as integers")
    def _(work):
        result = _mos(work, bkg_slits=[1, 3])
        return _mos_metrics(work, result)

    @case("bkg_slits names one slitlet twice")
    def _(work):
        result = _mos(work, bkg_slits=["1", "3", "1"])
        return _mos_metrics(work, result)

    @case("user_background CSV with BOM and CRLF")
    def _(work):
        path = _csv_from_masterbg1d(work, "bom_crlf.csv", bom=True, crlf=True)
        return _mos_metrics(work, _mos(work, user_background=str(path)))

    @case("user_background semicolon CSV with decimal commas")
    def _(work):
        path = _csv_from_masterbg1d(work, "semicolon.csv", semicolon=True)
        return _mos_metrics(work, _mos(work, user_background=str(path)))

    @case("user_background x1d with several spectra")
    def _(work):
        folder = m._spec3_dir(work, "NRS_IFU")
        x1d = sorted(folder.glob("*x1d*.fits"))
        from stdatamodels.jwst import datamodels

        from jwst_mbkg_plus.io.user_background import read_user_background

        with datamodels.open(x1d[0]) as model:
            many = model.copy()
        spec = datamodels.SpecModel()
        spec.spec_table = many.spec[0].spec_table.copy()
        many.spec.append(spec)
        path = work / "out" / "two_spectra_x1d.fits"
        many.save(path)
        bkg = read_user_background(path)
        return {"warnings": bkg.warnings,
                "names_spectrum_index": any("spectrum_index" in w for w in bkg.warnings)}

    @case("spec3 association lists one background member twice", kind="spec3")
    def _(work):
        asn = m._asn_copy(work, "spec3_dup", lambda p: None)
        table = json.loads(Path(asn).read_text())
        members = table["products"][0]["members"]
        first = next(x for x in members if x["exptype"] == "background")
        members.append(dict(first))
        Path(asn).write_text(json.dumps(table))
        return _spec3_metrics(work, _spec3(work, asn), asn)

    @case("master given the same x1d twice", kind="tool")
    def _(work):
        folder = m._spec3_dir(work)
        x1d = sorted(folder.glob("*x1d*.fits"))
        with _warnings_caught() as warned:
            out = m._cli("master", x1d[0], x1d[0], *x1d[1:], "-o",
                         work / "out" / "master_dup.fits", "--overwrite")
        out["warnings"] = warned
        return out

    # ---- wrong kinds of files
    def wrong_kind(parameter, make):
        """A case: the MOS step with ``parameter`` (data or user_background) a file ``make``s."""
        def run(work):
            return {"status": m._status(_mos(work, **{parameter: str(make(work))}))}
        return run

    for name, parameter, make in (
            ("MOS input is a PNG", "data", _png),
            ("MOS input is an ASDF QA record", "data", _qa_record),
            ("user_background is a PNG", "user_background", _png),
            ("user_background is an ASDF QA record", "user_background", _qa_record),
            ("user_background is a rate file", "user_background", _rate)):
        case(name)(wrong_kind(parameter, make))

    @case("spec3 input is a folder", kind="spec3")
    def _(work):
        return {"status": m._container_status(_spec3(work, str(m._spec3_dir(work))))}

    @case("master on a PNG", kind="tool")
    def _(work):
        return m._cli("master", _png(work), "-o", work / "out" / "master_png.fits",
                      "--overwrite")

    # ---- full disk
    @case("full disk during save_background")
    def _(work):
        import os

        from jwst_mbkg_plus import safe_io

        def full(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        safe_io.os.fsync = full
        out = work / "out" / "full_disk"
        out.mkdir(exist_ok=True)
        result = _mos(work, save_background=True, output_dir=str(out))
        return {"status": m._status(result),
                "files_left": sorted(p.name for p in out.iterdir())}

    # ---- batches
    @case("batch folder with unreadable entries", kind="tool")
    def _(work):
        folder = work / "out" / "batch_in"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for path in (_rate(work), *(work / "exposure").glob("*_msa.fits")):
            shutil.copy(path, folder / path.name)
        (folder / "jw00000000000_00000_00000_nrs1_rate.fits").mkdir()
        shutil.copy(_png(work), folder / "jw00000000000_00000_00001_nrs1_rate.fits")
        from jwst_mbkg_plus.batch import run_batch
        from jwst_mbkg_plus.synthetic import build_instrument, default_instrument_path

        inst = build_instrument(default_instrument_path())
        res = run_batch([folder], work / "out" / "batch_out", workers=1,
                        crds=str(inst.crds_path), force=True, plot=False,
                        log_level="WARNING")
        return {"rows": {Path(r["file"]).name if "file" in r else "?": r["status"]
                         for r in res.records},
                "errors": [r["error"][:160] for r in res.records if r["status"] == "failed"]}

    @case("second batch on a folder in use", kind="tool")
    def _(work):
        from jwst_mbkg_plus.batch.lock import batch_lock

        out = work / "out" / "batch_locked"
        out.mkdir(parents=True, exist_ok=True)
        with batch_lock(out):
            return m._cli("batch", _rate(work), "-o", out, "--no-plot")

    # ---- QA pulls
    @case("every background slitlet holds a source")
    def _(work):
        path = _contaminated_slits(m, work)
        with _warnings_caught() as warned:
            result = _mos(work, data=str(path))
        warned = [w for w in warned if "pull spread" in w]
        qa = result.meta.master_background_qa.instance
        return {"status": m._status(result),
                "pull_spread": round(qa["pull_summary"]["pull_spread"], 2),
                "column_pull_spread": round(qa["column_pull_summary"]["pull_spread"], 2),
                "warning": warned[:1]}


def _read_cal(work):
    """The product strun just saved in out/strun."""
    from stdatamodels.jwst import datamodels

    path = max((work / "out" / "strun").glob("*.fits"), key=lambda p: p.stat().st_mtime)
    return datamodels.open(path)


@contextlib.contextmanager
def _warnings_caught():
    """The package's WARNING lines (the tools print them bare, without the log format)."""
    import logging

    warned = []

    class Catch(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                warned.append(record.getMessage()[:300])

    handler = Catch()
    logging.getLogger("jwst_mbkg_plus").addHandler(handler)
    try:
        yield warned
    finally:
        logging.getLogger("jwst_mbkg_plus").removeHandler(handler)


def _strun_dir(work):
    folder = work / "out" / "strun"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _contaminated_slits(m, work):
    """Slits of ``m.small_scene`` with a source in every background slitlet (cached)."""
    from jwst_mbkg_plus.synthetic import build_instrument, default_instrument_path

    path = work / "contaminated_slits.fits"
    if path.is_file():
        return path
    inst = build_instrument(default_instrument_path())
    with _common.painted_slits(m.small_scene(n_contaminated=4), work / "exposure_contaminated",
                               inst) as (slits, _):
        slits.save(path)
    return path
