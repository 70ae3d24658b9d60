"""Slitlet-to-slitlet calibration scatter, measured from the background targets' own factors.

Each background target (a MOS background slitlet, a spec3 exposure) has a
fitted sky factor against the modelled background
(`~jwst_mbkg_plus.algorithms.sky_factor.fit_sky_factor`). Their spread beyond
their own errors is the calibration scatter: what every aperture's flat,
pathloss and bar-shadow corrections get wrong. It is measured as the
intrinsic scatter ``s`` of the factors' levels (Paule-Mandel: ``s >= 0`` such
that ``sum (x_i - mean_w)**2 / (e_i**2 + s**2) = dof``, with ``dof`` the
number of levels less the parameters the modelled background already took
from them, e.g. a spatial model's), after clipping levels beyond
``clip`` total sigma of the weighted mean. It is *detected* when the
chi-square of the levels with ``s = 0`` exceeds ``dof`` beyond chance
(``p_value``). The same estimate in a few wavelength bands gives its
wavelength dependence (the factors evaluated at the bands' centres).

A calibration error need not change a slitlet's mean: a curvature in
wavelength (the middle of the band against its ends), or a tilt about the
band's middle, leaves the levels alike and shows only in the bands. The
scatter is therefore also *detected* when the chi-square of the factors' values
in any one band exceeds its ``dof`` beyond chance, at ``p_value / n_bands``
per band (Bonferroni: the bands of one factor are correlated, and the test
over all of them keeps the false-alarm probability at most ``p_value``).
"""

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

__all__ = ["CalibrationScatter", "chromatic_scatter", "intrinsic_scatter",
           "measure_calibration_scatter"]

log = logging.getLogger(__name__)

#: False-alarm probability of "scatter detected".
SCATTER_P_VALUE = 0.01


def intrinsic_scatter(values, errors, *, dof_lost=1, clip=4.0):
    """
    Intrinsic scatter of values beyond their errors.

    Parameters
    ----------
    values, errors : array_like
        Measurements and their standard errors (non-finite ones are ignored).
    dof_lost : int, optional
        Parameters already fitted to the values (1: their mean).
    clip : float, optional
        Values further than this many total sigma from the weighted mean are
        left out (iterated).

    Returns
    -------
    scatter : float
        ``s`` (0 when the values scatter no more than their errors).
    chi2 : float
        Chi-square of the kept values about their weighted mean with ``s = 0``.
    dof : int
        Kept values less ``dof_lost``.
    kept : ndarray of bool
        Values used.
    """
    x = np.asarray(values, dtype=float)
    e = np.asarray(errors, dtype=float)
    kept = np.isfinite(x) & np.isfinite(e) & (e >= 0)

    def solve(use):
        dof = int(use.sum()) - dof_lost
        if dof < 1:
            return 0.0, np.nan, dof

        def excess(s):
            w = 1.0 / (e[use] ** 2 + s**2 + 1e-30)
            mean = np.sum(w * x[use]) / np.sum(w)
            return np.sum(w * (x[use] - mean) ** 2) - dof

        w0 = 1.0 / (e[use] ** 2 + 1e-30)
        mean0 = np.sum(w0 * x[use]) / np.sum(w0)
        chi2 = float(np.sum(w0 * (x[use] - mean0) ** 2))
        if excess(0.0) <= 0:
            return 0.0, chi2, dof
        hi = max(float(np.ptp(x[use])), 1e-12)
        while excess(hi) > 0:
            hi *= 2
        return float(optimize.brentq(excess, 0.0, hi, xtol=1e-10)), chi2, dof

    for _ in range(5):
        s, chi2, dof = solve(kept)
        if dof < 1:
            break
        w = 1.0 / (e**2 + s**2 + 1e-30)
        mean = np.sum(w[kept] * x[kept]) / np.sum(w[kept])
        new = kept & (np.abs(x - mean) * np.sqrt(w) <= clip)
        if np.array_equal(new, kept) or new.sum() - dof_lost < 2:
            break
        kept = new
    s, chi2, dof = solve(kept)
    return s, chi2, dof, kept


@dataclass(frozen=True)
class CalibrationScatter:
    """
    The measured calibration scatter of a set of background targets.

    Attributes
    ----------
    scatter : float
        Intrinsic scatter of the factors' levels (fraction).
    detected : bool
        Levels scatter beyond their errors (chi-square test at ``p_value``).
    p_value : float
        Probability of the levels' chi-square with no scatter.
    chi2, dof : float, int
        Their chi-square with no scatter, and degrees of freedom.
    median_error : float
        Median error of one level (the noise the scatter is measured against).
    band_wavelength, band_scatter : ndarray
        Band centres and the scatter in each band (wavelength dependence).
    band_p_value : ndarray
        Probability of each band's chi-square with no scatter (detected if the
        smallest is below ``p_value / n_bands``, as well as by the levels).
    names : list of str
        Targets measured; ``levels``, ``errors``: their levels and errors;
        ``used``: whether each entered the estimate (not clipped).
    """

    scatter: float
    detected: bool
    p_value: float
    chi2: float
    dof: int
    median_error: float
    band_wavelength: np.ndarray
    band_scatter: np.ndarray
    names: list = field(default_factory=list)
    levels: np.ndarray = field(default_factory=lambda: np.array([]))
    band_p_value: np.ndarray = field(default_factory=lambda: np.array([]))
    errors: np.ndarray = field(default_factory=lambda: np.array([]))
    used: np.ndarray = field(default_factory=lambda: np.array([], dtype=bool))

    def at(self, wavelength):
        """
        The scatter at any wavelength (band values interpolated, held at the ends).

        Parameters
        ----------
        wavelength : array_like

        Returns
        -------
        ndarray
            Same shape; the grey ``scatter`` where there are no bands.
        """
        wavelength = np.asarray(wavelength, dtype=float)
        good = np.isfinite(self.band_scatter)
        if good.sum() < 2:
            return np.full(wavelength.shape, self.scatter)
        out = np.interp(wavelength, self.band_wavelength[good], self.band_scatter[good])
        return np.where(np.isfinite(wavelength), out, self.scatter)

    def to_record(self):
        """
        Plain-Python summary for the QA record.

        Returns
        -------
        dict
        """
        return {
            "scatter": float(self.scatter),
            "detected": bool(self.detected),
            "p_value": float(self.p_value),
            "chi2": float(self.chi2),
            "dof": int(self.dof),
            "median_level_error": float(self.median_error),
            "band_wavelength": [float(w) for w in self.band_wavelength],
            "band_scatter": [float(s) for s in self.band_scatter],
            "band_p_value": [float(p) for p in self.band_p_value],
            "levels": {n: {"level": float(v), "error": float(e), "used": bool(u)}
                       for n, v, e, u in zip(self.names, self.levels, self.errors, self.used,
                                             strict=True)},
        }


def measure_calibration_scatter(factors, names=None, *, dof_lost=1, n_bands=5,
                                p_value=SCATTER_P_VALUE, clip=4.0, leave_one_out=False):
    """
    The calibration scatter of background targets from their fitted sky factors.

    Parameters
    ----------
    factors : sequence of `~jwst_mbkg_plus.algorithms.sky_factor.SkyFactor`
        One per background target, fitted against the modelled background
        (unfitted ones are skipped).
    names : sequence of str, optional
        Their names (QA).
    dof_lost : int, optional
        Parameters the modelled background took from the same targets (the
        mean, plus e.g. a spatial model's terms).
    n_bands : int, optional
        Bands for the wavelength dependence, spread evenly over the wavelengths
        the factors cover.
    p_value : float, optional
        False-alarm probability of "detected".
    clip : float, optional
        Levels beyond this many total sigma are left out.
    leave_one_out : bool, optional
        Each factor was fitted against a modelled background made without its
        own target: its level's deviation is then a prediction residual, larger
        than the scatter by ``1 / (1 - dof_lost / n)``; the scatter and the
        chi-square are corrected for it.

    Returns
    -------
    CalibrationScatter
    """
    names = list(names) if names is not None else [str(i) for i in range(len(factors))]
    fitted = [(n, f) for n, f in zip(names, factors, strict=True) if f.fitted]
    names = [n for n, _ in fitted]
    levels = np.array([f.level for _, f in fitted])
    errors = np.array([f.level_error for _, f in fitted])
    empty = np.array([])
    if levels.size - dof_lost < 1:
        return CalibrationScatter(0.0, False, 1.0, np.nan, 0, np.nan, empty, empty, names,
                                  levels, errors, np.zeros(levels.size, dtype=bool))
    scatter, chi2, dof, kept = intrinsic_scatter(levels, errors, dof_lost=dof_lost, clip=clip)
    shrink = max(1.0 - dof_lost / max(int(kept.sum()), 1), 0.0) if leave_one_out else 1.0
    scatter *= shrink
    chi2 *= shrink**2
    p = float(stats.chi2.sf(chi2, dof)) if dof >= 1 and np.isfinite(chi2) else 1.0
    lo = np.nanmax([f.wave_range[0] for _, f in fitted])
    hi = np.nanmin([f.wave_range[1] for _, f in fitted])
    band_wave, band_scatter, band_p = empty, empty, empty
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo and n_bands >= 2:
        edges = np.linspace(lo, hi, n_bands + 1)
        band_wave = 0.5 * (edges[:-1] + edges[1:])
        values = np.array([f.evaluate(band_wave, measured=True) for _, f in fitted])
        bands = [intrinsic_scatter(values[kept, 0, b], values[kept, 1, b], dof_lost=dof_lost,
                                   clip=np.inf)[:3] for b in range(n_bands)]
        band_scatter = shrink * np.array([b[0] for b in bands])
        band_p = np.array([float(stats.chi2.sf(b[1] * shrink**2, b[2]))
                           if b[2] >= 1 and np.isfinite(b[1]) else 1.0 for b in bands])
    # A shape in wavelength that leaves the levels alike shows in the bands only.
    by_band = band_p.size > 0 and float(np.min(band_p)) < p_value / band_p.size
    return CalibrationScatter(
        scatter=float(scatter), detected=bool(p < p_value or by_band), p_value=p,
        chi2=float(chi2), dof=int(dof), median_error=float(np.median(errors)),
        band_wavelength=band_wave, band_scatter=band_scatter, names=names, levels=levels,
        errors=errors, used=kept, band_p_value=band_p,
    )


def chromatic_scatter(lines, *, p_value=SCATTER_P_VALUE):
    """
    Whether the background targets' calibration errors differ in slope.

    Each target's factor fitted as a straight line in wavelength
    (`~jwst_mbkg_plus.algorithms.sky_factor.fit_sky_factor` with
    ``model='linear'``) has a slope (per micron) and its error; their spread
    beyond the errors (`intrinsic_scatter` about their weighted mean: a slope
    all targets share is the master's, not theirs) is the chromatic part of
    the calibration scatter. It is detected when the chi-square of the slopes
    exceeds their degrees of freedom beyond chance (``p_value``).

    Parameters
    ----------
    lines : sequence of SkyFactor
        The targets' linear factors (unfitted ones are ignored).
    p_value : float, optional
        False-alarm probability of "detected".

    Returns
    -------
    dict
        ``scatter`` (slope scatter, per micron), ``chi2``, ``dof``,
        ``p_value``, ``detected`` and ``n`` (slopes used).
    """
    slopes, errors = [], []
    for fit in lines:
        if not fit.fitted or fit.model != "linear" or len(fit.params) != 2:
            continue
        span = float(fit.knots[-1] - fit.knots[0])
        if span <= 0:
            continue
        c = np.asarray(fit.cov, dtype=float)
        slopes.append((fit.params[1] - fit.params[0]) / span)
        errors.append(np.sqrt(max(c[0, 0] + c[1, 1] - 2 * c[0, 1], 0.0)) / span)
    out = {"scatter": 0.0, "chi2": 0.0, "dof": 0, "p_value": 1.0, "detected": False,
           "n": len(slopes)}
    if len(slopes) < 3:
        return out
    scatter, chi2, dof, kept = intrinsic_scatter(slopes, errors)
    p = float(stats.chi2.sf(chi2, dof)) if dof > 0 else 1.0
    out.update(scatter=float(scatter), chi2=float(chi2), dof=int(dof), p_value=p,
               detected=bool(p < p_value), n=int(np.sum(kept)))
    return out
