"""The ``batch`` and ``synthetic-visit`` sub-commands of ``jwst-mbkg-plus``.

:func:`add_parsers` adds both to the main command's sub-parsers;
:data:`RUNNERS` maps each command name to its handler for
:func:`jwst_mbkg_plus.cli.handle_args`.
"""

import logging
import shlex
import sys
from pathlib import Path

__all__ = ["RUNNERS", "add_parsers", "run_batch_command", "run_synthetic_visit_command"]

log = logging.getLogger(__name__)

#: Exit status when some exposures failed (the others were processed).
EXIT_SOME_FAILED = 1


def _say(message):
    print(message, flush=True)  # noqa: T201 - a command's progress report


def add_parsers(sub):
    """
    Add the ``batch`` and ``synthetic-visit`` sub-commands.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The main parser's sub-parsers.
    """
    cmd = sub.add_parser(
        "batch",
        help="run calwebb_spec2_plus on many exposures with Dask, with a summary",
        description="Run calwebb_spec2_plus (master background on, its QA record saved) on "
        "every exposure of the inputs as tasks of a Dask cluster: a LocalCluster (one "
        "process per core, one thread each) or an existing cluster (--scheduler). "
        "Exposures are grouped by visit and detector; a failed exposure is recorded with "
        "its error and the others go on; exposures already processed into the output "
        "folder are skipped unless --force. Writes summary.ecsv and summary.png in the "
        "output folder. Exit status 1 if any exposure failed.",
    )
    cmd.add_argument("inputs", nargs="+", metavar="RATE_OR_FOLDER_OR_ASN",
                     help="rate files, folders of *_rate.fits, or spec2 association files")
    cmd.add_argument("-o", "--output-dir", default="mbkg_plus_batch",
                     help="folder of products and summary (default mbkg_plus_batch)")
    cmd.add_argument("--workers", type=int, default=None,
                     help="LocalCluster worker processes (default: one per core)")
    cmd.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="use an existing Dask scheduler, e.g. tcp://127.0.0.1:8786")
    cmd.add_argument("--memory-limit", default="auto",
                     help="memory limit per LocalCluster worker (default auto: RAM / workers)")
    cmd.add_argument("--force", action="store_true",
                     help="reprocess exposures whose products exist")
    cmd.add_argument("--crds", default=None, metavar="CRDS_PATH",
                     help="CRDS cache folder with a local context that every task selects "
                     "offline (e.g. the synthetic instrument's); default: the CRDS "
                     "environment of this shell")
    cmd.add_argument("--visit-master", action="store_true",
                     help="one master per exposure from the background slitlets of every "
                     "exposure of its visit and detector (each calibrated as extended once, "
                     "a sky level fitted per exposure); default: a master per exposure")
    cmd.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                     help="if another batch is running on the output folder, wait up to "
                     "this long for it to finish (default 0: refuse at once)")
    cmd.add_argument("--no-plot", action="store_true", help="do not write summary.png")
    cmd.add_argument("--verbose", action="store_true",
                     help="show the pipeline's INFO log of every exposure (default: warnings)")

    vis = sub.add_parser(
        "synthetic-visit",
        help="write a synthetic NIRSpec MOS visit (nods x NRS1/NRS2) to try the batch on",
        description="Write a synthetic visit into a folder: N nods of one MSA configuration "
        "on NRS1 and NRS2, sources moved by one shutter per nod, background slitlets "
        "fixed, the sky level drifting between nods, and the truth (visit_truth.json and "
        "one *_truth.asdf per exposure). With --msa the layout is that of a real MSA "
        "metadata file; real slitlets that cannot be placed are listed with the reason. "
        "The last line printed is the batch command that processes the folder.",
    )
    vis.add_argument("folder", metavar="DIR", help="output folder (created)")
    vis.add_argument("--nods", type=int, default=3, help="nods (default 3; --msa: the file's)")
    vis.add_argument("--msa", default=None, metavar="FILE",
                     help="real MSA metadata file whose layout is painted")
    from jwst_mbkg_plus.synthetic.instrument import GRATINGS

    vis.add_argument("--grating", default=None, choices=tuple(GRATINGS),
                     help="disperser (default G235M; G395M with --msa)")
    vis.add_argument("--background-slitlets", type=int, default=6,
                     help="background slitlets, dealt to NRS1 and NRS2 (default 6)")
    vis.add_argument("--sources", type=int, default=4,
                     help="source slitlets, half point, half extended (default 4)")
    vis.add_argument("--noise", type=float, default=0.2, help="per-pixel noise / signal")
    vis.add_argument("--drift", type=float, default=0.01,
                     help="sky level drift: nods from 1-drift to 1+drift (default 0.01)")
    vis.add_argument("--seed", type=int, default=1)


def run_batch_command(args):
    """
    Run ``jwst-mbkg-plus batch``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0 if no exposure failed, :data:`EXIT_SOME_FAILED` otherwise.
    """
    from jwst_mbkg_plus.batch.runner import run_batch

    if args.workers is not None and args.workers < 1:
        raise ValueError("--workers must be >= 1")
    result = run_batch(args.inputs, args.output_dir, workers=args.workers,
                       scheduler=args.scheduler, force=args.force, crds=args.crds,
                       memory_limit=args.memory_limit, progress=_say, plot=not args.no_plot,
                       visit_master=args.visit_master, wait=args.wait,
                       log_level=None if args.verbose else "WARNING")
    for record in result.records:
        if record["status"] == "failed":
            print(f"failed: {record['error']}", file=sys.stderr, flush=True)  # noqa: T201
    return EXIT_SOME_FAILED if result.count("failed") else 0


def run_synthetic_visit_command(args):
    """
    Run ``jwst-mbkg-plus synthetic-visit``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        0.
    """
    from jwst_mbkg_plus.offline import offline_crds

    if args.nods < 1:
        raise ValueError("--nods must be >= 1")
    with offline_crds():
        return _synthetic_visit(args)


def _synthetic_visit(args):
    from jwst_mbkg_plus.synthetic import Scene, build_instrument, default_instrument_path
    from jwst_mbkg_plus.synthetic.visit import make_visit

    folder = Path(args.folder).expanduser().resolve()
    grating = args.grating or ("G395M" if args.msa else "G235M")
    _say("Building the synthetic NIRSpec instrument (cached after the first run) ...")
    instrument = build_instrument(default_instrument_path())
    n_point = args.sources // 2
    scene = Scene(grating=grating, n_background=args.background_slitlets, n_point=n_point,
                  n_extended=args.sources - n_point, detectors=("NRS1", "NRS2"),
                  noise_fraction=args.noise, seed=args.seed)
    _say(f"Painting a {grating} visit into {folder} ...")
    visit = make_visit(scene, folder, instrument=instrument, n_nods=args.nods,
                       drift=args.drift, msa_file=args.msa)
    levels = ", ".join(f"{v:.4f}" for v in visit.levels)
    _say(f"{len(visit.rate_paths)} rate files ({len(visit.levels)} nods x NRS1/NRS2), sky "
         f"levels per nod {levels}; truth in {visit.truth_json.name}")
    for u in visit.unplaced:
        _say(f"  real slitlet {u['slitlet_id']} (Q{u['quadrant']} row {u['row']} columns "
             f"{u['columns'][0]}-{u['columns'][-1]}) not placed: {u['reason']}")
    if visit.unplaced:
        _say(f"  {len(visit.unplaced)} real slitlets not placed")
    command = ["jwst-mbkg-plus", "batch", str(folder), "--output-dir",
               str(folder / "products"), "--crds", str(instrument.crds_path)]
    _say("Process it with:")
    _say(shlex.join(command))
    return 0


#: Command name -> handler, for the main command's dispatch.
RUNNERS = {"batch": run_batch_command, "synthetic-visit": run_synthetic_visit_command}
