"""A point source modelled, not masked, in a sky factor: one core for the MOS and spec3 steps.

A target's pixels beside a point source hold sky and the source's light,

    d(y, x) = f(lambda) B(y, x) + a(x) P(y) + noise,

with ``P`` the source's profile along the slit
(`jwst_mbkg_plus.algorithms.wing_profile`: a Moffat of free index, a Gaussian
in its limit, its width constant or linear in wavelength) and ``a(x)`` its spectrum, free in every
column (lines, breaks, anything). The source's amplitude is eliminated per
column, in one of two ways (the choice is the caller's, see below):

* **joint** (`ProfileNuisance`, variable projection): ``f`` and every ``a(x)``
  by least squares on the same rows, the rows nearer the source than a cut
  left out. Its covariance is that of the joint fit; each column spends on its
  amplitude about ``(sum w P)^2 / sum w P^2`` pixels' worth of sky.
* **core** (`core_projection`): ``a(x)`` measured on the ``k`` brightest lines
  only, its wings subtracted from the others, ``f`` fitted there
  (``data - P alpha`` against ``B - P mu``, linear and unbiased whatever
  ``a(x)``); the noise of ``alpha`` reaches every sky line through ``P`` and is
  added (`core_noise`); the factor's covariance gets it as a level term.

The joint elimination is the exact least squares (and covariance, for every
model of the factor); measured on each other's scenes, it equals the core
lines on spec3's winged slit (factor rms 0.060 / 0.061 % at 5 % noise, 0.244 /
0.242 % at 20 %, 200 draws) and beats them on the MOS slitlets (0.280 against
0.311 % for Gaussian sources, 0.292 against 0.323 % for Moffat ones), where the
core lines do no better than the mask. spec3 still uses the core lines (its
validated figures); moving it to the joint fit is the next step.

What the model gets wrong leaks into the factor: a plausible error of the
profile's shape (`~jwst_mbkg_plus.algorithms.wing_profile.plausible_shapes`:
one standard deviation along each principal axis of the covariance of centre,
width and ``1 / beta``) leaves the source's light in the rows fitted. Its
effect on the factor's level, in quadrature over the axes, is the leak. The
rows are chosen (`choose_rows`) as those of least total error
``hypot(noise, coverage x leak)`` among those whose leak is at most
``max_leak`` times the noise.
"""

import dataclasses
import logging

import numpy as np

from jwst_mbkg_plus.algorithms.free_rows import WING_COVERAGE
from jwst_mbkg_plus.algorithms.sky_factor import SKY_CLIP, fit_sky_factor
from jwst_mbkg_plus.algorithms.wing_profile import plausible_shapes, profile_shape

__all__ = ["CORE_CUTS", "ProfileNuisance", "ProfileSkyFit", "choose_rows", "core_noise",
           "core_projection", "core_response", "profile_sky_factor"]

log = logging.getLogger(__name__)

#: Cuts tried by `profile_sky_factor` (slit-frame units from the source).
CORE_CUTS = (0.0, 0.25, 0.5, 0.75)


def choose_rows(candidates, evaluate, *, coverage=1.0, max_leak=np.inf):
    """
    The candidate rows of least total error whose leak is within ``max_leak`` x noise.

    Parameters
    ----------
    candidates : iterable
        Row choices (cuts, splits...).
    evaluate : callable
        ``evaluate(candidate)`` -> ``(noise, leak, *extra)`` or None (no fit).
    coverage : float, optional
        Multiple of the leak in the total error, ``hypot(noise, coverage * leak)``.
    max_leak : float, optional
        Largest leak, in units of the noise.

    Returns
    -------
    tuple or None
        ``(candidate, total, (noise, leak, *extra))``; None when none qualifies.
    """
    best = None
    for cand in candidates:
        res = evaluate(cand)
        if res is None:
            continue
        noise, leak = res[0], res[1]
        total = float(np.hypot(noise, coverage * leak))
        if leak <= max_leak * noise and (best is None or total < best[1]):
            best = (cand, total, res)
    return best


# --- amplitude per column, joint with the factor (variable projection) ---------

def _column_sums(index, values, n):
    return np.bincount(index, values, minlength=n)


class ProfileNuisance:
    """
    A free amplitude per group (column) times a known profile, for `fit_sky_factor`.

    Parameters
    ----------
    profile : array_like
        The source's profile at each pixel (any normalisation; 0 where it has
        no light).
    group : array_like of int
        The group (column) of each pixel: one amplitude per group.
    """

    def __init__(self, profile, group):
        self.profile = np.asarray(profile, dtype=float).ravel()
        self.group = np.asarray(group).ravel()
        if self.profile.shape != self.group.shape:
            raise ValueError("profile and group must have the same size")
        small = self.group.size == 0 or (self.group.min() >= 0
                                         and self.group.max() < 4 * self.group.size)
        if np.issubdtype(self.group.dtype, np.integer) and small:
            self.index = self.group  # small non-negative labels (columns) already
        else:
            _, self.index = np.unique(self.group, return_inverse=True)

    def subset(self, mask):
        """The same nuisance on the pixels of ``mask`` (a boolean mask or an index)."""
        out = object.__new__(ProfileNuisance)
        out.profile, out.group, out.index = (a[mask] for a in (self.profile, self.group,
                                                                self.index))
        return out

    def _amplitudes(self, pw, values, use):
        """Per group, the weighted least-squares amplitude of ``values`` on ``pw``."""
        n = int(self.index.max()) + 1 if self.index.size else 0
        idx = self.index[use]
        pp = _column_sums(idx, pw[use] ** 2, n)
        has = pp > 0
        safe = np.where(has, pp, 1.0)
        if values.ndim == 1:
            return np.where(has, _column_sums(idx, pw[use] * values[use], n) / safe, 0.0), has
        cols = [_column_sums(idx, pw[use] * values[use, j], n) for j in range(values.shape[1])]
        return np.where(has[:, None], np.stack(cols, axis=1) / safe[:, None], 0.0), has

    def n_free(self):
        """Amplitudes fitted: groups with light of the profile."""
        return int(np.unique(self.index[self.profile != 0]).size)

    def project(self, aw, bw, sigma):
        """Whitened design (n, p) and data (n,), each group's profile component removed."""
        pw = self.profile / sigma
        use = np.ones(pw.size, dtype=bool)
        a_design, _ = self._amplitudes(pw, aw, use)
        a_data, _ = self._amplitudes(pw, bw, use)
        return aw - pw[:, None] * a_design[self.index], bw - pw * a_data[self.index]

    def residual(self, zw, sigma, use):
        """Whitened residuals with the amplitudes fitted on ``use`` (the others get them too)."""
        pw = self.profile / sigma
        amplitude, _ = self._amplitudes(pw, zw, use)
        return zw - pw * amplitude[self.index]


@dataclasses.dataclass
class ProfileSkyFit:
    """
    The sky factor fitted with the source modelled (joint), and what it may carry.

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


def _joint_level(wave, data, var, sky, use, offset, theta, columns, **kw):
    profile = np.where(np.isfinite(offset),
                       profile_shape(np.nan_to_num(offset), theta[0], theta[1],
                                     max(theta[2], 0.0)), 0.0)
    return fit_sky_factor(wave, data, var, sky, use,
                          nuisance=ProfileNuisance(profile, columns), **kw)


def profile_sky_factor(wave, data, var, model, usable, offset, centre, width, q, cov, *,
                       cuts=CORE_CUTS, coverage=WING_COVERAGE, width_floor=0.0, apply=True,
                       clip=SKY_CLIP, min_params=1):
    """
    A target's sky factor with its point source's amplitude eliminated jointly per column.

    Rows nearer the source than a cut (``cuts``) are left out; the cut is
    chosen by `choose_rows` (the level's noise of a constant factor, unclipped,
    and its responses to `plausible_shapes`), then the factor is fitted
    (complexity by evidence, clipped) on the rows chosen.

    Parameters
    ----------
    wave, data, var, model : ndarray
        Pixel wavelengths, data (dilution-corrected), the variances to weight
        with, and the modelled background (2-D, dispersion along the columns).
    usable : ndarray of bool
        Pixels that may be fitted (valid, no other source).
    offset : ndarray
        Signed position of each pixel from the declared source.
    centre, width, q : float
        The profile (`profile_shape`).
    cov : ndarray
        Covariance (3 x 3) of ``(centre, width, q)``.
    cuts : sequence of float, optional
        Distances from the source tried as the nearest rows fitted.
    coverage : float, optional
        Multiple of the leak in the total error (2: the shape is common to an
        exposure's targets, its error does not average down over them).
    width_floor : float, optional
        Smallest standard error of ``width`` taken (`profile_width_floor`).
    apply, clip, min_params
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
    moved = plausible_shapes(theta, cov)
    columns = np.broadcast_to(np.arange(np.shape(data)[-1])[None, :], np.shape(data))
    distance = np.abs(offset)
    quick = {"model": "constant", "apply": False, "clip": clip, "maxiters": 0}

    def evaluate(cut):
        use = usable & (distance >= cut)
        base = _joint_level(wave, data, var, model, use, offset, theta, columns, **quick)
        if not base.fitted:
            return None
        shifts = [_joint_level(wave, data, var, model, use, offset, t, columns,
                               **quick).level - base.level for t in moved]
        return base.level_error, float(np.sqrt(np.sum(np.square(shifts))))

    best = choose_rows(cuts, evaluate, coverage=coverage)
    if best is None:
        return None
    cut, _, (_, leak) = best
    fit = _joint_level(wave, data, var, model, usable & (distance >= cut), offset, theta,
                       columns, apply=apply, clip=clip, min_params=min_params)
    if not fit.fitted:
        return None
    return ProfileSkyFit(fit=fit, cut=float(cut), leak=leak,
                         total=float(np.hypot(fit.level_error, coverage * leak)),
                         n_pixels=fit.n_pixels)


# --- amplitude per column from the core lines (two stages) ---------------------

def core_projection(P, m, W):
    """Per-column amplitude of ``m`` on ``P`` in weights ``W`` (sums over the lines, axis 0)."""
    spp = np.sum(W * P * P, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spp > 0, np.sum(W * P * m, axis=0) / spp, 0.0)


def core_noise(core, lines, P, m, W):
    """
    Noise of the factor's level with the amplitude from ``core`` and the sky from ``lines``.

    Parameters
    ----------
    core, lines : ndarray of int
        Lines (axis 0) of the amplitude and of the sky.
    P, m, W : ndarray
        Profile, modelled background (0 where unused) and weights, lines x columns.

    Returns
    -------
    noise : float
        Standard error of the level, the amplitude's noise included (inf when
        a column of the sky has no core to measure its amplitude).
    spectrum_var : float
        The amplitude's share of its variance.
    mp : ndarray or None
        The sky lines' projected background (for `core_response`).
    info : float
        The sky lines' information on the level.
    """
    Wc, Pc = W[core], P[core]
    Wl, Pl, ml = W[lines], P[lines], m[lines]
    spp = np.sum(Wc * Pc * Pc, axis=0)
    if not np.all(spp[np.any(Wl > 0, axis=0)] > 0):
        return np.inf, 0.0, None, 0.0
    mp = ml - Pl * core_projection(Pc, m[core], Wc)[None, :]
    info = np.sum(Wl * mp * mp)
    if not info > 0:
        return np.inf, 0.0, None, 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        spectrum_var = np.where(spp > 0, np.sum(Wl * mp * Pl, axis=0) ** 2 / spp, 0.0)
    spectrum_var = float(np.sum(spectrum_var) / info**2)
    return float(np.sqrt(1.0 / info + spectrum_var)), spectrum_var, mp, info


def core_response(core, lines, P, dP, W, mp, info, amplitude):
    """The level's response to the profile changed by ``dP`` (source of ``amplitude``)."""
    Wl, Pl = W[lines], P[lines]
    x = amplitude * (dP[lines] - Pl * core_projection(P[core], dP[core], W[core])[None, :])
    return np.sum(Wl * mp * x) / info
