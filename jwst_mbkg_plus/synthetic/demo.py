"""The ``jwst-mbkg-plus demo``: calwebb_spec2, stock and plus, on a synthetic MOS exposure.

:func:`run_demo` builds the synthetic instrument (cached), paints an exposure
with a known background, runs jwst's ``Spec2Pipeline`` and
`~jwst_mbkg_plus.Spec2PipelinePlus` on it and prints the subtracted background
against the truth, slit by slit.
"""

import logging
import time
from pathlib import Path

import numpy as np

from jwst_mbkg_plus.io.products import read_qa
from jwst_mbkg_plus.io.slits import DO_NOT_USE
from jwst_mbkg_plus.jwst_internals import quiet_call_options
from jwst_mbkg_plus.offline import offline_crds
from jwst_mbkg_plus.synthetic.instrument import GRATINGS
from jwst_mbkg_plus.synthetic.sky import BUILTIN_SKIES
from jwst_mbkg_plus.synthetic.spectra import read_spectrum_csv

__all__ = ["DemoInputError", "run_demo"]

log = logging.getLogger(__name__)


class DemoInputError(ValueError):
    """A demo option names something unusable (a grating, a sky file)."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def _say(message):
    print(message, flush=True)  # noqa: T201 - the demo's progress report


def _slit_residuals(background_2d, truth):
    """Median relative error of the subtracted background per slit, in percent."""
    rows = {}
    for bkg in background_2d.slits:
        slit = bkg
        true_rate = truth.cutout(slit.name, "background", slit) / truth.cutout(
            slit.name, "factor", slit
        )
        good = np.isfinite(true_rate) & (true_rate > 0) & np.isfinite(bkg.data)
        good &= (bkg.dq & DO_NOT_USE) == 0
        if good.sum() == 0:
            rows[slit.name] = (truth.slit(slit.name)["kind"], float("nan"))
            continue
        rel = np.median(bkg.data[good] / true_rate[good] - 1)
        rows[slit.name] = (truth.slit(slit.name)["kind"], 100 * float(rel))
    return rows


def _natural_order(name):
    """Sort key putting slit names in numeric order (1, 2, ..., 10), others after."""
    return (0, int(name), "") if str(name).isdigit() else (1, 0, str(name))


def _qa_summary(folder):
    """One line from the plus step's QA record: pull spreads, outliers, flagged pixels."""
    path = next(Path(folder).glob("*_mbkgqa.asdf"), None)
    if path is None:
        return ""
    qa = read_qa(path)
    summary = dict(qa.get("pull_summary") or {})
    if not summary.get("n_pixels"):
        return ""
    column = dict(qa.get("column_pull_summary") or {})
    err = dict(qa.get("err_pull_summary") or {})
    expected = [r.get("expected_err_pull_spread") for r in (qa.get("residuals") or {}).values()]
    expected = [e for e in expected if e is not None and np.isfinite(e)]
    flagged = dict(qa.get("flagged_pixels") or {})
    column_text = (f", {column['pull_spread']:.3f} per column" if column.get("n_pixels") else "")
    err_text = (f"; residual / ERR {err['pull_spread']:.3f} per pixel"
                + (f" (expected {np.median(expected):.3f}: ERR per pixel is raised for "
                   "column sums)" if expected else "") if err.get("n_pixels") else "")
    return (f"background slitlets' error-model pull spread {summary['pull_spread']:.3f} "
            f"per pixel{column_text} (1.4826 MAD, pixels not rejected; 1 +/- 0.05 is right)"
            f"{err_text}, {100 * summary['pull_outlier_fraction']:.3f}% beyond 5; "
            f"{flagged.get('total', 0)} rejected pixels flagged OUTLIER + DO_NOT_USE")


def _scatter_summary(folder, truth):
    """The plus step's measured calibration scatter against the painted one."""
    paths = sorted(Path(folder).glob("*_mbkgqa.asdf"))
    if not paths:
        return ""
    qa = read_qa(paths[0])
    record = dict(qa.get("calibration_scatter") or {})
    if not record:
        return ""
    levels = []
    for name in truth.background_names():
        s = truth.slit(name)
        if "calibration_error" not in s:
            continue
        ok = s["valid"] & np.isfinite(s["calibration_error"])
        if ok.any():
            levels.append(float(np.mean(s["calibration_error"][ok])))
    painted = (f"; painted {100 * np.std(levels, ddof=1):.2f}% over the background slitlets"
               if len(levels) > 1 else "")
    verdict = "detected" if record.get("detected") else "not detected"
    what = (f"{len(record.get('rescaled_slits') or [])} slitlets rescaled by their own factor, "
            f"{len(record.get('systematic_error_slits') or {})} with the scatter in ERR"
            if record.get("rescaled") else "no slitlet rescaled")
    return (f"{100 * float(record.get('scatter', 0.0)):.2f}% between background slitlets "
            f"({verdict}){painted}; {what}")


def _demo_sky(grating, sky):
    """The demo's injected background: a built-in name or a checked CSV path."""
    if sky is None:
        return "prism_sky" if grating == "PRISM" else "default"
    if sky in ("default", *BUILTIN_SKIES):
        return sky
    path = Path(sky).expanduser().resolve()
    if not path.is_file():
        raise DemoInputError(sky, "no such sky file; give a CSV with columns wave [micron] and "
                          "flux [MJy/sr], 'prism_sky' or 'default'")
    try:
        wave, _ = read_spectrum_csv(path)
    except ValueError as err:
        raise DemoInputError(sky, str(err).removeprefix(f"{path}: ")) from None
    if wave.size < 2:
        raise DemoInputError(sky, "fewer than two finite (wave, flux) rows")
    return str(path)


#: The demo's per-slitlet calibration error: 3% rms in level, 2% rms tilt across
#: the band (STScI quotes background measurements consistent to ~5% across apertures).
DEMO_CALIBRATION_ERROR = (0.03, 0.02, 0.0)


def run_demo(workdir, *, grating="PRISM", sky=None, n_background=6, noise=0.2,
             n_contaminated=1, stock=True, seed=1, calibration_error=DEMO_CALIBRATION_ERROR):
    """
    Run the demo: synthetic exposure, calwebb_spec2 stock and plus, residuals.

    Parameters
    ----------
    workdir : str or pathlib.Path
        Folder for the exposure and all products (created).
    grating : str, optional
        Disperser of the synthetic exposure: "PRISM" (CLEAR, the STScI
        notebook's mode), "G235M" (F170LP), "G395M" or "G395H" (F290LP; G395H
        spectra are longer than NRS1, which holds a part of each band).
    sky : str or pathlib.Path or None, optional
        Injected background: a CSV file (wave [micron], flux [MJy/sr]),
        "prism_sky" (the built-in real PRISM sky) or "default" (analytic);
        None: "prism_sky" for the prism, "default" for the gratings.
    n_background : int, optional
        Background slitlets in the scene.
    noise : float, optional
        Per-pixel noise as a fraction of the background.
    n_contaminated : int, optional
        Background slitlets carrying an undeclared source (30% of the background).
    stock : bool, optional
        Also run jwst's stock pipeline, for comparison.
    seed : int, optional
        Random seed of the scene.
    calibration_error : tuple, optional
        Per-slitlet calibration error painted (``Scene.calibration_error``:
        level rms, tilt rms across the band, curvature rms[, correlation]); () for
        perfectly calibrated slitlets.

    Returns
    -------
    dict
        Per pipeline: run time in seconds and per-slit residuals in percent.
    """
    if grating not in GRATINGS:
        raise DemoInputError(grating, f"unknown grating; choose from {', '.join(GRATINGS)}")
    sky = _demo_sky(grating, sky)
    workdir = Path(workdir).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # The environment is restored afterwards: nothing leaks into the caller.
    with offline_crds(workdir / "crds_base"):
        return _run(workdir, grating, sky, n_background, noise, n_contaminated, stock, seed,
                    tuple(calibration_error))


def _run(workdir, grating, sky, n_background, noise, n_contaminated, stock, seed, calib):
    # jwst loads only when the demo runs, so `jwst-mbkg-plus --help` stays fast.
    from jwst.pipeline import Spec2Pipeline
    from stdatamodels.jwst import datamodels

    from jwst_mbkg_plus.pipelines import Spec2PipelinePlus
    from jwst_mbkg_plus.synthetic import (
        Scene,
        build_instrument,
        default_instrument_path,
        load_truth,
        local_crds_context,
        make_exposure,
    )

    total = 4 + int(stock)
    _say(f"[1/{total}] Building the synthetic NIRSpec instrument (cached after the first run) ...")
    t0 = time.perf_counter()
    instrument = build_instrument(default_instrument_path())
    _say(f"      reference files and local CRDS context in {instrument.crds_path}"
         f" ({time.perf_counter() - t0:.1f} s)")

    sky_text = {"default": "the analytic sky", "prism_sky": "a real PRISM sky (CEERS)"}
    _say(f"[2/{total}] Painting a {grating} exposure on NRS1 with a known background: "
         f"{sky_text.get(sky, Path(sky).name)} ...")
    scene = Scene(
        grating=grating,
        background=sky,
        n_background=n_background,
        n_point=2,
        n_extended=1,
        detectors=("NRS1",),
        noise_fraction=noise,
        n_contaminated=n_contaminated,
        hot_pixels_per_slit=5,
        hot_clusters_per_slit=1,
        hot_pixel_level=30.0,
        calibration_error=calib,
        seed=seed,
    )
    exposure = make_exposure(scene, workdir / "exposure", instrument=instrument)
    truth = load_truth(exposure.truth_path)
    _say(f"      {exposure.rate_path.name}: {n_background} background slitlets "
         f"({n_contaminated} with an undeclared source), 3 source slitlets, "
         f"{100 * noise:.0f}% noise per pixel")
    if scene.calibration_error:
        _say(f"      each slitlet calibrated with its own error, as real apertures are: "
             f"{100 * calib[0]:.0f}% rms in level, "
             f"{100 * (calib[1] if len(calib) > 1 else 0):.0f}% rms tilt across the band "
             "(--calibration-error 0 for none)")

    runs = [("plus", Spec2PipelinePlus)]
    if stock:
        runs.insert(0, ("stock", Spec2Pipeline))
    results = {}
    for step_no, (label, cls) in enumerate(runs, start=3):
        out = workdir / label
        out.mkdir(exist_ok=True)
        _say(f"[{step_no}/{total}] Running {cls.__name__} with master background on ...")
        t0 = time.perf_counter()
        with local_crds_context(instrument):
            cls.call(
                str(exposure.rate_path),
                steps={"master_background_mos": {"skip": False, "save_background": True}},
                output_dir=str(out),
                save_results=True,
                # Keep the terminal to the demo's own progress lines; the
                # pipeline's warnings still show through Python's last resort.
                **quiet_call_options(),
            )
        seconds = time.perf_counter() - t0
        masterbg2d = next(out.glob("*_masterbg2d.fits"))
        with datamodels.open(masterbg2d) as bkg:
            residuals = _slit_residuals(bkg, truth)
        results[label] = {"seconds": seconds, "residuals": residuals, "folder": out}
        _say(f"      done in {seconds:.0f} s; products in {out}")

    _say(
        f"[{total}/{total}] Subtracted background minus true background,"
        " median per slit (% of truth):"
    )
    names = sorted(results["plus"]["residuals"], key=_natural_order)
    header = f"      {'slit':>5s} {'kind':<11s}" + "".join(f"{k:>10s}" for k in results)
    _say(header)
    for name in names:
        kind = results["plus"]["residuals"][name][0]
        if int(name) in truth.contaminated:
            kind += "*"
        cells = "".join(f"{results[k]['residuals'][name][1]:+9.2f}%" for k in results)
        _say(f"      {name:>5s} {kind:<11s}{cells}")
    _say("      * background slitlet with an undeclared source")
    qa_line = _qa_summary(results["plus"]["folder"])
    if qa_line:
        _say(f"      plus QA record: {qa_line}")
    scatter_line = _scatter_summary(results["plus"]["folder"], truth)
    if scatter_line:
        _say(f"      calibration scatter: {scatter_line}")
    times = ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in results.items())
    _say(f"      calwebb_spec2 run times: {times}")
    _say(f"      products: {workdir}")
    return results


