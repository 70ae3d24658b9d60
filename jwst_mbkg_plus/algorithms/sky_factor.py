"""A smooth multiplicative factor of the sky in wavelength, fitted to one target's own pixels.

The modelled background of a pixel is a product,

    master(lambda) x spatial(x, y, lambda) x uncalibration(pixel),

and what a target's calibration gets wrong is one more smooth factor in
wavelength (STScI: MOS and FS backgrounds "consistent to within ~5 %"; msaexp
fits each slitlet's sky with a multiplicative B-spline). This module fits
``data ~ f(lambda) x model`` to a target's source-free pixels (``nuisance``: to
a point source's pixels too, the source a term of the fit):

* ``f`` is a B-spline in wavelength; the candidates are a constant, a straight
  line and cubic splines with up to ``max_params`` coefficients (knots at
  quantiles of the pixels' wavelengths). B-splines sum to one, so ``f = 1`` is
  "every coefficient 1", and beyond the fitted range ``f`` is held at its end
  values (a spline is not extrapolated);
* the fit is weighted least squares on the pixels with their variances, after
  an asymmetric clip of the residuals (default ``[-3, +5]`` robust sigma, as
  msaexp's sky fit) made with the richest candidate so that an unmodelled tilt
  is not clipped as outliers, and the same pixels then serve every candidate;
* the complexity is chosen by evidence, as ``spatial_model='auto'`` chooses:
  the lowest ``chi2 / s2 + p ln n`` (``s2`` >= 1 the reduced chi-square of the
  richest candidate), each step up also passing an F-test against the
  simpler choice at ``p_value``;
* its covariance is scaled by the reduced chi-square when that exceeds one;
* whether the factor differs from 1 beyond its noise is a chi-square test of
  ``params - 1``. ``apply='auto'`` applies the factor only then; ``True`` applies
  any fitted factor (a caller that knows the targets scatter decides that);
  ``False`` only measures. The record says which, and why.

The MOS step (per slitlet) and the spec3 step (per exposure) pass flat pixel arrays.
"""

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.interpolate import BSpline

from jwst_mbkg_plus.algorithms.stats import MAD_TO_SIGMA

__all__ = ["SKY_CLIP", "SKY_FACTOR_MODELS", "SkyFactor", "dilution_corrected", "fit_sky_factor",
           "unit_factor"]

log = logging.getLogger(__name__)

#: Models `fit_sky_factor` accepts.
SKY_FACTOR_MODELS = ("constant", "linear", "spline", "auto")

#: Clip of the factor fit's residuals, in robust sigma. Symmetric: the sky pixels are
#: already free of the source (found from its profile), and an asymmetric clip biases a
#: Gaussian sky: clipping at -3 and +5 sigma raises the mean by 0.0044 sigma per pixel
#: (+0.09 % of the sky at 20 % noise per pixel).
SKY_CLIP = (-5.0, 5.0)

#: Default false-alarm probabilities: "the factor differs from 1" (3 sigma), and a
#: richer candidate (F-test, nested).
DEVIATION_P_VALUE = 2.7e-3
AUTO_P_VALUE = 0.01


@dataclass(frozen=True)
class SkyFactor:
    """
    A multiplicative sky factor in wavelength and how it was chosen.

    Attributes
    ----------
    model : str
        ``constant``, ``linear``, ``spline`` (cubic) or ``none`` (not fitted).
    degree : int
        B-spline degree (0, 1 or 3).
    knots : ndarray
        Full knot vector (``len(params) + degree + 1`` knots).
    params : ndarray
        B-spline coefficients (all 1 means no change).
    cov : ndarray
        Their covariance (scaled by the reduced chi-square when above 1).
    level, level_error : float
        Mean factor over the pixels fitted, and its standard error.
    n_pixels, n_rejected : int
        Pixels fitted; pixels clipped as outliers.
    chi2 : float
        Chi-square of the chosen fit on the fitted pixels.
    dof : int
        Its degrees of freedom.
    deviation_chi2 : float
        ``(params - 1)^T cov^-1 (params - 1)``: how far from 1, in its noise.
    p_value : float
        Probability of a ``deviation_chi2`` this large if the factor were 1.
    significant : bool
        ``p_value`` below the threshold the fit was made with.
    applied : bool
        Whether `evaluate` returns the factor (else 1).
    status : str
        Why it is applied or not (a sentence for logs and QA).
    candidates : dict
        Candidate name (``constant``, ``linear``, ``spline4``, ...) -> criterion.
    """

    model: str
    degree: int
    knots: np.ndarray
    params: np.ndarray
    cov: np.ndarray
    level: float
    level_error: float
    n_pixels: int
    n_rejected: int
    chi2: float
    dof: int
    deviation_chi2: float
    p_value: float
    significant: bool
    applied: bool
    status: str
    candidates: dict = field(default_factory=dict)

    @property
    def fitted(self):
        """Whether a factor was fitted at all."""
        return self.model != "none"

    @property
    def wave_range(self):
        """Wavelengths the factor was fitted on (it is constant beyond them)."""
        if not self.fitted:
            return (np.nan, np.nan)
        return (float(self.knots[0]), float(self.knots[-1]))

    def _basis(self, wavelength):
        lo, hi = self.wave_range
        w = np.clip(np.asarray(wavelength, dtype=float).ravel(), lo, hi)
        return _design(w, self.knots, self.degree)

    def evaluate(self, wavelength, *, measured=False):
        """
        The factor and its standard error at any wavelengths.

        Parameters
        ----------
        wavelength : array_like
            Wavelengths (same unit as the fit); NaN gives NaN.
        measured : bool, optional
            Return the fitted factor even when it is not applied (default:
            1 and 0 when not applied).

        Returns
        -------
        factor, error : ndarray
            Same shape as ``wavelength``.
        """
        wavelength = np.asarray(wavelength, dtype=float)
        shape = wavelength.shape
        if not self.fitted or not (self.applied or measured):
            return np.ones(shape), np.zeros(shape)
        finite = np.isfinite(wavelength).ravel()
        factor = np.full(finite.size, np.nan)
        error = np.full(finite.size, np.nan)
        if finite.any():
            b = self._basis(wavelength.ravel()[finite])
            factor[finite] = b @ self.params
            error[finite] = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", b, self.cov, b), 0.0))
        return factor.reshape(shape), error.reshape(shape)

    def variance(self, wavelength, *, measured=False):
        """
        Variance of the factor at any wavelengths (0 where not applied).

        Parameters
        ----------
        wavelength : array_like
            Wavelengths.
        measured : bool, optional
            As in `evaluate`.

        Returns
        -------
        ndarray
            Same shape as ``wavelength``.
        """
        return self.evaluate(wavelength, measured=measured)[1] ** 2

    def to_record(self):
        """
        Plain-Python summary for the QA record (round-trips with `from_record`).

        Returns
        -------
        dict
        """
        lo, hi = self.wave_range
        return {
            "model": self.model,
            "degree": int(self.degree),
            "knots": [float(k) for k in self.knots],
            "params": [float(p) for p in self.params],
            "cov": [[float(c) for c in row] for row in np.atleast_2d(self.cov)],
            "wave_range": [float(lo), float(hi)],
            "level": float(self.level),
            "level_error": float(self.level_error),
            "n_pixels": int(self.n_pixels),
            "n_rejected": int(self.n_rejected),
            "chi2": float(self.chi2),
            "dof": int(self.dof),
            "deviation_chi2": float(self.deviation_chi2),
            "p_value": float(self.p_value),
            "significant": bool(self.significant),
            "applied": bool(self.applied),
            "status": self.status,
            "candidates_criterion": {str(k): float(v) for k, v in self.candidates.items()},
        }

    @classmethod
    def from_record(cls, record):
        """
        Rebuild a factor from `to_record`'s dictionary.

        Parameters
        ----------
        record : dict

        Returns
        -------
        SkyFactor
        """
        n = len(record["params"])
        return cls(
            model=record["model"],
            degree=int(record["degree"]),
            knots=np.asarray(record["knots"], dtype=float),
            params=np.asarray(record["params"], dtype=float),
            cov=np.asarray(record["cov"], dtype=float).reshape(n, n),
            level=float(record["level"]),
            level_error=float(record["level_error"]),
            n_pixels=int(record["n_pixels"]),
            n_rejected=int(record["n_rejected"]),
            chi2=float(record["chi2"]),
            dof=int(record["dof"]),
            deviation_chi2=float(record["deviation_chi2"]),
            p_value=float(record["p_value"]),
            significant=bool(record["significant"]),
            applied=bool(record["applied"]),
            status=record["status"],
            candidates=dict(record.get("candidates_criterion", {})),
        )


def unit_factor(status, n_pixels=0):
    """
    The factor 1, not fitted, with the reason.

    Parameters
    ----------
    status : str
        Why no factor was fitted.
    n_pixels : int, optional
        Pixels that were available.

    Returns
    -------
    SkyFactor
    """
    return SkyFactor(
        model="none", degree=0, knots=np.array([]), params=np.array([]),
        cov=np.zeros((0, 0)), level=1.0, level_error=0.0, n_pixels=int(n_pixels),
        n_rejected=0, chi2=np.nan, dof=0, deviation_chi2=0.0, p_value=1.0,
        significant=False, applied=False, status=status,
    )


def dilution_corrected(data, var, bkg, bkg_var):
    """
    Data scaled so that a fit of ``data ~ f x bkg`` is not diluted by the master's noise.

    The factor is a regression on the master, which is noisy itself: with
    ``bkg = B (1 + e)``, ``e`` of variance ``r = bkg_var / bkg^2``, least squares
    gives ``E[f] = f / (1 + r)`` (errors in variables: a master from one spectrum
    at 5 % per point pulls the factor down by ~0.25 %, at 20 % by ~4 %). Scaling
    the data by ``1 + r`` (and their variance by its square) removes it to first
    order, for every model of the factor. `fit_sky_factor` has no term for the
    model's own noise.

    Parameters
    ----------
    data, var : ndarray
        Science data and variance.
    bkg, bkg_var : ndarray or None
        The expanded master and its variance (None: nothing to correct).

    Returns
    -------
    data, var : ndarray
        Corrected copies.
    """
    if bkg_var is None:
        return data, var
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(np.isfinite(bkg_var) & (bkg != 0), bkg_var / bkg**2, 0.0)
    g = 1.0 + np.nan_to_num(r)
    return data * g, var * g**2


def _design(wavelength, knots, degree):
    """B-spline basis (n, n_params) at wavelengths inside the knots' range."""
    if degree == 0 and knots.size == 2:
        return np.ones((wavelength.size, 1))
    return BSpline.design_matrix(wavelength, knots, degree, extrapolate=False).toarray()


def _knots(wave, name, n_params):
    """Knot vector of a candidate over the pixels' wavelengths."""
    lo, hi = float(np.min(wave)), float(np.max(wave))
    if name == "constant":
        return np.array([lo, hi]), 0
    if name == "linear":
        return np.array([lo, lo, hi, hi]), 1
    n_interior = n_params - 4
    interior = np.quantile(wave, np.linspace(0, 1, n_interior + 2)[1:-1]) if n_interior else []
    return np.concatenate([[lo] * 4, interior, [hi] * 4]), 3


def _candidates(model, max_params):
    if model == "constant":
        return [("constant", 1)]
    if model == "linear":
        return [("linear", 2)]
    splines = [(f"spline{p}", p) for p in range(4, max(max_params, 4) + 1)]
    if model == "spline":
        return splines[-1:]
    return [("constant", 1), ("linear", 2)] + [s for s in splines if s[1] <= max_params]


def _wls(design, data, sigma, nuisance=None):
    aw = design / sigma[:, None]
    bw = data / sigma
    if nuisance is not None:
        aw, bw = nuisance.project(aw, bw, sigma)
    params, *_ = np.linalg.lstsq(aw, bw, rcond=None)
    cov = np.linalg.pinv(aw.T @ aw)
    chi2 = float(np.sum((aw @ params - bw) ** 2))
    return params, cov, chi2


def _clip_mask(design, data, sigma, clip, maxiters, nuisance=None):
    """Pixels kept by the asymmetric clip of residuals / sigma (robustly rescaled)."""
    ok = np.ones(data.size, dtype=bool)
    for _ in range(maxiters):
        params, _, _ = _wls(design[ok], data[ok], sigma[ok], nuisance and nuisance.subset(ok))
        z = (data - design @ params) / sigma
        z = z if nuisance is None else nuisance.residual(z, sigma, ok)
        spread = max(MAD_TO_SIGMA * np.median(np.abs(z[ok] - np.median(z[ok]))), 1.0)
        keep = (z >= clip[0] * spread) & (z <= clip[1] * spread)
        if np.array_equal(keep, ok) or keep.sum() < design.shape[1] + 2:
            break
        ok = keep
    return ok


def fit_sky_factor(wavelength, data, var, model_sky, valid=None, *, model="auto",
                   max_params=6, min_pixels=50, clip=(-3.0, 5.0), maxiters=5,
                   apply="auto", p_value=DEVIATION_P_VALUE, auto_p_value=AUTO_P_VALUE,
                   min_pixels_per_param=25, nuisance=None, min_params=1):
    """
    Fit ``data ~ f(lambda) x model_sky`` on a target's source-free pixels.

    Parameters
    ----------
    wavelength, data, var, model_sky : array_like
        Pixel wavelengths, calibrated data, their variances, and the modelled
        background (same units as ``data``); any shape, all the same.
    valid : array_like of bool, optional
        Pixels that may be used (source-free; default all). Non-finite values,
        non-positive variances or models are never used.
    model : {'auto', 'constant', 'linear', 'spline'}, optional
        ``auto`` chooses by evidence among constant, linear and cubic splines
        of 4 to ``max_params`` coefficients; ``spline`` fits the richest.
    max_params : int, optional
        Most coefficients of a spline candidate (>= 4 for any spline).
    min_pixels : int, optional
        Fewest usable pixels for any fit.
    clip : tuple of float, optional
        Lower and upper clip of the residuals in robust standard deviations.
    maxiters : int, optional
        Clipping iterations.
    apply : {'auto', True, False}, optional
        ``auto``: apply when the factor differs from 1 beyond its noise;
        ``True``: apply any fitted factor; ``False``: measure only.
    p_value : float, optional
        False-alarm probability of the test "differs from 1".
    auto_p_value : float, optional
        False-alarm probability of the F-test admitting a richer candidate.
    min_pixels_per_param : int, optional
        A candidate needs this many fitted pixels per coefficient.
    nuisance : ProfileNuisance, optional
        A source of known profile with a free amplitude per column, fitted
        with the factor (`~jwst_mbkg_plus.algorithms.wing_model.ProfileNuisance`).
    min_params : int, optional
        Fewest coefficients of an ``auto`` candidate (2: a line) the pixels support.

    Returns
    -------
    SkyFactor
        The factor (or 1 with the reason), its covariance and the evidence.
    """
    if model not in SKY_FACTOR_MODELS:
        raise ValueError(f"model must be one of {SKY_FACTOR_MODELS}, not {model!r}")
    if apply not in ("auto", True, False):
        raise ValueError(f"apply must be 'auto', True or False, not {apply!r}")
    wave, d, v, m = (np.asarray(a, dtype=float).ravel()
                     for a in (wavelength, data, var, model_sky))
    if not (wave.size == d.size == v.size == m.size):
        raise ValueError("wavelength, data, var and model_sky must have the same size")
    ok = np.isfinite(wave) & np.isfinite(d) & np.isfinite(v) & (v > 0) & np.isfinite(m) & (m > 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool).ravel()
    if nuisance is not None:
        ok &= np.isfinite(nuisance.profile)
        nuisance = nuisance.subset(ok)
    n_ok = int(ok.sum())
    if n_ok < min_pixels:
        return unit_factor(f"{n_ok} usable pixels (fewer than {min_pixels})", n_ok)
    wave, d, sig, m = wave[ok], d[ok], np.sqrt(v[ok]), m[ok]
    if np.ptp(wave) <= 0:
        cands = [("constant", 1)]
    else:
        cands = [c for c in _candidates(model, max_params)
                 if c[1] * min_pixels_per_param <= n_ok]
        cands = [c for c in cands if c[1] >= min_params] or cands[-1:]
    if not cands:
        return unit_factor(f"{n_ok} usable pixels: too few for a {model} factor", n_ok)
    bases = {}
    for name, p in cands:
        knots, degree = _knots(wave, name, p)
        bases[name] = (knots, degree, _design(wave, knots, degree) * m[:, None])
    richest = bases[cands[-1][0]][2]
    keep = _clip_mask(richest, d, sig, clip, maxiters, nuisance)
    n_used = int(keep.sum())
    nuisance = nuisance and nuisance.subset(keep)
    n_dof = n_used - (nuisance.n_free() if nuisance else 0)
    if n_used < min_pixels:
        return unit_factor(f"{n_used} pixels left after clipping (fewer than {min_pixels})",
                           n_ok)
    fits = {n: _wls(bases[n][2][keep], d[keep], sig[keep], nuisance) for n, _ in cands}
    n_par = dict(cands)
    rich_name = cands[-1][0]
    rich_dof = n_dof - n_par[rich_name]
    s2 = max(fits[rich_name][2] / rich_dof, 1.0) if rich_dof > 0 else 1.0
    criterion = {name: fits[name][2] / s2 + n_par[name] * np.log(n_used) for name, _ in cands}
    chosen = cands[0][0]
    for name, _ in cands[1:]:
        if criterion[name] >= criterion[chosen]:
            continue
        extra = n_par[name] - n_par[chosen]
        dof = n_dof - n_par[name]
        chi_new, chi_old = fits[name][2], fits[chosen][2]
        if dof <= 0 or chi_new <= 0:
            continue
        f_stat = (chi_old - chi_new) / extra / (chi_new / dof)
        if stats.f.sf(f_stat, extra, dof) < auto_p_value:
            chosen = name
    params, cov, chi2 = fits[chosen]
    dof = n_dof - n_par[chosen]
    if dof > 0:
        cov = cov * max(chi2 / dof, 1.0)
    knots, degree, _ = bases[chosen]
    unit = params - 1.0
    try:
        dev = float(unit @ np.linalg.solve(cov, unit))
    except np.linalg.LinAlgError:
        dev = float(unit @ np.linalg.pinv(cov) @ unit)
    p_dev = float(stats.chi2.sf(dev, params.size))
    significant = p_dev < p_value
    g = _design(wave[keep], knots, degree).mean(axis=0)
    level = float(g @ params)
    level_error = float(np.sqrt(max(g @ cov @ g, 0.0)))
    grid = np.linspace(knots[0], knots[-1], 64)
    positive = bool(np.all(_design(grid, knots, degree) @ params > 0))
    family = "spline" if chosen.startswith("spline") else chosen
    describe = (f"{chosen} factor, mean {level:.4f} +/- {level_error:.4f}, "
                f"deviation from 1 chi2 {dev:.1f} for {params.size} (p = {p_dev:.2g})")
    if not positive:
        applied, status = False, f"not applied: {describe}; the factor is not positive"
    elif apply is False:
        applied, status = False, f"measured only: {describe}"
    elif apply is True:
        applied, status = True, f"applied: {describe}"
    elif significant:
        applied, status = True, f"applied (differs from 1 beyond its noise): {describe}"
    else:
        applied, status = False, f"not applied (consistent with 1): {describe}"
    return SkyFactor(
        model=family, degree=int(degree), knots=knots, params=params, cov=cov,
        level=level, level_error=level_error, n_pixels=n_used,
        n_rejected=int(n_ok - n_used), chi2=chi2, dof=int(dof), deviation_chi2=dev,
        p_value=p_dev, significant=bool(significant), applied=applied, status=status,
        candidates={k: float(c) for k, c in criterion.items()},
    )
