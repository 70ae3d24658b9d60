"""Adaptive smoothing of a 1-D spectrum in wavelength, by evidence (local polynomials + ICI).

A master background made from a few background slitlets carries, per
wavelength sample, the noise of the pixels binned into that sample; every
science pixel sees the master interpolated at its own wavelength, so that
noise goes into every subtracted pixel. The sky is mostly a smooth continuum,
sampled far more finely than it varies, and averaging neighbouring samples
removes most of that noise. It must not average across real narrow structure
(an emission line, a steep thermal rise), and there it must not be needed to
know in advance where that structure is.

`adaptive_smooth` fits, about every sample, a local polynomial (degree 2 by
default) weighted by an Epanechnikov kernel and by the inverse of the
samples' variance, for a ladder of half-widths; the half-width is chosen per
sample by the intersection-of-confidence-intervals rule (ICI; Goldenshluger &
Nemirovski 1997, Katkovnik 1999; Lepski's method): going from the narrowest
estimate (the sample itself) to wider ones, each estimate ``y_k`` has the
interval ``y_k +/- threshold * sigma_k``, and the widest half-width whose
interval still meets all the narrower ones is kept. Where the sky is a smooth
continuum the wide estimates agree and the noise drops; where a wider window
would take in structure its estimate moves by more than the noise allows and
the growth stops. The bias left is of the order of the chosen estimate's own
error, so a line is kept within its noise, and a noise-free spectrum (zero
variance) is returned unchanged. Beside a line a centred window cannot grow
past it; windows on either side of the sample (directional, as in Katkovnik's
anisotropic LPA-ICI) grow by the same rule, must agree with the centred
estimate too, and the estimate of least variance is kept.

The result is linear in the data at a given width: ``y_hat_j = sum_i l_ji y_i``
with variance ``sum_i l_ji**2 sigma_i**2`` (the samples' own variances, not
the smoothed ones used for weighting). Neighbouring outputs share samples and
are correlated; their per-sample variance is honest, their sum over many
samples is not the sum of their variances.

The moments of the local fits are correlations of the weighted data with
``u**m K(u)`` (`scipy.ndimage.correlate1d`), so the cost is a few passes over
the spectrum per half-width. Non-finite samples have weight zero (gaps are
bridged by the fits and stay NaN in the output); the coordinate is the sample
index, i.e. the smoothing scale follows the grid's sampling (one sample per
detector column, hence per resolution element, also for the prism).
"""

import logging
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import correlate1d
from scipy.sparse import csr_array
from scipy.stats import chi2

from jwst_mbkg_plus.algorithms.smoothing import median_filter_nan

__all__ = ["DEFAULT_HALF_WIDTHS", "AdaptiveSmoothing", "adaptive_smooth", "chosen_kernel_matrix",
           "local_polynomial"]

log = logging.getLogger(__name__)

#: Ladder of half-widths (samples) tried beyond the sample itself: about
#: sqrt(2) apart, up to 64 (129 samples).
DEFAULT_HALF_WIDTHS = (2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64)


@dataclass
class AdaptiveSmoothing:
    """
    Result of `adaptive_smooth`.

    Attributes
    ----------
    flux : ndarray
        The smoothed spectrum (NaN where the input is).
    var : ndarray
        Its per-sample variance (``sum_i l_ji**2 sigma_i**2``).
    half_width : ndarray of int
        The half-width chosen per sample (0: the sample itself, unchanged).
    side : ndarray of int or None
        The window's side per sample: 0 centred, -1 the sample and those
        before it, 1 it and those after (None: all centred).
    """

    flux: np.ndarray
    var: np.ndarray
    half_width: np.ndarray
    side: np.ndarray | None = None

    def summary(self, var_in):
        """
        JSON-serialisable record of what the smoothing did.

        Parameters
        ----------
        var_in : ndarray
            The variance before smoothing.

        Returns
        -------
        dict
            Median and 10/90th percentiles of the chosen half-width (samples),
            the fraction of samples smoothed, and the median of
            ``sqrt(var_in / var)`` (the factor by which the noise dropped).
        """
        ok = np.isfinite(self.flux) & np.isfinite(var_in) & (var_in > 0) & (self.var > 0)
        hw = self.half_width[np.isfinite(self.flux)]
        if hw.size == 0:
            return {"median_half_width": 0.0, "half_width_p10_p90": [0.0, 0.0],
                    "smoothed_fraction": 0.0, "median_noise_reduction": 1.0}
        return {
            "median_half_width": float(np.median(hw)),
            "half_width_p10_p90": [float(v) for v in np.percentile(hw, [10, 90])],
            "smoothed_fraction": float(np.mean(hw > 0)),
            "one_sided_fraction": float(np.mean(self.side[np.isfinite(self.flux)] != 0))
            if self.side is not None else 0.0,
            "median_noise_reduction": float(np.median(np.sqrt(var_in[ok] / self.var[ok])))
            if ok.any() else 1.0,
        }


def local_polynomial(weight, half_width, degree=2, support=None, side=0):
    """
    Equivalent kernels of the local polynomial fit about every sample, for one half-width.

    Parameters
    ----------
    weight : ndarray, shape (n,)
        Per-sample weights (0 for unusable samples), e.g. inverse variances.
    half_width : int
        Half-width ``h`` of the Epanechnikov kernel
        ``K(d) = 1 - (d / (h + 1))**2``, ``|d| <= h`` (samples).
    degree : int, optional
        Degree of the local polynomial.
    support : int, optional
        Half-length of the returned kernels (>= ``half_width``; default
        ``half_width``), so kernels of several widths line up.
    side : {0, -1, 1}, optional
        0: the window ``|d| <= h`` about the sample; -1: only the sample and
        those before it (``-h <= d <= 0``); 1: only it and those after.

    Returns
    -------
    kernels : ndarray, shape (n, 2 * support + 1)
        ``kernels[j, support + d]`` is the weight of sample ``j + d`` in the
        fitted value at ``j`` (the fit is ``sum_d kernels[j, d] y[j + d]``);
        rows of samples whose window holds too few usable samples are NaN.
    """
    h = int(half_width)
    support = h if support is None else int(support)
    d = np.arange(-h, h + 1, dtype=float)
    u = d / (h + 1)
    kern = (1.0 - u**2) * (side * d >= 0)
    w = np.asarray(weight, dtype=float)
    n, p = w.size, degree + 1
    s = np.stack([correlate1d(w, kern * u**m, mode="constant", cval=0.0)
                  for m in range(2 * degree + 1)], axis=-1)
    a = s[:, np.add.outer(np.arange(p), np.arange(p))]  # (n, p, p)
    count = correlate1d((w > 0).astype(float), (kern > 0).astype(float), mode="constant",
                        cval=0.0)
    good = count >= p + 1
    # Ill-conditioned windows (the usable samples all on one side, far away) fail too.
    with np.errstate(all="ignore"):
        det = np.linalg.det(np.where(good[:, None, None], a, np.eye(p)))
        good &= np.abs(det) > 1e-10 * np.abs(s[:, 0]) ** p
    a = np.where(good[:, None, None], a, np.eye(p))
    e0 = np.zeros((n, p, 1))
    e0[:, 0] = 1.0
    c = np.linalg.solve(a, e0)[..., 0]  # (n, p): first row of A^-1
    basis = u[None, :] ** np.arange(p)[:, None]  # (p, 2h+1)
    w_win = sliding_window_view(np.pad(w, h), 2 * h + 1)  # (n, 2h+1): w[j + d]
    kernels = np.zeros((n, 2 * support + 1))
    kernels[:, support - h:support + h + 1] = (c @ basis) * kern * w_win
    kernels[~good] = np.nan
    return kernels


def adaptive_smooth(flux, var, *, half_widths=DEFAULT_HALF_WIDTHS, degree=2, threshold=3.5,
                    weight_window=15, structure_window=7, structure_p=0.001, twicing=True,
                    directional=True):
    """
    Smooth a spectrum with a per-sample width chosen by evidence (Lepski's rule).

    Parameters
    ----------
    flux : array_like, shape (n,)
        Spectrum (NaN for gaps).
    var : array_like, shape (n,)
        Its variance per sample. Samples with a non-finite or non-positive
        variance are left as they are and do not enter their neighbours' fits;
        a spectrum without any positive variance is returned unchanged.
    half_widths : sequence of int, optional
        Increasing ladder of half-widths (samples, each > ``degree // 2``).
    degree : int, optional
        Degree of the local polynomials (2: a line's peak is not flattened by
        the fit's own shape before the rule stops it).
    threshold : float, optional
        Multiplier ``Gamma`` of the standard deviation of the difference
        between two estimates above which they disagree. Larger smooths more,
        with a larger bias bound.
    weight_window : int, optional
        Samples of the running median of ``var`` that gives the fit weights:
        per-sample photon-noise variances would favour the samples that
        fluctuated low. The output variance uses ``var`` itself.
    structure_window : int, optional
        Samples per run of the structure check (odd): after the rule, runs of
        samples whose departures from their smoothed values have a chi-square
        (against the departures' own variances) beyond ``structure_p`` are
        left unsmoothed. A line that every comparison passes by a little is
        caught by the run of departures it leaves.
    structure_p : float, optional
        Probability of the chi-square of a run below which it is structure.
    twicing : bool, optional
        Correct the chosen kernels' bias with the same kernels (Tukey's
        twicing): with ``L`` the matrix of the chosen kernels, the result is
        ``L y + L (y - L y) = (2 L - L L) y``, whose bias ``(I - L)**2 t`` is of
        second order in the kernels' own. Without it, a sample whose window
        reaches a line or a curved stretch with the negative lobes of its
        quadratic kernel (accepted: each is within the rule's threshold) is
        pulled low, and the band average of the master with it (on the G235M
        sky with its line at 20 % noise per pixel and two background
        slitlets, -0.027 %; PRISM sky, -0.02 to -0.04 %). The variance is
        that of ``2 L - L L``.

    Returns
    -------
    AdaptiveSmoothing
        The smoothed spectrum, its variance and the chosen half-widths.

    Raises
    ------
    ValueError
        For mismatched shapes, a non-1-D spectrum, or a bad ladder.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> truth = np.linspace(1.0, 2.0, 400)
    >>> res = adaptive_smooth(truth + rng.normal(0, 0.05, 400), np.full(400, 0.05**2))
    >>> bool(np.std(res.flux - truth) < 0.02)
    True
    """
    flux = np.asarray(flux, dtype=float)
    var = np.asarray(var, dtype=float)
    if flux.ndim != 1 or var.shape != flux.shape:
        raise ValueError(f"flux and var must be 1-D of one shape, got {flux.shape} and "
                         f"{var.shape}")
    widths = [int(h) for h in half_widths]
    if not widths or any(h <= degree // 2 for h in widths) or np.any(np.diff(widths) <= 0):
        raise ValueError(f"half_widths must increase and exceed degree // 2, got {half_widths}")
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    chosen = np.zeros(flux.shape, dtype=int)
    usable = np.isfinite(flux) & np.isfinite(var) & (var > 0)
    if not usable.any():
        return AdaptiveSmoothing(flux.copy(), var.copy(), chosen)

    smooth_var, _ = median_filter_nan(np.where(usable, var, np.nan), kernel=weight_window)
    weight = np.where(usable, 1.0 / np.where(usable, smooth_var, 1.0), 0.0)
    big = widths[-1]
    y_win = sliding_window_view(np.pad(np.where(usable, flux, 0.0), big), 2 * big + 1)
    v_win = sliding_window_view(np.pad(np.where(usable, var, 0.0), big), 2 * big + 1)
    # Decisions use the smoothed variance too: a photon-noise variance is low where
    # the sample fluctuated low, and tests scaled by it would keep low samples
    # unsmoothed more often than high ones (a bias low of the master).
    d_win = sliding_window_view(np.pad(np.where(usable, smooth_var, 0.0), big), 2 * big + 1)

    # Each sample's estimate from windows about it and, where a line or a steep
    # rise stops those early, from windows on either side of it (directional
    # windows: Katkovnik's LPA-ICI); the one of least variance is kept.
    wins = {side: _ladder(side, widths, weight, degree, threshold, flux, var, smooth_var,
                          usable, (y_win, v_win, d_win))
            for side in ((0, -1, 1) if directional else (0,))}
    sides = list(wins)
    centred = wins[0]
    dvar = [centred.dvar]
    for sd in sides[1:]:
        # A one-sided estimate must also agree with the centred one (Lepski's rule
        # once more, the centred the narrower): next to a line the centred window
        # follows the line's wing, and a window from the far side that does not
        # is refused. Unsmoothed, a side is the centred rung 0.
        with np.errstate(invalid="ignore"):
            agree = (wins[sd].chosen > 0) & (
                np.abs(wins[sd].best - centred.best)
                <= threshold * np.sqrt(np.maximum(centred.dvar - wins[sd].dvar, 0.0)))
        dvar.append(np.where(agree, wins[sd].dvar, np.inf))
    dvar = np.stack(dvar)
    pick = np.asarray(sides)[np.argmin(np.where(np.isnan(dvar), np.inf, dvar), axis=0)]
    best, best_var, resid_var, chosen = (
        np.select([pick == sd for sd in sides], [getattr(wins[sd], name) for sd in sides])
        for name in ("best", "var", "resid_var", "chosen"))
    chosen_rows = [(take[pick[take] == sd], h, kern[pick[take] == sd])
                   for sd in sides for take, h, kern in wins[sd].rows]
    # Structure no single comparison could see: a run of samples whose departures
    # from their smoothed values are jointly significant (a line the windows just
    # reach, a line smeared within the noise of each sample) keeps the samples.
    structured = _structured(flux - best, resid_var, chosen > 0, structure_window,
                             structure_p)
    best = np.where(structured, flux, best)
    best_var = np.where(structured, var, best_var)
    chosen = np.where(structured, 0, chosen)
    if twicing:
        best, best_var = _twice(flux, var, usable, chosen, chosen_rows)
    out_flux = np.where(usable, best, flux)
    out_var = np.where(usable, best_var, var)
    kept = usable & (chosen > 0)
    return AdaptiveSmoothing(out_flux, out_var, np.where(usable, chosen, 0),
                             np.where(kept, pick, 0))


@dataclass
class _Ladder:
    """One direction's Lepski choice: per sample the estimate, variances, half-width."""

    best: np.ndarray
    var: np.ndarray
    dvar: np.ndarray
    resid_var: np.ndarray
    chosen: np.ndarray
    rows: list


def _ladder(side, widths, weight, degree, threshold, flux, var, smooth_var, usable, windows):
    """
    Lepski's rule over the ladder of half-widths, for windows on one ``side``.

    One-sided windows start at the half-width whose window holds twice the
    polynomial's coefficients: narrower, the fit at the window's end is too
    noisy to be worth comparing.
    """
    y_win, v_win, d_win = windows
    big = y_win.shape[1] // 2
    if side:
        widths = [h for h in widths if h + 1 >= 2 * (degree + 1)]
    # Rung 0: the sample itself. Kernels are kept on their own support.
    chosen = np.zeros(flux.shape, dtype=int)
    kernels = [np.ones((flux.size, 1))]
    estimates = [np.where(usable, flux, np.nan)]
    best, best_var = flux.copy(), var.copy()
    best_dvar = np.where(usable, smooth_var, np.nan)
    resid_var = np.zeros(flux.size)  # variance of (sample - chosen estimate)
    chosen_rows = []  # (samples, half-width, their kernels) per rung
    alive = usable.copy()
    for h in widths:
        rows = np.flatnonzero(alive)
        if rows.size == 0:
            break
        kern = local_polynomial(weight, h, degree, side=side)[rows]
        cut = slice(big - h, big + h + 1)
        d_rows = d_win[rows, cut]
        est = np.einsum("nd,nd->n", kern, y_win[rows, cut])
        est_var = np.einsum("nd,nd->n", kern**2, v_win[rows, cut])
        est_dvar = np.einsum("nd,nd->n", kern**2, d_rows)
        ok = np.isfinite(est) & (est_dvar <= best_dvar[rows])
        # Lepski: the new estimate must agree with every narrower one within
        # threshold times the standard deviation of their difference.
        for i, (prev, prev_est) in enumerate(zip(kernels, estimates, strict=True)):
            hp = prev.shape[1] // 2
            diff = kern.copy()
            diff[:, h - hp:h + hp + 1] -= prev[rows]
            diff_var = np.einsum("nd,nd->n", diff**2, d_rows)
            if i == 0:
                raw_diff_var = diff_var
            with np.errstate(invalid="ignore"):
                ok &= np.abs(est - prev_est[rows]) <= threshold * np.sqrt(diff_var)
        full_kern = np.full((flux.size, 2 * h + 1), np.nan)
        full_kern[rows] = kern
        full_est = np.full(flux.size, np.nan)
        full_est[rows] = est
        kernels.append(full_kern)
        estimates.append(full_est)
        take = rows[ok]
        chosen_rows.append((take, h, kern[ok]))
        best[take] = est[ok]
        best_var[take] = est_var[ok]
        best_dvar[take] = est_dvar[ok]
        resid_var[take] = raw_diff_var[ok]
        chosen[take] = h
        # The first disagreement ends the growth of that sample's window.
        alive = np.zeros_like(alive)
        alive[take] = True
    return _Ladder(best, best_var, best_dvar, resid_var, chosen, chosen_rows)


def chosen_kernel_matrix(n, chosen, chosen_rows):
    """
    Sparse matrix of the kernels chosen per sample (identity rows where unsmoothed).

    Parameters
    ----------
    n : int
        Number of samples.
    chosen : ndarray of int
        Final half-width per sample (0: the sample itself).
    chosen_rows : list of (ndarray, int, ndarray)
        Per rung of the ladder: the samples accepted at that half-width and
        their kernels, shape (samples, 2 * half-width + 1).

    Returns
    -------
    scipy.sparse.csr_array
        ``L`` with ``(L y)_j`` the chosen fit at sample ``j``.
    """
    rows, cols, vals = [np.flatnonzero(chosen == 0)], [np.flatnonzero(chosen == 0)], [
        np.ones(int(np.sum(chosen == 0)))]
    for take, h, kern in chosen_rows:
        keep = chosen[take] == h  # not overwritten by a wider rung, nor by the run check
        r = np.repeat(take[keep], 2 * h + 1)
        c = (take[keep][:, None] + np.arange(-h, h + 1)[None, :]).ravel()
        v = kern[keep].ravel()
        inside = (c >= 0) & (c < n) & (v != 0)
        rows.append(r[inside])
        cols.append(c[inside])
        vals.append(v[inside])
    return csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                     shape=(n, n))


def _twice(flux, var, usable, chosen, chosen_rows):
    """Twicing with the chosen kernels: ``(2 L - L L) y`` and its variance."""
    mat = chosen_kernel_matrix(flux.size, chosen, chosen_rows)
    twice = 2 * mat - mat @ mat
    y = np.where(usable, flux, 0.0)
    v = np.where(usable, var, 0.0)
    return twice @ y, twice.multiply(twice) @ v


def _structured(resid, resid_var, smoothed, window, p_value):
    """
    Samples in runs of ``window`` whose residuals from the smoothed values are jointly significant.

    Parameters
    ----------
    resid : ndarray
        Sample minus smoothed value.
    resid_var : ndarray
        Its variance (0 where not smoothed).
    smoothed : ndarray of bool
        Samples that were smoothed.
    window : int
        Samples per run (odd).
    p_value : float
        Chi-square probability below which a run is structure.

    Returns
    -------
    ndarray of bool
        Every sample of every significant run.
    """
    use = smoothed & (resid_var > 0) & np.isfinite(resid)
    z2 = np.where(use, resid**2 / np.where(use, resid_var, 1.0), 0.0)
    box = np.ones(window)
    chi2_sum = correlate1d(z2, box, mode="constant", cval=0.0)
    count = correlate1d(use.astype(float), box, mode="constant", cval=0.0)
    limit = np.where(count > 0, chi2.isf(p_value, np.maximum(count, 1)), np.inf)
    centres = (count > 0) & (chi2_sum > limit)
    # Every sample of a significant run, not only its centre.
    return correlate1d(centres.astype(float), box, mode="constant", cval=0.0) > 0
