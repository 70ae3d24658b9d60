"""Scene description of a synthetic NIRSpec MOS exposure.

A :class:`Scene` says what is on the sky and on the detector: how many slitlets
(and shutters per slitlet) are open, which of them are background, point or
extended sources, the background spectrum and its spatial variation across the
MSA, the defects (undeclared sources in "background" slitlets, unflagged hot
pixels) and the noise level. :meth:`Scene.layout` places the slitlets on the
synthetic MSA so that every spectrum falls entirely on its detector, or, for
G395H, whose spectra are longer than a detector, so that a part of at least
`~jwst_mbkg_plus.synthetic.instrument.PARTIAL_MIN_FRACTION` of the band does.

Examples
--------
>>> from jwst_mbkg_plus.synthetic import Scene
>>> scene = Scene(n_background=4, n_point=1, n_extended=1, noise_fraction=0.0, seed=1)
>>> [s.kind for s in scene.layout()][:2]
['background', 'background']
"""

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

import jwst_mbkg_plus.synthetic.instrument as instrument
from jwst_mbkg_plus.synthetic.calib_error import calibration_error_terms, check_calibration_error
from jwst_mbkg_plus.synthetic.sky import BUILTIN_SKIES, builtin_sky
from jwst_mbkg_plus.synthetic.slitlet import Slitlet, shared_column_slots
from jwst_mbkg_plus.synthetic.spectra import default_background, read_spectrum_csv

__all__ = ["Scene", "Slitlet"]

log = logging.getLogger(__name__)

def _check_fraction(name, value, *, upper=None):
    if not np.isfinite(value) or value < 0 or (upper is not None and value > upper):
        bound = f" and <= {upper}" if upper is not None else ""
        raise ValueError(f"{name} must be >= 0{bound}, got {value!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scene:
    """
    Everything that defines a synthetic exposure, except the instrument.

    All options are keyword-only and validated on creation.

    Parameters
    ----------
    n_background : int
        Background (empty sky) slitlets.
    n_point, n_extended : int
        Slitlets holding a declared point / extended source.
    shutters_per_slitlet : int
        Open shutters per slitlet (1 to 5).
    detectors : tuple of str
        Detectors that get spectra ("NRS1", "NRS2"); slitlets are dealt to them in turn.
    grating : str
        A disperser of `~jwst_mbkg_plus.synthetic.instrument.GRATINGS`: "G235M"
        (with F170LP), "G395M" or "G395H" (with F290LP) or "PRISM" (with CLEAR).
    background : str or pathlib.Path
        "default" for :func:`default_background`, the name of a built-in real
        sky spectrum (``"prism_sky"``, `~jwst_mbkg_plus.synthetic.sky`), or a CSV
        file with columns ``wave`` [micron] and ``flux`` [MJy/sr] (e.g. a real
        ``msa_sky`` spectrum); usable with every disperser.
    background_scale : float
        Multiplies the background spectrum.
    line_center : float or None
        Emission line of the default background [micron]; None puts it at 40%
        of the grating's band.
    gradient_x, gradient_y : float
        Fractional background change from the MSA centre to its edge along x
        (dispersion) and y (along the slits).
    quadrant_offsets : tuple of 4 float
        Fractional background offsets per quadrant (Q1..Q4).
    slit_scatter : float
        Sigma of a per-slitlet random fractional background offset.
    chromatic_quadrants : tuple of 4 (blue, red) pairs, or ()
        Wavelength-dependent fractional offsets per quadrant (Q1..Q4): ``blue`` at
        the short end of the grating's band, ``red`` at the long end, linear in
        between (as msaexp's empirical PRISM sky normalisation, which varies with
        wavelength). Added to ``quadrant_offsets``.
    chromatic_gradient_y : tuple of (blue, red), or ()
        A wavelength-dependent ``gradient_y`` (same convention), added to it.
    calibration_error : tuple
        ``(level_rms, tilt_rms, curvature_rms[, correlation])``: every slitlet's
        light times its own smooth factor in wavelength, which the reference
        files do not know (`~jwst_mbkg_plus.synthetic.calib_error`); () = none.
    n_contaminated : int
        Background slitlets holding an undeclared source.
    contaminant_fraction : float
        Continuum of an undeclared source as a fraction of the local background
        (peak of its spatial profile).
    hot_pixels_per_slit : int
        Unflagged single hot pixels per background slitlet.
    hot_clusters_per_slit : int
        Unflagged hot-pixel clusters (2x2 or 3x1) per background slitlet.
    hot_pixel_level : float
        Hot pixel count rate as a multiple of the local background count rate.
    source_contrast : float
        Peak source surface brightness as a multiple of the background.
    point_sigma : float
        Gaussian sigma of point sources across the slit [pixels].
    noise_fraction : float
        Per-pixel noise sigma as a fraction of the noiseless signal (0 for a noiseless scene).
        Ignored when ``sky_electrons`` is set.
    sky_electrons : float
        Photon-counting noise instead of ``noise_fraction``: the median background of the
        background slitlets' pixels in electrons. Every pixel gets Poisson noise on all of
        its signal plus Gaussian read noise; VAR_POISSON is estimated from the pixel's own
        value (as ramp fitting does, 0 where it is negative) and VAR_RNOISE from the read
        noise. 0 = Gaussian noise.
    read_noise_electrons : float
        Read noise sigma in electrons (with ``sky_electrons``).
    seed : int
        Seed of every random choice.
    """

    n_background: int = 4
    n_point: int = 1
    n_extended: int = 1
    shutters_per_slitlet: int = 3
    detectors: tuple = ("NRS1",)
    grating: str = "G235M"
    background: str = "default"
    background_scale: float = 1.0
    line_center: float | None = None
    gradient_x: float = 0.0
    gradient_y: float = 0.0
    quadrant_offsets: tuple = (0.0, 0.0, 0.0, 0.0)
    slit_scatter: float = 0.0
    chromatic_quadrants: tuple = ()
    chromatic_gradient_y: tuple = ()
    calibration_error: tuple = ()
    n_contaminated: int = 0
    contaminant_fraction: float = 0.3
    hot_pixels_per_slit: int = 0
    hot_clusters_per_slit: int = 0
    hot_pixel_level: float = 200.0
    source_contrast: float = 3.0
    point_sigma: float = 1.2
    noise_fraction: float = 0.0
    sky_electrons: float = 0.0
    read_noise_electrons: float = 6.0
    seed: int = 0

    def __post_init__(self):
        for name in (
            "n_background",
            "n_point",
            "n_extended",
            "n_contaminated",
            "hot_pixels_per_slit",
            "hot_clusters_per_slit",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.n_slitlets < 1:
            raise ValueError("a scene needs at least one slitlet")
        if not 1 <= self.shutters_per_slitlet <= 5:
            raise ValueError("shutters_per_slitlet must be 1..5")
        if self.n_contaminated > self.n_background:
            raise ValueError("n_contaminated cannot exceed n_background")
        if self.grating not in instrument.GRATINGS:
            raise ValueError(f"grating must be one of {sorted(instrument.GRATINGS)}")
        object.__setattr__(self, "detectors", tuple(self.detectors))
        if not self.detectors or set(self.detectors) - set(instrument.DETECTORS):
            raise ValueError(f"detectors must be a non-empty subset of {instrument.DETECTORS}")
        if len(set(self.detectors)) != len(self.detectors):
            raise ValueError("detectors must not repeat")
        if self.background not in ("default", *BUILTIN_SKIES) and not Path(
            self.background
        ).is_file():
            raise ValueError(
                f"background must be 'default', one of {BUILTIN_SKIES} or a CSV file, "
                f"got {self.background!r}"
            )
        object.__setattr__(self, "quadrant_offsets", tuple(float(q) for q in self.quadrant_offsets))
        if len(self.quadrant_offsets) != 4:
            raise ValueError("quadrant_offsets needs 4 values")
        chromatic = tuple(tuple(float(v) for v in pair) for pair in self.chromatic_quadrants)
        if chromatic and (len(chromatic) != 4 or any(len(p) != 2 for p in chromatic)):
            raise ValueError("chromatic_quadrants needs 4 (blue, red) pairs, or ()")
        object.__setattr__(self, "chromatic_quadrants", chromatic)
        gradient = tuple(float(v) for v in self.chromatic_gradient_y)
        if gradient and len(gradient) != 2:
            raise ValueError("chromatic_gradient_y needs a (blue, red) pair, or ()")
        object.__setattr__(self, "chromatic_gradient_y", gradient)
        object.__setattr__(self, "calibration_error", check_calibration_error(
            self.calibration_error))
        _check_fraction("background_scale", self.background_scale)
        _check_fraction("slit_scatter", self.slit_scatter, upper=0.5)
        _check_fraction("contaminant_fraction", self.contaminant_fraction)
        _check_fraction("noise_fraction", self.noise_fraction, upper=10)
        _check_fraction("sky_electrons", self.sky_electrons)
        _check_fraction("read_noise_electrons", self.read_noise_electrons)
        _check_fraction("hot_pixel_level", self.hot_pixel_level)
        _check_fraction("source_contrast", self.source_contrast)
        if not self.point_sigma > 0:
            raise ValueError("point_sigma must be > 0")
        for name in ("gradient_x", "gradient_y"):
            if abs(getattr(self, name)) >= 0.9:
                raise ValueError(f"|{name}| must be < 0.9")
        if any(abs(q) >= 0.9 for q in self.quadrant_offsets):
            raise ValueError("|quadrant_offsets| must be < 0.9")

    # ------------------------------------------------------------------
    @property
    def n_slitlets(self):
        """int: total number of slitlets."""
        return self.n_background + self.n_point + self.n_extended

    @property
    def filter(self):
        """str: the filter paired with the grating."""
        return instrument.GRATINGS[self.grating]["filter"]

    def to_dict(self):
        """
        Return the scene's parameters as JSON-compatible values.

        Returns
        -------
        dict
            Parameter name -> value.
        """
        out = dataclasses.asdict(self)
        out["background"] = str(self.background)
        out["detectors"] = list(self.detectors)
        out["quadrant_offsets"] = list(self.quadrant_offsets)
        out["chromatic_quadrants"] = [list(p) for p in self.chromatic_quadrants]
        out["chromatic_gradient_y"] = list(self.chromatic_gradient_y)
        out["calibration_error"] = list(self.calibration_error)
        if not self.calibration_error:
            del out["calibration_error"]  # digests of scenes without it are unchanged
        return out

    def digest(self):
        """
        Return a short hash of the parameters (and of the background spectrum's content).

        Returns
        -------
        str
            16 hexadecimal digits.
        """
        payload = json.dumps(self.to_dict(), sort_keys=True)
        if self.background in BUILTIN_SKIES:
            table = np.concatenate(builtin_sky(self.background))
            payload += hashlib.sha1(table.tobytes()).hexdigest()
        elif self.background != "default":
            payload += hashlib.sha1(Path(self.background).read_bytes()).hexdigest()
        return hashlib.sha1(payload.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------
    def background_spectrum(self, wavelength):
        """
        Spatially uniform background spectrum B0(lambda).

        Parameters
        ----------
        wavelength : ndarray
            Wavelength in micron.

        Returns
        -------
        ndarray
            Surface brightness in MJy/sr (NaN outside a CSV spectrum's range).
        """
        lam = np.asarray(wavelength, dtype=float)
        if self.background == "default":
            center = self.line_center
            if center is None:
                lo, hi = instrument.GRATINGS[self.grating]["wrange"]
                center = (lo + 0.4 * (hi - lo)) * 1e6
            values = default_background(lam, line_center=center)
        elif self.background in BUILTIN_SKIES:
            wave, flux = builtin_sky(self.background)
            values = np.interp(lam, wave, flux, left=np.nan, right=np.nan)
        else:
            wave, flux = read_spectrum_csv(self.background)
            values = np.interp(lam, wave, flux, left=np.nan, right=np.nan)
        return self.background_scale * values

    def background_modulation(self, *, x_msa, y_msa, quadrant, slitlet_index, wavelength=None):
        """
        Spatial multiplicative factor of the background.

        Parameters
        ----------
        x_msa, y_msa : ndarray
            MSA position [m].
        quadrant : int
            Quadrant 1..4.
        slitlet_index : int
            Index of the slitlet in :meth:`layout` (selects its random offset).
        wavelength : ndarray, optional
            Wavelength in micron, for the chromatic terms (needed when the scene has any).

        Returns
        -------
        ndarray
            ``1 + gx * X + gy * Y + offset[quadrant] + scatter[slitlet]`` with X, Y
            the MSA position scaled to [-1, 1], plus the chromatic terms.
        """
        half_x = instrument.N_ROWS * instrument.MSA_PITCH[0] + instrument.QUADRANT_GAP / 2
        half_y = instrument.N_COLUMNS * instrument.MSA_PITCH[1] + instrument.QUADRANT_GAP / 2
        scatter = self._slit_scatter()[slitlet_index]
        factor = (
            1.0
            + self.gradient_x * np.asarray(x_msa) / half_x
            + self.gradient_y * np.asarray(y_msa) / half_y
            + self.quadrant_offsets[quadrant - 1]
            + scatter
        )
        if self.chromatic_quadrants or self.chromatic_gradient_y:
            if wavelength is None:
                raise ValueError("a chromatic background modulation needs the wavelength")
            lo, hi = instrument.GRATINGS[self.grating]["wrange"]
            u = (np.asarray(wavelength, dtype=float) - lo * 1e6) / ((hi - lo) * 1e6)
            if self.chromatic_quadrants:
                blue, red = self.chromatic_quadrants[quadrant - 1]
                factor = factor + blue + (red - blue) * u
            if self.chromatic_gradient_y:
                blue, red = self.chromatic_gradient_y
                factor = factor + (blue + (red - blue) * u) * np.asarray(y_msa) / half_y
        return factor

    def calibration_errors(self):
        """ndarray (n_slitlets, 3): level, tilt, curvature of each slitlet's calibration."""
        return calibration_error_terms(self.calibration_error, self.layout(), self.seed)

    def _slit_scatter(self):
        rng = np.random.default_rng([self.seed, 1])
        return (
            rng.normal(0.0, self.slit_scatter, self.n_slitlets)
            if self.slit_scatter
            else (np.zeros(self.n_slitlets))
        )

    def source_spectrum(self, wavelength, *, kind, source_id):
        """
        Surface brightness spectrum of a declared source (peak of its profile).

        Parameters
        ----------
        wavelength : ndarray
            Wavelength in micron.
        kind : str
            "point" or "extended".
        source_id : int
            Source id (varies the slope).

        Returns
        -------
        ndarray
            MJy/sr: ``source_contrast * B0(lambda_mid) * (lambda/lambda_mid)**slope``.
        """
        lo, hi = instrument.GRATINGS[self.grating]["wrange"]
        mid = 0.5 * (lo + hi) * 1e6
        slope = -1.0 + 0.5 * (source_id % 5)
        level = self.source_contrast * float(np.nanmean(self.background_spectrum(np.array([mid]))))
        if kind not in ("point", "extended"):
            raise ValueError(f"kind must be 'point' or 'extended', got {kind!r}")
        return level * (np.asarray(wavelength) / mid) ** slope

    # ------------------------------------------------------------------
    def layout(self):
        """
        Place the slitlets on the MSA.

        Slitlets are dealt to ``detectors`` in turn; on each detector they are
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

        Returns
        -------
        list of Slitlet
            In slitlet-id order.

        Raises
        ------
        ValueError
            If the slitlets do not fit on the detectors.
        """
        rng = np.random.default_rng([self.seed, 0])
        kinds = ["background"] * self.n_background + ["point"] * self.n_point
        kinds += ["extended"] * self.n_extended
        n_det = len(self.detectors)
        per_det = {d: [] for d in self.detectors}
        for i, kind in enumerate(kinds):
            per_det[self.detectors[i % n_det]].append((i, kind))
        step = self.shutters_per_slitlet + 1
        partial = not any(
            instrument.detector_of_shutter(q, r, self.grating, margin=30) is not None
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
                    f"{len(items)} slitlets of {self.shutters_per_slitlet} shutters do not fit "
                    f"on {det} (at most {capacity})"
                )
            quads = (3, 4) if det == "NRS1" else (1, 2)
            if partial:
                all_rows = np.arange(1, instrument.N_ROWS + 1)
                rows = {
                    q: [
                        int(r)
                        for r in all_rows[
                            instrument.detector_fractions(q, all_rows, self.grating)[det]
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
                        if instrument.detector_of_shutter(q, r, self.grating, margin=30) == det
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
                primary = self.shutters_per_slitlet // 2
                source_id = 0 if kind == "background" else 1000 + i + 1
                source_y = 0.5 if kind != "point" else float(rng.uniform(0.35, 0.65))
                slitlets[i] = Slitlet(
                    slitlet_id=i + 1,
                    quadrant=q,
                    row=row,
                    first_column=first_col,
                    n_shutters=self.shutters_per_slitlet,
                    kind=kind,
                    source_id=source_id,
                    primary=primary,
                    source_y=source_y,
                    detector=det,
                )
        return slitlets
