"""The calwebb_spec3 master background, plus: the driver the step calls.

`MasterBackgroundPlusStep` (``jwst_mbkg_plus.spec3.step``) validates its
input and calls :func:`run_master_background`, which

1. collects the background spectra of the ``exptype: background`` ``x1d``
   members, choosing the column exactly as jwst 3.0 does
   (:func:`background_column`): ``BACKGROUND`` (with ``BKGD_ERROR``) for
   nodded exposures (``meta.observation.bkgdtarg is False``), for NIRSpec IFU
   extended sources and always for MIRI MRS; ``SURF_BRIGHT`` (with
   ``SB_ERROR``) otherwise. Both are per-pixel surface brightnesses (MJy/sr),
   the quantity jwst combines. Samples flagged DO_NOT_USE or non-finite are
   dropped. The input models are never modified (jwst copies the column in
   place);
2. builds the 1-D master with the shared, datamodel-free algorithms
   (:func:`build_master_background`): common wavelength grid and resampling
   with variance (`jwst_mbkg_plus.algorithms.grid`), whole-spectrum vetting
   (`~jwst_mbkg_plus.algorithms.selection.vet_spectra`), per-wavelength
   robust combination (`~jwst_mbkg_plus.algorithms.combine.combine_spectra`,
   exposure-time weights like jwst), optional NaN-aware running median
   (`~jwst_mbkg_plus.algorithms.smoothing.median_filter_nan`); or reads a
   user background (`jwst_mbkg_plus.io.user_background.read_user_background`);
3. for every science member, evaluates the master at each pixel's wavelength
   (:func:`pixel_wavelengths`: the slit ``wavelength`` array or the WCS via
   `jwst.lib.wcs_utils.get_wavelengths` for slits and images; the NIRSpec
   IFU slice WCSs of `jwst.assign_wcs.nirspec.nrs_ifu_wcs`; the MIRI MRS
   WCS), with its variance (`~jwst_mbkg_plus.algorithms.expand.expand_to_2d`);
4. converts the background to point-source calibration where jwst does, with
   jwst's own functions (:func:`point_source_factor`:
   `~jwst.master_background.nirspec_utils.correct_nrs_fs_bkg` for NIRSpec
   fixed slits holding a point source,
   `~jwst.master_background.nirspec_utils.correct_nrs_ifu_bkg` for a NIRSpec
   IFU point source), scaling the variance by the factor squared;
5. scales it to each science exposure's own sky where the evidence supports
   it (`jwst_mbkg_plus.spec3.exposure_scale`, ``scale_master``): a smooth
   factor in wavelength fitted to the exposure's source-free pixels, found
   from the data, applied only when it differs from 1 beyond its noise, its
   variance added to the background's;
6. subtracts it (:func:`apply_backgrounds`), after computing every background
   first (:func:`run_master_background`), so a failure changes nothing.

Error propagation
-----------------
The master background's variance does not depend on the science pixel's own
signal, so it is added to ``VAR_RNOISE`` (the signal-independent term) and
``ERR`` is recomputed as ``sqrt(VAR_POISSON + VAR_RNOISE + VAR_FLAT)``. If
the variance arrays are absent, ``ERR`` is combined in quadrature with the
background error instead. The background error is the same for all pixels at
one wavelength (it is correlated): summing N pixels of one column, the true
background variance is N^2 var_bkg, not N var_bkg; see
`jwst_mbkg_plus.algorithms.errors.column_sum_variance`.

Edge policy
-----------
Pixels whose wavelength is outside the master's range get no background
(``edge="nan"``, the default): if they hold data, the data, errors and
variances become NaN and DQ gets DO_NOT_USE (jwst's convention for unusable
pixels in ``cal`` products), instead of jwst's silent zero background
(jwst issue #8244). ``"nearest"`` / ``"extrapolate_linear"`` extend the
master instead. Pixels without any wavelength (between IFU slices, off the
slit) are not science pixels and are left exactly as they are.
"""


import logging
from dataclasses import dataclass, field

import numpy as np

from jwst_mbkg_plus import output_checks
from jwst_mbkg_plus.io.user_background import read_user_background
from jwst_mbkg_plus.spec3.collect import collect_background_spectra
from jwst_mbkg_plus.spec3.exposure_scale import scale_backgrounds
from jwst_mbkg_plus.spec3.master import (
    MasterBackground,
    build_master_background,
    master_from_user_background,
)
from jwst_mbkg_plus.spec3.subtract import (
    apply_backgrounds,
    compute_backgrounds,
    science_targets,
    science_wavelengths,
)

__all__ = [
    "Spec3BackgroundResult",
    "run_master_background",
]

log = logging.getLogger(__name__)

#: Exposure types whose lines across the dispersion are one spatial coordinate along a
#: slit: a point source's wings are modelled there (not across IFU slices).
SLIT_TYPES = ("NRS_FIXEDSLIT", "NRS_BRIGHTOBJ", "MIR_LRS-FIXEDSLIT", "MIR_LRS-SLITLESS")


# --------------------------------------------------------------------------- driver


@dataclass
class Spec3BackgroundResult:
    """Outcome of `run_master_background`.

    Attributes
    ----------
    master : MasterBackground
        The 1-D master (combined or user-supplied).
    subtractions : list of SubtractionResult
        One per science model, in order.
    scales : list of ExposureScale
        The sky factor of every science exposure (slit), in order; empty
        with ``scale_master='off'``.
    """

    master: MasterBackground
    subtractions: list
    scales: list = field(default_factory=list)


def _wavelength_range(wavelengths):
    lo, hi = np.inf, -np.inf
    for per_model in wavelengths:
        for wl in per_model:
            if wl is not None and np.isfinite(wl).any():
                lo = min(lo, float(np.nanmin(wl)))
                hi = max(hi, float(np.nanmax(wl)))
    return (lo, hi) if lo < hi else None


def _check_overlap(master, science_range):
    """Refuse a master that covers none of the science wavelengths."""
    defined = np.isfinite(master.surf_bright)
    if not defined.any():
        raise ValueError("the master background is undefined at every wavelength: check the "
                         "background members (all NaN?) and min_spectra.")
    if science_range is None:
        raise ValueError("the science data have no valid wavelength: check that the science "
                         "members are calibrated cal products with a WCS.")
    lo, hi = master.wavelength[defined][[0, -1]]
    if hi < science_range[0] or lo > science_range[1]:
        raise ValueError(
            f"the background covers {lo:.4f}-{hi:.4f} um and the science data "
            f"{science_range[0]:.4f}-{science_range[1]:.4f} um: no overlap. Check that the "
            "background members are of the same grating/filter as the science."
        )


def run_master_background(science, backgrounds=(), *, user_background=None, combine=None,
                          median_kernel=1, edge="nan", propagate_errors=True,
                          min_overlap=0.5, scale_master="auto", scale_model="auto"):
    """
    Build the master background and subtract it from every science model.

    All backgrounds are computed before any model is changed, so an error
    leaves the science models untouched.

    Parameters
    ----------
    science : sequence of `~stdatamodels.jwst.datamodels.JwstDataModel`
        Science models, updated in place (pass copies).
    backgrounds : sequence of `~stdatamodels.jwst.datamodels.MultiSpecModel`, optional
        ``x1d`` background members (not modified); ignored with
        ``user_background``.
    user_background : str, `~pathlib.Path` or None, optional
        A user-supplied 1-D master background instead of the members.
    combine : dict, optional
        Keyword arguments for `build_master_background` (without
        ``median_kernel``).
    median_kernel : int, optional
        Running-median width of the master, in samples.
    edge : {"nan", "nearest", "extrapolate_linear"}, optional
        Policy outside the master's wavelength range.
    propagate_errors : bool, optional
        Add the master's variance to the science variances.
    min_overlap : float, optional
        Smallest fraction of the science wavelength range a user background
        must cover.
    scale_master : {'auto', 'always', 'off'}, optional
        Scale the master to each exposure's own sky: when the factor differs
        from 1 beyond its noise, always, or never (jwst).
    scale_model : {'auto', 'constant', 'linear', 'spline'}, optional
        The factor's model (``auto``: chosen by evidence).

    Returns
    -------
    Spec3BackgroundResult
        The master and per-model backgrounds.

    Raises
    ------
    ValueError
        No usable background spectrum, or the combination failed.
    jwst_mbkg_plus.io.user_background.UserBackgroundError
        A bad user background.
    """
    wavelengths = [science_wavelengths(model) for model in science]
    if user_background is not None:

        user = read_user_background(
            user_background, science_wavelength_range=_wavelength_range(wavelengths),
            min_overlap=min_overlap,
        )
        for text in user.warnings:
            log.warning("user_background: %s", text)
        master = master_from_user_background(user, median_kernel=median_kernel)
    else:
        spectra = collect_background_spectra(backgrounds)
        master = build_master_background(spectra, median_kernel=median_kernel,
                                         **(combine or {}))
    _check_overlap(master, _wavelength_range(wavelengths))
    coverage = output_checks.coverage_problem(
        master.wavelength, master.surf_bright, _wavelength_range(wavelengths), min_overlap,
        what="user background" if user_background is not None else "master background")
    if coverage:
        raise ValueError(coverage)
    subtractions = [
        compute_backgrounds(model, master, wl, edge=edge)
        for model, wl in zip(science, wavelengths, strict=True)
    ]
    scales = []
    for model, sub, wl in zip(science, subtractions, wavelengths, strict=True):
        scales += scale_backgrounds(science_targets(model), sub.backgrounds, wl,
                                    mode=scale_master, model=scale_model,
                                    label=str(model.meta.filename),
                                    wings=model.meta.exposure.type in SLIT_TYPES)
    for model, sub in zip(science, subtractions, strict=True):
        apply_backgrounds(model, sub, propagate_errors=propagate_errors)
    return Spec3BackgroundResult(master, subtractions, scales)
