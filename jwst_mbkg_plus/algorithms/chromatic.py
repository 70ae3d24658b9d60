"""A spatial factor of the background that changes with wavelength.

The background's variation across the MSA is not grey: msaexp's empirical PRISM
sky normalisation (measured on the background shutters of program 2750) is a
plane per quadrant whose coefficients change with wavelength, the quadrant
levels running from 0.92 to 1.02. `jwst_mbkg_plus.algorithms.spatial` fits one
factor per slitlet; here each coefficient of that model becomes a low-order
polynomial in wavelength,

    S(x, y, q, lambda) = sum_j a_j(x, y, q) * sum_l p_jl * t(lambda)**l,

with ``a_j`` the spatial model's design (levels per quadrant, plane terms) and
``t`` the wavelength scaled to [-1, 1] over the range the spectra cover
(constant beyond it: a polynomial is not extrapolated past the data). It is
fitted by weighted least squares to the slitlets' levels relative to the master
in a few wavelength bands (`band_levels`). The order (0, 1 or 2) is chosen with
the same criterion as the spatial model, ``chi2 / s2 + p ln n`` with ``s2`` the
reduced chi-square of the richest order; order 0 means the grey factor is
enough, and then no chromatic fit is returned. The factor is normalised to a
mean of 1 over the fitted slitlets at every wavelength (the master carries the
level there), and its error is that of the normalised factor (delta method on
the fit's covariance, scaled by the reduced chi-square when that exceeds one).
"""

import logging
from dataclasses import dataclass, field

import numpy as np

from jwst_mbkg_plus.algorithms.levels import level_ratios

__all__ = ["ChromaticSpatialFit", "band_levels", "fit_chromatic_factor"]

log = logging.getLogger(__name__)


def band_levels(wavelength, flux, var, master, *, n_bands=6):
    """
    Level of each spectrum relative to the master in a few wavelength bands.

    Parameters
    ----------
    wavelength : ndarray, shape (n_wave,)
        The common grid.
    flux, var : ndarray, shape (n_spectra, n_wave)
        Spectra and their variances on that grid (NaN = no data).
    master : ndarray, shape (n_wave,)
        The master spectrum on the grid.
    n_bands : int, optional
        Bands of equal numbers of grid points where the master is defined.

    Returns
    -------
    band_wave : ndarray, shape (n_bands,)
        Median wavelength of each band.
    ratio, error : ndarray, shape (n_spectra, n_bands)
        Levels and their errors (`~jwst_mbkg_plus.algorithms.levels.level_ratios`
        in each band); NaN where a band has too few points.
    """
    wavelength = np.asarray(wavelength, dtype=float)
    flux = np.atleast_2d(np.asarray(flux, dtype=float))
    var = np.atleast_2d(np.asarray(var, dtype=float))
    defined = np.flatnonzero(np.isfinite(master) & (master > 0))
    chunks = [c for c in np.array_split(defined, n_bands) if c.size]
    band_wave = np.array([np.median(wavelength[c]) for c in chunks])
    ratio = np.full((flux.shape[0], len(chunks)), np.nan)
    error = np.full_like(ratio, np.nan)
    for b, cols in enumerate(chunks):
        ratio[:, b], error[:, b] = level_ratios(flux[:, cols], var[:, cols], master[cols])
    return band_wave, ratio, error


@dataclass(frozen=True)
class ChromaticSpatialFit:
    """
    A spatial factor whose coefficients are polynomials in wavelength.

    Attributes
    ----------
    base : `~jwst_mbkg_plus.algorithms.spatial.SpatialFit`
        The grey fit whose design (model, columns, normalisation) is used.
    order : int
        Polynomial order in wavelength (>= 1).
    wave_centre, wave_scale : float
        ``t = clip((lambda - wave_centre) / wave_scale, -1, 1)``.
    params : ndarray, shape (n_columns, order + 1)
        Coefficients (not normalised).
    cov : ndarray, shape (n_columns * (order + 1),) * 2
        Their covariance (row-major flattening of ``params``).
    mean_row : ndarray, shape (n_columns,)
        Mean design row of the fitted slitlets (the normalisation).
    chi2, dof : float, int
        Goodness of fit of the band levels.
    candidates : dict
        Order -> criterion value of the orders considered.
    """

    base: object
    order: int
    wave_centre: float
    wave_scale: float
    params: np.ndarray
    cov: np.ndarray
    mean_row: np.ndarray
    chi2: float
    dof: int
    candidates: dict = field(default_factory=dict)

    def _powers(self, wavelength):
        t = (np.asarray(wavelength, dtype=float) - self.wave_centre) / self.wave_scale
        return np.vander(np.clip(t, -1.0, 1.0), self.order + 1, increasing=True)

    def predict(self, x, y, quadrant, wavelength):
        """
        The normalised factor and its standard error.

        Parameters
        ----------
        x, y : array_like, shape (n,)
            MSA positions.
        quadrant : array_like of int, shape (n,)
            Quadrants.
        wavelength : array_like, shape (m,)
            Wavelengths (the unit of the fit).

        Returns
        -------
        factor, error : ndarray, shape (n, m)
            One row per position.
        """
        a = self.base.design(x, y, quadrant)  # (n, p)
        powers = self._powers(np.atleast_1d(wavelength))  # (m, o+1)
        coeff = self.params @ powers.T  # (p, m)
        raw = a @ coeff  # (n, m)
        mean = self.mean_row @ coeff  # (m,)
        factor = raw / mean
        # d factor / d params[j, l] = (a[k, j] - factor[k, t] mean_row[j]) powers[t, l] / mean[t]
        p, o1 = self.params.shape
        cov = self.cov.reshape(p, o1, p, o1)
        error = np.empty_like(factor)
        for k in range(a.shape[0]):
            d = (a[k][None, :] - factor[k][:, None] * self.mean_row[None, :]) / mean[:, None]
            jac = d[:, :, None] * powers[:, None, :]  # (m, p, o+1)
            error[k] = np.sqrt(np.maximum(np.einsum("tjl,jlim,tim->t", jac, cov, jac), 0.0))
        return factor, error

    def to_record(self):
        """
        Plain-Python summary for the QA record.

        Returns
        -------
        dict
            Order, wavelength normalisation, coefficients and their errors per
            spatial parameter, goodness of fit and the criterion of each order.
        """
        errors = np.sqrt(np.maximum(np.diag(self.cov), 0.0)).reshape(self.params.shape)
        return {
            "order": int(self.order),
            "wave_centre_um": float(self.wave_centre),
            "wave_scale_um": float(self.wave_scale),
            "coefficients": {
                name: {"values": [float(v) for v in row], "errors": [float(e) for e in err]}
                for name, row, err in zip(self.base.columns, self.params, errors, strict=True)
            },
            "chi2": float(self.chi2),
            "dof": int(self.dof),
            "candidates_criterion": {str(k): float(v) for k, v in self.candidates.items()},
        }


def _fit_order(a, t, ratio, error, use, order):
    """Weighted least squares of the band levels for one polynomial order."""
    k_idx, b_idx = np.nonzero(use)
    powers = np.vander(t[b_idx], order + 1, increasing=True)
    design = (a[k_idx][:, :, None] * powers[:, None, :]).reshape(k_idx.size, -1)
    w = 1.0 / error[k_idx, b_idx]
    aw = design * w[:, None]
    bw = ratio[k_idx, b_idx] * w
    params, *_ = np.linalg.lstsq(aw, bw, rcond=None)
    cov = np.linalg.pinv(aw.T @ aw)
    chi2 = float(np.sum((aw @ params - bw) ** 2))
    return params.reshape(a.shape[1], order + 1), cov, chi2, int(k_idx.size - params.size)


def fit_chromatic_factor(base, x, y, quadrant, band_wave, ratio, error, *, max_order=2,
                         order=None, floor=1e-3, wave_range=None):
    """
    Fit the wavelength dependence of a spatial factor to band levels.

    Parameters
    ----------
    base : `~jwst_mbkg_plus.algorithms.spatial.SpatialFit`
        The grey fit (its ``used`` slitlets are fitted here).
    x, y : array_like, shape (n,)
        MSA positions of the slitlets ``base`` was fitted to.
    quadrant : array_like of int, shape (n,)
        Their quadrants.
    band_wave : array_like, shape (n_bands,)
        Band wavelengths (`band_levels`).
    ratio, error : array_like, shape (n, n_bands)
        Band levels and their errors.
    max_order : int, optional
        Highest polynomial order considered.
    order : int, optional
        Fit this order instead of choosing one (e.g. to refit, without one
        slitlet, the order chosen with all of them).
    floor : float, optional
        Systematic error of a band level, added in quadrature (as in
        `~jwst_mbkg_plus.algorithms.spatial.fit_spatial_factor`).
    wave_range : tuple of float, optional
        Wavelengths the spectra cover: the polynomial's domain (default: the
        band wavelengths' range).

    Returns
    -------
    ChromaticSpatialFit or None
        None when the grey factor is enough (order 0 chosen), the base model is
        a constant (no spatial structure to vary), or the data cannot support
        an order above 0.
    """
    if base is None or base.model == "constant":
        return None
    x, y = (np.asarray(v, dtype=float).ravel() for v in (x, y))
    quadrant = np.asarray(quadrant).ravel().astype(int)
    band_wave = np.asarray(band_wave, dtype=float).ravel()
    ratio = np.atleast_2d(np.asarray(ratio, dtype=float))
    error = np.hypot(np.atleast_2d(np.asarray(error, dtype=float)), floor)
    use = base.used[:, None] & np.isfinite(ratio) & np.isfinite(error) & (error > 0)
    bands_used = np.flatnonzero(use.any(axis=0))
    if bands_used.size < 3:
        return None
    lo, hi = band_wave[bands_used].min(), band_wave[bands_used].max()
    if wave_range is not None:
        lo, hi = min(lo, float(wave_range[0])), max(hi, float(wave_range[1]))
    centre, scale = 0.5 * (lo + hi), max(0.5 * (hi - lo), 1e-12)
    t = np.clip((band_wave - centre) / scale, -1.0, 1.0)
    a = base.design(x, y, quadrant)
    n_points = int(use.sum())
    orders = [order] if order is not None else list(range(0, max_order + 1))
    fits = {}
    for o in orders:
        if n_points - a.shape[1] * (o + 1) < (1 if order is not None else 2):
            continue
        fits[o] = _fit_order(a, t, ratio, error, use, o)
    if not fits:
        return None
    if order is None:
        richest = fits[max(fits)]
        noise = max(richest[2] / richest[3], 1.0) if richest[3] >= 2 else 1.0
        candidates = {
            o: f[2] / noise + f[0].size * np.log(n_points) for o, f in fits.items()
        }
        chosen = min(candidates, key=candidates.get)
    else:
        candidates, chosen = {}, order
    if chosen == 0:
        return None
    params, cov, chi2, dof = fits[chosen]
    birge = max(chi2 / dof, 1.0) if dof > 0 else 1.0
    return ChromaticSpatialFit(
        base=base,
        order=int(chosen),
        wave_centre=float(centre),
        wave_scale=float(scale),
        params=params,
        cov=cov * birge,
        mean_row=a[base.used].mean(axis=0),
        chi2=chi2,
        dof=dof,
        candidates=candidates,
    )


def factors_at(fit, chrom, positions, wavelength):
    """
    A spatial factor (grey or chromatic) and its error at MSA positions and wavelengths.

    Parameters
    ----------
    fit : `~jwst_mbkg_plus.algorithms.spatial.SpatialFit` or None
        The grey spatial factor.
    chrom : ChromaticSpatialFit or None
        Its wavelength dependence (used instead of ``fit`` when given).
    positions : array_like, shape (n, 3)
        MSA x, y and quadrant of each slit.
    wavelength : array_like, shape (m,)
        Wavelengths (micron).

    Returns
    -------
    factor, error : ndarray, shape (n, m)
        1 and 0 where there is no usable fit.
    """
    positions = np.atleast_2d(np.asarray(positions, dtype=float))
    m = np.size(wavelength)
    if chrom is not None:
        factor, error = chrom.predict(
            positions[:, 0], positions[:, 1], positions[:, 2].astype(int), wavelength
        )
    elif fit is not None:
        f, e = fit.predict(positions[:, 0], positions[:, 1], positions[:, 2])
        factor, error = np.repeat(f[:, None], m, axis=1), np.repeat(e[:, None], m, axis=1)
    else:
        return np.ones((len(positions), m)), np.zeros((len(positions), m))
    good = np.isfinite(factor) & (factor > 0) & np.isfinite(error)
    return np.where(good, factor, 1.0), np.where(good, error, 0.0)
