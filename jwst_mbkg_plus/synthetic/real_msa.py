"""Real MSA metadata files as layouts of the synthetic instrument.

:func:`real_msa_layout` reads a real ``_msa.fits`` file (e.g. program 2736's
``jw02736007001_01_msa.fits``) and returns, for each nod (dither point), the
slitlets of one MSA configuration as
`~jwst_mbkg_plus.synthetic.scene.Slitlet` objects that
:func:`~jwst_mbkg_plus.synthetic.visit.make_visit` paints; every real slitlet
that cannot be placed on the synthetic instrument is listed with the reason.
"""

import dataclasses
import logging

import numpy as np
from astropy.io import fits
from astropy.table import Table

from jwst_mbkg_plus.synthetic import instrument as _inst
from jwst_mbkg_plus.synthetic.scene import Slitlet

__all__ = ["RealLayout", "real_msa_layout"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RealLayout:
    """
    The slitlets of a real MSA metadata file that fit on the synthetic instrument.

    Attributes
    ----------
    source : str
        The MSA file read.
    msa_metadata_id : int
        Configuration used (the file's ``MSACFG10``).
    n_nods : int
        Dither points (nods) of that configuration.
    nods : tuple of tuple of `~jwst_mbkg_plus.synthetic.scene.Slitlet`
        The placed slitlets, one tuple per nod.
    unplaced : tuple of dict
        ``{"slitlet_id", "quadrant", "row", "columns", "reason"}`` of every real
        slitlet not placed.
    n_real : int
        Slitlets of that configuration in the file.
    """

    source: str
    msa_metadata_id: int
    n_nods: int
    nods: tuple
    unplaced: tuple
    n_real: int


def _kind_of(source_ids, stellarity):
    """Background for virtual (negative id) or no source, else point/extended."""
    real = [s for s in source_ids if s > 0]
    if not real:
        return "background", 0
    sid = int(real[0])
    return ("point" if stellarity.get(sid, 0.0) > 0.75 else "extended"), sid


def _detector_of(quadrant, row, grating, min_fraction):
    """The detector holding most of a shutter's spectrum, if at least ``min_fraction``."""
    best, best_frac = None, 0.0
    for det, (lo, hi) in _inst.spectrum_pixel_range(quadrant, row, grating).items():
        on = max(0.0, min(hi, 2047 - 30) - max(lo, 30))
        frac = on / (hi - lo)
        if frac > best_frac:
            best, best_frac = det, frac
    return best if best_frac >= min_fraction else None


def real_msa_layout(msa_file, *, grating, detectors=_inst.DETECTORS, msa_metadata_id=None,
                    min_fraction=0.5):
    """
    Read a real MSA metadata file as slitlets of the synthetic instrument.

    A slitlet is background when no shutter holds a real (positive-id) source
    in any nod (jwst's "virtual" negative-id sky sources count as background);
    otherwise point (stellarity > 0.75) or extended, with the primary shutter
    and the source position of each nod from the file.

    Parameters
    ----------
    msa_file : str or pathlib.Path
        A ``_msa.fits`` file.
    grating : str
        Disperser of the synthetic instrument to place the spectra for.
    detectors : sequence of str, optional
        Detectors to paint.
    msa_metadata_id : int, optional
        Configuration to read; default the file's ``MSACFG10`` (else the first).
    min_fraction : float, optional
        Smallest fraction of a slitlet's spectrum that must fall on one detector
        (30 pixels from its edges); the rest, beyond an edge or in the gap, is
        lost, as on the real instrument. A spectrum that straddles the gap is
        painted on both detectors.

    Returns
    -------
    RealLayout
        The placed slitlets per nod and every real slitlet not placed, with why.
    """
    with fits.open(msa_file) as hdul:
        info = Table(hdul["SHUTTER_INFO"].data)
        sources = Table(hdul["SOURCE_INFO"].data)
        header_id = hdul[0].header.get("MSACFG10")
    ids = np.unique(info["msa_metadata_id"])
    if msa_metadata_id is None:
        msa_metadata_id = int(header_id) if header_id in ids else int(ids[0])
    info = info[info["msa_metadata_id"] == msa_metadata_id]
    stellarity = {int(r["source_id"]): float(r["stellarity"]) for r in sources}
    nods = sorted(int(d) for d in np.unique(info["dither_point_index"]))
    placed, unplaced, used = [], [], {}
    for sid in sorted(int(s) for s in np.unique(info["slitlet_id"])):
        rows = info[info["slitlet_id"] == sid]
        quads = np.unique(rows["shutter_quadrant"])
        srows = np.unique(rows["shutter_row"])
        cols = sorted(int(c) for c in np.unique(rows["shutter_column"]))
        entry = {"slitlet_id": sid, "quadrant": int(quads[0]), "row": int(srows[0]),
                 "columns": cols}
        reason = ""
        if len(quads) != 1 or len(srows) != 1:
            reason = "shutters in more than one quadrant or row"
        elif cols != list(range(cols[0], cols[0] + len(cols))):
            reason = "shutters not in consecutive columns"
        elif len(cols) > 5:
            reason = f"{len(cols)} shutters (the synthetic scene supports 1-5)"
        det = None if reason else _detector_of(int(quads[0]), int(srows[0]), grating,
                                                min_fraction)
        if not reason and det is None:
            reason = (f"less than {100 * min_fraction:.0f}% of its {grating} spectrum falls "
                      "on a detector of the synthetic instrument (gap or edge)")
        elif not reason and det not in detectors:
            reason = f"its spectrum falls on {det}, not painted"
        if not reason:
            key = (int(quads[0]), det)
            span = set(range(cols[0] - 1, cols[-1] + 2))
            clash = [o for o, c in used.get(key, []) if span & c]
            if clash:
                reason = (f"its spectrum would overlap that of slitlet {clash[0]} (same "
                          "quadrant, neighbouring columns) on the synthetic detector")
        if reason:
            unplaced.append({**entry, "reason": reason})
            continue
        used.setdefault((int(quads[0]), det), []).append((sid, set(cols)))
        kind, source_id = _kind_of([int(v) for v in rows["source_id"]], stellarity)
        per_nod = []
        for nod in nods:
            here = rows[rows["dither_point_index"] == nod]
            prim = here[here["primary_source"] == "Y"]
            if kind != "background" and len(prim):
                primary = cols.index(int(prim["shutter_column"][0]))
                source_y = float(prim["estimated_source_in_shutter_y"][0])
                if not np.isfinite(source_y):
                    source_y = 0.5
            else:
                primary, source_y = len(cols) // 2, 0.5
            per_nod.append(Slitlet(
                slitlet_id=sid, quadrant=int(quads[0]), row=int(srows[0]),
                first_column=cols[0], n_shutters=len(cols),
                kind=kind if (kind == "background" or len(prim)) else "background",
                source_id=source_id, primary=primary, source_y=source_y, detector=det,
            ))
        placed.append(per_nod)
    by_nod = tuple(tuple(p[k] for p in placed) for k in range(len(nods)))
    for u in unplaced:
        log.warning("Real slitlet %d (Q%d row %d columns %s) not placed: %s",
                    u["slitlet_id"], u["quadrant"], u["row"], u["columns"], u["reason"])
    return RealLayout(str(msa_file), int(msa_metadata_id), len(nods), by_nod, tuple(unplaced),
                      len(np.unique(info["slitlet_id"])))
