"""One slitlet of a synthetic MSA layout, and the column slots of split spectra.

`Slitlet` is what :meth:`~jwst_mbkg_plus.synthetic.scene.Scene.layout` returns
(and what a real MSA file is painted as, `~jwst_mbkg_plus.synthetic.real_msa`);
`shared_column_slots` is the part of that layout which keeps G395H slitlets of
quadrants that share detector rows from overlapping.
"""

import dataclasses

import numpy as np

__all__ = ["Slitlet", "shared_column_slots"]

_KINDS = ("background", "point", "extended")


@dataclasses.dataclass(frozen=True)
class Slitlet:
    """
    One open slitlet on the synthetic MSA.

    Attributes
    ----------
    slitlet_id : int
        Slitlet number (the slit ``name`` jwst gives it).
    quadrant : int
        MSA quadrant, 1..4.
    row : int
        ``shutter_row`` of the MSA file (1..365, along the dispersion).
    first_column : int
        ``shutter_column`` of the first open shutter (1..171, along the slit).
    n_shutters : int
        Number of open shutters (consecutive columns).
    kind : str
        "background", "point" or "extended".
    source_id : int
        Source id in the MSA file (0 for background slitlets).
    primary : int
        Index (0-based, within the slitlet) of the shutter holding the source.
    source_y : float
        Source position within its shutter (0..1, MSA-file convention).
    detector : str
        Detector the spectrum falls on; for G395H, whose spectra are longer
        than a detector, the detector the slitlet was placed for: it holds a
        part of the band, the rest falls in the gap, on the other detector
        (painted there too when the scene has both) or beyond an edge.
    """

    slitlet_id: int
    quadrant: int
    row: int
    first_column: int
    n_shutters: int
    kind: str
    source_id: int
    primary: int
    source_y: float
    detector: str
    companion_shutter: int | None = None
    companion_y: float = 0.5
    companion_flux: float = 0.0

    @property
    def columns(self):
        """list of int: open ``shutter_column`` values."""
        return list(range(self.first_column, self.first_column + self.n_shutters))


def shared_column_slots(per_det, n_slots, step, capacity):
    """
    Column slots of both detectors when every spectrum lands on both (G395H).

    Quadrants 1 and 3 (2 and 4) share the detector rows, so their slitlets
    take turns in one set of slots spread evenly over the columns, as far
    apart as possible (G395H traces curve by up to ~70 px).

    Parameters
    ----------
    per_det : dict
        Detector -> list of (index, kind) of the slitlets dealt to it.
    n_slots : int
        Column slots per quadrant.
    step : int
        Columns per slot (shutters per slitlet + 1).
    capacity : int
        Most slitlets a detector can hold.

    Returns
    -------
    dict
        (detector, 0 or 1 for the first or second quadrant) -> first columns.

    Raises
    ------
    ValueError
        If the slitlets do not fit.
    """
    out = {}
    for qi in (0, 1):
        need = {d: (len(items) + 1) // 2 if qi == 0 else len(items) // 2
                for d, items in per_det.items()}
        total = sum(need.values())
        if any(len(items) > capacity for items in per_det.values()) or total > n_slots:
            raise ValueError(
                f"{total} slitlets do not fit in the {n_slots} column slots that "
                "quadrants 1 and 3 (2 and 4) share when spectra land on both detectors"
            )
        positions = np.linspace(0, n_slots - 1, total).round().astype(int) if total else []
        taken = dict.fromkeys(need, 0)
        order = list(need)
        for k, pos in enumerate(positions):
            # Alternate detectors; once one has all its slots, the other takes the rest.
            det = order[k % 2] if taken[order[k % 2]] < need[order[k % 2]] else order[
                1 - k % 2]
            out.setdefault((det, qi), []).append(2 + int(pos) * step)
            taken[det] += 1
        for d in need:
            out.setdefault((d, qi), [])
    return out
