"""A smooth spatial factor of the background across the MSA.

The zodiacal and stray-light background changes by a few percent across the
field and between MSA quadrants. Modelled as the master spectrum ``B(lambda)``
times a spatial factor ``S(x, y, q)``, with ``x, y`` the slitlet's position on
the MSA and ``q`` its quadrant, the factor is fitted to each background
slitlet's level relative to the master:

* ``plane``: ``S = c + a X + b Y``;
* ``quadrant``: one level ``c_q`` per quadrant with enough background slitlets;
* ``plane_quadrant``: both;
* ``auto``: the supported model with the lowest Bayesian information criterion
  ``chi2 / s2 + p ln n``, where ``s2`` (at least 1) is the reduced chi-square of
  the richest supported model, so that slit-to-slit scatter no model describes
  does not make every extra term look significant (beyond a constant, a model
  needs at least two more slitlets than parameters, a quadrant level at least
  ``min_per_quadrant`` slitlets, a plane term a spread of positions, and its
  extra terms an F-test against the constant at ``AUTO_P_VALUE`` over all
  the candidates tested).

``X`` and ``Y`` are the positions centred and scaled by the background
slitlets' spread, so the coefficients are fractional changes per spread. The
fit is weighted least squares with iterative sigma clipping; its covariance is
scaled by the reduced chi-square when that exceeds one (variation the model
does not describe is then part of the error). The factor is normalised to a
mean of 1 over the fitted slitlets, so the master keeps their mean level; the
factor's error is that of its shape (the overall level is the master's).
"""

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from jwst_mbkg_plus.algorithms.stats import MAD_TO_SIGMA

__all__ = [
    "SPATIAL_MODELS",
    "SpatialFit",
    "fit_spatial_factor",
]

log = logging.getLogger(__name__)

#: Models `fit_spatial_factor` accepts.
SPATIAL_MODELS = ("plane", "quadrant", "plane_quadrant", "auto")

# Candidates of "auto", simplest first (ties go to the simpler model).
_AUTO_ORDER = ("constant", "plane", "quadrant", "plane_quadrant")

#: False-alarm probability at which "auto" admits a model richer than the
#: constant (F-test of its extra terms, nested). The BIC alone admits three extra
#: terms for 9 slitlets at a chi-square gain of 6.6, which chance gives 9 % of
#: the time: on a uniform PRISM sky at 20 % noise it chose a plane or quadrant
#: model in 4 of 10 seeds, and the extrapolated factor moved source slitlets by
#: up to 1 %. A real gradient or quadrant step of a few percent has F in the
#: hundreds; F is also blind to a common scale error of the levels' errors.
#: It is the probability for all candidates together: each of the ``k``
#: candidates the data support is tested at ``AUTO_P_VALUE / k`` (Bonferroni).
#: Tested each at 0.01, 12 slitlets whose levels scatter by 3 % with no spatial
#: structure got a richer model in 5.8 % of 400 draws (3.0 % corrected), and that
#: model took part of the scatter: on PRISM calibration-scatter scenes the
#: measured scatter came out 26 % and 57 % low (seeds 14 and 11 of 15).
AUTO_P_VALUE = 0.01


@dataclass(frozen=True)
class SpatialFit:
    """
    A fitted spatial factor of the background.

    Attributes
    ----------
    model : str
        ``constant``, ``plane``, ``quadrant`` or ``plane_quadrant``.
    columns : tuple of str
        Parameter names: ``level`` or ``Q<n>`` levels (``Q_other`` for the
        quadrants too thinly sampled for their own), then ``x``, ``y``.
    params : ndarray
        Normalised parameters (mean factor 1 over the fitted slitlets).
    cov : ndarray
        Their covariance.
    centre, scale : tuple of float
        ``X = (x - centre[0]) / scale[0]``, likewise ``Y``.
    own_quadrants : tuple of int
        Quadrants with a level of their own.
    chi2, dof : float, int
        Chi-square of the fitted points and degrees of freedom.
    used : ndarray of bool
        Points kept by the clipping.
    candidates : dict
        For ``auto``: model name -> BIC of the models considered.
    """

    model: str
    columns: tuple
    params: np.ndarray
    cov: np.ndarray
    centre: tuple
    scale: tuple
    own_quadrants: tuple
    chi2: float
    dof: int
    used: np.ndarray
    candidates: dict = field(default_factory=dict)

    @property
    def reduced_chi2(self):
        """Chi-square per degree of freedom (NaN with none)."""
        return self.chi2 / self.dof if self.dof > 0 else float("nan")

    def design(self, x, y, quadrant):
        """
        Design matrix of positions.

        Parameters
        ----------
        x, y : array_like
            MSA positions.
        quadrant : array_like of int
            Quadrants.

        Returns
        -------
        ndarray, shape (n, n_params)
            One row per position.
        """
        return _design(
            np.atleast_1d(np.asarray(x, dtype=float)),
            np.atleast_1d(np.asarray(y, dtype=float)),
            np.atleast_1d(np.asarray(quadrant)),
            self.columns,
            self.own_quadrants,
            self.centre,
            self.scale,
        )

    def predict(self, x, y, quadrant):
        """
        The factor and its standard error at some positions.

        Parameters
        ----------
        x, y : array_like
            MSA positions.
        quadrant : array_like of int
            Quadrants.

        Returns
        -------
        factor, error : ndarray
            One value per position.
        """
        a = self.design(x, y, quadrant)
        factor = a @ self.params
        error = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", a, self.cov, a), 0.0))
        return factor, error

    @classmethod
    def from_record(cls, record):
        """
        The fit a QA record describes (the inverse of `to_record`).

        Parameters
        ----------
        record : dict
            ``to_record()`` output, e.g. ``qa["spatial_model"]``.

        Returns
        -------
        SpatialFit
            Ready to `predict`; ``used`` holds ``n_used`` True values.
        """
        columns = tuple(record["parameters"])
        return cls(
            model=record["model"],
            columns=columns,
            params=np.array([float(record["parameters"][c]["value"]) for c in columns]),
            cov=np.array(record["covariance"], dtype=float).reshape(len(columns), len(columns)),
            centre=tuple(record["centre"]),
            scale=tuple(record["scale"]),
            own_quadrants=tuple(
                int(c[1:]) for c in columns if c.startswith("Q") and c != "Q_other"
            ),
            chi2=float(record["chi2"]),
            dof=int(record["dof"]),
            used=np.ones(int(record["n_used"]), dtype=bool),
            candidates=dict(record.get("candidates_bic", {})),
        )

    def to_record(self):
        """
        Plain-Python summary for the QA record.

        Returns
        -------
        dict
            Model, parameters with errors and covariance, normalisation and
            goodness of fit.
        """
        errors = np.sqrt(np.maximum(np.diag(self.cov), 0.0))
        return {
            "model": self.model,
            "parameters": {
                name: {"value": float(v), "error": float(e)}
                for name, v, e in zip(self.columns, self.params, errors, strict=True)
            },
            "covariance": [[float(c) for c in row] for row in self.cov],
            "centre": [float(c) for c in self.centre],
            "scale": [float(s) for s in self.scale],
            "chi2": float(self.chi2),
            "dof": int(self.dof),
            "reduced_chi2": float(self.reduced_chi2),
            "n_used": int(self.used.sum()),
            "n_clipped": int((~self.used).sum()),
            "candidates_bic": {k: float(v) for k, v in self.candidates.items()},
        }


def _normalisation(x, y):
    """Centre and scale of positions (scale 1 where they do not spread)."""
    centre = (float(np.mean(x)), float(np.mean(y)))
    scale = []
    for values, c in ((x, centre[0]), (y, centre[1])):
        spread = float(np.max(np.abs(values - c))) if values.size else 0.0
        scale.append(spread if spread > 0 else 1.0)
    return centre, tuple(scale)


def _quadrant_columns(quadrant, min_per_quadrant):
    """Quadrants with a level of their own, and whether an 'other' level is needed."""
    values, counts = np.unique(quadrant, return_counts=True)
    own = tuple(int(q) for q, c in zip(values, counts, strict=True) if c >= min_per_quadrant)
    # Thinly sampled quadrants share a level if together they have enough
    # slitlets, else they get the mean of the fitted levels.
    other = counts[counts < min_per_quadrant].sum() >= min_per_quadrant
    if len(own) == 1 and not other:
        return (), False  # one quadrant: just a level
    return own, other


def _columns(model, own, other, spread_x, spread_y):
    if model in ("quadrant", "plane_quadrant") and own:
        columns = [f"Q{q}" for q in own] + (["Q_other"] if other else [])
    else:
        columns = ["level"]
    if model in ("plane", "plane_quadrant"):
        columns += [name for name, ok in (("x", spread_x), ("y", spread_y)) if ok]
    return tuple(columns)


def _design(x, y, quadrant, columns, own, centre, scale):
    a = np.zeros((x.size, len(columns)))
    for j, name in enumerate(columns):
        if name == "level":
            a[:, j] = 1.0
        elif name == "Q_other":
            # Quadrants without their own level; also any quadrant never fitted.
            a[:, j] = ~np.isin(quadrant, own)
        elif name.startswith("Q"):
            a[:, j] = quadrant == int(name[1:])
        elif name == "x":
            a[:, j] = (x - centre[0]) / scale[0]
        elif name == "y":
            a[:, j] = (y - centre[1]) / scale[1]
    if "Q_other" not in columns and any(c.startswith("Q") for c in columns):
        # A quadrant with no level of its own gets the mean of the fitted levels.
        levels = [j for j, c in enumerate(columns) if c.startswith("Q")]
        missing = ~np.isin(quadrant, own)
        for j in levels:
            a[missing, j] = 1.0 / len(levels)
    return a


def _weighted_lstsq(a, b, err):
    w = 1.0 / err
    aw = a * w[:, None]
    bw = b * w
    params, *_ = np.linalg.lstsq(aw, bw, rcond=None)
    cov = np.linalg.pinv(aw.T @ aw)
    chi2 = float(np.sum(((a @ params - b) * w) ** 2))
    return params, cov, chi2


def _fit_once(model, x, y, quadrant, ratio, err, use, *, min_per_quadrant, sigma, maxiters,
              min_dof=1):
    """Weighted fit of one model with sigma clipping; None if the data cannot support it."""
    use = use.copy()
    for _ in range(maxiters + 1):
        centre, scale = _normalisation(x[use], y[use])
        own, other = _quadrant_columns(quadrant[use], min_per_quadrant)
        if model in ("quadrant", "plane_quadrant") and not own:
            return None
        spread_x = np.ptp(x[use]) > 0 if use.any() else False
        spread_y = np.ptp(y[use]) > 0 if use.any() else False
        columns = _columns(model, own, other, spread_x, spread_y)
        if model in ("plane", "plane_quadrant") and not ({"x", "y"} & set(columns)):
            return None
        if use.sum() < len(columns) + min_dof:
            return None
        a = _design(x, y, quadrant, columns, own, centre, scale)
        params, cov, chi2 = _weighted_lstsq(a[use], ratio[use], err[use])
        z = (ratio - a @ params) / err
        dof = int(use.sum()) - len(columns)
        spread = MAD_TO_SIGMA * np.median(np.abs(z[use])) if dof > 0 else 0.0
        keep = use & (np.abs(z) <= sigma * max(spread, 1.0))
        if keep.sum() == use.sum() or keep.sum() <= len(columns) + 1:
            break
        use = keep
    return {
        "columns": columns,
        "own": own,
        "centre": centre,
        "scale": scale,
        "params": params,
        "cov": cov,
        "chi2": chi2,
        "dof": dof,
        "used": use,
        "design": a,
    }


def _significant(fit, constant, *, p_value=0.05):
    """
    Whether ``fit`` improves on the constant beyond chance (F-test, nested models).

    With 4 background slitlets a plane leaves one degree of freedom, whose
    chi-square cannot estimate the slit-to-slit scatter the criterion of
    ``auto`` divides by. The F statistic of the extra terms against that one
    degree of freedom still tells a real gradient (F in the thousands) from
    scatter (F(2, 1) exceeds its 5 % point, 199.5, in 5 % of cases). Measured
    on the 4 background and 6 source slitlets of a synthetic NRS1 layout, 300
    seeds: a +/-5 % gradient in x and y is left at 0.05 % rms in the source
    slitlets instead of 2.5 % without the plane; with pure slit-to-slit scatter
    (0.5-2 %) the rms grows from 1.20 to 1.26 sigma (jwst's one master: 1.12).
    """
    extra = len(fit["columns"]) - len(constant["columns"])
    if extra < 1 or fit["dof"] < 1:
        return False
    f_value = ((constant["chi2"] - fit["chi2"]) / extra) / (fit["chi2"] / fit["dof"])
    return bool(f_value > stats.f.ppf(1 - p_value, extra, fit["dof"]))


def fit_spatial_factor(x, y, quadrant, ratio, error, *, model="auto", sigma=3.0, maxiters=5,
                       min_per_quadrant=2, floor=1e-3, min_dof=1):
    """
    Fit a smooth spatial factor to the levels of background slitlets.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        MSA positions of the slitlets (any consistent unit).
    quadrant : array_like of int, shape (n,)
        Their MSA quadrants.
    ratio, error : array_like, shape (n,)
        Level of each slitlet relative to the master, and its error (e.g. from
        `~jwst_mbkg_plus.algorithms.levels.level_ratios`); non-finite entries are ignored.
    model : {'plane', 'quadrant', 'plane_quadrant', 'auto', 'constant'}, optional
        Spatial model (see the module description); ``constant`` is the
        trivial factor 1 (e.g. to refit a model ``auto`` chose).
    sigma : float, optional
        Clipping threshold in robust standard deviations of the normalised
        residuals (never below 1).
    maxiters : int, optional
        Clipping iterations.
    min_per_quadrant : int, optional
        Fewest slitlets for a quadrant to get a level of its own.
    floor : float, optional
        Slit-to-slit systematic error of the levels (flat-field and
        calibration residuals), added in quadrature to ``error``. Without it
        a level measured to 0.03% from thousands of pixels makes calibration
        residuals of that size look like structure worth a richer model.
    min_dof : int, optional
        Fewest degrees of freedom a requested (not ``auto``) model must leave;
        0 allows an exactly determined fit, e.g. a plane through the 3
        slitlets left when a leave-one-out check drops one of 4.

    Returns
    -------
    SpatialFit or None
        The normalised fit; None if fewer than two usable slitlets remain, or
        the requested model needs more than the data hold (for ``auto`` the
        constant model always fits two or more slitlets).

    Raises
    ------
    ValueError
        For an unknown model or mismatched lengths.
    """
    if model not in (*SPATIAL_MODELS, "constant"):
        raise ValueError(f"model must be one of {SPATIAL_MODELS}, got {model!r}")
    x, y, ratio, error = (np.asarray(v, dtype=float).ravel() for v in (x, y, ratio, error))
    quadrant = np.asarray(quadrant).ravel().astype(int)
    if not (x.size == y.size == quadrant.size == ratio.size == error.size):
        raise ValueError("x, y, quadrant, ratio and error must have the same length")
    use = np.isfinite(x) & np.isfinite(y) & np.isfinite(ratio) & np.isfinite(error)
    error = np.hypot(error, floor)
    use &= error > 0
    if use.sum() < 2:
        return None
    options = {"min_per_quadrant": min_per_quadrant, "sigma": sigma, "maxiters": maxiters}
    candidates = {}
    if model == "auto":
        # Clip with the richest model the data support, then compare every
        # candidate on the same points.
        richest = None
        for name in reversed(_AUTO_ORDER):
            richest = _fit_once(name, x, y, quadrant, ratio, error, use, **options)
            if richest is not None:
                break
        common = richest["used"] if richest is not None else use
        # Noise scale from the richest model (as Mallows' Cp): slit-to-slit
        # scatter no model describes must not make every extra term look
        # significant.
        noise = 1.0
        if richest is not None and richest["dof"] >= 2:
            noise = max(richest["chi2"] / richest["dof"], 1.0)
        once = {**options, "maxiters": 0}
        richer = {name: _fit_once(name, x, y, quadrant, ratio, error, common, **once)
                  for name in _AUTO_ORDER}
        # One false-alarm probability for all the richer candidates the data support
        # (each distinct set of terms counted once).
        distinct = {tuple(f["columns"]) for f in richer.values() if f is not None}
        p_value = AUTO_P_VALUE / max(1, len(distinct) - 1)
        fits = {}
        for name in _AUTO_ORDER:
            fit = richer[name]
            if fit is None or (fits and fit["columns"] in [f["columns"] for f in fits.values()]):
                continue
            if fits and fit["dof"] >= 2 and not _significant(fit, fits["constant"],
                                                             p_value=p_value):
                continue  # no better than chance: the constant's error is the smaller
            if fits and fit["dof"] < 2:
                if not _significant(fit, fits["constant"]):
                    continue  # one degree of freedom left: only a decisive improvement counts
                # A model that decisively describes the levels also bounds the noise
                # scale: else the richest model's misfit would inflate it.
                noise = min(noise, max(fit["chi2"] / fit["dof"], 1.0))
            fits[name] = fit
        if not fits:
            return None
        for name, fit in fits.items():
            candidates[name] = fit["chi2"] / noise + len(fit["columns"]) * np.log(common.sum())
        chosen = min(candidates, key=candidates.get)
        fit = fits[chosen]
    else:
        chosen = model
        fit = _fit_once(model, x, y, quadrant, ratio, error, use, **options, min_dof=min_dof)
        if fit is None:
            return None

    used = fit["used"]
    # Variation the model does not describe becomes part of its error.
    birge = max(fit["chi2"] / fit["dof"], 1.0) if fit["dof"] > 0 else 1.0
    mean_row = fit["design"][used].mean(axis=0)
    mean_factor = float(mean_row @ fit["params"])
    if not np.isfinite(mean_factor) or mean_factor <= 0:
        return None
    # Normalising removes the overall level (the master carries it): the
    # covariance of params / (mean_row @ params) is J C J^T.
    params = fit["params"] / mean_factor
    jacobian = (np.eye(params.size) - np.outer(params, mean_row)) / mean_factor
    cov = jacobian @ (fit["cov"] * birge) @ jacobian.T
    return SpatialFit(
        model=chosen,
        columns=fit["columns"],
        params=params,
        cov=cov,
        centre=fit["centre"],
        scale=fit["scale"],
        own_quadrants=fit["own"],
        chi2=fit["chi2"],
        dof=fit["dof"],
        used=used,
        candidates=candidates,
    )
