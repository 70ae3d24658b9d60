"""A point-source slitlet's sky factor from every row: the source modelled, not masked.

Masking a point source's rows out to a fixed distance leaves its sky factor
about half of the slitlet's pixels (PRISM, 3 shutters: ~4100 of ~7600). The
rows beside the core hold sky too. Here the source is a term of the fit,
``a(x) P(y)`` with ``P`` the exposure's common profile shape
(`~jwst_mbkg_plus.algorithms.pooled_profile`) and ``a(x)`` free in every column
(`~jwst_mbkg_plus.algorithms.profile_nuisance.ProfileNuisance`): each column
spends on the source only the sky that looks like its profile.

What the model gets wrong leaks into the factor: an error of the profile's
shape (centre, width, Moffat index) leaves light of the source in the rows
fitted, the same in every column. It is propagated through the fit itself:
the level's response to each shape parameter (a refit with the parameter moved
by its standard error) and the shape's covariance give the leak's standard
error ``b``. Rows nearer the source than a cut are left out when that lowers
the factor's total error ``hypot(noise, coverage x b)``: its noise rises as rows
go, the leak falls (most of it comes from the core).
"""

import dataclasses
import logging

import numpy as np

from jwst_mbkg_plus.algorithms.free_rows import WING_COVERAGE
from jwst_mbkg_plus.algorithms.sky_factor import SKY_CLIP, fit_sky_factor
from jwst_mbkg_plus.algorithms.source_wings import _shape

__all__ = ["CORE_CUTS", "ProfileSkyFit", "profile_sky_factor", "profile_width_floor",
           "winged_or_gaussian"]

log = logging.getLogger(__name__)

#: Cuts tried (slit-frame units from the source): rows nearer are left out.
CORE_CUTS = (0.0, 0.25, 0.5, 0.75)


@dataclasses.dataclass
class ProfileSkyFit:
    """
    The sky factor fitted with the source modelled, and what it may carry.

    Attributes
    ----------
    fit : SkyFactor
        The factor (its covariance is that of the joint fit).
    cut : float
        Rows nearer the source than this were left out.
    leak : float
        Standard error of the level from the profile shape's error.
    total : float
        ``hypot(fit.level_error, coverage * leak)``, what the cut minimises.
    n_pixels : int
        Pixels fitted.
    """

    fit: object
    cut: float
    leak: float
    total: float
    n_pixels: int

    def to_record(self):
        """Plain-Python summary for the QA record."""
        return {"rows": "source modelled", "cut": float(self.cut), "leak": float(self.leak),
                "total_error": float(self.total), "n_pixels": int(self.n_pixels)}


def profile_width_floor(width, bin_width):
    """
    Systematic error of a profile width measured as medians in bins of distance.

    A bin averages the profile over its width, which adds ``bin_width**2 / 12`` to
    its variance: the fitted core is wider by ``bin_width**2 / (24 width)``
    (0.0015 for the synthetic sources' 0.28 in bins of 0.1), which is not
    corrected (the bins' centres are the medians of their pixels' positions).

    Parameters
    ----------
    width : float
        Fitted Gaussian sigma of the core.
    bin_width : float
        Width of the profile's bins.

    Returns
    -------
    float
    """
    return float(bin_width**2 / (24.0 * width)) if width > 0 else 0.0


def winged_or_gaussian(centre, width, q, cov, *, sigma=2.0):
    """
    The profile's parameters, with a Moffat index only where the wings show one.

    A Gaussian's fitted ``1 / beta`` sits at its bound 0 or above, and its noise
    would add wings to the model (on the G235M scenes at 5 % noise, a ``q`` of
    0.003 +/- 0.002 put 0.2 % of the sky too much light 2.5 sigma from the
    core, and the factor 0.02 % low). Unless ``q`` exceeds ``sigma`` standard
    errors, it is set to 0 and the centre and width take their values given it
    (the Gaussian conditional of the fit's covariance).

    Parameters
    ----------
    centre, width, q : float
        The fitted profile.
    cov : ndarray
        Covariance (3 x 3) of ``(centre, width, q)``.
    sigma : float, optional
        Significance of ``q`` that keeps it.

    Returns
    -------
    theta : ndarray
        ``(centre, width, q)``.
    cov : ndarray
        Their covariance (``q`` uncorrelated with the others when set to 0).
    """
    theta = np.array([centre, width, q], dtype=float)
    cov = np.array(cov, dtype=float)
    if 0 < q <= sigma * np.sqrt(max(cov[2, 2], 0.0)):
        gain = cov[:, 2] / cov[2, 2]
        theta = theta - gain * q
        cov[:2, :2] -= np.outer(gain[:2], cov[2, :2])
        cov[:2, 2] = 0.0
        cov[2, :2] = 0.0
    return theta, cov


def _column_index(shape):
    return np.broadcast_to(np.arange(shape[-1])[None, :], shape)


def _level(wave, data, var, sky, use, offset, theta, columns, **kw):
    # The source's own light along a column: its profile (not the sky's lines).
    profile = np.where(np.isfinite(offset),
                       _shape(np.nan_to_num(offset), theta[0], theta[1], max(theta[2], 0.0)),
                       0.0)
    return fit_sky_factor(wave, data, var, sky, use, nuisance=(profile, columns), **kw)


def profile_sky_factor(wave, data, var, model, usable, offset, centre, width, q, cov, *,
                       cuts=CORE_CUTS, coverage=WING_COVERAGE, width_floor=0.0, apply=True,
                       clip=SKY_CLIP):
    """
    Fit a slitlet's sky factor with its point source as a profile of free amplitude per column.

    Parameters
    ----------
    wave, data, var, model : ndarray
        Pixel wavelengths, data (dilution-corrected), the variances to weight
        with, and the modelled background (2-D, dispersion along the columns).
    usable : ndarray of bool
        Pixels that may be fitted (valid, no other source).
    offset : ndarray
        Signed position of each pixel from the declared source (slit-frame units).
    centre, width, q : float
        The profile: centre, core Gaussian sigma, ``1 / beta``
        (`~jwst_mbkg_plus.algorithms.source_wings`).
    cov : ndarray
        Covariance (3 x 3) of ``(centre, width, q)``.
    cuts : sequence of float, optional
        Distances from the source tried as the nearest rows fitted.
    coverage : float, optional
        Multiple of the leak's standard error in the total error.
    width_floor : float, optional
        Smallest standard error of ``width`` taken (a systematic of how the
        profile was measured, `profile_width_floor`).
    apply, clip
        As `~jwst_mbkg_plus.algorithms.sky_factor.fit_sky_factor`.

    Returns
    -------
    ProfileSkyFit or None
        The cut of least total error (None when no fit succeeded).
    """
    theta = np.array([centre, width, max(q, 0.0)], dtype=float)
    cov = np.array(cov, dtype=float)
    if cov[1, 1] < width_floor**2:
        # The width's error at least the floor, its correlations kept.
        scale = width_floor / np.sqrt(cov[1, 1]) if cov[1, 1] > 0 else 0.0
        cov[1, :] *= scale
        cov[:, 1] *= scale
        cov[1, 1] = width_floor**2
    steps = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    columns = _column_index(np.shape(data))
    distance = np.abs(offset)
    best = None
    for cut in cuts:
        use = usable & (distance >= cut)
        # A constant factor without clipping: the level's noise, and its response
        # to each shape parameter (the leak).
        base = _level(wave, data, var, model, use, offset, theta, columns, model="constant",
                      apply=False, clip=clip, maxiters=0)
        if not base.fitted:
            continue
        grad = np.zeros(3)
        for j in np.flatnonzero(steps > 0):
            moved = theta.copy()
            moved[j] += steps[j]
            grad[j] = (_level(wave, data, var, model, use, offset, moved, columns,
                              model="constant", apply=False, clip=clip,
                              maxiters=0).level - base.level) / steps[j]
        leak = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
        total = float(np.hypot(base.level_error, coverage * leak))
        if best is None or total < best[2]:
            best = (float(cut), leak, total)
    if best is None:
        return None
    cut, leak, _ = best
    # The factor itself (complexity by evidence, clipped) on the rows chosen.
    fit = _level(wave, data, var, model, usable & (distance >= cut), offset, theta, columns,
                 apply=apply, clip=clip)
    if not fit.fitted:
        return None
    return ProfileSkyFit(fit=fit, cut=cut, leak=leak,
                         total=float(np.hypot(fit.level_error, coverage * leak)),
                         n_pixels=fit.n_pixels)
