"""Where a scene's slitlets go on the MSA, and which of them hold a second source.

:func:`scene_layout` is :meth:`~jwst_mbkg_plus.synthetic.scene.Scene.layout`:
it deals the slitlets to the detectors and places them on MSA rows and columns
so that their spectra land on the detector. :func:`add_companions` then puts a
second point source (the *companion*) into ``Scene.n_two_source`` of the
point-source slitlets, in a shutter next to the primary one, from a random
stream of its own (the layout of a scene without companions is unchanged).
"""

import dataclasses

import numpy as np

import jwst_mbkg_plus.synthetic.instrument as instrument
from jwst_mbkg_plus.synthetic.slitlet import Slitlet, shared_column_slots

__all__ = ["add_companions", "scene_layout"]


def scene_layout(scene):
    """
    Place the slitlets on the MSA.

    Slitlets are dealt to ``scene.detectors`` in turn; on each detector they are
    stacked along the slit direction (one closed shutter between neighbours,
    alternating between the two quadrants whose spectra fall on that detector),
    at random ``shutter_row`` values for which the whole spectrum lands on the
    detector. Background slitlets come first, then point, then extended sources.

    A grating whose spectra are longer than a detector (G395H) has no such
    row. Its slitlets go to rows where at least
    `~jwst_mbkg_plus.synthetic.instrument.PARTIAL_MIN_FRACTION` of the
    spectrum lands on the detector, so each covers only a part of the band
    there (the blue part near the MSA centre, a redder part further out, on
    NRS1; the reverse on NRS2). The background slitlets are spread evenly
    over those rows, from the innermost to the outermost, and the sources
    placed at random among them, so that every source wavelength on the
    detector is also covered by background slitlets. With both detectors
    in the scene, a slitlet's spectrum lands on both and is painted on
    both; the slitlets of quadrants 1 and 3 (2 and 4), whose spectra then
    share detector rows, take turns in one set of column slots spread
    evenly over the columns, so that they do not overlap; that halves the
    capacity per detector.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        The scene.

    Returns
    -------
    list of Slitlet
        In slitlet-id order.

    Raises
    ------
    ValueError
        If the slitlets do not fit on the detectors.
    """
    rng = np.random.default_rng([scene.seed, 0])
    kinds = ["background"] * scene.n_background + ["point"] * scene.n_point
    kinds += ["extended"] * scene.n_extended
    n_det = len(scene.detectors)
    per_det = {d: [] for d in scene.detectors}
    for i, kind in enumerate(kinds):
        per_det[scene.detectors[i % n_det]].append((i, kind))
    step = scene.shutters_per_slitlet + 1
    partial = not any(
        instrument.detector_of_shutter(q, r, scene.grating, margin=30) is not None
        for q in (1, 2, 3, 4)
        for r in range(1, instrument.N_ROWS + 1, 8)
    )
    interleave = partial and n_det > 1
    n_slots = (instrument.N_COLUMNS - 2) // step
    capacity = 2 * (n_slots // 2 if interleave else n_slots)
    if interleave:
        shared_slots = shared_column_slots(per_det, n_slots, step, capacity)
    slitlets = [None] * len(kinds)
    for det, items in per_det.items():
        if len(items) > capacity:
            raise ValueError(
                f"{len(items)} slitlets of {scene.shutters_per_slitlet} shutters do not fit "
                f"on {det} (at most {capacity})"
            )
        quads = (3, 4) if det == "NRS1" else (1, 2)
        if partial:
            all_rows = np.arange(1, instrument.N_ROWS + 1)
            rows = {
                q: [
                    int(r)
                    for r in all_rows[
                        instrument.detector_fractions(q, all_rows, scene.grating)[det]
                        >= instrument.PARTIAL_MIN_FRACTION
                    ]
                ]
                for q in quads
            }
        else:
            rows = {
                q: [
                    r
                    for r in range(1, instrument.N_ROWS + 1)
                    if instrument.detector_of_shutter(q, r, scene.grating, margin=30) == det
                ]
                for q in quads
            }
        n_q = [(len(items) + 1) // 2, len(items) // 2]
        n_bkg_q = [0, 0]
        for j, (_, kind) in enumerate(items):
            n_bkg_q[j % 2] += kind == "background"
        slots = {}
        for qi, q in enumerate(quads):
            if interleave:
                slots[q] = shared_slots[(det, qi)]
                continue
            # Spread used slots evenly over the quadrant's columns.
            chosen = np.linspace(0, n_slots - 1, n_q[qi]).round().astype(int) if n_q[qi] else []
            slots[q] = [2 + int(c) * step for c in chosen]
        counters = dict.fromkeys(quads, 0)
        for j, (i, kind) in enumerate(items):
            q = quads[j % 2]
            first_col = slots[q][counters[q]]
            if partial and kind == "background":
                # Innermost to outermost row: the union of the background
                # slitlets covers every wavelength a source can have here.
                qi = j % 2
                at = np.linspace(0, len(rows[q]) - 1, max(n_bkg_q[qi], 1))[counters[q]]
                row = int(rows[q][int(round(at))])
            else:
                row = int(rng.choice(rows[q]))
            counters[q] += 1
            primary = scene.shutters_per_slitlet // 2
            source_id = 0 if kind == "background" else 1000 + i + 1
            source_y = 0.5 if kind != "point" else float(rng.uniform(0.35, 0.65))
            slitlets[i] = Slitlet(
                slitlet_id=i + 1,
                quadrant=q,
                row=row,
                first_column=first_col,
                n_shutters=scene.shutters_per_slitlet,
                kind=kind,
                source_id=source_id,
                primary=primary,
                source_y=source_y,
                detector=det,
            )
    return add_companions(scene, slitlets)


def add_companions(scene, slitlets):
    """
    Put a second point source into the first ``scene.n_two_source`` point-source slitlets.

    The companion sits in a shutter next to the primary one (either side, at
    random where both exist), at a random position within it (0.35-0.65 of the
    shutter, as the primary sources), with ``scene.companion_flux`` times the
    primary's surface brightness at its peak.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        The scene.
    slitlets : list of Slitlet
        The layout without companions.

    Returns
    -------
    list of Slitlet
        The same, with ``companion_shutter``, ``companion_y`` and
        ``companion_flux`` set on the slitlets that hold one.
    """
    if not scene.n_two_source:
        return slitlets
    rng = np.random.default_rng([scene.seed, 5])
    points = [i for i, s in enumerate(slitlets) if s.kind == "point"][: scene.n_two_source]
    out = list(slitlets)
    for i in points:
        s = out[i]
        sides = [k for k in (s.primary - 1, s.primary + 1) if 0 <= k < s.n_shutters]
        out[i] = dataclasses.replace(
            s,
            companion_shutter=int(rng.choice(sides)),
            companion_y=float(rng.uniform(0.35, 0.65)),
            companion_flux=float(scene.companion_flux),
        )
    return out
