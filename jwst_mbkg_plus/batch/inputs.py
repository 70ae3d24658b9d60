"""The inputs of a batch: rate files, folders and associations, grouped by visit."""

import dataclasses
import json
import logging
import os
from pathlib import Path

__all__ = [
    "Exposure",
    "association_members",
    "collect_exposures",
    "group_exposures",
    "header_key",
    "key_from_header",
    "model_key",
    "visit_id",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Exposure:
    """
    One input exposure of a batch.

    Attributes
    ----------
    path : pathlib.Path
        The rate file.
    visit : str
        Visit id (``jw<program><observation><visit>``), or ``"unknown"`` when the
        header cannot be read (the task then records why).
    detector : str
        Detector name, or ``"unknown"``.
    problem : str
        Why the entry cannot be run (an unreadable file or association, a
        folder named like a rate file); its task records it as failed at once.
    """

    path: Path
    visit: str
    detector: str
    problem: str = ""

    @property
    def stem(self):
        """str: the file name without ``_rate.fits`` (the products' base name)."""
        name = self.path.name
        for suffix in ("_rate.fits", "_rateints.fits", ".fits"):
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return self.path.stem

    @property
    def group(self):
        """tuple of str: (visit, detector)."""
        return (self.visit, self.detector)


def visit_id(program, observation, visit):
    """
    Return a visit id, ``jw<program:05><observation:03><visit:03>``.

    Parameters
    ----------
    program, observation, visit : str or int
        The header's PROGRAM, OBSERVTN and VISIT.

    Returns
    -------
    str
        E.g. ``jw02736007001``.
    """
    return (f"jw{str(program).strip():>05s}{str(observation).strip():>03s}"
            f"{str(visit).strip():>03s}")


def model_key(model):
    """
    Return the visit and detector of an open datamodel, as :func:`header_key` does.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        E.g. an exposure's extracted slits.

    Returns
    -------
    tuple of str
        ``(visit, detector)``; ``"unknown"`` for what the model does not record.
    """
    obs = model.meta.observation
    parts = (obs.program_number, obs.observation_number, obs.visit_number)
    visit = "unknown" if any(v is None for v in parts) else visit_id(*parts)
    detector = model.meta.instrument.detector
    return visit, str(detector).strip() if detector else "unknown"


def header_key(path):
    """
    Return the visit and detector of a rate file, from its primary header.

    Parameters
    ----------
    path : str or pathlib.Path
        The rate file.

    Returns
    -------
    tuple of str
        ``(visit, detector)``; ``("unknown", "unknown")`` if the header cannot
        be read (the task that runs it then records why).
    """
    from astropy.io import fits

    try:
        return key_from_header(fits.getheader(path))
    except Exception:  # noqa: BLE001 - any unreadable header: the task reports it
        return "unknown", "unknown"


def key_from_header(header):
    """
    Return the visit and detector a primary header gives (:func:`header_key`'s).

    Parameters
    ----------
    header : `~astropy.io.fits.Header`
        A rate file's primary header.

    Returns
    -------
    tuple of str
        ``(visit, detector)``.

    Raises
    ------
    KeyError
        If PROGRAM, OBSERVTN or VISIT is missing.
    """
    visit = visit_id(header["PROGRAM"], header["OBSERVTN"], header["VISIT"])
    return visit, str(header.get("DETECTOR", "unknown")).strip()


def association_members(path):
    """
    Return the science members of a spec2 association file.

    Parameters
    ----------
    path : str or pathlib.Path
        The association (JSON).

    Returns
    -------
    list of pathlib.Path
        Every member of exposure type science, over all products, resolved
        beside the association file, in the file's order.

    Raises
    ------
    ValueError
        If the association has no science member.
    """
    data = json.loads(Path(path).read_text())
    members = []
    for product in data.get("products", []):
        for member in product.get("members", []):
            if str(member.get("exptype", "science")).lower() == "science":
                members.append((Path(path).parent / member["expname"]).resolve())
    if not members:
        raise ValueError(f"{path}: an association with no science member")
    return members


def collect_exposures(inputs):
    """
    Expand the inputs of a batch into exposures.

    Parameters
    ----------
    inputs : str or pathlib.Path or sequence of them
        Rate files, folders (every ``*_rate.fits`` in them, not recursive) and
        association files (``*.json``: their science members).

    Returns
    -------
    list of Exposure
        Unique exposures, sorted by visit, detector and name.

    Raises
    ------
    ValueError
        If an input does not exist, a folder holds no rate file, or nothing is left.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths = []
    problems = {}
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(p.glob("*_rate.fits"))
            if not found:
                raise ValueError(f"{p}: folder holds no *_rate.fits file")
            paths.extend(found)
        elif p.suffix == ".json":
            if not p.is_file():
                raise ValueError(f"{p}: no such association file")
            try:
                paths.extend(association_members(p))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
                # Unreadable or malformed: a failed row; the other inputs run.
                paths.append(p)
                problems[p.resolve()] = (f"{p.name}: association cannot be read "
                                         f"({type(err).__name__}: {err}); fix or remove it")
        elif p.exists():
            paths.append(p)
        else:
            raise ValueError(f"{p}: no such file or folder")
    resolved = [q.resolve() for q in paths]
    unique = list(dict.fromkeys(resolved))
    if len(unique) < len(resolved):
        log.warning("%d exposures given more than once: each runs once",
                    len(resolved) - len(unique))
    if not unique:
        raise ValueError("no input exposure")
    exposures = []
    for q in unique:
        problem = problems.get(q) or _entry_problem(q)
        key = ("unknown", "unknown") if problem else header_key(q)
        exposures.append(Exposure(q, *key, problem=problem))
    return sorted(exposures, key=lambda e: (e.visit, e.detector, e.path.name))


def _entry_problem(path):
    """Why an input entry cannot be read as a rate file, or ''."""
    from jwst_mbkg_plus.safe_io import InputFileError, check_input_file, describe_file

    try:
        check_input_file(path, "rate file")
    except InputFileError as err:
        return str(err)
    kind = describe_file(path)
    if kind and not kind.startswith(("a FITS", "an ASDF")):
        return f"rate file {path}: is {kind}, not a FITS rate file; remove it from the inputs"
    return ""


def group_exposures(exposures):
    """
    Group exposures by visit and detector.

    Parameters
    ----------
    exposures : list of Exposure
        The exposures.

    Returns
    -------
    dict
        ``{(visit, detector): [Exposure, ...]}``, in input order.
    """
    groups = {}
    for e in exposures:
        groups.setdefault(e.group, []).append(e)
    return groups
