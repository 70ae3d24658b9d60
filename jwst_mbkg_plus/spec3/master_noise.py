"""The master's own noise in an exposure's sky factor.

The sky factor ``f(lambda)`` of a science exposure is a regression of its sky pixels
on the expanded master, ``data ~ f x master``
(`jwst_mbkg_plus.algorithms.sky_factor.fit_sky_factor`). The fit's covariance
counts the pixels' noise, which averages over every pixel. The master's noise
does not: the master is one spectrum, and every sky pixel at one wavelength (every
row of a slit, every slice of an IFU) divides by the same master sample. A master
sample that came out high by ``r`` pulls the factor at that wavelength low by ``r``
in every sky pixel at once, so that part of the factor's error falls only with the
number of master samples, not with the number of pixels:

    cov_master = sum_b rho_b u_b u_b^T,   u_b = sum_(i in b) H_i mu_i,

with ``H = (A^T W A)^-1 A^T W`` the fit's estimator (design ``A``, weights ``W``),
``mu_i`` the fitted sky of pixel ``i``, and the pixels grouped by the master
sample they divide by (bins of the exposure's wavelength step, ``b``) whose
relative variance is ``rho_b`` (``var_master / master^2``). For one exposure at
5 % noise per pixel it is 4-25 % of the pixel term (the MIRI MRS sky holds ~24000
pixels on 400 master samples); it is the whole of the error that does not fall
when more pixels are fitted.

`with_master_noise` adds it to a fitted factor's covariance and re-decides,
with the same test, whether the factor differs from 1 beyond its noise: without
it that test took the master's noise for a drift (MIRI MRS at 5 % noise applied
a factor in 3 of 100 no-drift seeds). Nothing here knows about datamodels.
"""

import dataclasses

import numpy as np
from scipy import stats

from jwst_mbkg_plus.algorithms.sky_factor import DEVIATION_P_VALUE

__all__ = ["master_covariance", "wavelength_step", "with_master_noise"]


def wavelength_step(wavelength, axis):
    """
    Median wavelength step between neighbouring pixels along the dispersion.

    Parameters
    ----------
    wavelength : ndarray, shape (ny, nx)
        Pixel wavelengths.
    axis : int
        Axis along which the wavelength runs.

    Returns
    -------
    float
        The step (NaN if none can be measured).
    """
    wl = np.asarray(wavelength, dtype=float)
    if wl.shape[axis] < 2:
        return np.nan
    with np.errstate(invalid="ignore"):
        step = np.abs(np.diff(wl, axis=axis))
    step = step[np.isfinite(step) & (step > 0)]
    return float(np.median(step)) if step.size else np.nan


def master_covariance(factor, wavelength, var, bkg, bkg_var, valid, step):
    """
    Covariance of a factor's coefficients from the master's noise.

    Parameters
    ----------
    factor : SkyFactor
        A fitted factor (its basis is used).
    wavelength, var, bkg, bkg_var : array_like
        The fitted pixels' wavelengths, fit variances, expanded master and its
        variance (any shape, all the same).
    valid : array_like of bool
        The pixels the factor was fitted on.
    step : float
        Wavelength width of one master sample (pixels in one bin share it).

    Returns
    -------
    cov : ndarray, shape (n_params, n_params)
        Zero when there is nothing to add (no master variance, no step).
    mean_basis : ndarray, shape (n_params,)
        The basis averaged over the pixels (``level = mean_basis @ params``).
    """
    n = factor.params.size
    zero = np.zeros((n, n)), np.full(n, 1.0 / max(n, 1))
    if not factor.fitted or bkg_var is None or not np.isfinite(step) or step <= 0:
        return zero
    wave, v, m, mv = (np.asarray(a, dtype=float).ravel()
                      for a in (wavelength, var, bkg, bkg_var))
    ok = (np.asarray(valid, dtype=bool).ravel() & np.isfinite(wave) & np.isfinite(v)
          & (v > 0) & np.isfinite(m) & (m > 0) & np.isfinite(mv))
    if ok.sum() <= n:
        return zero
    wave, v, m, mv = wave[ok], v[ok], m[ok], mv[ok]
    basis = factor._basis(wave)
    design = basis * m[:, None]
    w = 1.0 / v
    fisher = design.T @ (design * w[:, None])
    mu = m * (basis @ factor.params)
    # Each pixel's pull on the coefficients per unit relative error of its master sample.
    pull = np.linalg.pinv(fisher) @ (design * (w * mu)[:, None]).T  # (n, pixels)
    bins = np.floor((wave - wave.min()) / step).astype(np.int64)
    _, inverse = np.unique(bins, return_inverse=True)
    n_bins = inverse.max() + 1
    u = np.zeros((n_bins, n))
    np.add.at(u, inverse, pull.T)
    rho = np.bincount(inverse, weights=mv / m**2, minlength=n_bins) / np.bincount(
        inverse, minlength=n_bins)
    return (u * rho[:, None]).T @ u, basis.mean(axis=0)


def with_master_noise(factor, shared_cov, mean_basis, *, apply="auto",
                      p_value=DEVIATION_P_VALUE):
    """
    A factor whose covariance holds the master's noise, its application re-decided.

    Parameters
    ----------
    factor : SkyFactor
        As fitted (pixel noise only).
    shared_cov, mean_basis : ndarray
        From `master_covariance`.
    apply : {'auto', True, False}, optional
        As for `fit_sky_factor`.
    p_value : float, optional
        False-alarm probability of "differs from 1".

    Returns
    -------
    SkyFactor
        ``cov`` and ``level_error`` with the master's term; ``deviation_chi2``,
        ``p_value``, ``significant``, ``applied`` and ``status`` from them.
    """
    if not factor.fitted or not np.any(shared_cov):
        return factor
    cov = factor.cov + shared_cov
    unit = factor.params - 1.0
    try:
        dev = float(unit @ np.linalg.solve(cov, unit))
    except np.linalg.LinAlgError:
        dev = float(unit @ np.linalg.pinv(cov) @ unit)
    p_dev = float(stats.chi2.sf(dev, factor.params.size))
    significant = p_dev < p_value
    level_error = float(np.sqrt(factor.level_error**2
                                + max(mean_basis @ shared_cov @ mean_basis, 0.0)))
    describe = (f"{factor.model} factor ({factor.params.size} coefficients), mean "
                f"{factor.level:.4f} +/- {level_error:.4f} (the master's noise included), "
                f"deviation from 1 chi2 {dev:.1f} for {factor.params.size} (p = {p_dev:.2g})")
    if factor.status.endswith("the factor is not positive"):
        applied, status = False, f"not applied: {describe}; the factor is not positive"
    elif apply is False:
        applied, status = False, f"measured only: {describe}"
    elif apply is True:
        applied, status = True, f"applied: {describe}"
    elif significant:
        applied, status = True, f"applied (differs from 1 beyond its noise): {describe}"
    else:
        applied, status = False, f"not applied (consistent with 1): {describe}"
    return dataclasses.replace(factor, cov=cov, level_error=level_error,
                               deviation_chi2=dev, p_value=p_dev,
                               significant=bool(significant), applied=applied,
                               status=status)

