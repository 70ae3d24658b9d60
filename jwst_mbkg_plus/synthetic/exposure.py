"""Paint a synthetic NIRSpec MOS count-rate (``_rate.fits``) exposure.

Geometry comes from jwst's own WCS (``jwst.assign_wcs.assign_wcs.load_wcs`` on
the synthetic instrument's reference files): for every pixel of every open
slitlet it gives the wavelength and the slit-frame y. The calibration is
analytic: the background is painted as ``B_true(lambda, position) / F`` with
``F`` from :meth:`CalibrationTruth.extended_factor`, the factor that turns DN/s
into MJy/sr for an extended source after flat_field, pathloss, barshadow and
photom. Nothing here runs a jwst calibration step.

Sources are painted the same way (surface brightness / F), i.e. both point and
extended sources are calibrated as *extended* by construction; a point source
therefore does not come out of the pipeline's point-source calibration at its
painted surface brightness. The background truth is what the tests compare with.

Noise is Gaussian with per-pixel sigma ``noise_fraction * signal`` (signal =
noiseless count rate); ``VAR_POISSON + VAR_RNOISE`` equals the injected variance
(70% / 30% split, plus a tiny floor so that no variance is zero) and
``ERR = sqrt(VAR_POISSON + VAR_RNOISE)``. With ``Scene.sky_electrons`` the noise
is photon counting instead: Poisson on all signal plus Gaussian read noise, with
VAR_POISSON estimated from each pixel's own value as ramp fitting does. Hot
pixels are added after the noise, with DQ left 0.
"""

import logging
from pathlib import Path

import numpy as np
from jwst.assign_wcs import nirspec
from jwst.assign_wcs.assign_wcs import load_wcs
from jwst.assign_wcs.util import NoDataOnDetectorError
from stdatamodels.jwst import datamodels

import jwst_mbkg_plus.synthetic.instrument as instrument
from jwst_mbkg_plus.jwst_internals import pixel_index
from jwst_mbkg_plus.synthetic.calib_error import calibration_error_factor
from jwst_mbkg_plus.synthetic.msa_file import PROGRAM
from jwst_mbkg_plus.synthetic.noise import add_hot_pixels, photon_noise
from jwst_mbkg_plus.synthetic.point_sources import (
    PIXELS_PER_SLIT_UNIT,
    point_profile,
    point_sources_truth,
)

__all__ = [
    "PIXELS_PER_SLIT_UNIT",
    "RNOISE_SHARE",
    "PaintedSlit",
    "load_synthetic_wcs",
    "make_rate_model",
    "paint_detector",
    "skeleton_model",
    "slit_geometry",
]

log = logging.getLogger(__name__)

#: Fraction of the injected variance written to VAR_RNOISE (the rest to VAR_POISSON).
RNOISE_SHARE = 0.3


def skeleton_model(scene, *, detector, msa_name):
    """
    Create an empty full-frame ``ImageModel`` with all the metadata spec2 needs.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        The scene (filter, grating).
    detector : str
        "NRS1" or "NRS2".
    msa_name : str
        ``MSAMETFL``: the MSA file name, relative to the rate file's folder.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.ImageModel`
        2048 x 2048, SCI/ERR/DQ/VAR_* zero.
    """
    shape = (2048, 2048)
    model = datamodels.ImageModel(shape)
    model.err = np.zeros(shape, np.float32)
    model.dq = np.zeros(shape, np.uint32)
    model.var_poisson = np.zeros(shape, np.float32)
    model.var_rnoise = np.zeros(shape, np.float32)
    m = model.meta
    m.telescope = "JWST"
    m.instrument.name = "NIRSPEC"
    m.instrument.detector = detector
    m.instrument.filter = scene.filter
    m.instrument.grating = scene.grating
    m.instrument.msa_metadata_file = msa_name
    m.instrument.msa_metadata_id = 1
    m.instrument.gwa_xtilt = 0.0
    m.instrument.gwa_ytilt = 0.0
    m.instrument.gwa_tilt = 37.0
    m.instrument.fixed_slit = "NONE"
    m.instrument.lamp_state = "NONE"
    m.instrument.lamp_mode = "MSASPEC"
    m.exposure.type = "NRS_MSASPEC"
    m.exposure.readpatt = "NRSIRS2RAPID"
    m.exposure.nints = 1
    m.exposure.ngroups = 20
    m.exposure.nframes = 1
    m.exposure.groupgap = 0
    m.exposure.frame_time = 14.58889
    m.exposure.group_time = 14.58889
    m.exposure.integration_time = 291.7778
    m.exposure.exposure_time = 291.7778
    m.exposure.effective_exposure_time = 291.7778
    m.exposure.duration = 306.0
    m.exposure.start_time = 60000.0
    m.exposure.mid_time = 60000.0017
    m.exposure.end_time = 60000.0035
    m.observation.date = "2023-02-25"
    m.observation.time = "00:00:00.000"
    m.observation.program_number = f"{PROGRAM:05d}"
    m.observation.observation_number = "001"
    m.observation.visit_number = "001"
    m.observation.visit_group = "01"
    m.observation.sequence_id = "1"
    m.observation.activity_id = "01"
    m.observation.exposure_number = "00001"
    m.dither.position_number = 1
    m.dither.primary_type = "NONE"
    m.subarray.name = "FULL"
    m.subarray.xstart = 1
    m.subarray.ystart = 1
    m.subarray.xsize = 2048
    m.subarray.ysize = 2048
    m.subarray.fastaxis = 2 if detector == "NRS1" else -2
    m.subarray.slowaxis = 1 if detector == "NRS1" else -1
    m.target.ra = 53.16
    m.target.dec = -27.78
    m.target.source_type = None
    m.pointing.ra_v1 = 53.16
    m.pointing.dec_v1 = -27.78
    m.pointing.pa_v3 = 0.0
    m.wcsinfo.v2_ref = instrument.V2V3_CENTER[0]
    m.wcsinfo.v3_ref = instrument.V2V3_CENTER[1]
    m.wcsinfo.ra_ref = 53.16
    m.wcsinfo.dec_ref = -27.78
    m.wcsinfo.roll_ref = 0.0
    m.wcsinfo.v3yangle = 138.5
    m.wcsinfo.vparity = -1
    m.velocity_aberration.scale_factor = 1.0
    m.bunit_data = "DN/s"
    m.bunit_err = "DN/s"
    m.filename = f"jw{PROGRAM:05d}001001_01101_00001_{detector.lower()}_rate.fits"
    return model


def slit_geometry(wcs_model, slit):
    """
    Evaluate jwst's WCS of one open slit on its extract_2d cutout.

    Parameters
    ----------
    wcs_model : `~stdatamodels.jwst.datamodels.ImageModel`
        Model with the full MOS WCS (after ``load_wcs``).
    slit : `~stdatamodels.jwst.transforms.models.Slit`
        The open slit.

    Returns
    -------
    dict
        ``xlo, xhi, ylo, yhi`` (0-based, hi exclusive, as extract_2d cuts) and
        2-D arrays ``x``, ``y`` (full-frame pixels), ``wavelength`` [micron],
        ``slit_y`` (slit frame), ``x_msa``, ``y_msa`` [m].
    """
    slit_wcs = nirspec.nrs_wcs_set_input(wcs_model, slit.name)
    xlo, xhi = (int(v) for v in pixel_index(slit_wcs.bounding_box[0]))
    ylo, yhi = (int(v) for v in pixel_index(slit_wcs.bounding_box[1]))
    y, x = np.mgrid[ylo:yhi, xlo:xhi].astype(float)
    det2slit = slit_wcs.get_transform("detector", "slit_frame")
    xs, ys, lam = det2slit(x, y, with_bounding_box=False)
    slit2msa = slit_wcs.get_transform("slit_frame", "msa_frame")
    x_msa, y_msa, _ = slit2msa(xs, ys, lam)
    return {
        "xlo": xlo,
        "xhi": xhi,
        "ylo": ylo,
        "yhi": yhi,
        "x": x,
        "y": y,
        "wavelength": np.asarray(lam) * 1e6,
        "slit_y": np.asarray(ys),
        "x_msa": np.asarray(x_msa),
        "y_msa": np.asarray(y_msa),
    }


class PaintedSlit:
    """
    The truth of one painted slit, aligned with its extract_2d cutout.

    Attributes
    ----------
    name : int
        Slitlet id (``SlitModel.name`` is its string).
    slitlet : `~jwst_mbkg_plus.synthetic.scene.Slitlet`
        Scene description.
    xstart, ystart : int
        1-based full-frame position of the cutout's first pixel, as ``SlitModel.xstart``.
    arrays : dict of ndarray
        ``wavelength`` [micron], ``slit_y``, ``factor`` (MJy/sr per DN/s),
        ``background`` [MJy/sr, NaN where nothing is painted], ``source`` [MJy/sr],
        ``contaminant`` [MJy/sr], ``counts`` (noiseless DN/s), ``valid`` (bool).
    """

    def __init__(self, name, slitlet, xstart, ystart, arrays):
        self.name = name
        self.slitlet = slitlet
        self.xstart = xstart
        self.ystart = ystart
        self.arrays = arrays


def _unit_factor(**kwargs):
    return np.ones(np.shape(kwargs["wavelength"]))


def paint_detector(scene, *, detector, wcs_model, calibration=None, rng=None):
    """
    Paint the noiseless and noisy count rates of one detector.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        The scene.
    detector : str
        "NRS1" or "NRS2".
    wcs_model : `~stdatamodels.jwst.datamodels.ImageModel`
        A model of that detector carrying jwst's MOS WCS.
    calibration : `~jwst_mbkg_plus.synthetic.calibration_truth.CalibrationTruth` or None
        Analytic calibration; None paints with F = 1 (geometry tests only).
    rng : `numpy.random.Generator`, optional
        Random generator for the defects and noise; default from ``scene.seed``.

    Returns
    -------
    dict
        ``sci``, ``var_poisson``, ``var_rnoise`` (2048 x 2048 float32), ``slits``
        (list of `PaintedSlit`), ``hot_pixels`` (structured array), ``contaminated``
        (list of slitlet ids), ``overlap_pixels`` (int).
    """
    if rng is None:
        rng = np.random.default_rng([scene.seed, 2, instrument.DETECTORS.index(detector)])
    factor_fn = calibration.extended_factor if calibration is not None else _unit_factor
    layout = {s.slitlet_id: (i, s) for i, s in enumerate(scene.layout())}
    calib_terms = scene.calibration_errors()
    contaminated = _contaminated_ids(scene, layout)
    open_slits = wcs_model.meta.wcs.get_transform("gwa", "slit_frame").slits
    counts = np.zeros((2048, 2048), dtype=np.float64)
    coverage = np.zeros((2048, 2048), dtype=np.int16)
    overlap = 0
    painted = []
    sigma_src = scene.point_sigma / PIXELS_PER_SLIT_UNIT
    for slit in open_slits:
        index, slitlet = layout[int(slit.name)]
        geo = slit_geometry(wcs_model, slit)
        lam = geo["wavelength"]
        ys = geo["slit_y"]
        finite = np.isfinite(lam) & np.isfinite(ys)
        factor = np.full(lam.shape, np.nan)
        factor[finite] = factor_fn(
            wavelength=lam[finite],
            x=geo["x"][finite],
            y=geo["y"][finite],
            detector=detector,
            quadrant=slit.quadrant,
            shutter_column=slit.xcen,
            shutter_row=slit.ycen,
            slit_y=ys[finite],
            shutter_config=slit.shutter_state,
            slit_yscale=slit.slit_yscale if slit.slit_yscale else 1.15,
        )
        valid = np.isfinite(lam) & np.isfinite(factor) & (factor > 0)
        with np.errstate(invalid="ignore"):
            bkg = scene.background_spectrum(lam) * scene.background_modulation(
                x_msa=geo["x_msa"], y_msa=geo["y_msa"], quadrant=slit.quadrant,
                slitlet_index=index, wavelength=lam,
            )
        valid &= np.isfinite(bkg)
        source = np.zeros_like(lam)
        # Source centre in the slit frame: jwst's source_ypos (shutter units, 0 = centre).
        y_src = float(slit.source_ypos)
        if slitlet.kind == "point":
            source = scene.source_spectrum(lam, kind="point", source_id=slitlet.source_id)
            source = source * point_profile(scene, slitlet, ys, y_src)
        elif slitlet.kind == "extended":
            source = scene.source_spectrum(lam, kind="extended", source_id=slitlet.source_id)
            source = source * np.exp(-0.5 * ((ys - y_src) / 1.5) ** 2)
        contaminant = np.zeros_like(lam)
        if slitlet.slitlet_id in contaminated:
            half = 1.15 * (slitlet.n_shutters - 1) / 2
            y_c = rng.uniform(-half - 0.3, half + 0.3)
            contaminant = scene.contaminant_fraction * bkg
            contaminant = contaminant * np.exp(-0.5 * ((ys - y_c) / sigma_src / 1.5) ** 2)
        # The slitlet's own calibration error multiplies all its light; the
        # truth records the calibrated values the pipeline sees.
        calib = calibration_error_factor(calib_terms[index], lam, scene.grating)
        bkg, source, contaminant = bkg * calib, source * calib, contaminant * calib
        total_sb = np.where(valid, bkg + source + contaminant, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(valid, total_sb / np.where(valid, factor, 1.0), 0.0)
        window = np.s_[geo["ylo"] : geo["yhi"], geo["xlo"] : geo["xhi"]]
        taken = valid & (coverage[window] > 0)
        overlap += int(taken.sum())
        counts[window] += rate
        coverage[window] += valid
        arrays = {
            "wavelength": np.where(valid, lam, np.nan).astype(np.float32),
            "slit_y": np.where(valid, ys, np.nan).astype(np.float32),
            "factor": np.where(valid, factor, np.nan).astype(np.float32),
            "background": np.where(valid & ~taken, bkg, np.nan).astype(np.float32),
            "source": np.where(valid, source, 0.0).astype(np.float32),
            "contaminant": np.where(valid, contaminant, 0.0).astype(np.float32),
            "counts": rate.astype(np.float32),
            "calibration_error": np.where(valid, calib, np.nan).astype(np.float32),
            "valid": valid & ~taken,
        }
        if slitlet.kind == "point":
            arrays["point_sources"] = point_sources_truth(scene, slitlet, y_src)
        painted.append(PaintedSlit(int(slit.name), slitlet, geo["xlo"] + 1, geo["ylo"] + 1, arrays))
    # A pixel painted by two slits has no single-slit truth: drop it from both.
    for p in painted:
        window = np.s_[
            p.ystart - 1 : p.ystart - 1 + p.arrays["valid"].shape[0],
            p.xstart - 1 : p.xstart - 1 + p.arrays["valid"].shape[1],
        ]
        shared = coverage[window] > 1
        p.arrays["valid"] &= ~shared
        p.arrays["background"][shared] = np.nan
    if overlap:
        log.warning(
            "%s: %d pixels are covered by two slits (excluded from truth)", detector, overlap
        )

    # Noise on the noiseless signal, then hot pixels (not in the variance).
    signal = counts
    positive = signal[signal > 0]
    floor = 1e-4 * (float(np.median(positive)) if positive.size else 1.0)
    if scene.sky_electrons:
        sci, var_poisson, var_rnoise = photon_noise(scene, painted, signal, rng, floor)
    else:
        sigma = scene.noise_fraction * np.abs(signal)
        variance = sigma**2 + floor**2
        sci = signal + (rng.standard_normal(signal.shape) * sigma if scene.noise_fraction else 0.0)
        var_poisson = (1 - RNOISE_SHARE) * variance
        var_rnoise = RNOISE_SHARE * variance
    hot = add_hot_pixels(scene, painted, sci, signal, rng, detector)
    return {
        "sci": sci.astype(np.float32),
        "var_poisson": var_poisson.astype(np.float32),
        "var_rnoise": var_rnoise.astype(np.float32),
        "slits": painted,
        "hot_pixels": hot,
        "contaminated": sorted(c for c in contaminated if c in {p.name for p in painted}),
        "overlap_pixels": overlap,
    }


def _contaminated_ids(scene, layout):
    bkg_ids = sorted(sid for sid, (_, s) in layout.items() if s.kind == "background")
    if not scene.n_contaminated:
        return set()
    rng = np.random.default_rng([scene.seed, 3])
    return {int(v) for v in rng.choice(bkg_ids, scene.n_contaminated, replace=False)}


def make_rate_model(scene, *, detector, msa_name, painted):
    """
    Build the ``_rate`` ImageModel from painted arrays.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        The scene.
    detector : str
        Detector name.
    msa_name : str
        ``MSAMETFL`` value.
    painted : dict
        Output of :func:`paint_detector`.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.ImageModel`
        The count-rate model (no WCS attached).
    """
    model = skeleton_model(scene, detector=detector, msa_name=msa_name)
    model.data = painted["sci"]
    model.var_poisson = painted["var_poisson"]
    model.var_rnoise = painted["var_rnoise"]
    model.err = np.sqrt(painted["var_poisson"] + painted["var_rnoise"]).astype(np.float32)
    model.dq = np.zeros((2048, 2048), dtype=np.uint32)
    return model


def load_synthetic_wcs(scene, *, detector, refs, msa_path):
    """
    Attach jwst's MOS WCS to a skeleton model, from explicit reference files.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        The scene.
    detector : str
        Detector name.
    refs : dict
        Reftype -> path for the WCS reftypes of this filter/grating.
    msa_path : str or pathlib.Path
        The MSA metadata file.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.ImageModel` or None
        The model with ``meta.wcs``, or None if no slit falls on the detector.
    """
    model = skeleton_model(scene, detector=detector, msa_name=Path(msa_path).name)
    reference_files = {k: str(v) for k, v in refs.items()}
    reference_files["msametafile"] = str(msa_path)
    for reftype in (
        "distortion",
        "filteroffset",
        "specwcs",
        "regions",
        "chromcorr",
        "ifupost",
        "ifufore",
        "ifuslicer",
    ):
        reference_files.setdefault(reftype, "N/A")
    try:
        model = load_wcs(model, reference_files, nrs_slit_y_range=[-0.55, 0.55])
    except NoDataOnDetectorError:
        return None
    if model.meta.cal_step.assign_wcs != "COMPLETE":
        return None
    return model
