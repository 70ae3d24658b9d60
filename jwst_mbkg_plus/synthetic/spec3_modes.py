"""Synthetic science exposures of the four spec3 modes: NIRSpec FS and IFU, MIRI LRS and MRS."""

import logging

import gwcs
import numpy as np
from astropy import coordinates as coord
from astropy import units as u
from astropy.modeling import bind_bounding_box
from astropy.modeling.models import Const1D, Identity, Mapping, Planar2D, Shift
from gwcs import coordinate_frames as cf
from gwcs import selector
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from jwst_mbkg_plus.io.slits import DO_NOT_USE
from jwst_mbkg_plus.synthetic.spec3_scenes import (
    drift_factor,
    exposure_drift,
    extended_profile,
    source_profile,
)

__all__ = [
    "MODES",
    "MODE_SETUP",
    "continuum_shape",
    "injected_background",
    "miri_lrs_science",
    "miri_mrs_science",
    "nrs_fs_science",
    "nrs_ifu_science",
    "set_common_meta",
]

log = logging.getLogger(__name__)

#: Exposure types covered by the factory.
MODES = ("NRS_FIXEDSLIT", "NRS_IFU", "MIR_LRS-FIXEDSLIT", "MIR_MRS")

# Per-mode geometry: wavelength range [um], shape (ny, nx), dispersion axis.
MODE_SETUP = {
    "NRS_FIXEDSLIT": {"wave": (1.70, 3.10), "shape": (32, 400), "n_spec": 400},
    "NRS_IFU": {"wave": (1.70, 3.10), "shape": (150, 300), "n_spec": 300},
    "MIR_LRS-FIXEDSLIT": {"wave": (5.0, 12.0), "shape": (350, 44), "n_spec": 350},
    "MIR_MRS": {"wave": (4.90, 5.74), "shape": (400, 60), "n_spec": 400},
}
NON_SCIENCE = dqflags.pixel["NON_SCIENCE"]


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
    w0, w1 = MODE_SETUP[mode]["wave"]
    t = (np.asarray(wavelength, dtype=np.float64) - w0) / (w1 - w0)
    continuum = continuum_shape(t)
    line = 0.25 * continuum * np.exp(-0.5 * ((t - 0.6) / 0.012) ** 2)
    return continuum + line


def continuum_shape(t):
    """Smooth shape (1 at t = 0) of the contamination added to a background spectrum."""
    return 1.0 + 0.4 * t + 0.1 * np.sin(3.0 * t)


_IFU_NSLICE = 30


_IFU_SLICE_ROWS = 4  # rows per slice, then one gap row


def set_common_meta(model, mode, index, *, bkgdtarg=False):
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


def _drift(t, params, index):
    """The science exposure's sky over the background exposures' (see `spec3_scenes`)."""
    level, red = exposure_drift(params, index)
    return drift_factor(t, level, red)


def _source(coord_, centre, half_width, params):
    """Compact source profile, with wings if the scene asks for them."""
    return source_profile(coord_, centre, half_width, wings=params.get("source_wings", False))


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


def nrs_fs_science(index, rng, params):
    mode = "NRS_FIXEDSLIT"
    setup = MODE_SETUP[mode]
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
    bkg = injected_background(wavelength, mode=mode) * factor * _drift(t, params, index)
    # Nodded: the source sits above or below the slit centre.
    centre = ny / 2 + (-7.0 if index % 2 == 0 else 7.0)
    source = params["source_level"] * _source(y, centre, 3.0, params)
    mask = _profile(y, centre, 5.0) == 0.0
    data, vp, vr, vf = _noisy(bkg, source, rng, params)

    model = datamodels.MultiSlitModel()
    set_common_meta(model, mode, index)
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


def nrs_ifu_science(index, rng, params):
    mode = "NRS_IFU"
    setup = MODE_SETUP[mode]
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
    bkg = injected_background(wavelength, mode=mode) * factor * _drift(t, params, index)
    if params.get("extended_fraction"):
        # An extended source over most of the field, with a spectrum of its own.
        shape_ = extended_profile(slice_id.astype(float), _IFU_NSLICE,
                                  params["extended_fraction"])
        src_slice = params["extended_level"] * shape_ * (0.8 + 0.5 * np.nan_to_num(t))
        mask = (regions > 0) & (shape_ == 0.0)
    else:
        # Nodded point source: a few central slices, offset by nod.
        centre = 12.0 if index % 2 == 0 else 18.0
        src_slice = params["source_level"] * _source(slice_id.astype(float), centre, 2.0,
                                                     params)
        mask = (regions > 0) & (_profile(slice_id.astype(float), centre, 3.0) == 0.0)
    source = np.where(regions > 0, src_slice, 0.0)
    data, vp, vr, vf = _noisy(np.nan_to_num(bkg), source, rng, params)
    gap = regions == 0
    dq = np.where(gap, DO_NOT_USE | NON_SCIENCE, 0).astype(np.uint32)
    for arr in (data, vp, vr, vf):
        arr[gap] = np.nan

    model = datamodels.IFUImageModel()
    _fill_arrays(model, data, vp, vr, vf, dq)
    set_common_meta(model, mode, index)
    model.meta.target.source_type = "POINT" if params["point_source"] else "EXTENDED"
    model.meta.filename = f"synth_nrsifu_{index + 1:02d}_cal.fits"
    model.meta.wcs = wcs
    model.regions = regions
    model.pathloss_point = pl_point
    model.pathloss_uniform = pl_uniform
    return model, bkg, mask


def miri_lrs_science(index, rng, params):
    mode = "MIR_LRS-FIXEDSLIT"
    setup = MODE_SETUP[mode]
    ny, nx = setup["shape"]
    w0, w1 = setup["wave"]
    dw = (w1 - w0) / (ny - 1)
    wave_model = Planar2D(slope_x=0.02 * dw, slope_y=dw, intercept=w0 - 0.02 * dw * nx / 2)
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    wavelength = wave_model(x, y)
    t = (wavelength - w0) / (w1 - w0)
    bkg = injected_background(wavelength, mode=mode) * _drift(t, params, index)
    centre = nx / 2 + (-9.0 if index % 2 == 0 else 9.0)
    source = params["source_level"] * _source(x, centre, 3.0, params)
    mask = _profile(x, centre, 5.0) == 0.0
    data, vp, vr, vf = _noisy(bkg, source, rng, params)
    model = datamodels.ImageModel()
    _fill_arrays(model, data, vp, vr, vf, np.zeros((ny, nx), dtype=np.uint32))
    set_common_meta(model, mode, index)
    model.meta.target.source_type = "POINT"
    model.meta.filename = f"synth_mirlrs_{index + 1:02d}_cal.fits"
    model.meta.wcs = _simple_wcs(wave_model, mode=mode)
    return model, bkg, mask


def miri_mrs_science(index, rng, params):
    mode = "MIR_MRS"
    setup = MODE_SETUP[mode]
    ny, nx = setup["shape"]
    w0, w1 = setup["wave"]
    dw = (w1 - w0) / (ny - 1)
    wave_model = Planar2D(slope_x=0.05 * dw, slope_y=dw, intercept=w0 - 0.05 * dw * nx / 2)
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    wavelength = wave_model(x, y)
    t = (wavelength - w0) / (w1 - w0)
    bkg = injected_background(wavelength, mode=mode) * _drift(t, params, index)
    centre = nx / 2 + (-10.0 if index % 2 == 0 else 10.0)
    source = params["source_level"] * _source(x, centre, 4.0, params)
    mask = _profile(x, centre, 6.0) == 0.0
    data, vp, vr, vf = _noisy(bkg, source, rng, params)
    model = datamodels.IFUImageModel()
    _fill_arrays(model, data, vp, vr, vf, np.zeros((ny, nx), dtype=np.uint32))
    set_common_meta(model, mode, index)
    model.meta.target.source_type = "POINT" if params["point_source"] else "EXTENDED"
    model.meta.filename = f"synth_mirmrs_{index + 1:02d}_cal.fits"
    model.meta.wcs = _simple_wcs(wave_model, mode=mode)
    return model, bkg, mask
