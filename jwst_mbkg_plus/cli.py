"""The ``jwst-mbkg-plus`` command.

Sub-commands:

``demo``
    Build a synthetic NIRSpec MOS exposure with a known background, run
    calwebb_spec2 on it with jwst's stock master background step and with the
    plus step, and print per-slit background residuals against the truth, the
    run times and where the products are.
``master``
    Vet and combine background spectra (x1d or cal files) into a
    ``user_background`` file (:mod:`jwst_mbkg_plus.tools.master`).
``flag-pixels``
    Write a copy of a rate file with DQ flags at given or detected hot pixels
    (:mod:`jwst_mbkg_plus.tools.hot_pixels`).
``msa-select``
    Write a copy of an MSA metadata file with slitlets made background or
    source (:mod:`jwst_mbkg_plus.tools.msa_select`).
``plot``
    PNG plots of cal/s2d slits, x1d spectra, masterbg1d and the MOS QA record
    (:func:`jwst_mbkg_plus.qa_plots.plot_files`).

No command modifies its input files. Errors in the inputs are reported as
``error: <file>: <reason>`` with exit status 2.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from jwst_mbkg_plus.batch import cli as batch_cli

__all__ = ["handle_args", "main", "run_demo"]

#: Exit status of a command stopped by an unusable input or output.
EXIT_INPUT_ERROR = 2

log = logging.getLogger(__name__)


def _say(message):
    print(message, flush=True)  # noqa: T201 - a command's progress report


def _slit_residuals(background_2d, truth):
    """Median relative error of the subtracted background per slit, in percent."""
    rows = {}
    for bkg in background_2d.slits:
        slit = bkg
        true_rate = truth.cutout(slit.name, "background", slit) / truth.cutout(
            slit.name, "factor", slit
        )
        good = np.isfinite(true_rate) & (true_rate > 0) & np.isfinite(bkg.data)
        good &= (bkg.dq & 1) == 0
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
    """One line from the plus step's QA record: pull spread, outliers, flagged pixels."""
    from jwst_mbkg_plus.qa_plots import read_qa

    path = next(Path(folder).glob("*_mbkgqa.asdf"), None)
    if path is None:
        return ""
    qa = read_qa(path)
    summary = dict(qa.get("pull_summary") or {})
    if not summary.get("n_pixels"):
        return ""
    flagged = dict(qa.get("flagged_pixels") or {})
    return (f"background slitlets' residual / error spread {summary['pull_spread']:.3f} "
            f"(1.4826 MAD, pixels not rejected; 1 +/- 0.05 is right), "
            f"{100 * summary['pull_outlier_fraction']:.3f}% beyond 5; "
            f"{flagged.get('total', 0)} rejected pixels flagged OUTLIER + DO_NOT_USE")


def _demo_sky(grating, sky):
    """The demo's injected background: a built-in name or a checked CSV path."""
    from jwst_mbkg_plus.synthetic.scene import read_spectrum_csv
    from jwst_mbkg_plus.synthetic.sky import BUILTIN_SKIES

    if sky is None:
        return "prism_sky" if grating == "PRISM" else "default"
    if sky in ("default", *BUILTIN_SKIES):
        return sky
    path = Path(sky).expanduser().resolve()
    if not path.is_file():
        raise _UsageError(sky, "no such sky file; give a CSV with columns wave [micron] and "
                          "flux [MJy/sr], 'prism_sky' or 'default'")
    try:
        wave, _ = read_spectrum_csv(path)
    except ValueError as err:
        raise _UsageError(sky, str(err).removeprefix(f"{path}: ")) from None
    if wave.size < 2:
        raise _UsageError(sky, "fewer than two finite (wave, flux) rows")
    return str(path)


def run_demo(workdir, *, grating="PRISM", sky=None, n_background=6, noise=0.2,
             n_contaminated=1, stock=True, seed=1):
    """
    Run the demo: synthetic exposure, calwebb_spec2 stock and plus, residuals.

    Parameters
    ----------
    workdir : str or pathlib.Path
        Folder for the exposure and all products (created).
    grating : str, optional
        Disperser of the synthetic exposure: "PRISM" (CLEAR, the STScI
        notebook's mode), "G235M" (F170LP) or "G395M" (F290LP).
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

    Returns
    -------
    dict
        Per pipeline: run time in seconds and per-slit residuals in percent.
    """
    from jwst_mbkg_plus.offline import configure_offline_crds
    from jwst_mbkg_plus.synthetic.instrument import GRATINGS

    if grating not in GRATINGS:
        raise _UsageError(grating, f"unknown grating; choose from {', '.join(GRATINGS)}")
    sky = _demo_sky(grating, sky)
    workdir = Path(workdir).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    configure_offline_crds(workdir / "crds_base")

    from stdatamodels.jwst import datamodels

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
        seed=seed,
    )
    exposure = make_exposure(scene, workdir / "exposure", instrument=instrument)
    truth = load_truth(exposure.truth_path)
    _say(f"      {exposure.rate_path.name}: {n_background} background slitlets "
         f"({n_contaminated} with an undeclared source), 3 source slitlets, "
         f"{100 * noise:.0f}% noise per pixel")

    from jwst.pipeline import Spec2Pipeline

    from jwst_mbkg_plus import Spec2PipelinePlus

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
                configure_log=False,
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
    times = ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in results.items())
    _say(f"      calwebb_spec2 run times: {times}")
    _say(f"      products: {workdir}")
    return results


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="jwst-mbkg-plus", description="jwst_mbkg_plus command-line tools."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="run calwebb_spec2, stock and plus, on a synthetic NIRSpec MOS exposure",
        description=run_demo.__doc__.splitlines()[1].strip(),
    )
    demo.add_argument("--workdir", default="mbkg_plus_demo", help="output folder")
    from jwst_mbkg_plus.synthetic.instrument import GRATINGS

    demo.add_argument("--grating", default="PRISM", choices=tuple(GRATINGS),
                      help="disperser (default PRISM/CLEAR, the notebook's mode)")
    demo.add_argument("--sky", default=None, metavar="FILE",
                      help="CSV (wave [micron], flux [MJy/sr]) injected as the background; "
                      "default: the built-in real PRISM sky for PRISM, an analytic sky else")
    demo.add_argument("--background-slitlets", type=int, default=6)
    demo.add_argument("--noise", type=float, default=0.2, help="per-pixel noise / background")
    demo.add_argument("--contaminated", type=int, default=1)
    demo.add_argument("--no-stock", action="store_true", help="skip jwst's stock pipeline")
    demo.add_argument("--seed", type=int, default=1)
    _add_master_parser(sub)
    _add_flag_pixels_parser(sub)
    _add_msa_select_parser(sub)
    _add_plot_parser(sub)
    batch_cli.add_parsers(sub)
    return parser


def _add_master_parser(sub):
    from jwst_mbkg_plus.algorithms.combine import METHODS

    cmd = sub.add_parser(
        "master",
        help="vet and combine background spectra into a user_background file",
        description="Read every background spectrum of the inputs (x1d/c1d: all spectra; "
        "cal/s2d: the background slits, binned in wavelength), resample them onto a common "
        "grid, reject deviating spectra (printed with the reason), combine the rest per "
        "wavelength and write a masterbg1d-format file for the user_background parameter "
        "of the plus steps or of jwst. The notebook's vetting step.",
    )
    cmd.add_argument("inputs", nargs="+", metavar="X1D_OR_CAL_FILE", help="input products")
    cmd.add_argument("-o", "--output", required=True, help="output FITS file (new)")
    cmd.add_argument("--column", choices=("surf_bright", "background"), default="surf_bright",
                     help="x1d column: SURF_BRIGHT of background slitlets (default) or the "
                     "BACKGROUND measured beside sources")
    cmd.add_argument("--slits", nargs="+", metavar="ID", default=None,
                     help="cal inputs: background slits to use (default: MSA designation)")
    cmd.add_argument("--method", choices=METHODS, default="clipped_mean",
                     help="per-wavelength combination (default clipped_mean)")
    cmd.add_argument("--sigma", type=float, default=3.0,
                     help="per-wavelength clip threshold (default 3)")
    cmd.add_argument("--vet-threshold", type=float, default=5.0,
                     help="reject spectra deviating by more than this many sigma (default 5)")
    cmd.add_argument("--min-deviation", type=float, default=0.05,
                     help="... and by more than this fraction (default 0.05, the notebook's 5%%)")
    cmd.add_argument("--no-vet", action="store_true", help="keep every spectrum")
    cmd.add_argument("--median-kernel", type=int, default=1,
                     help="NaN-aware running median width for the master (default 1: none)")
    cmd.add_argument("--plot", default=None, metavar="QA.png", help="also write a QA plot")
    cmd.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def _add_flag_pixels_parser(sub):
    cmd = sub.add_parser(
        "flag-pixels",
        help="flag hot pixels in the DQ array of a copy of a rate file",
        description="Write a copy of a rate (or rateints) file with DQ flags set at given "
        "0-based detector pixels and/or at hot pixels found automatically (far above a "
        "running median along the dispersion direction). The input is never modified.",
    )
    cmd.add_argument("rate", metavar="RATE.fits", help="input rate file")
    cmd.add_argument("-o", "--output", required=True, help="output rate file (new)")
    cmd.add_argument("--pixel", action="append", default=[], metavar="X,Y",
                     help="0-based detector pixel to flag (repeatable)")
    cmd.add_argument("--auto", action="store_true", help="also flag detected hot pixels")
    cmd.add_argument("--sigma", type=float, default=8.0,
                     help="--auto threshold in units of the local noise (default 8)")
    cmd.add_argument("--window", type=int, default=7,
                     help="--auto running median length along x, odd (default 7)")
    cmd.add_argument("--min-contrast", type=float, default=1.0,
                     help="--auto: excess over the running median at least this multiple of "
                     "it (default 1: twice the neighbours)")
    cmd.add_argument("--flags", default="DO_NOT_USE,HOT",
                     help="comma-separated jwst DQ flag names to set (default DO_NOT_USE,HOT)")
    cmd.add_argument("--list", action="store_true", help="print every flagged position")
    cmd.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _add_msa_select_parser(sub):
    cmd = sub.add_parser(
        "msa-select",
        help="make slitlets background or source in a copy of an MSA metadata file",
        description="Write a copy of an MSA metadata (_msa.fits) file in which the given "
        "slitlets are background (no primary shutter: jwst names them <program>_BKG<id>, "
        "which master_background_mos uses) or source. Not needed with the plus step, whose "
        "bkg_slits and exclude_slits parameters choose the background slitlets directly.",
    )
    cmd.add_argument("msa", metavar="MSA.fits", help="input MSA metadata file")
    cmd.add_argument("-o", "--output", required=True, help="output MSA file (new)")
    cmd.add_argument("--background", nargs="+", default=[], metavar="ID",
                     help="slitlet ids to make background")
    cmd.add_argument("--source", nargs="+", default=[], metavar="ID",
                     help="slitlet ids to make source")
    cmd.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _add_plot_parser(sub):
    cmd = sub.add_parser(
        "plot",
        help="PNG plots of cal/s2d slits, x1d spectra, masterbg1d and *_mbkgqa.asdf",
        description="Write PNG plots: one image per slit of cal/s2d products (and residual "
        "histograms of the background slits of products after master background "
        "subtraction), the spectra of x1d/c1d/masterbg1d products, and the MOS step's "
        "QA record (*_mbkgqa.asdf). Needs matplotlib.",
    )
    cmd.add_argument("inputs", nargs="+", metavar="FILE", help="input products")
    cmd.add_argument("-o", "--outdir", required=True, help="folder for the PNG files")
    cmd.add_argument("--slits", nargs="+", metavar="ID", default=None,
                     help="only these slits or spectra (slitlet id, name or source)")


def _run_master(args):
    from jwst_mbkg_plus.tools.master import make_master_background

    result = make_master_background(
        args.inputs, args.output, column=args.column, slits=args.slits, method=args.method,
        sigma=args.sigma, vet=not args.no_vet, vet_threshold=args.vet_threshold,
        min_deviation=args.min_deviation, median_kernel=args.median_kernel, plot=args.plot,
        overwrite=args.overwrite, progress=_say,
    )
    _say(f"{len(result.labels)} spectra, {int(result.accepted.sum())} accepted:")
    for label, reason, score in zip(result.labels, result.reasons, result.scores, strict=True):
        mark = "  " if reason.startswith("accepted") else "REJECTED "
        score_text = f"score {score:+7.1f}" if np.isfinite(score) else "score     n/a"
        _say(f"  {mark}{label}: {score_text}  {reason}")
    finite_cv = result.cv[np.isfinite(result.cv)]
    cv_text = f"{100 * np.median(finite_cv):.2f}%" if finite_cv.size else "n/a"
    defined = np.isfinite(result.master)
    _say(f"master: {int(defined.sum())} wavelengths "
         f"{result.wavelength[defined][0]:.4f}-{result.wavelength[defined][-1]:.4f} um, "
         f"{100 * result.clipped_fraction:.2f}% of points clipped, median coefficient of "
         f"variation {cv_text}")
    _say(f"wrote {result.output}")
    if result.plot is not None:
        _say(f"wrote {result.plot}")
    return 0


def _run_flag_pixels(args):
    from jwst_mbkg_plus.tools.hot_pixels import flag_pixels

    if args.auto:
        _say(f"searching {args.rate} for hot pixels ...")
    result = flag_pixels(
        args.rate, args.output, pixels=args.pixel, auto=args.auto, sigma=args.sigma,
        window=args.window, min_contrast=args.min_contrast,
        flags=[f for f in args.flags.split(",") if f.strip()], overwrite=args.overwrite,
    )
    _say(f"flagged {len(result.positions)} pixels ({result.n_given} given, {result.n_found} "
         f"found, {result.n_new} newly flagged) with DQ value {result.flag_value}")
    if args.list:
        for x, y in result.positions:
            _say(f"  {x},{y}")
    _say(f"wrote {result.output}")
    return 0


def _run_msa_select(args):
    from jwst_mbkg_plus.tools.msa_select import select_msa_slitlets

    if not args.background and not args.source:
        raise _UsageError(args.msa, "nothing to change: give --background ID ... and/or "
                          "--source ID ...")
    result = select_msa_slitlets(args.msa, args.output, background=args.background,
                                 source=args.source, overwrite=args.overwrite)
    for sid in result.changed:
        _say(f"slitlet {sid}: {result.before[sid]} -> {result.after[sid]}")
    for sid in result.unchanged:
        _say(f"slitlet {sid}: already {result.after[sid]}")
    n_bkg = sum(v == "background" for v in result.after.values())
    _say(f"{n_bkg} of {len(result.after)} slitlets are background in {result.output}")
    _say("point the rate file's MSAMETFL keyword at this file, or give it the original "
         "name in another folder")
    return 0


def _run_plot(args):
    from jwst_mbkg_plus.qa_plots import plot_files

    written = plot_files(args.inputs, args.outdir, slits=args.slits, progress=_say)
    _say(f"wrote {len(written)} PNG files to {args.outdir}")
    return 0


class _UsageError(ValueError):
    def __init__(self, path, reason):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def _error(path, reason):
    print(f"error: {path}: {reason}", file=sys.stderr, flush=True)  # noqa: T201
    return EXIT_INPUT_ERROR


def _demo_folder_problem(workdir):
    """Why the demo cannot write in ``workdir`` (created if missing), or ''."""
    from jwst_mbkg_plus.safe_io import OutputFolderError, check_output_folder

    folder = Path(workdir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return "exists and is not a folder; give --workdir a folder name"
    except OSError as err:
        return (f"cannot be created ({err.strerror}); give --workdir a folder you can "
                "write to")
    try:
        check_output_folder(folder, "--workdir")
    except OutputFolderError as err:
        return str(err)
    return ""


def handle_args(argv):
    """
    Run the command for a list of arguments.

    Parameters
    ----------
    argv : list of str
        Arguments, without the program name.

    Returns
    -------
    int
        Exit status.
    """
    args = _build_parser().parse_args(argv)
    if args.command == "demo":
        problem = _demo_folder_problem(args.workdir)
        if problem:
            return _error(args.workdir, problem)
        try:
            run_demo(
                args.workdir,
                grating=args.grating,
                sky=args.sky,
                n_background=args.background_slitlets,
                noise=args.noise,
                n_contaminated=args.contaminated,
                stock=not args.no_stock,
                seed=args.seed,
            )
        except _UsageError as err:
            return _error(err.path, err.reason)
        return 0
    from jwst_mbkg_plus.tools import ToolInputError
    from jwst_mbkg_plus.user_background import UserBackgroundError

    runners = {
        "master": _run_master,
        "flag-pixels": _run_flag_pixels,
        "msa-select": _run_msa_select,
        "plot": _run_plot,
        **batch_cli.RUNNERS,
    }
    try:
        return runners[args.command](args)
    except (ToolInputError, _UsageError) as err:
        return _error(err.path, err.reason)
    except UserBackgroundError as err:
        return _error(getattr(args, "output", "output"), str(err))
    except ImportError as err:
        return _error(args.command, str(err))
    except (OSError, ValueError) as err:
        path = getattr(err, "filename", None) or args.command
        return _error(path, str(err))


def main():
    """Entry point of the ``jwst-mbkg-plus`` console script."""
    sys.exit(handle_args(sys.argv[1:]))
