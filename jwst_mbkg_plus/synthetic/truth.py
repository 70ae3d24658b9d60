"""Ground truth of a synthetic exposure: an ASDF file and its loader.

Tree of the file (one file per detector)::

    format: "jwst_mbkg_plus.synthetic.truth"
    version: 1
    detector: "NRS1"
    calibrated: true        # painted with the analytic calibration (false: F = 1)
    scene: {...}            # Scene.to_dict()
    background_1d:
      wavelength: (n,)      # micron
      surface_brightness: (n,)  # MJy/sr, the spatially uniform spectrum B0
    slits:                  # one entry per painted slit, arrays aligned with
      - name: 3             #   the extract_2d cutout (same shape, xstart, ystart)
        kind: background    # background / point / extended
        quadrant, row, columns, source_id, contaminated
        xstart, ystart      # 1-based, as SlitModel.xstart / ystart
        wavelength          # micron (NaN where nothing is painted)
        slit_y              # slit-frame y
        factor              # MJy/sr per DN/s, extended-source calibration F
        background          # MJy/sr true background (NaN where unpainted or overlapped)
        source              # MJy/sr declared source (0 elsewhere)
        contaminant         # MJy/sr undeclared source (0 elsewhere)
        counts              # DN/s noiseless count rate painted
        calibration_error   # the slit's calibration factor c_s(lambda) (synthetic.calib_error);
                            #   background, source, contaminant already include it
        calibration_terms   # [level, tilt, curvature] of c_s
        point_sources       # point-source slits only: one dict per source painted, the
                            #   declared one first, then a companion (Scene.n_two_source):
                            #   slit_y, shutter, relative_flux, declared, profile
                            #   (gaussian / moffat), fwhm_pixels, moffat_beta
        valid               # bool, background truth defined
    hot_pixels:             # columns: detector, slitlet_id, x, y (0-based full frame),
                            #   rate (DN/s added), cluster (0 = single)
    contaminated: [ids]     # background slitlets holding an undeclared source
    overlap_pixels: int     # pixels painted by two slits
    visit:                  # only in an exposure of a synthetic visit (synthetic.visit)
      nod, n_nods           # this exposure's nod (PATT_NUM, 1-based) and the visit's nods
      level                 # sky level of this nod relative to the visit's (drift)
      shutter_shift         # shutters the sources moved from the centre (null: real layout)
      exposures             # rate file names of this detector's nods, in nod order

The calibrated background of slit ``s`` from the pipeline (``SlitModel.data``
after photom, MJy/sr) should equal ``truth.slit(s)["background"]`` where
``valid`` (plus source/contaminant where those are non-zero).
"""

import logging

import asdf
import numpy as np

import jwst_mbkg_plus.synthetic.instrument as instrument

__all__ = ["TRUTH_FORMAT", "Truth", "load_truth", "write_truth"]

log = logging.getLogger(__name__)

#: Value of the ``format`` key.
TRUTH_FORMAT = "jwst_mbkg_plus.synthetic.truth"


def write_truth(path, *, scene, detector, painted, calibrated=True, visit=None):
    """
    Write the truth file of one detector.

    Parameters
    ----------
    path : str or pathlib.Path
        Output ASDF file.
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        The scene painted.
    detector : str
        Detector name.
    painted : dict
        Output of :func:`~jwst_mbkg_plus.synthetic.exposure.paint_detector`.
    calibrated : bool, optional
        Whether the analytic calibration was used.
    visit : dict, optional
        The ``visit`` entry of an exposure of a visit (see the module docstring);
        not written when None.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    lo, hi = instrument.GRATINGS[scene.grating]["wrange"]
    grid = np.linspace(lo * 1e6, hi * 1e6, 2001)
    contaminated = set(painted["contaminated"])
    slits = []
    terms = dict(zip((s.slitlet_id for s in scene.layout()), scene.calibration_errors(),
                     strict=True))
    for p in painted["slits"]:
        s = p.slitlet
        entry = {
            "name": int(p.name),
            "kind": s.kind,
            "quadrant": int(s.quadrant),
            "row": int(s.row),
            "columns": [int(c) for c in s.columns],
            "source_id": int(s.source_id),
            "contaminated": p.name in contaminated,
            "xstart": int(p.xstart),
            "ystart": int(p.ystart),
            # level, tilt (blue to red), curvature of the slit's calibration error
            "calibration_terms": [float(t) for t in terms.get(p.name, np.zeros(3))],
        }
        arrays = dict(p.arrays)
        if "point_sources" in arrays:
            entry["point_sources"] = [dict(src) for src in arrays.pop("point_sources")]
        entry.update({k: np.ascontiguousarray(v) for k, v in arrays.items()})
        slits.append(entry)
    hot = painted["hot_pixels"]
    tree = {
        "format": TRUTH_FORMAT,
        "version": 1,
        "detector": detector,
        "calibrated": bool(calibrated),
        "scene": scene.to_dict(),
        "background_1d": {
            "wavelength": grid,
            "surface_brightness": scene.background_spectrum(grid),
        },
        "slits": slits,
        # Plain lists: small, and asdf cannot read back empty arrays.
        "hot_pixels": {name: hot[name].tolist() for name in hot.dtype.names},
        "contaminated": sorted(int(c) for c in contaminated),
        "overlap_pixels": int(painted["overlap_pixels"]),
    }
    if visit is not None:
        tree["visit"] = dict(visit)
    with asdf.AsdfFile(tree) as af:
        af.write_to(path)
    return path


class Truth:
    """
    Loaded truth of one detector (see the module docstring for the content).

    Parameters
    ----------
    tree : dict
        The ASDF tree, arrays as numpy arrays.
    """

    def __init__(self, tree):
        if tree.get("format") != TRUTH_FORMAT:
            raise ValueError("not a jwst_mbkg_plus synthetic truth file")
        self.tree = tree
        self.detector = tree["detector"]
        self.scene = tree["scene"]
        self.slits = {int(s["name"]): s for s in tree["slits"]}
        self.contaminated = list(tree["contaminated"])
        self.hot_pixels = tree["hot_pixels"]
        #: dict or None: the ``visit`` entry (nod, n_nods, level, ...) of a visit's exposure.
        self.visit = tree.get("visit")

    def slit(self, name):
        """
        Return the truth of one slit.

        Parameters
        ----------
        name : int or str
            Slit name (slitlet id).

        Returns
        -------
        dict
            Entry of the ``slits`` list.
        """
        return self.slits[int(name)]

    def background_names(self):
        """
        Return the names of background slitlets.

        Returns
        -------
        list of int
            Names of slits of kind "background".
        """
        return [n for n, s in self.slits.items() if s["kind"] == "background"]

    def hot_pixel_positions(self, name):
        """
        Return the hot pixels injected into one slit.

        Parameters
        ----------
        name : int or str
            Slit name (slitlet id).

        Returns
        -------
        list of tuple of int
            Full-frame, 0-based ``(x, y)`` of each hot pixel of that slit.
        """
        hot = {key: np.asarray(value) for key, value in self.hot_pixels.items()}
        if not hot or hot["x"].size == 0:
            return []
        mine = hot["slitlet_id"] == int(name)
        return [(int(x), int(y)) for x, y in zip(hot["x"][mine], hot["y"][mine], strict=True)]

    def hot_pixel_mask(self, slit_model):
        """
        Return the hot pixels injected into one slit, as a mask on its cutout.

        Parameters
        ----------
        slit_model : `~stdatamodels.jwst.datamodels.SlitModel`
            The slit (its ``name``, ``xstart``, ``ystart`` and data shape).

        Returns
        -------
        ndarray of bool
            True at each injected hot pixel inside the cutout.
        """
        hot = np.zeros(slit_model.data.shape, dtype=bool)
        for x_full, y_full in self.hot_pixel_positions(slit_model.name):
            y, x = y_full - (slit_model.ystart - 1), x_full - (slit_model.xstart - 1)
            if 0 <= y < hot.shape[0] and 0 <= x < hot.shape[1]:
                hot[y, x] = True
        return hot

    def background_1d(self):
        """
        Return the spatially uniform background spectrum.

        Returns
        -------
        tuple of ndarray
            (wavelength [micron], surface brightness [MJy/sr]).
        """
        bkg = self.tree["background_1d"]
        return bkg["wavelength"], bkg["surface_brightness"]

    def cutout(self, name, key, slit_model):
        """
        Return a truth array cut to a SlitModel's footprint.

        Parameters
        ----------
        name : int or str
            Slit name.
        key : str
            Array name (e.g. "background").
        slit_model : `~stdatamodels.jwst.datamodels.SlitModel`
            Pipeline slit (its ``xstart``, ``ystart`` and shape).

        Returns
        -------
        ndarray
            The truth array on the slit's pixels (NaN where the truth does not cover them).
        """
        s = self.slit(name)
        arr = np.asarray(s[key], dtype=float)
        ny, nx = slit_model.data.shape[-2:]
        out = np.full((ny, nx), np.nan)
        dy = slit_model.ystart - s["ystart"]
        dx = slit_model.xstart - s["xstart"]
        ys = slice(max(dy, 0), min(dy + ny, arr.shape[0]))
        xs = slice(max(dx, 0), min(dx + nx, arr.shape[1]))
        if ys.start < ys.stop and xs.start < xs.stop:
            out[ys.start - dy : ys.stop - dy, xs.start - dx : xs.stop - dx] = arr[ys, xs]
        return out


def load_truth(path):
    """
    Load a truth file.

    Parameters
    ----------
    path : str or pathlib.Path
        ASDF truth file.

    Returns
    -------
    Truth
        The loaded truth, arrays in memory.
    """
    with asdf.open(path, lazy_load=False, memmap=False) as af:
        tree = _materialize(af.tree)
    return Truth(tree)


def _materialize(node):
    if isinstance(node, dict):
        return {k: _materialize(v) for k, v in node.items() if not str(k).startswith("asdf_")}
    if isinstance(node, list):
        return [_materialize(v) for v in node]
    if hasattr(node, "shape") and hasattr(node, "dtype"):
        return np.array(node)
    return node
