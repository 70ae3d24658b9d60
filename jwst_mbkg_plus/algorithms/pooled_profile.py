"""One profile shape along the slit for the point sources of an exposure, and its error.

A slitlet's sky factor is measured on its rows beyond the source's wings. Nearer
rows hold sky too, once the wings are taken out, but only as well as the wings
are known: on one slitlet at 20 % noise per pixel the Moffat index of its own
profile is barely constrained, its tail at 2.5 sigma is uncertain by ~10 %, and
the rows gained pay for their noise with that error (measured on PRISM scenes:
the factor's rms does not improve). Every point source of an exposure is seen
through the same point-spread function, so the shape of the profile (its width
and Moffat index) is fitted once to all their profiles (each slitlet keeps its
own sky, amplitude and centre): its error is ~sqrt(n) smaller, and the wings
are then known well enough for rows nearer the source to pay
(`~jwst_mbkg_plus.algorithms.free_rows.nearest_cut`).

A slitlet whose own profile fits the common shape significantly worse than its
own fit (a slightly extended source, a different PSF) keeps its own wings, and
no rows nearer than the guard.
"""

import dataclasses
import logging

import numpy as np
from scipy import stats
from scipy.optimize import least_squares

from jwst_mbkg_plus.algorithms.source_wings import _moffat, _shape

__all__ = ["PooledShape", "pooled_shape", "wings_with_error"]

log = logging.getLogger(__name__)

#: False-alarm probability of "this slitlet's profile is not the common shape".
CONSISTENCY_P_VALUE = 0.01

#: Fewest slitlets for a common shape.
MIN_SLITS = 3


@dataclasses.dataclass
class PooledShape:
    """
    The common profile shape of an exposure's point sources.

    Attributes
    ----------
    width, q : float
        Gaussian sigma of the core (slit-frame units) and ``1 / beta``.
    slit_params : dict
        Slit key -> (sky, amplitude, centre) of its profile with the common shape.
    slit_cov : dict
        Slit key -> covariance (4 x 4) of (amplitude, centre, width, q).
    consistent : dict
        Slit key -> whether its profile agrees with the common shape.
    reduced_chi2 : float
        Of the joint fit (the covariance is scaled by it when above 1).
    """

    width: float
    q: float
    slit_params: dict
    slit_cov: dict
    consistent: dict
    reduced_chi2: float

    def to_record(self):
        """Plain-Python summary for the QA record."""
        return {"sigma": float(self.width),
                "beta": float(1.0 / self.q) if self.q > 1e-6 else 1e6,
                "reduced_chi2": float(self.reduced_chi2),
                "n_slits": len(self.slit_params),
                "n_consistent": int(sum(self.consistent.values()))}


def _chi2(profile, params):
    return float(np.sum(((profile.medians - _moffat(profile.centres, *params))
                         / profile.errors) ** 2))


def _block_covariances(hessian, n_slits, scale):
    """Per slit, the covariance of (amplitude, centre, width, q) from a block-arrow normal matrix.

    Each slit's 3 parameters couple only to the 2 shared ones: the shared block's
    covariance is the inverse of its Schur complement, and each slit's follows
    without inverting the whole matrix.
    """
    shared = slice(3 * n_slits, 3 * n_slits + 2)
    schur = hessian[shared, shared].copy()
    parts = []
    for i in range(n_slits):
        own = slice(3 * i, 3 * i + 3)
        d_inv = np.linalg.pinv(hessian[own, own])
        b = hessian[own, shared]
        schur -= b.T @ d_inv @ b
        parts.append((d_inv, b))
    s_cov = np.linalg.pinv(schur)
    out = []
    for d_inv, b in parts:
        g = d_inv @ b
        own_cov = d_inv + g @ s_cov @ g.T
        cross = -g @ s_cov
        full = np.block([[own_cov, cross], [cross.T, s_cov]])
        # (amplitude, centre, width, q): the sky's row and column out.
        out.append(scale * full[1:, 1:])
    return out


def pooled_shape(profiles, *, p_value=CONSISTENCY_P_VALUE, min_slits=MIN_SLITS):
    """
    Fit one profile shape to several slitlets' profiles.

    Parameters
    ----------
    profiles : dict
        Slit key -> `~jwst_mbkg_plus.algorithms.source_wings.WingProfile`.
        Slitlets with other sources fitted are not used.
    p_value : float, optional
        A slitlet whose chi-square with the common shape exceeds that of its own
        fit beyond this false-alarm probability (2 degrees of freedom) is not
        consistent with it.
    min_slits : int, optional
        Fewest single-source profiles for a common shape.

    Returns
    -------
    PooledShape or None
        None when there are too few profiles or the fit fails.
    """
    keys = [k for k, p in profiles.items() if p is not None and p.n_other == 0]
    if len(keys) < min_slits:
        return None
    x0, lower, upper = [], [], []
    for k in keys:
        f, amp, s0 = profiles[k].params[:3]
        x0 += [f, amp, s0]
        lower += [-np.inf, 0.0, s0 - 0.5]
        upper += [np.inf, np.inf, s0 + 0.5]
    widths = np.array([profiles[k].params[3] for k in keys])
    x0 += [float(np.median(widths)), 0.2]
    lower += [0.01, 0.0]
    upper += [2.0, 1.0]
    x0 = np.clip(x0, np.array(lower) + 1e-9, np.array(upper) - 1e-9)

    # All the slitlets' bins in one array: slit i's parameters are x[3i:3i+3].
    which = np.concatenate([np.full(profiles[k].centres.size, i) for i, k in enumerate(keys)])
    centres = np.concatenate([profiles[k].centres for k in keys])
    medians = np.concatenate([profiles[k].medians for k in keys])
    errors = np.concatenate([profiles[k].errors for k in keys])
    sparsity = np.zeros((which.size, x0.size), dtype=bool)
    for j in range(3):
        sparsity[np.arange(which.size), 3 * which + j] = True
    sparsity[:, -2:] = True

    def residuals(x):
        per = x[:-2].reshape(-1, 3)[which]
        model = per[:, 0] + per[:, 1] * _shape(centres - per[:, 2], 0.0, x[-2], x[-1])
        return (medians - model) / errors

    try:
        sol = least_squares(residuals, x0, bounds=(lower, upper), x_scale="jac",
                            jac_sparsity=sparsity)
    except (ValueError, np.linalg.LinAlgError) as exc:
        log.info("No common profile shape: %s", exc)
        return None
    n_data = sol.fun.size
    dof = max(n_data - sol.x.size, 1)
    reduced = float(np.sum(sol.fun**2) / dof)
    hessian = sol.jac.T @ sol.jac
    hessian = hessian.toarray() if hasattr(hessian, "toarray") else np.asarray(hessian)
    blocks = _block_covariances(hessian, len(keys), max(reduced, 1.0))
    width, q = (float(v) for v in sol.x[-2:])
    threshold = stats.chi2.isf(p_value, 2)
    slit_params, slit_cov, consistent = {}, {}, {}
    for i, k in enumerate(keys):
        own = _chi2(profiles[k], profiles[k].params)
        pars = sol.x[3 * i:3 * i + 3]
        common = _chi2(profiles[k], [*pars, width, q])
        slit_params[k] = tuple(float(v) for v in pars)
        slit_cov[k] = blocks[i]
        consistent[k] = bool(common - own <= threshold)
    return PooledShape(width=width, q=q, slit_params=slit_params, slit_cov=slit_cov,
                       consistent=consistent, reduced_chi2=reduced)


def wings_with_error(offset, profile, shape, key):
    """
    A slitlet's wings with the common shape, and their standard error per pixel.

    Parameters
    ----------
    offset : ndarray
        Signed position of each pixel about the declared source.
    profile : `~jwst_mbkg_plus.algorithms.source_wings.WingProfile`
        The slitlet's measured profile (its flux per column).
    shape : PooledShape
        The common shape.
    key : hashable
        The slitlet's key in ``shape``.

    Returns
    -------
    wings, error : ndarray
        Light of the source over the modelled background, and its error from
        the covariance of (amplitude, centre, width, q) (0 where not measured).
    """
    _, amp, s0 = shape.slit_params[key]
    x = np.array([amp, s0, shape.width, shape.q])
    where = np.isfinite(offset) & profile.columns[None, :]
    s = np.where(where, offset, 0.0)

    def light(p):
        return p[0] * _shape(s, p[1], p[2], max(p[3], 0.0))

    base = light(x)
    steps = np.array([1e-4 * max(abs(amp), 1e-6), 1e-4, 1e-4 * shape.width, 1e-4])
    grads = []
    for j, h in enumerate(steps):
        xp = x.copy()
        xp[j] += h
        grads.append((light(xp) - base) / h)
    g = np.stack(grads, axis=-1)
    var = np.einsum("...i,ij,...j->...", g, shape.slit_cov[key], g)
    flux = profile.flux[None, :]
    wings = np.where(where, flux * base, 0.0)
    error = np.where(where, flux * np.sqrt(np.maximum(var, 0.0)), 0.0)
    return wings, error
