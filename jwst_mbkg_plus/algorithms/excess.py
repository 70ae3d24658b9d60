"""Tell an additive excess from a smooth level: two background spectra that disagree.

Two spectra of clean sky differ at most by a smooth factor (an MSA quadrant,
a gradient, nod-to-nod drift): ``f = L(lambda) g``. A source hiding in one of
them adds light with a spectrum of its own: ``f = L g + C``. Vetting by
consensus needs a majority to say which spectrum is off; this module needs
none, because contamination only ever adds light and has a shape of its own.

Shape test (`additive_excess`)
------------------------------
The contrast ``y = (f - g) / (f + g)`` of two clean spectra is a smooth
function of wavelength whatever their levels. If one of them holds an
additive excess ``C``, ``y`` follows ``C / sky``: it dips at the sky's fine
structure (emission lines, whatever a smooth level cannot follow) when ``f``
holds the excess, and peaks there when ``g`` does. ``y`` is fitted with a
Legendre polynomial of degree ``level_degree`` (a smooth, chromatic level),
the first and second derivatives of the sky's fine structure (a wavelength
shift or a resolution difference between the two, which are no excess) and
``gamma`` times the fine structure itself. The sky estimate is weighted so
that its noise is uncorrelated with ``y``'s: on clean spectra ``gamma`` is 0
at any noise, and its least-squares error, scaled by the reduced chi-square
(at least 1 when variances are given), calibrates the test. On a featureless
sky, or when the sky's lines are lost in the noise, ``gamma``'s error is large
and the test (correctly) says nothing.

Pair verdict (`compare_pair`)
-----------------------------
For two spectra: the level difference of the brighter over the fainter
(median relative difference, its significance as in
`jwst_mbkg_plus.algorithms.selection`) and the shape test of the brighter
against the fainter give one of

* ``"contaminated"``: an additive excess of more than ``min_excess`` at more
  than ``threshold`` sigma; the spectrum holding it is named;
* ``"contaminated"`` too, with ``level_limit``: no shape evidence, but the
  brighter spectrum's level exceeds the fainter's by more than ``level_limit``
  at more than ``threshold`` sigma. Contamination only adds light, and no sky
  differs that much between the nod positions of one slit, so the brighter is
  named (spec3 passes 0.10; MOS slitlets across the MSA do not, their sky
  levels may differ by more);
* ``"undecided"``: no shape evidence, but a level difference larger than
  ``level_tolerance`` (and not beyond ``level_limit``) at more than
  ``threshold`` sigma (too large for a quadrant or nod offset, yet nothing says
  which spectrum is off; contamination with the sky's own shape looks like
  this), or too few common samples;
* ``"consistent"``: anything else, e.g. a significant but small pure level.

Measured (tests/test_algorithms_excess.py; 400 samples, a continuum rising by
40 % and one emission line of 25 % peak, as in
`jwst_mbkg_plus.synthetic.spec3_inputs`): clean pairs with a random level
of up to 4 % and a chromatic tilt of up to 4 %, 100 seeds each at 5 % and 20 %
per-point noise, none called contaminated, scores of unit standard deviation;
a 3 % level at 0.3 % noise is ``"consistent"``; a 5-10 % resolution difference
or a shift of up to 1.4 samples is no excess; +30 % of continuum added to either
spectrum is found and named at 0.3 % and 1 % noise, while at 3 % noise and
more the single line is too faint to tell and the verdict is ``"undecided"``.

At low signal-to-noise per sample (photon counting, a few electrons of sky)
the contrast is a ratio of noisy numbers whose mean shifts at the sky's lines:
nine clean spectra at ~48 % noise per sample scored +4.4 sigma on average and
28 of 90 were beyond 5 (``validation/excess_low_snr_probe.py``). Adjacent
samples are therefore averaged until the noise per sample is
`MAX_SAMPLE_NOISE` (15 %) before the contrast is formed: the same spectra
score +0.44 on average, none beyond 5.
"""

import logging
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre
from scipy.signal import savgol_filter

from jwst_mbkg_plus.algorithms.stats import MAD_TO_SIGMA

__all__ = ["ExcessFit", "PairVerdict", "additive_excess", "compare_pair"]

log = logging.getLogger(__name__)

_MEDIAN_EFF = np.sqrt(np.pi / 2)  # std(median) / std(mean) for large N
_DERIVATIVE_WINDOW = 7  # samples of the Savitzky-Golay derivatives (odd)
#: Largest relative noise per sample at which the contrast is formed. The contrast
#: ``(f - r) / (f + r)`` is a ratio of noisy numbers: at ~50 % noise per sample its
#: mean shifts with the sky's fine structure and clean spectra score +4 sigma
#: (validation/excess_low_snr_probe.py); at 15 % the shift is below the test's noise.
MAX_SAMPLE_NOISE = 0.15


@dataclass(frozen=True)
class ExcessFit:
    """
    Result of `additive_excess`.

    Attributes
    ----------
    excess : float
        Additive excess ``c`` of ``flux`` over ``L * reference``, as a fraction
        of the median of ``flux`` (negative: the reference holds an excess).
    error : float
        Its standard error (scaled by the reduced chi-square).
    score : float
        ``excess / error`` (0 if it could not be fitted).
    level : float
        Mean of the fitted level factor ``L`` over the used samples.
    reduced_chi2 : float
        Reduced chi-square of the fit with the excess.
    n_used : int
        Samples used (after clipping).
    """

    excess: float
    error: float
    score: float
    level: float
    reduced_chi2: float
    n_used: int


@dataclass(frozen=True)
class PairVerdict:
    """
    Result of `compare_pair`.

    Attributes
    ----------
    verdict : str
        ``"contaminated"``, ``"undecided"`` or ``"consistent"``.
    contaminated : int or None
        Index (0 or 1) of the spectrum holding an additive excess, with
        ``"contaminated"``.
    brighter : int
        Index of the spectrum with the higher median level.
    level_difference : float
        Median relative difference of the brighter over the fainter (>= 0).
    level_score : float
        Its significance in sigma.
    excess : ExcessFit
        The shape test of the brighter against the fainter.
    message : str
        One sentence for the log.
    basis : str
        What decided ``"contaminated"``: ``"shape"`` (an additive excess) or
        ``"level"`` (a level difference beyond ``level_limit``).
    """

    verdict: str
    contaminated: int | None
    brighter: int
    level_difference: float
    level_score: float
    excess: ExcessFit
    message: str
    basis: str = "shape"

    def to_record(self, names=("0", "1")):
        """
        Return the verdict as plain values for a QA record.

        Parameters
        ----------
        names : sequence of str, optional
            Names of the two spectra.

        Returns
        -------
        dict
            Verdict, names of the brighter and of the contaminated spectrum,
            level difference, excess and their significances.
        """
        return {
            "verdict": self.verdict,
            "basis": self.basis,
            "contaminated": None if self.contaminated is None else names[self.contaminated],
            "brighter": names[self.brighter],
            "level_difference": _plain(self.level_difference),
            "level_score": _plain(self.level_score),
            "excess": _plain(self.excess.excess),
            "excess_error": _plain(self.excess.error),
            "excess_score": _plain(self.excess.score),
            "excess_in": None if self.excess.score == 0 else
            names[self.brighter if self.excess.excess > 0 else 1 - self.brighter],
            "reduced_chi2": _plain(self.excess.reduced_chi2),
            "n_used": int(self.excess.n_used),
            "message": self.message,
        }


def _plain(x):
    x = float(x)
    return x if np.isfinite(x) else None


_NO_FIT = ExcessFit(np.nan, np.nan, 0.0, np.nan, np.nan, 0)


def _clipped_fit(design, target, weight, clip, maxiters, min_points):
    """Weighted linear least squares with iterative clipping of the normalised residuals."""
    keep = np.ones(target.size, dtype=bool)
    root = np.sqrt(weight)
    for _ in range(maxiters + 1):
        a = design[keep] * root[keep, None]
        coef, *_ = np.linalg.lstsq(a, target[keep] * root[keep], rcond=None)
        pull = (target - design @ coef) * root
        spread = MAD_TO_SIGMA * np.median(np.abs(pull[keep] - np.median(pull[keep])))
        new = np.abs(pull) <= clip * max(spread, 1e-300)
        if np.array_equal(new, keep) or new.sum() < min_points:
            break
        keep = new
    a = design[keep] * root[keep, None]
    chi2 = float(np.sum(((target - design @ coef) * root)[keep] ** 2))
    return coef, chi2, np.linalg.pinv(a.T @ a), keep


def _excess_from_slope(g):
    """Excess ``e`` (fraction of the sky) with ``2 e / (2 + e)^2 = g``: the slope of the
    contrast ``(f - r) / (f + r)`` against the sky's fine structure for equal levels."""
    g = min(abs(g), 0.25)
    if g == 0:
        return 0.0, 2.0
    b = 2 - 4 * g
    e = (b - np.sqrt(max(b * b - 16 * g * g, 0.0))) / (2 * g)
    return float(e), max(float(abs(2 * (2 - e) / (2 + e) ** 3)), 0.01)  # e and dg/de


def additive_excess(flux, reference, var=None, ref_var=None, *, wavelength=None,
                    level_degree=3, clip=5.0, maxiters=5, min_points=20):
    """
    Test whether ``flux`` and ``reference`` differ by an additive excess or by a smooth level.

    The contrast ``y = (f - r) / (f + r)`` of two clean spectra is a smooth
    function of wavelength whatever their levels; if one holds an additive
    excess ``C``, ``y`` follows ``C / sky``, so it dips (excess in ``f``) or
    peaks (excess in ``r``) at the sky's fine structure: its emission lines and
    whatever a polynomial of degree ``level_degree`` cannot follow. ``y`` is
    fitted with a Legendre polynomial of that degree plus ``gamma`` times the
    fine structure ``u`` of the sky estimate ``s = w f + (1 - w) r`` (``u = s /
    smooth(s) - 1``). ``w`` makes the noise of ``s`` uncorrelated with that of
    ``y``, so on clean spectra ``gamma`` is 0 at any noise (the regressor's
    noise only weakens a real signal, it never creates one), and ``gamma``'s
    least-squares error, scaled by the reduced chi-square, calibrates the test.

    Parameters
    ----------
    flux, reference : array_like, shape (n_wave,)
        Two spectra on one grid (positive surface brightness); NaN = no data.
    var, ref_var : array_like, shape (n_wave,), or None, optional
        Their variances. Without them both are taken to have the same relative
        noise, scaled by the residuals.
    wavelength : array_like, shape (n_wave,), optional
        The grid; its sample index if None.
    level_degree : int, optional
        Degree of the smooth level (Legendre polynomial) allowed between clean
        spectra, and of the sky's smooth part.
    clip : float, optional
        Samples beyond this many sigma of the residual scatter are dropped
        (cosmic rays, edges).
    maxiters : int, optional
        Clipping iterations.
    min_points : int, optional
        Fewest usable samples for a fit.

    Returns
    -------
    ExcessFit
        Excess (positive: ``flux`` holds it), its error and significance
        (score 0 when it could not be fitted).

    Raises
    ------
    ValueError
        For arrays of different shapes or a negative ``level_degree``.
    """
    flux = np.asarray(flux, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if flux.shape != reference.shape or flux.ndim != 1:
        raise ValueError(f"flux and reference must be 1-D of one shape, got {flux.shape} "
                         f"and {reference.shape}")
    if level_degree < 0:
        raise ValueError(f"level_degree must be >= 0, got {level_degree}")
    has_var = var is not None and ref_var is not None
    x_all = np.arange(flux.size, dtype=np.float64) if wavelength is None else np.asarray(
        wavelength, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        use = (np.isfinite(flux) & np.isfinite(reference) & (reference > 0) & (flux > 0)
               & np.isfinite(x_all))
        if has_var:
            v_f = np.asarray(var, dtype=np.float64)
            v_r = np.asarray(ref_var, dtype=np.float64)
            use &= np.isfinite(v_f) & np.isfinite(v_r) & (v_f >= 0) & (v_r >= 0)
            use &= (v_f + v_r) > 0
    n_par = level_degree + 2
    need = max(min_points, n_par + 3)
    if use.sum() < need:
        return _NO_FIT
    f, r, x = flux[use], reference[use], x_all[use]
    if has_var:
        v_f, v_r = v_f[use], v_r[use]
        f, r, x, v_f, v_r = _bin_to_noise(f, r, x, v_f, v_r, need)
    x = 2 * (x - x.min()) / (x.max() - x.min()) - 1 if x.max() > x.min() else np.zeros_like(x)
    if not has_var:
        v_f, v_r = f**2, r**2  # equal relative noise; its size cancels in the score
    total = f + r
    y = (f - r) / total
    var_y = 4 * (r**2 * v_f + f**2 * v_r) / total**4
    # Sky estimate whose linear noise is uncorrelated with y's: weights w_f / w_r
    # = f var_r / (r var_f), taken at their median so that they stay smooth.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.median(f * v_r / (r * v_f)) if np.all(v_f > 0) else np.inf
    w = 1.0 if not np.isfinite(ratio) else ratio / (1 + ratio)
    sky = w * f + (1 - w) * r
    var_sky = w**2 * v_f + (1 - w) ** 2 * v_r
    basis = legendre.legvander(x, level_degree)
    ok_y = np.isfinite(var_y) & (var_y > 0)
    ok_s = np.isfinite(var_sky) & (var_sky > 0)
    if ok_y.sum() < need or ok_s.sum() < need:
        return _NO_FIT
    weight_sky = np.where(ok_s, 1 / np.where(ok_s, var_sky, 1), 0.0)
    smooth_coef, *_ = _clipped_fit(basis, sky, weight_sky, clip, maxiters, need)
    smooth = basis @ smooth_coef
    with np.errstate(divide="ignore", invalid="ignore"):
        fine = np.where(smooth > 0, sky / smooth - 1, np.nan)
    good = ok_y & np.isfinite(fine)
    if good.sum() < need:
        return _NO_FIT
    # A wavelength shift or a different resolution between the two spectra makes
    # y follow the first or second derivative of the lines, not the lines: fitted
    # alongside, they do not pass for an excess.
    # Savitzky-Golay derivatives: plain differences of a noisy template are noise.
    fine_g = np.where(good, fine, 0.0)
    window = min(_DERIVATIVE_WINDOW, fine_g.size - (1 - fine_g.size % 2))
    d1 = savgol_filter(fine_g, window, 3, deriv=1) if window > 3 else np.gradient(fine_g)
    d2 = savgol_filter(fine_g, window, 3, deriv=2) if window > 3 else np.gradient(d1)
    design = np.column_stack([basis, d1, d2, fine_g])[good]
    coef, chi2, normal_inv, keep = _clipped_fit(design, y[good], 1 / var_y[good], clip,
                                                maxiters, need)
    n = int(keep.sum())
    reduced = chi2 / max(n - n_par - 2, 1)
    # Birge ratio: never trust the given variances more than the residuals allow.
    s2 = max(reduced, 1.0) if has_var else reduced
    gamma = float(coef[-1])
    gamma_err = float(np.sqrt(max(normal_inv[-1, -1] * s2, 0.0)))
    if not gamma_err > 0:
        return _NO_FIT
    # A dip of y at the sky's lines (gamma < 0) means flux holds the excess.
    size, slope = _excess_from_slope(gamma)
    excess = -np.sign(gamma) * size
    level = float(np.median((1 + y) / (1 - y)))
    return ExcessFit(excess=float(excess), error=float(gamma_err / slope),
                     score=float(-gamma / gamma_err), level=level,
                     reduced_chi2=float(reduced), n_used=n)


def _bin_to_noise(f, r, x, v_f, v_r, need):
    """
    Average adjacent samples until the relative noise per sample is `MAX_SAMPLE_NOISE`.

    Parameters
    ----------
    f, r, x, v_f, v_r : ndarray
        The usable samples of the two spectra, the grid and their variances.
    need : int
        Fewest samples the fit needs; the binning never leaves fewer.

    Returns
    -------
    tuple of ndarray
        ``f, r, x, v_f, v_r`` binned (means; variances of the means), unchanged
        where the noise per sample is already low enough.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        noise = max(np.median(np.sqrt(v_f) / f), np.median(np.sqrt(v_r) / r))
    k = int(np.ceil((noise / MAX_SAMPLE_NOISE) ** 2)) if np.isfinite(noise) else 1
    k = min(k, f.size // need)
    if k <= 1:
        return f, r, x, v_f, v_r
    m = (f.size // k) * k

    def mean(a):
        return a[:m].reshape(-1, k).mean(axis=1)

    return mean(f), mean(r), mean(x), mean(v_f) / k, mean(v_r) / k


def _level_difference(bright, faint, v_b, v_f):
    """Median relative difference of ``bright`` over ``faint`` and its significance."""
    with np.errstate(invalid="ignore", divide="ignore"):
        use = np.isfinite(bright) & np.isfinite(faint) & (faint > 0)
        if v_b is not None:
            use &= np.isfinite(v_b) & np.isfinite(v_f) & (v_b >= 0) & (v_f >= 0)
    if use.sum() < 3:
        return np.nan, np.nan
    r = (bright[use] - faint[use]) / faint[use]
    d = float(np.median(r))
    if v_b is not None:
        sig = float(np.median(np.sqrt(v_b[use] + v_f[use]) / faint[use]))
    else:
        sig = float(MAD_TO_SIGMA * np.median(np.abs(r - d)))
    err = _MEDIAN_EFF * sig / np.sqrt(use.sum())
    if err > 0:
        return d, d / err
    return d, (0.0 if d == 0 else float(np.copysign(np.inf, d)))


def compare_pair(flux, var=None, *, wavelength=None, threshold=5.0, level_tolerance=0.05,
                 min_excess=0.02, level_degree=2, min_points=20, level_limit=None):
    """
    Decide whether one of two background spectra holds a source.

    Parameters
    ----------
    flux : array_like, shape (2, n_wave)
        The two spectra on a common grid; NaN = no data.
    var : array_like, shape (2, n_wave), or None, optional
        Their variances.
    wavelength : array_like, shape (n_wave,), optional
        The grid (its sample index if None).
    threshold : float, optional
        Significance, in sigma, of an excess or level difference that counts.
    level_tolerance : float, optional
        Largest level difference (fraction) still taken for sky variation;
        above it, without shape evidence, the verdict is ``"undecided"``.
    min_excess : float, optional
        Smallest additive excess (fraction of the level) called contamination.
    level_degree : int, optional
        Degree of the smooth level factor allowed between clean spectra.
    min_points : int, optional
        Fewest common samples for a verdict.
    level_limit : float or None, optional
        Level difference (fraction) beyond which, at more than ``threshold``
        sigma and without shape evidence, the brighter spectrum is called
        contaminated (None: never; such pairs are ``"undecided"``).

    Returns
    -------
    PairVerdict
        Verdict, the contaminated and the brighter spectrum, level difference
        and shape test.

    Raises
    ------
    ValueError
        If ``flux`` does not hold two spectra, or ``var`` has another shape.
    """
    flux = np.asarray(flux, dtype=np.float64)
    if flux.ndim != 2 or flux.shape[0] != 2:
        raise ValueError(f"flux must have shape (2, n_wave), got {flux.shape}")
    if var is not None:
        var = np.asarray(var, dtype=np.float64)
        if var.shape != flux.shape:
            raise ValueError(f"var shape {var.shape} differs from flux shape {flux.shape}")
    d01, _ = _level_difference(flux[1], flux[0], *(None, None) if var is None else var[::-1])
    bright = 1 if (np.isfinite(d01) and d01 >= 0) else 0
    faint = 1 - bright
    v_b, v_f = (None, None) if var is None else (var[bright], var[faint])
    level, level_score = _level_difference(flux[bright], flux[faint], v_b, v_f)
    fit = additive_excess(flux[bright], flux[faint], v_b, v_f, wavelength=wavelength,
                          level_degree=level_degree, min_points=min_points)
    contaminated = None
    basis = "shape"
    if fit.n_used == 0 or not np.isfinite(level):
        verdict = "undecided"
        message = "too few common samples to compare the two spectra"
    elif abs(fit.score) > threshold and abs(fit.excess) > min_excess:
        verdict = "contaminated"
        contaminated = bright if fit.excess > 0 else faint
        message = (
            f"spectrum {contaminated} holds an additive excess of {100 * abs(fit.excess):.1f}% "
            f"({abs(fit.score):.1f} sigma) with a spectral shape unlike the other's; "
            f"levels differ by {100 * level:+.1f}%"
        )
    elif level_limit is not None and level > level_limit and level_score > threshold:
        verdict = "contaminated"
        contaminated = bright
        basis = "level"
        message = (
            f"spectrum {bright} is brighter by {100 * level:.1f}% ({level_score:.0f} sigma), "
            f"more than any sky difference between nods ({100 * level_limit:g}%); "
            "contamination only adds light, so the brighter one holds it (its excess has the "
            f"other's spectral shape, {fit.score:+.1f} sigma)"
        )
    elif level > level_tolerance and level_score > threshold:
        verdict = "undecided"
        message = (
            f"spectrum {bright} is brighter by {100 * level:.1f}% ({level_score:.0f} sigma), "
            f"more than a sky level offset ({100 * level_tolerance:g}%), but the excess has "
            f"the other's spectral shape ({fit.score:+.1f} sigma), so nothing says which "
            "is contaminated"
        )
    else:
        verdict = "consistent"
        message = (
            f"levels differ by {100 * level:.1f}% ({level_score:.1f} sigma), no additive "
            f"excess ({100 * fit.excess:+.2f}%, {fit.score:+.1f} sigma)"
        )
    return PairVerdict(verdict=verdict, contaminated=contaminated, brighter=bright,
                       level_difference=float(level), level_score=float(level_score),
                       excess=fit, message=message, basis=basis)
