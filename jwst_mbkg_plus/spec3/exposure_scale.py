"""The spec3 master scaled to each science exposure's own sky.

In calwebb_spec3 the master comes from exposures taken at another time or
pointing: dedicated background observations, or the other nods. The sky of a
science exposure is not the same (MIRI's thermal background changes with
pointing and time, and so do stray and zodiacal light), and subtracting the
master as it is leaves that drift in every pixel. The exposure's own sky
pixels tell its sky: for every science exposure (every slit of a
`~stdatamodels.jwst.datamodels.MultiSlitModel`)

1. its source-free lines are found from the data
   (`jwst_mbkg_plus.spec3.sky_region.find_sky_region`: the profile across the
   dispersion against the expanded master; a source and its wings are masked
   with their measured extent);
   in a slit a point source's wings are then modelled instead of masked
   (`jwst_mbkg_plus.spec3.wing_sky`, where its profile is a Moffat's and the
   same over the band): the factor is refitted on the wing lines too, the
   source's spectrum free in every column and fitted with it;
2. a smooth factor ``f(lambda)``, ``data ~ f x master``, is fitted to those
   pixels with `jwst_mbkg_plus.algorithms.sky_factor.fit_sky_factor` (the
   shared fit of the MOS step: constant, linear or cubic B-spline chosen by
   evidence, clipping, covariance), the data first scaled by
   ``1 + var_master / master^2`` so that the master's own noise does not
   dilute the factor (:func:`dilution_corrected`);
3. the factor is applied only when it differs from 1 beyond its own noise
   (``scale_master='auto'``); ``'always'`` applies any fitted factor,
   ``'off'`` keeps jwst's behaviour (nothing is fitted);
4. an applied factor multiplies the background, and its variance joins the
   background's: ``var = f^2 var_master + master^2 var_f``.

Where the exposure has no usable sky (an extended source filling the field,
too few source-free lines) the master is subtracted unscaled and the record
says why. Nodded data (the background is the other nods, minutes apart) go
through the same test: the factor is applied only if the nods' skies differ
beyond the noise.
"""

import logging
from dataclasses import dataclass, replace

import numpy as np

from jwst_mbkg_plus.algorithms.fit_weights import variance_by_group, variance_by_wavelength
from jwst_mbkg_plus.algorithms.sky_factor import (
    SKY_CLIP,
    dilution_corrected,
    fit_sky_factor,
    unit_factor,
)
from jwst_mbkg_plus.io.slits import DO_NOT_USE
from jwst_mbkg_plus.spec3.sky_region import find_sky_region
from jwst_mbkg_plus.spec3.wing_sky import model_wings

__all__ = [
    "SCALE_OPTIONS",
    "SKY_CLIP",
    "ExposureScale",
    "dilution_corrected",
    "scale_backgrounds",
    "scale_one",
]

log = logging.getLogger(__name__)

#: Values of the step's ``scale_master`` parameter.
SCALE_OPTIONS = ("auto", "always", "off")

_APPLY = {"auto": "auto", "always": True}


@dataclass
class ExposureScale:
    """
    The sky factor of one science exposure (or slit).

    Attributes
    ----------
    name : str
        File name (and slit name) for logs and QA.
    region : SkyRegion or None
        Its source-free pixels (None when not searched).
    factor : SkyFactor
        The fitted factor (or the unit factor with the reason).
    wings : WingModel or None
        The source's modelled wings (`jwst_mbkg_plus.spec3.wing_sky`), when tried.
    """

    name: str
    region: object
    factor: object
    wings: object = None

    def to_record(self):
        """Plain-type record for the QA file."""
        rec = {"name": self.name, **self.factor.to_record()}
        if self.region is not None:
            rec.update(self.region.to_record())
        if self.wings is not None:
            rec.update(self.wings.to_record())
        return rec


def _science_variance(obj):
    """Variance of the science pixels: ERR squared, or the sum of the variance arrays."""
    err = getattr(obj, "err", None) if "err" in obj.instance else None
    if err is not None and np.shape(err) == np.shape(obj.data):
        return np.asarray(err, dtype=np.float64) ** 2
    total = np.zeros(np.shape(obj.data))
    for name in ("var_poisson", "var_rnoise", "var_flat"):
        if name in obj.instance and np.shape(getattr(obj, name)) == np.shape(obj.data):
            total = total + np.asarray(getattr(obj, name), dtype=np.float64)
    return total


def _with_wings(data, var, valid, wavelength, bkg, bkg_var, region, factor0, *, model,
                apply):
    """The wing model of `jwst_mbkg_plus.spec3.wing_sky` on one array; (wings, factor)."""
    t = (lambda a: a) if region.axis == 1 else (lambda a: a.T)
    lines = np.indices(data.shape)[0 if region.axis == 1 else 1]
    use = valid & np.isfinite(data) & np.isfinite(var) & (var > 0) & np.isfinite(bkg) & (bkg > 0)
    # One weight per line and wavelength (the lines nearest the source are noisier).
    fit_var = variance_by_group(wavelength, var, use & t(region.line_ok[:, None]), lines)
    fit_data, fit_var = dilution_corrected(data, fit_var, bkg, bkg_var)
    f0, _ = factor0.evaluate(wavelength, measured=True)
    source = np.zeros(region.line_ok.shape, dtype=bool)
    source[region.source_lines] = True
    return model_wings(
        t(fit_data), t(fit_var), t(bkg), t(use & np.isfinite(fit_var) & np.isfinite(f0)),
        region.line_ok, source, t(np.nan_to_num(f0, nan=1.0)), wavelength=t(wavelength),
        factor_model=model, apply=apply, clip=SKY_CLIP)


def scale_one(data, var, dq, wavelength, bkg, *, mode="auto", model="auto", name="",
              bkg_var=None, wings=False):
    """
    Fit (and decide) the sky factor of one 2-D science array.

    Parameters
    ----------
    data, var : ndarray
        Science surface brightness and variance.
    dq : ndarray or None
        Data quality; DO_NOT_USE pixels are left out.
    wavelength : ndarray
        Pixel wavelengths.
    bkg : ndarray
        The master expanded to the pixels (science calibration).
    mode : {'auto', 'always'}, optional
        Apply when significant, or any fitted factor.
    model : {'auto', 'constant', 'linear', 'spline'}, optional
        Factor model (``auto``: chosen by evidence).
    name : str, optional
        For the record.
    bkg_var : ndarray, optional
        Variance of ``bkg``, for `dilution_corrected`.
    wings : bool, optional
        Model a point source's wings along the lines
        (`jwst_mbkg_plus.spec3.wing_sky`) instead of masking them, where its
        profile allows: for slits, whose lines across the dispersion are one
        spatial coordinate (not for IFU slices).

    Returns
    -------
    ExposureScale
        Region, factor, and whether it is applied (``factor.applied``).
    """
    valid = np.isfinite(wavelength)
    if dq is not None:
        valid &= (np.asarray(dq) & DO_NOT_USE) == 0
    # The master's noise enters every line's profile (each line samples it at its own
    # wavelengths): counted in the lines' noise, so that a noisy master is not a source.
    region_var = var if bkg_var is None else var + np.where(np.isfinite(bkg_var), bkg_var, 0.0)
    region = find_sky_region(data, region_var, bkg, wavelength, valid)
    if not region.usable:
        return ExposureScale(name, region, unit_factor(
            f"not applied, master subtracted unscaled: {region.status}", int(valid.sum())))
    # Weights from the variance near each wavelength, not each pixel's own (VAR_POISSON
    # follows the pixel's own count and would bias the factor low).
    fit_var = variance_by_wavelength(wavelength, var, region.sky & valid)
    fit_data, fit_var = dilution_corrected(data, fit_var, bkg, bkg_var)
    factor = fit_sky_factor(wavelength, fit_data, fit_var, bkg, region.sky, model=model,
                            apply=_APPLY[mode], clip=SKY_CLIP)
    if not (wings and factor.fitted and region.line_ok is not None):
        return ExposureScale(name, region, factor)
    modelled, fit = _with_wings(data, var, valid, wavelength, bkg, bkg_var, region, factor,
                                model=model, apply=_APPLY[mode])
    if fit is not None:
        # The wings' plausible leak moves every coefficient alike (B-splines sum to
        # one): a level term of the covariance (the source spectrum's noise is in the
        # joint fit's own).
        factor = replace(fit, cov=fit.cov + modelled.extra_variance, level_error=float(
            np.sqrt(fit.level_error**2 + modelled.extra_variance)))
    return ExposureScale(name, region, factor, modelled)


def scale_backgrounds(targets, backgrounds, wavelengths, *, mode="auto", model="auto",
                      label="", wings=False):
    """
    Scale one science model's backgrounds to its own sky, in place.

    Parameters
    ----------
    targets : list of (slit or None, obj)
        The model's data arrays (``obj`` has ``data``, ``dq``, ``err``...).
    backgrounds : list of (bkg, var, has_wavelength)
        From `jwst_mbkg_plus.spec3.subtract.compute_backgrounds`; the
        scaled background and its variance replace each entry.
    wavelengths : list of ndarray or None
        Pixel wavelengths per target.
    mode : {'auto', 'always', 'off'}, optional
        See the module docstring; ``off`` does nothing.
    model : str, optional
        Factor model for `fit_sky_factor`.
    label : str, optional
        The model's file name, for logs and QA.
    wings : bool, optional
        Model point sources' wings (slits), see `scale_one`.

    Returns
    -------
    list of ExposureScale
        One per scaled target.
    """
    if mode not in SCALE_OPTIONS:
        raise ValueError(f"scale_master must be one of {SCALE_OPTIONS}, not {mode!r}")
    if mode == "off":
        return []
    out = []
    for k, ((slit, obj), (bkg, var, has_wl), wl) in enumerate(
            zip(targets, backgrounds, wavelengths, strict=True)):
        if bkg is None or wl is None:
            continue
        name = label if slit is None else f"{label}[{slit.name}]"
        scale = scale_one(np.asarray(obj.data, dtype=np.float64), _science_variance(obj),
                          getattr(obj, "dq", None), wl, bkg, mode=mode, model=model,
                          name=name, bkg_var=var, wings=wings)
        out.append(scale)
        f = scale.factor
        if f.applied:
            fac, fac_err = f.evaluate(wl)
            new_bkg = bkg * fac
            new_var = None if var is None else var * fac**2 + (bkg * fac_err) ** 2
            backgrounds[k] = (new_bkg, new_var, has_wl)
            log.info("Sky of %s: master scaled by a %s factor, mean %.4f +/- %.4f "
                     "(%d sky pixels)", name, f.model, f.level, f.level_error, f.n_pixels)
        else:
            log.info("Sky of %s: master subtracted unscaled; %s", name, f.status)
    return out
