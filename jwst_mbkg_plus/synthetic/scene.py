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
from jwst_mbkg_plus.synthetic.layout import scene_layout
from jwst_mbkg_plus.synthetic.sky import BUILTIN_SKIES, builtin_sky
from jwst_mbkg_plus.synthetic.slitlet import Slitlet
from jwst_mbkg_plus.synthetic.spectra import default_background, read_spectrum_csv

__all__ = ["Scene", "Slitlet"]

log = logging.getLogger(__name__)

def _check_fraction(name, value, *, upper=None):
    if not np.isfinite(value) or value < 0 or (upper is not None and value > upper):
        bound = f" and <= {upper}" if upper is not None else ""
        raise ValueError(f"{name} must be >= 0{bound}, got {value!r}")


#: Options added after scenes were cached, left out of `Scene.to_dict` at their defaults.
_NEW_DEFAULTS = {"point_profile": "gaussian", "moffat_beta": 2.5, "n_two_source": 0,
                 "companion_flux": 0.5}


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
        Gaussian sigma of point sources across the slit [pixels]; the Moffat
        profile has the same FWHM (2.355 ``point_sigma``).
    point_profile : str
        Profile of point sources along the slit: "gaussian", or "moffat"
        (`~jwst_mbkg_plus.synthetic.spec3_scenes.source_profile` with
        ``moffat_beta``), whose wings reach the neighbouring shutters.
    moffat_beta : float
        Moffat index of the "moffat" profile (2.5-3 for a realistic PSF's wings).
    n_two_source : int
        Point-source slitlets that also hold a second, undeclared point source
        in a shutter next to the primary one (needs ``shutters_per_slitlet`` >= 2).
    companion_flux : float
        That second source's peak surface brightness relative to the primary's.
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
    point_profile: str = "gaussian"
    moffat_beta: float = 2.5
    n_two_source: int = 0
    companion_flux: float = 0.5
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
            "n_two_source",
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
        if self.point_profile not in ("gaussian", "moffat"):
            raise ValueError(f"point_profile must be 'gaussian' or 'moffat', "
                             f"got {self.point_profile!r}")
        if not self.moffat_beta > 1:
            raise ValueError(f"moffat_beta must be > 1, got {self.moffat_beta!r}")
        if self.n_two_source > self.n_point or (self.n_two_source
                                                and self.shutters_per_slitlet < 2):
            raise ValueError("n_two_source needs as many point-source slitlets, of at "
                             "least 2 shutters")
        _check_fraction("companion_flux", self.companion_flux)
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
        # Digests of scenes without these options are unchanged.
        if not self.calibration_error:
            del out["calibration_error"]
        for name, default in _NEW_DEFAULTS.items():
            if out[name] == default:
                del out[name]
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
        Place the slitlets on the MSA (`~jwst_mbkg_plus.synthetic.layout.scene_layout`).

        Returns
        -------
        list of Slitlet
            In slitlet-id order.
        """
        return scene_layout(self)
