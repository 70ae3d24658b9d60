"""What the validation scripts share: start-up, arguments, painted scenes and results files.

The scripts in ``validation/`` run the plus steps (and jwst's) on synthetic scenes
with no network. They import this module as ``_common`` (a script's own folder is
first on ``sys.path`` when it runs as ``python validation/<script>.py``):

* :func:`offline_instrument`: offline CRDS, then the synthetic NIRSpec instrument;
* :func:`quiet_loggers` and :func:`offline_quiet`: the stack's log lines out of the way;
* :func:`assignment_validation_off`: no schema validation on every array assignment
  (speed only: the figures do not depend on it);
* :func:`painted_slits`: a scene painted, its truth and its extracted slits, inside
  the synthetic instrument's CRDS context;
* :func:`script_parser` and :func:`parse_seeds`: the usual arguments;
* :func:`write_json`, :func:`merge_json` and :func:`done_keys`: results files that
  keep the entries of earlier runs, rewritten after each entry so that an
  interrupted run can be resumed (``--resume``).
"""

import argparse
import contextlib
import json
import logging
import os
from pathlib import Path

#: The loggers of the stack that a validation run quiets.
STACK_LOGGERS = ("stpipe", "jwst", "jwst_mbkg_plus")

_UNSET = object()


def quiet_loggers(level=logging.WARNING, names=STACK_LOGGERS):
    """
    Raise the level of the stack's loggers.

    Parameters
    ----------
    level : int, optional
        The loggers' new level.
    names : sequence of str, optional
        The loggers.
    """
    for name in names:
        logging.getLogger(name).setLevel(level)


def offline_instrument(crds_path=None):
    """
    Configure offline CRDS and build (or load from the cache) the synthetic instrument.

    Parameters
    ----------
    crds_path : str or pathlib.Path, optional
        The CRDS cache folder (`jwst_mbkg_plus.offline.configure_offline_crds`'s
        default if not given).

    Returns
    -------
    `~jwst_mbkg_plus.synthetic.Instrument`
        The synthetic NIRSpec instrument.
    """
    from jwst_mbkg_plus.offline import configure_offline_crds
    from jwst_mbkg_plus.synthetic import build_instrument, default_instrument_path

    configure_offline_crds(crds_path)
    return build_instrument(default_instrument_path())


def offline_quiet(*, validate_on_assignment=True):
    """
    Configure offline CRDS and disable every log record up to WARNING.

    Parameters
    ----------
    validate_on_assignment : bool, optional
        If False, also turn off schema validation on array assignment for the rest
        of the process (``VALIDATE_ON_ASSIGNMENT=false``; speed only).
    """
    from jwst_mbkg_plus.offline import configure_offline_crds

    configure_offline_crds()
    logging.disable(logging.WARNING)
    if not validate_on_assignment:
        os.environ["VALIDATE_ON_ASSIGNMENT"] = "false"


@contextlib.contextmanager
def assignment_validation_off():
    """
    Turn off schema validation on array assignment for a block (speed only).

    The variable ``VALIDATE_ON_ASSIGNMENT`` is restored (or removed) afterwards.
    """
    before = os.environ.get("VALIDATE_ON_ASSIGNMENT")
    os.environ["VALIDATE_ON_ASSIGNMENT"] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("VALIDATE_ON_ASSIGNMENT", None)
        else:
            os.environ["VALIDATE_ON_ASSIGNMENT"] = before


@contextlib.contextmanager
def painted_slits(scene, folder, instrument):
    """
    Paint a scene and extract its slits, inside the synthetic CRDS context.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.Scene`
        The scene (one detector).
    folder : str or pathlib.Path
        Where the exposure is written.
    instrument : `~jwst_mbkg_plus.synthetic.Instrument`
        The synthetic instrument (:func:`offline_instrument`).

    Yields
    ------
    slits : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The extracted slits; steps run in the block find the synthetic
        instrument's reference files.
    truth : `~jwst_mbkg_plus.synthetic.truth.Truth`
        The exposure's truth.
    """
    from jwst_mbkg_plus.synthetic import (
        extract_slits,
        load_truth,
        local_crds_context,
        make_exposure,
    )

    exposure = make_exposure(scene, folder, instrument=instrument)
    truth = load_truth(exposure.truth_path)
    with local_crds_context(instrument):
        yield extract_slits(exposure.rate_path), truth


def parse_seeds(text):
    """
    Seeds from a comma-separated list, whose items may be inclusive ranges.

    Parameters
    ----------
    text : str
        E.g. ``"1,2,3"``, ``"500-699"`` or ``"1-3,7"``.

    Returns
    -------
    list of int
        The seeds, in the order given.
    """
    seeds = []
    for item in text.split(","):
        lo, sep, hi = item.strip().partition("-")
        seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    return seeds


def script_parser(doc, *, seeds=_UNSET, work=_UNSET, out=_UNSET, resume=False):
    """
    An argument parser described by a script's first docstring line, with common arguments.

    Each of ``--seeds``, ``--work`` and ``--out`` is added only if its default is
    given (``None`` is a default); ``--resume`` only if ``resume`` is True.

    Parameters
    ----------
    doc : str
        The script's docstring.
    seeds : str, optional
        Default of ``--seeds`` (comma-separated seeds, :func:`parse_seeds`).
    work : str, optional
        Default of ``--work``, the folder of the painted exposures.
    out : str or None, optional
        Default of ``--out``, the JSON results file.
    resume : bool, optional
        Add ``--resume``: skip the entries already in ``--out``.

    Returns
    -------
    argparse.ArgumentParser
        The parser; the script adds its own arguments.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if seeds is not _UNSET:
        parser.add_argument("--seeds", default=seeds,
                            help="comma-separated seeds (a-b: every seed from a to b)")
    if work is not _UNSET:
        parser.add_argument("--work", default=work, help="folder of the painted exposures")
    if out is not _UNSET:
        parser.add_argument("--out", default=out, help="JSON results file")
    if resume:
        parser.add_argument("--resume", action="store_true", help="skip entries already in --out")
    return parser


def read_json(path):
    """
    The content of a JSON results file, or an empty dict if there is none.

    Parameters
    ----------
    path : str or pathlib.Path
        The results file (it may not exist).

    Returns
    -------
    dict
        Its content.
    """
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json(path, data, *, newline=True, **dumps_options):
    """
    Write a results file atomically (an interrupted write leaves the old file).

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    data : dict
        Its content, written with ``indent=1``.
    newline : bool, optional
        End the file with a newline.
    **dumps_options
        More options of `json.dumps` (``sort_keys``, ``default``).

    Returns
    -------
    pathlib.Path
        The file.
    """
    from jwst_mbkg_plus.safe_io import atomic_write_text

    text = json.dumps(data, indent=1, **dumps_options) + ("\n" if newline else "")
    return atomic_write_text(path, text)


def merge_json(path, entries, *, newline=False):
    """
    Add entries to a results file, keeping the others (those of earlier runs).

    The file is read again before each merge, so that runs writing other keys of
    the same file do not lose each other's entries.

    Parameters
    ----------
    path : str or pathlib.Path
        The file (created if missing).
    entries : dict
        Key -> entry; an entry of the same key is replaced.
    newline : bool, optional
        End the file with a newline.

    Returns
    -------
    dict
        The file's new content.
    """
    merged = read_json(path)
    merged.update(entries)
    write_json(path, merged, newline=newline)
    return merged


def done_keys(path, resume):
    """
    The keys already in a results file, if the run resumes.

    Parameters
    ----------
    path : str or pathlib.Path
        The results file.
    resume : bool
        Whether the run skips entries already there (``--resume``).

    Returns
    -------
    set of str
        The keys (empty if not resuming or no file).
    """
    return set(read_json(path)) if resume else set()
