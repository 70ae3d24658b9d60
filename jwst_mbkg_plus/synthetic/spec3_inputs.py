"""Seeded synthetic inputs for the calwebb_spec3 master background step.

For each mode the plus step supports (``NRS_FIXEDSLIT``, ``NRS_IFU``,
``MIR_LRS-FIXEDSLIT``, ``MIR_MRS``) :func:`make_spec3_inputs` builds:

* ``cal``-like science models of the datamodel type jwst's
  ``master_background`` step handles for that mode (`MultiSlitModel` with a
  2-D ``wavelength`` array; `ImageModel` with a simple detector -> world gwcs;
  `IFUImageModel` with either a plain MIRI-like gwcs or a coordinate-based
  NIRSpec IFU gwcs of 30 slices that `jwst.assign_wcs.nirspec.nrs_ifu_wcs`
  understands), carrying a known background ``B(lambda)`` (smooth continuum
  plus an emission line) times the NIRSpec point-source correction factor
  where jwst applies one, a point source confined to a band of pixels, and
  per-pixel Gaussian noise whose variance is split over ``VAR_POISSON``,
  ``VAR_RNOISE`` and ``VAR_FLAT`` (``ERR`` = their quadrature sum);
* ``x1d``-like background members (`MultiSpecModel`) whose background column
  (``BACKGROUND`` for nodded data, ``SURF_BRIGHT`` for dedicated background
  exposures, as jwst's step decides) holds ``B`` sampled on a slightly
  shifted wavelength grid per member, with Gaussian noise and a consistent
  ``BKGD_ERROR`` / ``SB_ERROR``; optionally one member contaminated by
  ``+contamination x`` the continuum;
* an in-memory `~jwst.datamodels.ModelContainer` or an association on disk.

Everything is seeded (`numpy.random.default_rng`) and small (runs in well
under a second per mode). Noise in the background spectra is independent of
the science pixels' noise (for nodded data the background spectrum is the
mean over many pixels, so the correlation is negligible).
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import gwcs
import numpy as np
from astropy import coordinates as coord
from astropy import units as u
from astropy.modeling import bind_bounding_box
from astropy.modeling.models import Const1D, Identity, Mapping, Planar2D, Shift
from gwcs import coordinate_frames as cf
from gwcs import selector
from jwst.datamodels import ModelContainer
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

__all__ = [
    "MODES",
    "Spec3Inputs",
    "injected_background",
    "make_container",
    "make_spec3_inputs",
    "write_association",
]

log = logging.getLogger(__name__)

#: Exposure types covered by the factory.
MODES = ("NRS_FIXEDSLIT", "NRS_IFU", "MIR_LRS-FIXEDSLIT", "MIR_MRS")

# Per-mode geometry: wavelength range [um], shape (ny, nx), dispersion axis.
_MODE_SETUP = {
    "NRS_FIXEDSLIT": {"wave": (1.70, 3.10), "shape": (32, 400), "n_spec": 400},
    "NRS_IFU": {"wave": (1.70, 3.10), "shape": (150, 300), "n_spec": 300},
    "MIR_LRS-FIXEDSLIT": {"wave": (5.0, 12.0), "shape": (350, 44), "n_spec": 350},
    "MIR_MRS": {"wave": (4.90, 5.74), "shape": (400, 60), "n_spec": 400},
}
_IFU_NSLICE = 30
_IFU_SLICE_ROWS = 4  # rows per slice, then one gap row
_DO_NOT_USE = dqflags.pixel["DO_NOT_USE"]
_NON_SCIENCE = dqflags.pixel["NON_SCIENCE"]


def injected_background(wavelength, *, mode):
    """
    Return the injected background ``B(lambda)`` in MJy/sr.

    A smooth continuum rising by ~40 % across the band plus one Gaussian
    emission line (peak 25 % of the continuum, sigma 1.2 % of the band) at
    60 % of the band.

    Parameters
    ----------
    wavelength : array_like
        Wavelengths in micron; NaN gives NaN.
    mode : str
        One of `MODES`: sets the band.

    Returns
    -------
    ndarray
        Surface brightness, MJy/sr.
    """
    w0, w1 = _MODE_SETUP[mode]["wave"]
    t = (np.asarray(wavelength, dtype=np.float64) - w0) / (w1 - w0)
    continuum = _continuum(t)
    line = 0.25 * continuum * np.exp(-0.5 * ((t - 0.6) / 0.012) ** 2)
    return continuum + line


def _continuum(t):
    return 1.0 + 0.4 * t + 0.1 * np.sin(3.0 * t)


@dataclass
class Spec3Inputs:
    """
    Synthetic spec3 inputs and their truth.

    Attributes
    ----------
    mode : str
        Exposure type.
    science : list of `~stdatamodels.jwst.datamodels.JwstDataModel`
        ``cal``-like science models.
    backgrounds : list of `~stdatamodels.jwst.datamodels.MultiSpecModel`
        ``x1d``-like background members.
    true_background : list of ndarray
        Per science model, the injected 2-D background in the model's
        calibrated units (for `MultiSlitModel`, one entry per model holding a
        list with one array per slit). NaN where there is no data.
    background_mask : list of ndarray of bool
        Per science model (list per slit for `MultiSlitModel`), True in
        background-dominated pixels (no source flux, valid data).
    contaminated : int or None
        Index in ``backgrounds`` of the contaminated member.
    column : str
        The x1d column that holds the background (``"BACKGROUND"`` or
        ``"SURF_BRIGHT"``).
    params : dict
        The options used.
    """

    mode: str
    science: list
    backgrounds: list
    true_background: list
    background_mask: list
    contaminated: int | None
    column: str
    params: dict = field(default_factory=dict)


def make_spec3_inputs(
    mode,
    *,
    n_science=2,
    n_background=4,
    contaminate=None,
    contamination=0.3,
    nodded=None,
    point_source=None,
    pixel_noise=0.02,
    spectrum_noise=0.003,
    source_level=5.0,
    seed=0,
):
    """
    Build seeded synthetic science and background inputs for one mode.

    Parameters
    ----------
    mode : str
        One of `MODES`.
    n_science : int, optional
        Number of science exposures.
    n_background : int, optional
        Number of background ``x1d`` members.
    contaminate : int or None, optional
        Index of the background member to contaminate.
    contamination : float, optional
        Contamination as a fraction of the background continuum.
    nodded : bool or None, optional
        Nodded data (background in the ``BACKGROUND`` column,
        ``bkgdtarg = False``) or dedicated background exposures
        (``SURF_BRIGHT``, ``bkgdtarg = True``). Default: True except for
        MIRI MRS. jwst always reads ``BACKGROUND`` for MIRI MRS, so both
        columns hold the background there when ``nodded`` is False.
    point_source : bool or None, optional
        Science target is a point source (NIRSpec FS / IFU get jwst's
        point-source correction factors). Default: True except MIRI MRS.
    pixel_noise : float, optional
        Per-pixel noise sigma of the science data, as a fraction of ``B``.
    spectrum_noise : float, optional
        Noise sigma of each background spectrum, as a fraction of ``B``.
    source_level : float, optional
        Peak source brightness in units of the mean background.
    seed : int, optional
        Seed for `numpy.random.default_rng`.

    Returns
    -------
    Spec3Inputs
        Models and truth.
    """
    if mode not in _MODE_SETUP:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if contaminate is not None and not 0 <= contaminate < n_background:
        raise ValueError(f"contaminate must index one of {n_background} background members")
    if nodded is None:
        nodded = mode != "MIR_MRS"
    if point_source is None:
        point_source = mode != "MIR_MRS"
    rng = np.random.default_rng(seed)
    params = {
        "n_science": n_science,
        "n_background": n_background,
        "contaminate": contaminate,
        "contamination": contamination,
        "nodded": nodded,
        "point_source": point_source,
        "pixel_noise": pixel_noise,
        "spectrum_noise": spectrum_noise,
        "source_level": source_level,
        "seed": seed,
    }
    builder = {
        "NRS_FIXEDSLIT": _nrs_fs_science,
        "NRS_IFU": _nrs_ifu_science,
        "MIR_LRS-FIXEDSLIT": _miri_lrs_science,
        "MIR_MRS": _miri_mrs_science,
    }[mode]
    science, truth, masks = [], [], []
    for i in range(n_science):
        model, bkg, mask = builder(i, rng, params)
        science.append(model)
        truth.append(bkg)
        masks.append(mask)
    column = "BACKGROUND" if (nodded or mode == "MIR_MRS") else "SURF_BRIGHT"
    backgrounds = [
        _background_x1d(mode, j, rng, params, contaminated=(j == contaminate))
        for j in range(n_background)
    ]
    return Spec3Inputs(mode, science, backgrounds, truth, masks, contaminate, column, params)


# --------------------------------------------------------------------------- helpers


def _set_common_meta(model, mode, index, *, bkgdtarg=False):
    instrument = "NIRSPEC" if mode.startswith("NRS") else "MIRI"
    model.meta.instrument.name = instrument
    if instrument == "NIRSPEC":
        model.meta.instrument.detector = "NRS1"
        model.meta.instrument.filter = "F170LP"
        model.meta.instrument.grating = "G235M"
    elif mode == "MIR_MRS":
        model.meta.instrument.detector = "MIRIFUSHORT"
        model.meta.instrument.channel = "12"
        model.meta.instrument.band = "SHORT"
    else:
        model.meta.instrument.detector = "MIRIMAGE"
        model.meta.instrument.filter = "P750L"
    model.meta.exposure.type = mode
    model.meta.exposure.exposure_time = 1000.0 + 10.0 * index
    model.meta.exposure.integration_time = 1000.0 + 10.0 * index
    model.meta.exposure.start_time = 60000.0 + 0.01 * index
    model.meta.observation.date = "2025-01-01"
    model.meta.observation.time = "00:00:00"
    model.meta.observation.bkgdtarg = bkgdtarg
    model.meta.observation.program_number = "01234"
    model.meta.observation.observation_number = "001"
    model.meta.observation.visit_number = "001"
    model.meta.observation.visit_group = "01"
    model.meta.observation.sequence_id = "1"
    model.meta.observation.activity_id = "01"
    model.meta.observation.exposure_number = f"{index + 1:05d}"
    model.meta.target.ra = 10.0
    model.meta.target.dec = 20.0
    model.meta.cal_step.bkg_subtract = "SKIPPED"


def _noisy(bkg, source, rng, params):
    """Science pixels: B + source + noise; variances consistent with the noise."""
    sigma = params["pixel_noise"] * bkg
    data = bkg + source + rng.normal(size=bkg.shape) * np.nan_to_num(sigma)
    var = sigma**2
    return (
        data.astype(np.float32),
        (0.60 * var).astype(np.float32),
        (0.35 * var).astype(np.float32),
        (0.05 * var).astype(np.float32),
    )


def _fill_arrays(model, data, vp, vr, vf, dq):
    model.data = data
    model.dq = dq
    model.var_poisson = vp
    model.var_rnoise = vr
    model.var_flat = vf
    model.err = np.sqrt(vp.astype(np.float64) + vr + vf).astype(np.float32)


def _profile(coord_, centre, half_width):
    """Source profile: a cosine bump, exactly zero beyond ``half_width``."""
    d = np.abs(coord_ - centre) / half_width
    return np.where(d < 1.0, 0.5 * (1.0 + np.cos(np.pi * np.minimum(d, 1.0))), 0.0)


def _simple_wcs(wave_fn_model, *, mode):
    """Detector (x, y) -> (alpha, beta, lambda) with a Planar2D wavelength."""
    det2world = Mapping((0, 1, 0, 1), n_inputs=2) | Identity(2) & wave_fn_model
    detector = cf.Frame2D(name="detector", axes_order=(0, 1))
    spatial = cf.Frame2D(name="spatial", axes_names=("alpha", "beta"), unit=(u.arcsec, u.arcsec))
    spectral = cf.SpectralFrame(
        name="spectral", axes_order=(2,), unit=(u.micron,), axes_names=("wavelength",)
    )
    world = cf.CompositeFrame([spatial, spectral], name="world")
    log.debug("simple gwcs for %s", mode)
    return gwcs.WCS([(detector, det2world), (world, None)])


# --------------------------------------------------------------------------- NIRSpec FS


def _nrs_fs_science(index, rng, params):
    mode = "NRS_FIXEDSLIT"
    setup = _MODE_SETUP[mode]
    ny, nx = setup["shape"]
    w0, w1 = setup["wave"]
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    dw = (w1 - w0) / (nx - 1)
    wavelength = w0 + dw * (x + 0.03 * (y - ny / 2))
    t = (wavelength - w0) / (w1 - w0)
    shape = (ny, nx)
    # Point-source vs uniform correction arrays (flat, pathloss, photom),
    # smooth in wavelength, as jwst's flat_field/pathloss/photom save them.
    pl_point = (0.75 + 0.10 * t).astype(np.float32)
    pl_uniform = (0.92 - 0.05 * t).astype(np.float32)
    ff_point = (1.02 + 0.01 * t).astype(np.float32)
    ff_uniform = (0.98 + 0.02 * t).astype(np.float32)
    ph_point = (1.10 + 0.03 * t).astype(np.float32)
    ph_uniform = (1.00 + 0.05 * t).astype(np.float32)
    factor = np.ones(shape)
    if params["point_source"]:
        factor = (
            (pl_uniform.astype(np.float64) / pl_point)
            * (ff_uniform.astype(np.float64) / ff_point)
            * (ph_point.astype(np.float64) / ph_uniform)
        )
    bkg = injected_background(wavelength, mode=mode) * factor
    # Nodded: the source sits above or below the slit centre.
    centre = ny / 2 + (-7.0 if index % 2 == 0 else 7.0)
    source = params["source_level"] * _profile(y, centre, 3.0)
    mask = _profile(y, centre, 5.0) == 0.0
    data, vp, vr, vf = _noisy(bkg, source, rng, params)

    model = datamodels.MultiSlitModel()
    _set_common_meta(model, mode, index)
    model.meta.instrument.fixed_slit = "S200A1"
    model.meta.target.source_type = "POINT" if params["point_source"] else "EXTENDED"
    model.meta.filename = f"synth_nrsfs_{index + 1:02d}_cal.fits"
    slit = datamodels.SlitModel(
        data=data,
        dq=np.zeros(shape, dtype=np.uint32),
        wavelength=wavelength.astype(np.float32),
    )
    _fill_arrays(slit, data, vp, vr, vf, np.zeros(shape, dtype=np.uint32))
    slit.name = "S200A1"
    slit.source_id = 1
    slit.source_name = "synthetic"
    slit.source_type = model.meta.target.source_type
    slit.xstart, slit.ystart, slit.xsize, slit.ysize = 1, 1, nx, ny
    slit.pathloss_point = pl_point
    slit.pathloss_uniform = pl_uniform
    slit.flatfield_point = ff_point
    slit.flatfield_uniform = ff_uniform
    slit.photom_point = ph_point
    slit.photom_uniform = ph_uniform
    model.slits.append(slit)
    return model, [bkg], [mask]


# --------------------------------------------------------------------------- NIRSpec IFU


def _nrs_ifu_wcs(shape, wave_of):
    """A coordinate-based NIRSpec IFU WCS, the structure jwst's ``apply_slicemap`` makes.

    ``nrs_ifu_wcs`` (and so jwst's own master background) accepts it: no
    ``gwa`` frame, pipeline[1] a `~gwcs.selector.RegionsSelector` whose
    ``selector`` holds one transform with a bounding box per slice.
    """
    ny, nx = shape
    regions = np.zeros(shape, dtype=np.int32)
    transforms = {}
    slice_by_x = {}
    for k in range(_IFU_NSLICE):
        y0 = k * (_IFU_SLICE_ROWS + 1)
        regions[y0 : y0 + _IFU_SLICE_ROWS, :] = k + 1
        c0, slope = wave_of(k)
        # (x, y) -> (x_slice, y_slice, lam)
        tr = Mapping((0, 1, 0, 1), n_inputs=2) | (
            Const1D(float(k))
            & Shift(-float(y0))
            & Planar2D(slope_x=slope, slope_y=0.0, intercept=c0)
        )
        tr.inputs = ("x", "y")
        bind_bounding_box(tr, ((-0.5, nx - 0.5), (y0 - 0.5, y0 + _IFU_SLICE_ROWS - 0.5)), order="F")
        transforms[k + 1] = tr
        slice_by_x[float(k)] = Mapping((0,), n_inputs=3) | Const1D(k + 1)
    label_mapper = selector.LabelMapperArray(regions)
    det2slicer = selector.RegionsSelector(
        ("x", "y"),
        ("x_slice", "y_slice", "lam"),
        label_mapper=label_mapper,
        selector=transforms,
        name="det2slicer",
    )
    input2det = Identity(2)
    input2det.name = "coord2det"
    input2det.inputs = ("x", "y")
    input2det.outputs = ("x", "y")
    # A transform with parameters: a parameter-free chain counts as using
    # quantities in gwcs, which then adds pixel units to the inputs.
    slicer2world = Shift(10.0) & Shift(20.0) & Identity(1)
    slicer2world.name = "slicer2world"
    coords = cf.Frame2D(name="coordinates", axes_order=(0, 1))
    detector = cf.Frame2D(name="detector", axes_order=(0, 1))
    slicer = cf.CoordinateFrame(
        naxes=3,
        axes_type=("SPATIAL", "SPATIAL", "SPECTRAL"),
        axes_order=(0, 1, 2),
        unit=(u.one, u.one, u.micron),
        name="slicer",
        axes_names=("x_slice", "y_slice", "lam"),
    )
    sky = cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS())
    spec = cf.SpectralFrame(
        name="spectral", axes_order=(2,), unit=(u.micron,), axes_names=("wavelength",)
    )
    world = cf.CompositeFrame([sky, spec], name="world")
    wcs = gwcs.WCS(
        [(coords, input2det), (detector, det2slicer), (slicer, slicer2world), (world, None)]
    )
    return wcs, regions


def _nrs_ifu_science(index, rng, params):
    mode = "NRS_IFU"
    setup = _MODE_SETUP[mode]
    ny, nx = setup["shape"]
    w0, w1 = setup["wave"]
    dw = (w1 - w0) / (nx - 1)

    def wave_of(k):
        return w0 + 0.004 * (k - _IFU_NSLICE / 2) * dw * 10, dw

    wcs, regions = _nrs_ifu_wcs((ny, nx), wave_of)
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    slice_id = regions - 1
    c0 = np.array([wave_of(k)[0] for k in range(_IFU_NSLICE)])
    wavelength = np.where(regions > 0, c0[np.clip(slice_id, 0, None)] + dw * x, np.nan)
    t = (wavelength - w0) / (w1 - w0)
    pl_point = (0.70 + 0.15 * t).astype(np.float32)
    pl_uniform = (0.90 - 0.04 * t).astype(np.float32)
    factor = np.ones((ny, nx))
    if params["point_source"]:
        factor = pl_uniform.astype(np.float64) / pl_point
    bkg = injected_background(wavelength, mode=mode) * factor
    # Nodded point source: a few central slices, offset by nod.
    centre = 12.0 if index % 2 == 0 else 18.0
    src_slice = params["source_level"] * _profile(slice_id.astype(float), centre, 2.0)
    source = np.where(regions > 0, src_slice, 0.0)
    mask = (regions > 0) & (_profile(slice_id.astype(float), centre, 3.0) == 0.0)
    data, vp, vr, vf = _noisy(np.nan_to_num(bkg), source, rng, params)
    gap = regions == 0
    dq = np.where(gap, _DO_NOT_USE | _NON_SCIENCE, 0).astype(np.uint32)
    for arr in (data, vp, vr, vf):
        arr[gap] = np.nan

    model = datamodels.IFUImageModel()
    _fill_arrays(model, data, vp, vr, vf, dq)
    _set_common_meta(model, mode, index)
    model.meta.target.source_type = "POINT" if params["point_source"] else "EXTENDED"
    model.meta.filename = f"synth_nrsifu_{index + 1:02d}_cal.fits"
    model.meta.wcs = wcs
    model.regions = regions
    model.pathloss_point = pl_point
    model.pathloss_uniform = pl_uniform
    return model, bkg, mask


# --------------------------------------------------------------------------- MIRI LRS


def _miri_lrs_science(index, rng, params):
    mode = "MIR_LRS-FIXEDSLIT"
    setup = _MODE_SETUP[mode]
    ny, nx = setup["shape"]
    w0, w1 = setup["wave"]
    dw = (w1 - w0) / (ny - 1)
    wave_model = Planar2D(slope_x=0.02 * dw, slope_y=dw, intercept=w0 - 0.02 * dw * nx / 2)
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    wavelength = wave_model(x, y)
    bkg = injected_background(wavelength, mode=mode)
    centre = nx / 2 + (-9.0 if index % 2 == 0 else 9.0)
    source = params["source_level"] * _profile(x, centre, 3.0)
    mask = _profile(x, centre, 5.0) == 0.0
    data, vp, vr, vf = _noisy(bkg, source, rng, params)
    model = datamodels.ImageModel()
    _fill_arrays(model, data, vp, vr, vf, np.zeros((ny, nx), dtype=np.uint32))
    _set_common_meta(model, mode, index)
    model.meta.target.source_type = "POINT"
    model.meta.filename = f"synth_mirlrs_{index + 1:02d}_cal.fits"
    model.meta.wcs = _simple_wcs(wave_model, mode=mode)
    return model, bkg, mask


# --------------------------------------------------------------------------- MIRI MRS


def _miri_mrs_science(index, rng, params):
    mode = "MIR_MRS"
    setup = _MODE_SETUP[mode]
    ny, nx = setup["shape"]
    w0, w1 = setup["wave"]
    dw = (w1 - w0) / (ny - 1)
    wave_model = Planar2D(slope_x=0.05 * dw, slope_y=dw, intercept=w0 - 0.05 * dw * nx / 2)
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    wavelength = wave_model(x, y)
    bkg = injected_background(wavelength, mode=mode)
    centre = nx / 2 + (-10.0 if index % 2 == 0 else 10.0)
    source = params["source_level"] * _profile(x, centre, 4.0)
    mask = _profile(x, centre, 6.0) == 0.0
    data, vp, vr, vf = _noisy(bkg, source, rng, params)
    model = datamodels.IFUImageModel()
    _fill_arrays(model, data, vp, vr, vf, np.zeros((ny, nx), dtype=np.uint32))
    _set_common_meta(model, mode, index)
    model.meta.target.source_type = "POINT" if params["point_source"] else "EXTENDED"
    model.meta.filename = f"synth_mirmrs_{index + 1:02d}_cal.fits"
    model.meta.wcs = _simple_wcs(wave_model, mode=mode)
    return model, bkg, mask


# --------------------------------------------------------------------------- x1d members


def _background_x1d(mode, index, rng, params, *, contaminated):
    setup = _MODE_SETUP[mode]
    w0, w1 = setup["wave"]
    n = setup["n_spec"]
    step = (w1 - w0) / (n - 1)
    # Each member samples a slightly shifted grid, a little wider than the band.
    shift = rng.uniform(-0.5, 0.5) * step
    wave = w0 - 3 * step + shift + step * np.arange(n + 6)
    truth = injected_background(wave, mode=mode)
    if contaminated:
        w_t = (wave - w0) / (w1 - w0)
        truth = truth + params["contamination"] * _continuum(w_t)
    sigma = params["spectrum_noise"] * injected_background(wave, mode=mode)
    bkg = truth + rng.normal(size=wave.shape) * sigma

    table = np.zeros(wave.size, dtype=datamodels.SpecModel().get_dtype("spec_table"))
    table["WAVELENGTH"] = wave
    table["NPIXELS"] = 20.0
    nodded = params["nodded"]
    if nodded:
        # SURF_BRIGHT holds the (background-subtracted) source, not the background.
        src = params["source_level"] * 0.3 * np.ones_like(wave)
        table["SURF_BRIGHT"] = src + rng.normal(size=wave.shape) * sigma
        table["SB_ERROR"] = sigma
        table["BACKGROUND"] = bkg
        table["BKGD_ERROR"] = sigma
        table["BKGD_VAR_POISSON"] = sigma**2
    else:
        table["SURF_BRIGHT"] = bkg
        table["SB_ERROR"] = sigma
        table["SB_VAR_POISSON"] = sigma**2
        if mode == "MIR_MRS":
            # jwst reads BACKGROUND for MIRI MRS in every case.
            table["BACKGROUND"] = bkg
            table["BKGD_ERROR"] = sigma
            table["BKGD_VAR_POISSON"] = sigma**2
    table["FLUX"] = table["SURF_BRIGHT"] * 1.0e-3
    table["FLUX_ERROR"] = sigma * 1.0e-3
    model = datamodels.MultiSpecModel()
    _set_common_meta(model, mode, index, bkgdtarg=not nodded)
    model.meta.filename = f"synth_{mode.lower().replace('-', '')}_bkg{index + 1:02d}_x1d.fits"
    spec = datamodels.SpecModel(spec_table=table)
    spec.source_type = (
        "EXTENDED" if mode == "MIR_MRS" else ("POINT" if params["point_source"] else "EXTENDED")
    )
    spec.name = "S200A1" if mode == "NRS_FIXEDSLIT" else None
    for col, unit in (
        ("wavelength", "um"),
        ("surf_bright", "MJy/sr"),
        ("sb_error", "MJy/sr"),
        ("background", "MJy/sr"),
        ("bkgd_error", "MJy/sr"),
        ("flux", "Jy"),
        ("flux_error", "Jy"),
    ):
        spec.spec_table.columns[col].unit = unit
    model.spec.append(spec)
    return model


# --------------------------------------------------------------------------- containers


def _asn_table(inputs, *, asn_id="c1000", product="synth_spec3"):
    members = [{"expname": m.meta.filename, "exptype": "science"} for m in inputs.science]
    members += [{"expname": m.meta.filename, "exptype": "background"} for m in inputs.backgrounds]
    return {
        "asn_type": "spec3",
        "asn_rule": "candidate_Asn_Lv3SpecAux",
        "asn_id": asn_id,
        "asn_pool": "synthetic_pool",
        "program": "01234",
        "target": "t001",
        "products": [{"name": product, "members": members}],
    }


def make_container(inputs, *, asn_id="c1000"):
    """
    Return an in-memory `~jwst.datamodels.ModelContainer` of copies of the inputs.

    Science members first, then background members; each model's
    ``meta.asn.exptype`` set as ``datamodels.open(asn)`` would set it.

    Parameters
    ----------
    inputs : Spec3Inputs
        From `make_spec3_inputs`.
    asn_id : str, optional
        Association id.

    Returns
    -------
    `~jwst.datamodels.ModelContainer`
        The container (the models are copies).
    """
    models = []
    for model in inputs.science:
        m = model.copy()
        m.meta.asn.exptype = "science"
        models.append(m)
    for model in inputs.backgrounds:
        m = model.copy()
        m.meta.asn.exptype = "background"
        models.append(m)
    container = ModelContainer(models)
    container.asn_table = _asn_table(inputs, asn_id=asn_id)
    container.asn_table_name = f"synth_{asn_id}_asn.json"
    container.asn_pool_name = "synthetic_pool"
    return container


def write_association(inputs, folder, *, asn_id="c1000", product="synth_spec3"):
    """
    Save the inputs and a spec3 association to ``folder``.

    Parameters
    ----------
    inputs : Spec3Inputs
        From `make_spec3_inputs`.
    folder : str or `~pathlib.Path`
        Output folder (created if needed).
    asn_id : str, optional
        Association id.
    product : str, optional
        Product name.

    Returns
    -------
    `~pathlib.Path`
        The association file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for model in [*inputs.science, *inputs.backgrounds]:
        model.save(folder / model.meta.filename)
    asn = _asn_table(inputs, asn_id=asn_id, product=product)
    path = folder / f"synth_{asn_id}_asn.json"
    path.write_text(json.dumps(asn, indent=2))
    return path
