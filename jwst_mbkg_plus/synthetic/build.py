"""Top-level factories: the synthetic instrument (cached) and exposures.

:func:`build_instrument` writes every reference file (the WCS files of
:mod:`~jwst_mbkg_plus.synthetic.instrument` and the calibration files of
:mod:`~jwst_mbkg_plus.synthetic.calibration`) into a CRDS cache folder and the
local CRDS context selecting them. A JSON stamp records the generator version
and parameters; a later call with the same ones reuses the folder.

:func:`make_exposure` writes the MSA metadata file, one ``_rate.fits`` per
detector of the scene and the ground truth.

Examples
--------
>>> from jwst_mbkg_plus.synthetic import Scene, build_instrument, make_exposure
>>> from jwst_mbkg_plus.offline import configure_offline_crds
>>> inst = build_instrument(tmp_path / "crds")  # doctest: +SKIP
>>> configure_offline_crds(inst.crds_path, local_context=True)  # doctest: +SKIP
>>> result = make_exposure(Scene(seed=3), tmp_path / "exp", instrument=inst)  # doctest: +SKIP
>>> result.rate_paths["NRS1"]  # doctest: +SKIP
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import time
from importlib import metadata
from pathlib import Path

import jwst_mbkg_plus.synthetic.calibration as calibration
import jwst_mbkg_plus.synthetic.instrument as _inst
from jwst_mbkg_plus.offline import default_crds_path, offline_crds
from jwst_mbkg_plus.safe_io import atomic_write_text
from jwst_mbkg_plus.synthetic.calibration import build_calibration_refs
from jwst_mbkg_plus.synthetic.calibration_truth import CalibrationTruth
from jwst_mbkg_plus.synthetic.crds_context import (
    CONTEXT_NAME,
    RefRule,
    references_dir,
    write_crds_context,
)
from jwst_mbkg_plus.synthetic.exposure import (
    load_synthetic_wcs,
    make_rate_model,
    paint_detector,
)
from jwst_mbkg_plus.synthetic.instrument_refs import build_instrument_refs
from jwst_mbkg_plus.synthetic.msa_file import PROGRAM, write_msa_file
from jwst_mbkg_plus.synthetic.truth import write_truth

__all__ = [
    "GENERATOR_VERSION",
    "ExposureResult",
    "Instrument",
    "build_instrument",
    "default_instrument_path",
    "local_crds_context",
    "make_exposure",
]

log = logging.getLogger(__name__)

#: Bump when any reference file or the context layout changes.
GENERATOR_VERSION = "s1-1"

_STAMP = "synthetic_instrument.json"

#: Dataset keywords each calibration reftype's files depend on.
_CAL_MATCH = {
    "dflat": ("DETECTOR",),
    "sflat": ("DETECTOR", "FILTER", "GRATING"),
    "fflat": ("FILTER", "GRATING"),
    "photom": ("FILTER", "GRATING"),
    "area": ("FILTER", "GRATING"),
    "apcorr": ("FILTER", "GRATING"),
    "pathloss": (),
    "barshadow": (),
    "wavecorr": (),
    "extract1d": (),
}


@dataclasses.dataclass(frozen=True)
class Instrument:
    """
    A built synthetic instrument.

    Attributes
    ----------
    crds_path : pathlib.Path
        CRDS cache folder holding references and the local context.
    context : str
        Pipeline mapping name.
    modes : tuple of (str, str)
        (filter, grating) pairs built.
    detectors : tuple of str
        Detectors built.
    wcs_refs : dict
        Output of :func:`~jwst_mbkg_plus.synthetic.instrument_refs.build_instrument_refs`.
    cal_refs : dict
        ``{(detector, filter, grating): {reftype: path}}``.
    build_seconds : float
        Time the build took (0 when reused).
    """

    crds_path: Path
    context: str
    modes: tuple
    detectors: tuple
    wcs_refs: dict
    cal_refs: dict
    build_seconds: float

    def wcs_refs_for(self, *, filter, grating):  # noqa: A002
        """
        Return ``{reftype: path}`` of the WCS reference files of one mode.

        Parameters
        ----------
        filter : str
            Filter name.
        grating : str
            Grating name.

        Returns
        -------
        dict
            Reftype -> path.
        """
        refs = {k: v for k, v in self.wcs_refs.items() if not isinstance(v, dict)}
        refs["disperser"] = self.wcs_refs["disperser"][grating]
        refs["fore"] = self.wcs_refs["fore"][filter]
        return refs


@dataclasses.dataclass(frozen=True)
class ExposureResult:
    """
    Files written by :func:`make_exposure`.

    Attributes
    ----------
    folder : pathlib.Path
        Output folder.
    rate_paths : dict of str to pathlib.Path
        Detector -> ``_rate.fits``.
    msa_path : pathlib.Path
        MSA metadata file.
    truth_paths : dict of str to pathlib.Path
        Detector -> truth ASDF file.
    seconds : float
        Time the build took.
    """

    folder: Path
    rate_paths: dict
    msa_path: Path
    truth_paths: dict
    seconds: float

    @property
    def rate_path(self):
        """pathlib.Path: the first detector's rate file."""
        return next(iter(self.rate_paths.values()))

    @property
    def truth_path(self):
        """pathlib.Path: the first detector's truth file."""
        return next(iter(self.truth_paths.values()))


def _modes(gratings):
    return tuple((_inst.GRATINGS[g]["filter"], g) for g in gratings)


#: Every disperser of the synthetic instrument, each with its filter.
ALL_GRATINGS = tuple(_inst.GRATINGS)


def build_instrument(crds_path, *, gratings=ALL_GRATINGS, detectors=("NRS1", "NRS2"), force=False):
    """
    Build (or reuse) the synthetic instrument in a CRDS cache folder.

    Parameters
    ----------
    crds_path : str or pathlib.Path
        CRDS cache folder (``CRDS_PATH``); created.
    gratings : sequence of str, optional
        Dispersers to support (each with its filter); default all of
        `~jwst_mbkg_plus.synthetic.instrument.GRATINGS`.
    detectors : sequence of str, optional
        Detectors to support.
    force : bool, optional
        Rebuild even if the stamp matches.

    Returns
    -------
    Instrument
        Paths of everything written.
    """

    t0 = time.perf_counter()
    crds_path = Path(crds_path).expanduser().resolve()
    gratings = tuple(gratings)
    detectors = tuple(detectors)
    for g in gratings:
        if g not in _inst.GRATINGS:
            raise ValueError(f"unknown grating {g!r}; choose from {sorted(_inst.GRATINGS)}")
    for d in detectors:
        if d not in _inst.DETECTORS:
            raise ValueError(f"unknown detector {d!r}; choose from {_inst.DETECTORS}")
    params = _params(gratings, detectors)
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()
    if not force:
        reused = _reuse(crds_path, digest)
        if reused is not None:
            return reused
    # Several processes may build the same fresh cache at once: one builds, the
    # others wait on the lock and then reuse what it built.
    with _build_lock(crds_path):
        if not force:
            reused = _reuse(crds_path, digest)
            if reused is not None:
                return reused
        return _build_locked(crds_path, params, digest, gratings, detectors, t0)


def _reuse(crds_path, digest):
    """The instrument already built in ``crds_path`` with this digest, or None."""
    stamp_path = crds_path / _STAMP
    if not stamp_path.is_file():
        return None
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("digest") == digest and (crds_path / "mappings/jwst" / CONTEXT_NAME).is_file():
        log.info("Reusing synthetic instrument in %s", crds_path)
        return _instrument_from_stamp(crds_path, stamp, 0.0)
    return None


@contextlib.contextmanager
def _build_lock(crds_path):
    """An exclusive lock on ``crds_path`` (a file beside it), held while building."""
    crds_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = crds_path.parent / f".{crds_path.name}.lock"
    with lock_path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _build_locked(crds_path, params, digest, gratings, detectors, t0):

    stamp_path = crds_path / _STAMP

    # Start clean: stale files of an older generator must not linger in the
    # context. Only ever delete in a folder this function built (it has a stamp).
    old_files = [
        p
        for p in (*references_dir(crds_path).glob("*"), *(crds_path / "mappings/jwst").glob("*"))
        if p.is_file()
    ]
    if old_files and not stamp_path.is_file():
        raise ValueError(
            f"{crds_path} holds CRDS files but no {_STAMP}: not a synthetic instrument folder"
        )
    crds_path.mkdir(parents=True, exist_ok=True)
    stamp_path.write_text(json.dumps({"digest": None, "status": "building"}))
    for old in old_files:
        old.unlink()
    refdir = references_dir(crds_path)
    wcs_refs = build_instrument_refs(refdir, gratings=gratings)
    cal_refs = {}
    for det in detectors:
        for filt, grat in _modes(gratings):
            cal_refs[(det, filt, grat)] = build_calibration_refs(
                refdir, detector=det, filter=filt, grating=grat
            )
    rules = _rules(wcs_refs, cal_refs)
    write_crds_context(crds_path, rules)
    seconds = time.perf_counter() - t0
    stamp = {
        "digest": digest,
        "params": params,
        "wcs_refs": _jsonable(wcs_refs),
        "cal_refs": {"|".join(k): _jsonable(v) for k, v in cal_refs.items()},
        "build_seconds": seconds,
    }
    # Written last and atomically: a reader that sees the stamp sees a complete build.
    atomic_write_text(stamp_path, json.dumps(stamp, indent=1))
    log.info("Built synthetic instrument in %s (%.1f s)", crds_path, seconds)
    return _instrument_from_stamp(crds_path, stamp, seconds)


def _params(gratings, detectors):
    return {
        "version": GENERATOR_VERSION,
        "calibration_version": _calibration_version(),
        "sources": _source_digest(),
        "gratings": list(gratings),
        "detectors": list(detectors),
        # Reference files and WCS are written with the installed datamodels and
        # read back by the installed jwst: each supported version gets its own build.
        "jwst": metadata.version("jwst"),
        "stdatamodels": metadata.version("stdatamodels"),
    }


def default_instrument_path(*, gratings=ALL_GRATINGS, detectors=("NRS1", "NRS2")):
    """
    Return a cache folder dedicated to this generator version and these options.

    The name carries a hash of the generator's source and options, so sessions
    running different versions never rebuild each other's folder.

    Parameters
    ----------
    gratings : sequence of str, optional
        Gratings, as for :func:`build_instrument`.
    detectors : sequence of str, optional
        Detectors, as for :func:`build_instrument`.

    Returns
    -------
    pathlib.Path
        ``<cache>/synthetic_instrument/<hash>`` where ``<cache>`` is the parent of
        :func:`jwst_mbkg_plus.offline.default_crds_path` (``$JWST_MBKG_PLUS_CACHE``).
    """
    params = _params(tuple(gratings), tuple(detectors))
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return default_crds_path().parent / "synthetic_instrument" / digest


def _source_digest():
    """Hash of the generator modules' source, so any change rebuilds the cache."""
    here = Path(__file__).parent
    names = (
        "instrument.py",
        "instrument_refs.py",
        "crds_context.py",
        "calibration.py",
        "calibration_truth.py",
        "_calib_files.py",
        "_calib_flats.py",
        "_calib_functions.py",
    )
    sha = hashlib.sha1()
    for name in names:
        path = here / name
        if path.is_file():
            sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def _calibration_version():

    return str(getattr(calibration, "_GENERATOR_VERSION", "unknown"))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    return str(obj)


def _instrument_from_stamp(crds_path, stamp, seconds):
    def paths(d):
        return {k: paths(v) if isinstance(v, dict) else Path(v) for k, v in d.items()}

    cal = {tuple(k.split("|")): paths(v) for k, v in stamp["cal_refs"].items()}
    return Instrument(
        crds_path=crds_path,
        context=CONTEXT_NAME,
        modes=_modes(stamp["params"]["gratings"]),
        detectors=tuple(stamp["params"]["detectors"]),
        wcs_refs=paths(stamp["wcs_refs"]),
        cal_refs=cal,
        build_seconds=seconds,
    )


def _rules(wcs_refs, cal_refs):
    exp = {"EXP_TYPE": "NRS_MSASPEC"}
    rules = {}
    for reftype, value in wcs_refs.items():
        if reftype == "disperser":
            rules[reftype] = [RefRule(p, GRATING=g, **exp) for g, p in value.items()]
        elif reftype == "fore":
            rules[reftype] = [RefRule(p, FILTER=f, **exp) for f, p in value.items()]
        else:
            rules[reftype] = [RefRule(value, **exp)]
    for (det, filt, grat), refs in cal_refs.items():
        values = {"DETECTOR": det, "FILTER": filt, "GRATING": grat}
        for reftype, path in refs.items():
            keys = _CAL_MATCH.get(reftype, ())
            match = {k: values[k] for k in keys}
            rule = RefRule(path, **match, **exp)
            existing = rules.setdefault(reftype, [])
            if not any(r.match == rule.match for r in existing):
                existing.append(rule)
    return rules


def make_exposure(scene, folder, *, instrument, calibration=True, overwrite=False):
    """
    Write the MSA file, rate files and truth of a scene.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        What to paint.
    folder : str or pathlib.Path
        Output folder (created). Rate files reference the MSA file by its name
        (``MSAMETFL`` relative to the rate file's folder).
    instrument : Instrument
        Output of :func:`build_instrument`.
    calibration : bool, optional
        Paint with the analytic calibration (True) or with F = 1 (geometry only).
    overwrite : bool, optional
        Rewrite even if a stamp with the same scene digest exists.

    Returns
    -------
    ExposureResult
        Paths of the files written.
    """
    t0 = time.perf_counter()
    folder = Path(folder).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if (scene.filter, scene.grating) not in instrument.modes:
        raise ValueError(f"instrument lacks mode {scene.filter}/{scene.grating}")
    missing = set(scene.detectors) - set(instrument.detectors)
    if missing:
        raise ValueError(f"instrument lacks detectors {sorted(missing)}")
    digest = f"{GENERATOR_VERSION}-{scene.digest()}-{int(calibration)}"
    stamp_path = folder / "synthetic_exposure.json"
    prefix = f"jw{PROGRAM:05d}001001_01101_00001"
    msa_path = folder / f"jw{PROGRAM:05d}001001_01_msa.fits"
    rate_paths = {d: folder / f"{prefix}_{d.lower()}_rate.fits" for d in scene.detectors}
    truth_paths = {d: folder / f"{prefix}_{d.lower()}_truth.asdf" for d in scene.detectors}
    if not overwrite and stamp_path.is_file():
        stamp = json.loads(stamp_path.read_text())
        if stamp.get("digest") == digest and all(
            p.is_file() for p in [*rate_paths.values(), *truth_paths.values(), msa_path]
        ):
            return ExposureResult(folder, rate_paths, msa_path, truth_paths, 0.0)

    layout = scene.layout()
    write_msa_file(msa_path, layout)
    cal = None
    if calibration:

        cal = CalibrationTruth(filter=scene.filter, grating=scene.grating)
    refs = instrument.wcs_refs_for(filter=scene.filter, grating=scene.grating)
    for det in scene.detectors:
        wcs_model = load_synthetic_wcs(scene, detector=det, refs=refs, msa_path=msa_path)
        if wcs_model is None:
            raise RuntimeError(f"no slit of the scene falls on {det}")
        painted = paint_detector(scene, detector=det, wcs_model=wcs_model, calibration=cal)
        model = make_rate_model(scene, detector=det, msa_name=msa_path.name, painted=painted)
        model.meta.filename = rate_paths[det].name
        model.save(rate_paths[det])
        model.close()
        write_truth(
            truth_paths[det], scene=scene, detector=det, painted=painted, calibrated=calibration
        )
    seconds = time.perf_counter() - t0
    stamp_path.write_text(
        json.dumps({"digest": digest, "scene": scene.to_dict(), "seconds": seconds}, indent=1)
    )
    log.info("Synthetic exposure in %s built in %.1f s", folder, seconds)
    return ExposureResult(folder, rate_paths, msa_path, truth_paths, seconds)


@contextlib.contextmanager
def local_crds_context(instrument):
    """
    Select the synthetic instrument's local CRDS context for a block.

    Inside the block, jwst steps find every reference file through CRDS with no
    ``override_*``; the previous environment is restored afterwards.

    Parameters
    ----------
    instrument : Instrument
        Output of :func:`build_instrument`.

    Yields
    ------
    pathlib.Path
        The CRDS cache folder in use.
    """
    with offline_crds(instrument.crds_path, local_context=True, context=instrument.context) as path:
        yield path
