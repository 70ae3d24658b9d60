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
    (:func:`jwst_mbkg_plus.tools.plot.plot_files`).

No command modifies its input files. Errors in the inputs are reported as
``error: <file>: <reason>`` with exit status 2.
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from jwst_mbkg_plus.batch import cli as batch_cli

__all__ = ["handle_args", "main"]

# Each sub-command imports its module when it runs, not here: `jwst-mbkg-plus
# --help` and the tools that need no pipeline then load no jwst code.

#: Exit status of a command stopped by an unusable input or output.
EXIT_INPUT_ERROR = 2

log = logging.getLogger(__name__)


def _say(message):
    print(message, flush=True)  # noqa: T201 - a command's progress report


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="jwst-mbkg-plus", description="jwst_mbkg_plus command-line tools."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="run calwebb_spec2, stock and plus, on a synthetic NIRSpec MOS exposure",
        description="Run the demo: synthetic exposure, calwebb_spec2 stock and plus, residuals.",
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
    demo.add_argument("--calibration-error", default="0.03,0.02", metavar="LEVEL,TILT",
                      help="per-slitlet calibration error painted: rms of the level and of the "
                           "tilt across the band (default 0.03,0.02, as real apertures; 0: none)")
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
    from jwst_mbkg_plus.tools.plot import plot_files

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


def _calibration_error(text):
    """``--calibration-error``: 'LEVEL,TILT[,CURVATURE]' or '0' -> a Scene.calibration_error."""
    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(f"give LEVEL,TILT (e.g. 0.03,0.02) or 0, not {text!r}") from None
    if not any(values):
        return ()
    return (values + (0.0, 0.0))[: max(3, len(values))]


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
        from jwst_mbkg_plus.synthetic.calib_error import check_calibration_error
        from jwst_mbkg_plus.synthetic.demo import DemoInputError, run_demo

        try:
            calibration = check_calibration_error(_calibration_error(args.calibration_error))
        except ValueError as err:
            return _error("--calibration-error", str(err))
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
                calibration_error=calibration,
            )
        except DemoInputError as err:
            return _error(err.path, err.reason)
        return 0
    from jwst_mbkg_plus.io.user_background import UserBackgroundError
    from jwst_mbkg_plus.tools import ToolInputError

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
