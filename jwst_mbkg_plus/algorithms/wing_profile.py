"""The profile of a point source along a slit: the shape the wing model fits and subtracts.

A point source's light across the dispersion is a Moffat of index ``beta``
with a Gaussian core of sigma ``width`` (`profile_shape`, parametrised by
``q = 1 / beta``: a Gaussian at ``q = 0``), the same for every wavelength or
with a width linear in wavelength (`profile_image`). This module fits it to a
measured profile (`fit_profile`; `fit_profile_bands` for bands of wavelength),
keeps the index only where the wings show one (`winged_or_gaussian`), and gives
its plausible errors (`plausible_shapes`). The sky factor's model of the
source, `jwst_mbkg_plus.algorithms.wing_model`, uses them.
"""

import logging

import numpy as np
from scipy import optimize

__all__ = ["SHAPE_LOWER", "SHAPE_UPPER", "fit_profile", "fit_profile_bands",
           "gaussian_unless_winged", "plausible_shapes", "profile_image", "profile_shape",
           "profile_width_floor", "winged_or_gaussian"]

log = logging.getLogger(__name__)

#: Bounds of ``(centre, width, 1 / beta)`` for the plausible shapes (a width slope, if
#: any, between width and index is free).
SHAPE_LOWER = (-np.inf, 1e-3, 0.0)
SHAPE_UPPER = (np.inf, np.inf, 1.0)


def profile_shape(s, centre, width, q):
    """Peak-1 Moffat of index ``1 / q`` and Gaussian core sigma ``width``; Gaussian at q <= 0.

    ``log1p`` keeps it smooth in ``q`` down to 0 (finite differences at the bound).
    """
    u2 = ((np.asarray(s, dtype=float) - centre) / width) ** 2
    if q <= 0:
        return np.exp(-0.5 * u2)
    return np.exp(-np.log1p(0.5 * q * u2) / q)


def fit_profile(s, p, sig, p0, *, width_bounds=(0.2, None)):
    """
    A constant plus a Moffat fitted to a profile; ``(params, cov, chi2, dof)``.

    Parameters
    ----------
    s, p, sig : ndarray
        Positions, profile values and their standard errors.
    p0 : array_like
        First guess of ``(constant, amplitude, centre, width, q)``.
    width_bounds : tuple, optional
        Bounds of the width (``None``: half the span of ``s``, at least 1).

    Returns
    -------
    params : ndarray
    cov : ndarray or None
        Covariance, scaled by the reduced chi-square when above 1 (None
        without degrees of freedom).
    chi2 : float
    dof : int
    """
    def resid(theta):
        c, amp, centre, width, q = theta
        return (p - c - amp * profile_shape(s, centre, width, q)) / sig

    top = width_bounds[1] if width_bounds[1] is not None else max(s.size / 2.0, 1.0)
    lo = [-np.inf, 0.0, s.min() - 1.0, width_bounds[0], 0.0]
    hi = [np.inf, np.inf, s.max() + 1.0, top, 1.0]
    p0 = np.clip(p0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    res = optimize.least_squares(resid, p0, bounds=(lo, hi), x_scale="jac")
    dof = s.size - 5
    chi2 = float(np.sum(res.fun**2))
    cov = np.linalg.pinv(res.jac.T @ res.jac) * max(chi2 / dof, 1.0) if dof > 0 else None
    return res.x, cov, chi2, dof


def winged_or_gaussian(centre, width, q, cov, *, sigma=2.0):
    """
    The profile's parameters, with a Moffat index only where the wings show one.

    A Gaussian's fitted ``1 / beta`` sits at its bound 0 or above, and its noise
    would add wings to the model (on the MOS G235M scenes at 5 % noise, a ``q`` of
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
    return gaussian_unless_winged(np.array([centre, width, q], dtype=float), cov, sigma=sigma)


def gaussian_unless_winged(theta, cov, *, sigma=2.0):
    """`winged_or_gaussian` for any shape vector whose last parameter is ``q``."""
    theta = np.array(theta, dtype=float)
    cov = np.array(cov, dtype=float)
    q = theta[-1]
    if 0 < q <= sigma * np.sqrt(max(cov[-1, -1], 0.0)):
        gain = cov[:, -1] / cov[-1, -1]
        theta = theta - gain * q
        cov[:-1, :-1] -= np.outer(gain[:-1], cov[-1, :-1])
        cov[:-1, -1] = 0.0
        cov[-1, :-1] = 0.0
    return theta, cov


def profile_image(s, theta, tau=None):
    """
    The profile over lines ``s`` (axis 0) and columns of coordinate ``tau`` (axis 1).

    ``theta`` is ``(centre, width, q)`` (one profile for every column) or
    ``(centre, width, slope, q)``: core width ``width + slope x tau`` (at least
    1e-3), a point-spread function that changes with wavelength (``tau`` the
    column's wavelength, -0.5 to 0.5 over the band).
    """
    s = np.asarray(s, dtype=float)[:, None]
    if len(theta) == 3:
        return profile_shape(s, *theta) * np.ones((1, 1 if tau is None else np.size(tau)))
    centre, width, slope, q = theta
    return profile_shape(s, centre, np.maximum(width + slope * np.asarray(tau)[None, :], 1e-3),
                         q)


def fit_profile_bands(s, p, sig, band, tau, p0, *, linear=True, min_width=0.2):
    """
    Profiles of bands of wavelength fitted with one shape, its width linear in wavelength.

    Parameters
    ----------
    s, p, sig : ndarray
        Every band's line positions, profile values and their errors, concatenated.
    band : ndarray of int
        Band of each point (0 to ``n - 1``).
    tau : ndarray
        Wavelength coordinate of each band (-0.5 to 0.5 over the band).
    p0 : array_like
        First guess of ``(constant, amplitude, centre, width, q)`` (every band).
    linear : bool, optional
        Fit the width's slope in ``tau`` (else 0).
    min_width : float, optional
        Smallest width.

    Returns
    -------
    shape : ndarray
        ``(centre, width, slope, q)``.
    cov : ndarray
        Their covariance (scaled by the reduced chi-square when above 1).
    chi2 : float
    dof : int
    amplitude : float
        Mean of the bands' amplitudes.
    """
    nb = int(band.max()) + 1
    tb = np.asarray(tau, dtype=float)[band]

    def resid(x):
        c, a = x[:nb], x[nb:2 * nb]
        slope = x[2 * nb + 2] if linear else 0.0
        width = np.maximum(x[2 * nb + 1] + slope * tb, min_width)
        return (p - c[band] - a[band] * profile_shape(s, x[2 * nb], width, x[-1])) / sig

    top = max(np.ptp(s) / 2.0, 1.0)
    lo = [-np.inf] * nb + [0.0] * nb + [s.min() - 1.0, min_width] + [-2 * top] * linear + [0.0]
    hi = [np.inf] * nb + [np.inf] * nb + [s.max() + 1.0, top] + [2 * top] * linear + [1.0]
    x0 = np.r_[np.full(nb, p0[0]), np.full(nb, p0[1]), p0[2], p0[3], [0.0] * linear, p0[4]]
    x0 = np.clip(x0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    res = optimize.least_squares(resid, x0, bounds=(lo, hi), x_scale="jac")
    dof = s.size - x0.size
    chi2 = float(np.sum(res.fun**2))
    cov = np.linalg.pinv(res.jac.T @ res.jac) * max(chi2 / max(dof, 1), 1.0)
    shape = res.x[2 * nb:] if linear else np.r_[res.x[2 * nb:2 * nb + 2], 0.0, res.x[-1]]
    sub = cov[2 * nb:, 2 * nb:]
    if not linear:
        sub = np.insert(np.insert(sub, 2, 0.0, axis=0), 2, 0.0, axis=1)
    return shape, sub, chi2, dof, float(np.mean(res.x[nb:2 * nb]))


def profile_width_floor(width, bin_width):
    """
    Systematic error of a profile width measured as medians in bins of distance.

    A bin averages the profile over its width, which adds ``bin_width**2 / 12`` to
    its variance: the fitted core is wider by ``bin_width**2 / (24 width)``
    (0.0015 for the synthetic sources' 0.28 in bins of 0.1), which is not
    corrected (the bins' centres are the medians of their pixels' positions).
    """
    return float(bin_width**2 / (24.0 * width)) if width > 0 else 0.0


def plausible_shapes(theta, cov, lower=SHAPE_LOWER, upper=SHAPE_UPPER):
    """
    The profile moved by one standard deviation along each principal axis of ``cov``.

    Parameters
    ----------
    theta : array_like
        ``(centre, width, q)``.
    cov : ndarray
        Their covariance (3 x 3).
    lower, upper : sequence of float, optional
        Bounds the moved parameters are clipped to.

    Returns
    -------
    list of ndarray
        One moved ``theta`` per axis of positive variance. The leak is the
        quadrature sum of the factor level's responses to them.
    """
    theta = np.asarray(theta, dtype=float)
    if theta.size == 4:
        lower, upper = np.insert(lower, 2, -np.inf), np.insert(upper, 2, np.inf)
    vals, vecs = np.linalg.eigh(np.asarray(cov, dtype=float))
    out = []
    for val, vec in zip(vals, vecs.T, strict=True):
        if not val > 0:
            continue
        out.append(np.clip(theta + np.sqrt(val) * vec, lower, upper))
    return out
