"""A point source modelled, not masked, in a sky factor: one core for the MOS and spec3 steps.

A target's pixels beside a point source hold sky and the source's light,

    d(y, x) = f(lambda) B(y, x) + a(x) P(y) + noise,

with ``P`` the source's profile along the slit
(`jwst_mbkg_plus.algorithms.wing_profile`: a Moffat of free index, a Gaussian
in its limit, its width constant or linear in wavelength) and ``a(x)`` its spectrum, free in every
column (lines, breaks, anything). The source's amplitude is eliminated per
column jointly with the factor (`ProfileNuisance`, variable projection,
`joint_sky_factor`): ``f`` and every ``a(x)`` by least squares on the same
rows, the rows nearer the source than a cut left out. Its covariance is that
of the joint fit (for every model of the factor); each column spends on its
amplitude about ``(sum w P)^2 / sum w P^2`` pixels' worth of sky. The MOS
step (`profile_sky_factor`, the profile a function of each pixel's offset
from the source) and the spec3 step (`jwst_mbkg_plus.spec3.wing_sky`, the
profile of each line, its width constant or linear in wavelength) both use it.

Until session 13 spec3 measured ``a(x)`` on the profile's brightest lines
only and fitted the factor on the others (a two-stage "core lines"
elimination). Measured on each other's scenes (``validation/
wing_elimination.py``) the joint fit equals it on spec3's winged slit and
beats it on the MOS slitlets, where the core lines do no better than the
mask; through the spec3 step the joint fit gives the same factor error
(``validation/spec3_wing_rows.py``), so the core lines were removed.

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

__all__ = ["CORE_CUTS", "ProfileNuisance", "ProfileSkyFit", "choose_rows", "joint_sky_factor",
           "profile_sky_factor"]

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
    noise : float
        Standard error of a constant factor's level on the rows chosen (what
        `choose_rows` weighed against the leak).
    """

    fit: object
    cut: float
    leak: float
    total: float
    n_pixels: int
    noise: float = np.nan

    def to_record(self):
        """Plain-Python summary for the QA record."""
        return {"rows": "source modelled", "cut": float(self.cut), "leak": float(self.leak),
                "total_error": float(self.total), "n_pixels": int(self.n_pixels)}


def joint_sky_factor(wave, data, var, model, usable, distance, theta, cov, profile, *,
                     cuts=CORE_CUTS, coverage=WING_COVERAGE, max_leak=np.inf, apply=True,
                     clip=SKY_CLIP, factor_model="auto", min_params=1):
    """
    The sky factor with a source of known profile and free spectrum eliminated jointly.

    Rows nearer the source than a cut (``cuts``) are left out; the cut is
    chosen by `choose_rows` (the level's noise of a constant factor, unclipped,
    and its responses to `plausible_shapes` of ``theta``), then the factor is
    fitted (``factor_model``, clipped) on the rows chosen, the source's
    amplitude free in every column (`ProfileNuisance`).

    Parameters
    ----------
    wave, data, var, model : ndarray
        Pixel wavelengths, data, the variances to weight with, and the
        modelled background (2-D, one column per amplitude: axis 1).
    usable : ndarray of bool
        Pixels that may be fitted.
    distance : ndarray
        Each pixel's distance from the source (what ``cuts`` are compared with).
    theta, cov : ndarray
        The profile's shape parameters and their covariance.
    profile : callable
        ``profile(theta)``: the profile at every pixel for shape ``theta`` (0
        where it has no light).
    cuts : sequence of float, optional
        Distances from the source tried as the nearest rows fitted.
    coverage : float, optional
        Multiple of the leak in the total error.
    max_leak : float, optional
        Largest leak, in units of the noise (`choose_rows`).
    apply, clip
        As `~jwst_mbkg_plus.algorithms.sky_factor.fit_sky_factor`.
    factor_model : str, optional
        The factor's model (``model`` of `fit_sky_factor`).
    min_params : int, optional
        Fewest coefficients of the factor (``min_params`` of `fit_sky_factor`).

    Returns
    -------
    ProfileSkyFit or None
        The cut of least total error (None when no fit succeeded).
    """
    columns = np.broadcast_to(np.arange(np.shape(data)[-1])[None, :], np.shape(data))
    nominal = profile(theta)
    moved = [profile(t) for t in plausible_shapes(theta, cov)]
    quick = {"model": "constant", "apply": False, "clip": clip, "maxiters": 0}

    def fit(shape, use, **kw):
        return fit_sky_factor(wave, data, var, model, use,
                              nuisance=ProfileNuisance(shape, columns), **kw)

    def evaluate(cut):
        use = usable & (distance >= cut)
        base = fit(nominal, use, **quick)
        if not base.fitted:
            return None
        shifts = [fit(p, use, **quick).level - base.level for p in moved]
        return base.level_error, float(np.sqrt(np.sum(np.square(shifts))))

    best = choose_rows(cuts, evaluate, coverage=coverage, max_leak=max_leak)
    if best is None:
        return None
    cut, _, (noise, leak) = best
    out = fit(nominal, usable & (distance >= cut), model=factor_model, apply=apply, clip=clip,
              min_params=min_params)
    if not out.fitted:
        return None
    return ProfileSkyFit(fit=out, cut=float(cut), leak=leak,
                         total=float(np.hypot(out.level_error, coverage * leak)),
                         n_pixels=out.n_pixels, noise=float(noise))


def profile_sky_factor(wave, data, var, model, usable, offset, centre, width, q, cov, *,
                       cuts=CORE_CUTS, coverage=WING_COVERAGE, width_floor=0.0, apply=True,
                       clip=SKY_CLIP, min_params=1):
    """
    A target's sky factor with its point source's amplitude eliminated jointly per column.

    `joint_sky_factor` with the profile `profile_shape` of each pixel's signed
    ``offset`` from the source and the cuts on its absolute value.

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
    finite = np.isfinite(offset)
    flat = np.nan_to_num(offset)

    def profile(t):
        return np.where(finite, profile_shape(flat, t[0], t[1], max(t[2], 0.0)), 0.0)

    return joint_sky_factor(wave, data, var, model, usable, np.abs(offset), theta, cov,
                            profile, cuts=cuts, coverage=coverage, apply=apply, clip=clip,
                            min_params=min_params)
