"""The spec3 master expanded to every science pixel and subtracted, with its variance."""

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from gwcs.wcstools import grid_from_bounding_box
from jwst.assign_wcs import nirspec
from jwst.lib.wcs_utils import get_wavelengths
from jwst.master_background.nirspec_utils import correct_nrs_fs_bkg, correct_nrs_ifu_bkg
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.algorithms.expand import expand_to_2d
from jwst_mbkg_plus.io.slits import DO_NOT_USE

__all__ = [
    "SubtractionResult",
    "apply_backgrounds",
    "background_2d_model",
    "compute_backgrounds",
    "pixel_wavelengths",
    "point_source_factor",
    "science_targets",
    "science_wavelengths",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- expand


def pixel_wavelengths(model, target=None):
    """
    Wavelength of every pixel, the way jwst's ``expand_to_2d`` gets it.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The science exposure.
    target : `~stdatamodels.jwst.datamodels.SlitModel`, optional
        For a `~stdatamodels.jwst.datamodels.MultiSlitModel`, the slit.

    Returns
    -------
    ndarray
        Wavelengths (micron) of shape ``data.shape[-2:]``; NaN where undefined.

    Raises
    ------
    RuntimeError
        If the wavelengths cannot be determined.
    TypeError
        For an unsupported model type.
    """
    exp_type = model.meta.exposure.type
    if target is not None or isinstance(model, (datamodels.ImageModel, datamodels.SlitModel)):
        obj = model if target is None else target
        wl = get_wavelengths(obj, exp_type)
        if wl is None:
            raise RuntimeError(f"Can't determine wavelengths for {type(obj).__name__}")
        return np.asarray(wl, dtype=np.float64)
    if isinstance(model, datamodels.IFUImageModel):
        shape = model.data.shape
        instrument = str(model.meta.instrument.name).upper()
        if instrument == "NIRSPEC":

            wl = np.full(shape, np.nan)
            for slice_wcs in nirspec.nrs_ifu_wcs(model):
                x, y = grid_from_bounding_box(slice_wcs.bounding_box)
                lam = np.asarray(slice_wcs(x, y)[2], dtype=np.float64)
                xi, yi = x.astype(int), y.astype(int)
                inside = (xi >= 0) & (yi >= 0) & (xi < shape[1]) & (yi < shape[0])
                ok = inside & np.isfinite(lam)
                wl[yi[ok], xi[ok]] = lam[ok]
            return wl
        if instrument == "MIRI":
            grid = np.indices(shape, dtype=np.float64)
            return np.asarray(model.meta.wcs(grid[1], grid[0])[2], dtype=np.float64)
        raise TypeError(f"IFU data of instrument {instrument} are not supported")
    raise TypeError(f"Input type {type(model).__name__} is not supported")


def point_source_factor(model, target=None):
    """
    Factor converting the master (extended-source units) to the science calibration.

    Uses jwst's own corrections on a unit image, so the logic (which arrays,
    which source types, what happens when an array is missing) is jwst's:
    `~jwst.master_background.nirspec_utils.correct_nrs_fs_bkg` for a NIRSpec
    fixed slit whose ``source_type`` is POINT,
    `~jwst.master_background.nirspec_utils.correct_nrs_ifu_bkg` for NIRSpec
    IFU data whose ``meta.target.source_type`` is POINT.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The science exposure.
    target : `~stdatamodels.jwst.datamodels.SlitModel`, optional
        The slit, for a `~stdatamodels.jwst.datamodels.MultiSlitModel`.

    Returns
    -------
    ndarray or None
        Per-pixel factor, or None when no correction applies.
    """
    if target is not None:
        is_point = str(target.source_type).upper() == "POINT"
        if _exp_type(model, target) != "NRS_FIXEDSLIT" or not is_point:
            return None
        unit = datamodels.SlitModel(data=np.ones(target.data.shape, dtype=np.float32))
        for name in ("pathloss_point", "pathloss_uniform", "flatfield_point",
                     "flatfield_uniform", "photom_point", "photom_uniform"):
            if name in target.instance:
                setattr(unit, name, getattr(target, name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            factor = np.asarray(correct_nrs_fs_bkg(unit).data, dtype=np.float64)
        return None if np.all(factor == 1.0) else factor
    if (
        isinstance(model, datamodels.IFUImageModel)
        and str(model.meta.instrument.name).upper() == "NIRSPEC"
        and model.meta.target.source_type == "POINT"
    ):
        unit = datamodels.IFUImageModel(data=np.ones(model.data.shape, dtype=np.float32))
        for name in ("pathloss_point", "pathloss_uniform"):
            if name in model.instance:
                setattr(unit, name, getattr(model, name))
        factor = np.asarray(correct_nrs_ifu_bkg(unit).data, dtype=np.float64)
        return None if np.all(factor == 1.0) else factor
    return None


# --------------------------------------------------------------------------- subtract


@dataclass
class SubtractionResult:
    """Backgrounds for one science model.

    Attributes
    ----------
    backgrounds : list of (ndarray, ndarray or None, ndarray)
        Per data array (one per slit for a MultiSlitModel): the 2-D background,
        its variance, in the science calibration, and the mask of pixels that
        have a wavelength (all None for a slit left alone).
    n_no_background : int
        Pixels with data and a wavelength but no background (flagged
        DO_NOT_USE).
    """

    backgrounds: list
    n_no_background: int = 0


def _targets(model):
    if isinstance(model, datamodels.MultiSlitModel):
        return [(slit, slit) for slit in model.slits]
    return [(None, model)]


def science_targets(model):
    """
    The data arrays of a science model, in the order of its backgrounds.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Science model.

    Returns
    -------
    list of (slit or None, obj)
        ``(slit, slit)`` per slit of a MultiSlitModel, else ``(None, model)``.
    """
    return _targets(model)


def _exp_type(model, slit=None):
    if slit is not None:
        try:
            exp_type = slit.meta.exposure.type
        except AttributeError:
            exp_type = None
        if exp_type:
            return exp_type
    return model.meta.exposure.type


def _has(obj, name):
    arr = getattr(obj, name, None) if name in obj.instance else None
    return arr is not None and np.shape(arr) == np.shape(obj.data)


def science_wavelengths(model):
    """
    Pixel wavelengths of every data array of a science model.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Science model.

    Returns
    -------
    list of ndarray or None
        One per slit for a MultiSlitModel (None for NIRSpec MOS slits, which
        calwebb_spec3 does not background-subtract), else one.
    """
    out = []
    for slit, _ in _targets(model):
        if slit is not None and _exp_type(model, slit) == "NRS_MSASPEC":
            out.append(None)
            continue
        out.append(pixel_wavelengths(model, slit))
    return out


def compute_backgrounds(model, master, wavelengths=None, *, edge="nan"):
    """
    Evaluate the master at every pixel of one science model.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Science model (`MultiSlitModel`, `ImageModel`, `SlitModel` or
        `IFUImageModel`); not modified.
    master : MasterBackground
        The master background.
    wavelengths : list of ndarray, optional
        From `science_wavelengths` (computed if not given).
    edge : {"nan", "nearest", "extrapolate_linear"}, optional
        Policy outside the master's wavelength range.

    Returns
    -------
    SubtractionResult
        The 2-D backgrounds and variances, point-source corrected where jwst
        corrects them.
    """
    if wavelengths is None:
        wavelengths = science_wavelengths(model)
    out = SubtractionResult([])
    for (slit, _), wl in zip(_targets(model), wavelengths, strict=True):
        if wl is None:
            log.warning("Master background subtraction is not supported for NIRSpec MOS "
                        "slit %s in calwebb_spec3; slit left unchanged", slit.name)
            out.backgrounds.append((None, None, None))
            continue
        bkg, var = expand_to_2d(wl, master.wavelength, master.surf_bright, master.var,
                                edge=edge)
        factor = point_source_factor(model, slit)
        if factor is not None:
            log.info("Applying point-source corrections to the background of %s",
                     slit.name if slit is not None else model.meta.filename)
            bkg = bkg * factor
            var = None if var is None else var * factor**2
        out.backgrounds.append((bkg, var, np.isfinite(wl)))
    return out


def _subtract_one(obj, bkg, bkg_var, has_wavelength, *, propagate_errors):
    """Subtract ``bkg`` from ``obj`` (a model or slit) in place; return #unusable pixels.

    Pixels without a wavelength (outside IFU slices, off the slit) are not
    science pixels: left as they are. Pixels with a wavelength but no
    background become NaN with DO_NOT_USE.
    """
    data = np.asarray(obj.data, dtype=np.float64)
    missing = ~np.isfinite(bkg) & np.isfinite(data) & has_wavelength
    new = data - np.where(np.isfinite(bkg), bkg, 0.0)
    new[missing] = np.nan
    obj.data = new.astype(obj.data.dtype)
    obj.dq = obj.dq | np.where(missing, DO_NOT_USE, 0).astype(obj.dq.dtype)
    if propagate_errors and bkg_var is not None:
        # Only pixels that received a background change; ERR elsewhere is kept
        # as it is even if it was not the quadrature sum of the variances.
        upd = np.isfinite(bkg_var)
        bv = np.where(upd, bkg_var, 0.0)
        names = [n for n in ("var_poisson", "var_rnoise", "var_flat") if _has(obj, n)]
        err_in = np.asarray(obj.err, dtype=np.float64) if _has(obj, "err") else None
        if "var_rnoise" in names:
            vr = np.asarray(obj.var_rnoise, dtype=np.float64) + bv
            obj.var_rnoise = vr.astype(obj.var_rnoise.dtype)
            err_new = np.sqrt(sum(np.asarray(getattr(obj, n), dtype=np.float64)
                                  for n in names))
        elif err_in is not None:
            err_new = np.sqrt(err_in**2 + bv)
        else:
            err_new = np.sqrt(bv)
        if err_in is not None:
            err_new = np.where(upd, err_new, err_in)
        obj.err = err_new.astype(np.float32)
    if missing.any():
        for name in ("err", "var_poisson", "var_rnoise", "var_flat"):
            if _has(obj, name):
                arr = np.array(getattr(obj, name))
                arr[missing] = np.nan
                setattr(obj, name, arr)
    return int(missing.sum())


def apply_backgrounds(model, result, *, propagate_errors=True):
    """
    Subtract the backgrounds of `compute_backgrounds` from a model, in place.

    Data minus background; with ``propagate_errors`` the background variance
    is added to ``VAR_RNOISE`` and ``ERR`` recomputed from the three variances
    (see the module docstring). Pixels with data but no background become NaN
    with DO_NOT_USE.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Science model, updated in place (pass a copy).
    result : SubtractionResult
        Its backgrounds; ``n_no_background`` is updated.
    propagate_errors : bool, optional
        Propagate the background variance.

    Returns
    -------
    SubtractionResult
        ``result``.
    """
    result.n_no_background = 0
    for (_, obj), (bkg, var, has_wl) in zip(_targets(model), result.backgrounds, strict=True):
        if bkg is None:
            continue
        result.n_no_background += _subtract_one(obj, bkg, var, has_wl,
                                                propagate_errors=propagate_errors)
    if result.n_no_background:
        log.warning("%d pixels of %s are outside the master background's wavelength range: "
                    "set to NaN and flagged DO_NOT_USE", result.n_no_background,
                    model.meta.filename)
    return result


def background_2d_model(model, result):
    """
    Build a ``masterbg2d`` product: a copy of ``model`` holding the background.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The science model.
    result : SubtractionResult
        From `compute_backgrounds`.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.JwstDataModel`
        Same type as ``model``; ``data`` is the background (0 where
        undefined, with DO_NOT_USE), ``err`` its error, ``var_rnoise`` its
        variance, the other variances zero.
    """
    bkg_model = model.copy()
    for (_, obj), (bkg, var, _) in zip(_targets(bkg_model), result.backgrounds, strict=True):
        if bkg is None:
            bkg = np.zeros(obj.data.shape)
        undefined = ~np.isfinite(bkg)
        obj.data = np.where(undefined, 0.0, bkg).astype(np.float32)
        obj.dq = np.where(undefined, DO_NOT_USE, 0).astype(np.uint32)
        v = np.zeros(bkg.shape) if var is None else np.where(np.isfinite(var), var, 0.0)
        obj.err = np.sqrt(v).astype(np.float32)
        for name in ("var_poisson", "var_flat"):
            if _has(obj, name):
                setattr(obj, name, np.zeros(bkg.shape, dtype=np.float32))
        if _has(obj, "var_rnoise"):
            obj.var_rnoise = v.astype(np.float32)
    return bkg_model


