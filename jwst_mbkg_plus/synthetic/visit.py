"""Synthetic visits: N nods of one MSA configuration on NRS1 and NRS2.

A visit is what a NIRSpec MOS program observes with one MSA configuration: the
same slitlets in every exposure, the sources moved by one shutter per nod, the
background slitlets staying put, and the sky level drifting a little between
nods. :func:`make_visit` writes the MSA metadata file (one row per shutter and
nod, ``dither_point_index`` = nod), one ``_rate.fits`` per nod and detector
(``PATT_NUM`` = nod), one truth file each (the format of
:mod:`~jwst_mbkg_plus.synthetic.truth`, with a ``visit`` entry added) and a
``visit_truth.json`` summary.

The layout is either the synthetic one of a
`~jwst_mbkg_plus.synthetic.scene.Scene` or that of a real MSA metadata file
(:func:`~jwst_mbkg_plus.synthetic.real_msa.real_msa_layout`), painted on the
synthetic instrument; real slitlets that cannot be placed are listed with the
reason.

Examples
--------
>>> from jwst_mbkg_plus.synthetic import Scene, build_instrument
>>> from jwst_mbkg_plus.synthetic.visit import make_visit
>>> inst = build_instrument(tmp_path / "crds")  # doctest: +SKIP
>>> visit = make_visit(Scene(detectors=("NRS1", "NRS2")), tmp_path / "v",
...                    instrument=inst)  # doctest: +SKIP
>>> sorted(visit.rate_paths)  # doctest: +SKIP
[(1, 'NRS1'), (1, 'NRS2'), (2, 'NRS1'), ...]
"""

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from jwst_mbkg_plus.safe_io import atomic_write_text
from jwst_mbkg_plus.synthetic import instrument as _inst
from jwst_mbkg_plus.synthetic.build import GENERATOR_VERSION
from jwst_mbkg_plus.synthetic.exposure import make_rate_model, paint_detector, skeleton_model
from jwst_mbkg_plus.synthetic.msa_file import PROGRAM, write_msa_file
from jwst_mbkg_plus.synthetic.real_msa import RealLayout, real_msa_layout
from jwst_mbkg_plus.synthetic.scene import Scene
from jwst_mbkg_plus.synthetic.truth import write_truth

__all__ = [
    "VISIT_TRUTH_NAME",
    "NodScene",
    "RealLayout",
    "VisitResult",
    "make_visit",
    "nod_levels",
    "nod_shifts",
    "real_msa_layout",
]

log = logging.getLogger(__name__)

#: Name of the visit's summary truth file, in the visit folder.
VISIT_TRUTH_NAME = "visit_truth.json"


def nod_shifts(n_nods):
    """
    Return the shutter offset of the sources in each nod.

    Parameters
    ----------
    n_nods : int
        Number of nods (>= 1).

    Returns
    -------
    list of int
        One shutter per nod, centred: ``[-1, 0, 1]`` for 3 nods, ``[0, 1]`` for 2.
    """
    return [k - (n_nods - 1) // 2 for k in range(n_nods)]


def nod_levels(n_nods, drift):
    """
    Return the sky level of each nod relative to the visit's mean sky.

    Parameters
    ----------
    n_nods : int
        Number of nods.
    drift : float
        Largest fractional departure: levels run linearly from ``1 - drift`` to
        ``1 + drift`` over the nods (``[0.99, 1.0, 1.01]`` for 3 nods, 1%).

    Returns
    -------
    list of float
        One level per nod.
    """
    if n_nods == 1:
        return [1.0]
    return [float(v) for v in 1.0 + drift * np.linspace(-1.0, 1.0, n_nods)]


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodScene(Scene):
    """
    A `~jwst_mbkg_plus.synthetic.scene.Scene` seen in one nod of a visit.

    Parameters
    ----------
    nod : int
        Nod number, 1-based (the exposure's ``PATT_NUM``).
    n_nods : int
        Nods in the visit.
    level : float
        Sky level of this nod relative to the visit's (multiplies the background,
        not the sources).
    fixed_layout : tuple of `~jwst_mbkg_plus.synthetic.scene.Slitlet`
        This nod's slitlets, used as they are (a real MSA layout); empty: the
        scene's own layout with the sources moved by :func:`nod_shifts`.
    **kwargs
        The parameters of `~jwst_mbkg_plus.synthetic.scene.Scene`.
    """

    nod: int = 1
    n_nods: int = 1
    level: float = 1.0
    fixed_layout: tuple = ()

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.nod <= self.n_nods:
            raise ValueError(f"nod must be 1..{self.n_nods}, got {self.nod}")
        if not (np.isfinite(self.level) and self.level > 0):
            raise ValueError(f"level must be > 0, got {self.level!r}")

    def layout(self):
        """
        Return this nod's slitlets.

        Returns
        -------
        list of `~jwst_mbkg_plus.synthetic.scene.Slitlet`
            The fixed layout, or the scene's with each source moved by this nod's
            shutter offset (kept inside its slitlet).
        """
        if self.fixed_layout:
            return list(self.fixed_layout)
        shift = nod_shifts(self.n_nods)[self.nod - 1]
        out = []
        for s in super().layout():
            if s.kind != "background":
                s = dataclasses.replace(s, primary=int(np.clip(s.primary + shift, 0,
                                                               s.n_shutters - 1)))
            out.append(s)
        return out

    def background_spectrum(self, wavelength):
        """
        Spatially uniform background of this nod: the visit's times ``level``.

        Parameters
        ----------
        wavelength : ndarray
            Wavelength in micron.

        Returns
        -------
        ndarray
            Surface brightness in MJy/sr.
        """
        return self.level * super().background_spectrum(wavelength)

    def source_spectrum(self, wavelength, *, kind, source_id):
        """
        Source spectrum, independent of the nod's sky level.

        Parameters
        ----------
        wavelength : ndarray
            Wavelength in micron.
        kind : str
            "point" or "extended".
        source_id : int
            Source id.

        Returns
        -------
        ndarray
            As `~jwst_mbkg_plus.synthetic.scene.Scene.source_spectrum` at level 1.
        """
        return super().source_spectrum(wavelength, kind=kind, source_id=source_id) / self.level

    def to_dict(self):
        """
        Return the parameters as JSON-compatible values.

        Returns
        -------
        dict
            Parameter name -> value (the fixed layout as a list of dicts).
        """
        out = super().to_dict()
        out["fixed_layout"] = [dataclasses.asdict(s) for s in self.fixed_layout]
        return out


@dataclasses.dataclass(frozen=True)
class VisitResult:
    """
    Files written by :func:`make_visit`.

    Attributes
    ----------
    folder : pathlib.Path
        The visit folder.
    rate_paths : dict
        ``{(nod, detector): path}`` of the rate files.
    truth_paths : dict
        ``{(nod, detector): path}`` of the truth files.
    msa_path : pathlib.Path
        The MSA metadata file (all nods).
    truth_json : pathlib.Path
        The visit summary (:data:`VISIT_TRUTH_NAME`).
    levels : list of float
        Sky level of each nod.
    unplaced : list of dict
        Real slitlets not placed (empty for a synthetic layout).
    seconds : float
        Time the build took.
    """

    folder: Path
    rate_paths: dict
    truth_paths: dict
    msa_path: Path
    truth_json: Path
    levels: list
    unplaced: list
    seconds: float


def _write_visit_msa(path, layouts):
    """One MSA file with every nod's shutters (``dither_point_index`` = nod)."""
    from astropy.table import unique, vstack

    tmp = Path(path).with_name(Path(path).name + ".nod.tmp")
    infos, sources, image, primary = [], [], None, None
    try:
        for nod, layout in enumerate(layouts, start=1):
            write_msa_file(tmp, layout, dither_position=nod)
            with fits.open(tmp) as hdul:
                infos.append(Table(hdul["SHUTTER_INFO"].data))
                sources.append(Table(hdul["SOURCE_INFO"].data))
                nod_image = np.asarray(hdul["SHUTTER_IMAGE"].data)
                image = nod_image.copy() if image is None else np.maximum(image, nod_image)
                primary = fits.PrimaryHDU(header=hdul[0].header.copy())
    finally:
        tmp.unlink(missing_ok=True)
    info_hdu = fits.table_to_hdu(vstack(infos))
    info_hdu.name = "SHUTTER_INFO"
    src = vstack(sources)
    if len(src):
        src = unique(src, keys="source_id")
    src_hdu = fits.table_to_hdu(src)
    src_hdu.name = "SOURCE_INFO"
    fits.HDUList([primary, fits.ImageHDU(image, name="SHUTTER_IMAGE"), info_hdu,
                  src_hdu]).writeto(path, overwrite=True)
    return Path(path)


def _nod_wcs(scene, *, detector, refs, msa_path, nod):
    """jwst's MOS WCS of one nod (open slits of dither point ``nod``), or None."""
    from jwst.assign_wcs.assign_wcs import load_wcs
    from jwst.assign_wcs.util import NoDataOnDetectorError

    model = skeleton_model(scene, detector=detector, msa_name=Path(msa_path).name)
    model.meta.dither.position_number = nod
    reference_files = {k: str(v) for k, v in refs.items()}
    reference_files["msametafile"] = str(msa_path)
    for reftype in ("distortion", "filteroffset", "specwcs", "regions", "chromcorr",
                    "ifupost", "ifufore", "ifuslicer"):
        reference_files.setdefault(reftype, "N/A")
    try:
        model = load_wcs(model, reference_files, nrs_slit_y_range=[-0.55, 0.55])
    except NoDataOnDetectorError:
        return None
    return model if model.meta.cal_step.assign_wcs == "COMPLETE" else None


def rate_name(nod, detector):
    """
    Return the rate file name of one nod and detector.

    Parameters
    ----------
    nod : int
        Nod number (1-based; the exposure number).
    detector : str
        "NRS1" or "NRS2".

    Returns
    -------
    str
        ``jw09999001001_01101_<nod:05d>_<det>_rate.fits``.
    """
    return f"jw{PROGRAM:05d}001001_01101_{nod:05d}_{detector.lower()}_rate.fits"


def make_visit(scene, folder, *, instrument, n_nods=3, drift=0.01, levels=None,
               msa_file=None, overwrite=False):
    """
    Write a synthetic visit: every nod of one MSA configuration on every detector.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        What is observed (grating, sky, noise, ...); its ``detectors`` are painted.
        With ``msa_file`` its slitlet counts are ignored.
    folder : str or pathlib.Path
        Output folder (created).
    instrument : `~jwst_mbkg_plus.synthetic.build.Instrument`
        The synthetic instrument.
    n_nods : int, optional
        Nods (ignored with ``msa_file``, which gives its own).
    drift : float, optional
        Sky level drift: levels from ``1 - drift`` to ``1 + drift`` (:func:`nod_levels`).
    levels : sequence of float, optional
        Explicit sky level per nod, instead of ``drift``.
    msa_file : str or pathlib.Path, optional
        A real MSA metadata file whose layout is painted
        (:func:`~jwst_mbkg_plus.synthetic.real_msa.real_msa_layout`).
    overwrite : bool, optional
        Rewrite even if the folder holds the same visit.

    Returns
    -------
    VisitResult
        The files written.
    """
    t0 = time.perf_counter()
    folder = Path(folder).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    real = None
    if msa_file is not None:
        real = real_msa_layout(msa_file, grating=scene.grating, detectors=scene.detectors)
        n_nods = real.n_nods
        if not any(real.nods[0]):
            raise ValueError(f"{msa_file}: no slitlet can be placed on the synthetic instrument")
    if n_nods < 1:
        raise ValueError(f"n_nods must be >= 1, got {n_nods}")
    explicit_levels = levels
    levels = list(levels) if levels is not None else nod_levels(n_nods, drift)
    if len(levels) != n_nods:
        raise ValueError(f"{len(levels)} levels for {n_nods} nods")
    base = scene.to_dict()
    for key in ("nod", "n_nods", "level", "fixed_layout"):
        base.pop(key, None)
    base["detectors"] = tuple(base["detectors"])
    base["quadrant_offsets"] = tuple(base["quadrant_offsets"])
    base["chromatic_quadrants"] = tuple(tuple(p) for p in base["chromatic_quadrants"])
    base["chromatic_gradient_y"] = tuple(base["chromatic_gradient_y"])
    if real is not None:
        # Counts of the real layout: the scene's per-slitlet scatter has one value each.
        kinds = [s.kind for s in real.nods[0]]
        base.update(n_background=kinds.count("background"), n_point=kinds.count("point"),
                    n_extended=kinds.count("extended"))
    scenes = [
        NodScene(**base, nod=k, n_nods=n_nods, level=float(levels[k - 1]),
                 fixed_layout=real.nods[k - 1] if real is not None else ())
        for k in range(1, n_nods + 1)
    ]
    msa_path = folder / f"jw{PROGRAM:05d}001001_01_msa.fits"
    rate_paths = {(k, d): folder / rate_name(k, d) for k in range(1, n_nods + 1)
                  for d in scene.detectors}
    truth_paths = {key: p.with_name(p.name.replace("_rate.fits", "_truth.asdf"))
                   for key, p in rate_paths.items()}
    truth_json = folder / VISIT_TRUTH_NAME
    digest = json.dumps([GENERATOR_VERSION, [s.digest() for s in scenes]])
    if not overwrite and truth_json.is_file():
        try:
            old = json.loads(truth_json.read_text())
        except ValueError:
            old = {}
        if old.get("digest") == digest and all(
            p.is_file() for p in [*rate_paths.values(), *truth_paths.values(), msa_path]
        ):
            return VisitResult(folder, rate_paths, truth_paths, msa_path, truth_json, levels,
                               old.get("unplaced", []), 0.0)

    _write_visit_msa(msa_path, [s.layout() for s in scenes])
    from jwst_mbkg_plus.synthetic.calibration_truth import CalibrationTruth

    cal = CalibrationTruth(filter=scene.filter, grating=scene.grating)
    refs = instrument.wcs_refs_for(filter=scene.filter, grating=scene.grating)
    exposures = []
    for nod_scene in scenes:
        k = nod_scene.nod
        for det in scene.detectors:
            wcs_model = _nod_wcs(nod_scene, detector=det, refs=refs, msa_path=msa_path, nod=k)
            if wcs_model is None:
                raise RuntimeError(f"no slit of nod {k} falls on {det}")
            rng = np.random.default_rng([scene.seed, 2, _inst.DETECTORS.index(det), k])
            painted = paint_detector(nod_scene, detector=det, wcs_model=wcs_model,
                                     calibration=cal, rng=rng)
            model = make_rate_model(nod_scene, detector=det, msa_name=msa_path.name,
                                    painted=painted)
            model.meta.filename = rate_paths[(k, det)].name
            model.meta.dither.position_number = k
            model.meta.observation.exposure_number = f"{k:05d}"
            model.meta.exposure.start_time = 60000.0 + 0.01 * (k - 1)
            model.meta.exposure.mid_time = model.meta.exposure.start_time + 0.0017
            model.meta.exposure.end_time = model.meta.exposure.start_time + 0.0035
            model.save(rate_paths[(k, det)])
            model.close()
            visit_entry = {"nod": k, "n_nods": n_nods, "level": float(levels[k - 1]),
                           "shutter_shift": nod_shifts(n_nods)[k - 1] if real is None
                           else None,
                           "exposures": [rate_paths[(j, det)].name
                                         for j in range(1, n_nods + 1)]}
            write_truth(truth_paths[(k, det)], scene=nod_scene, detector=det, painted=painted,
                        calibrated=True, visit=visit_entry)
            exposures.append({"nod": k, "detector": det, "level": float(levels[k - 1]),
                              "rate": rate_paths[(k, det)].name,
                              "truth": truth_paths[(k, det)].name,
                              "slits": [int(p.name) for p in painted["slits"]],
                              "background_slits": [int(p.name) for p in painted["slits"]
                                                   if p.slitlet.kind == "background"]})
    unplaced = list(real.unplaced) if real is not None else []
    summary = {
        "format": "jwst_mbkg_plus.synthetic.visit",
        "version": 1,
        "digest": digest,
        "grating": scene.grating,
        "n_nods": n_nods,
        "levels": [float(v) for v in levels],
        "drift": drift if explicit_levels is None else None,
        "msa_file": str(msa_file) if msa_file is not None else None,
        "real_slitlets": real.n_real if real is not None else None,
        "placed_slitlets": len(real.nods[0]) if real is not None else None,
        "unplaced": unplaced,
        "exposures": exposures,
        "scene": scenes[0].to_dict() if real is None else {**base, "fixed_layout": "real"},
    }
    summary["scene"]["detectors"] = list(scene.detectors)
    atomic_write_text(truth_json, json.dumps(summary, indent=1, default=_json_default))
    seconds = time.perf_counter() - t0
    log.info("Synthetic visit of %d nods x %d detectors in %s (%.1f s)", n_nods,
             len(scene.detectors), folder, seconds)
    return VisitResult(folder, rate_paths, truth_paths, msa_path, truth_json, levels,
                       unplaced, seconds)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
