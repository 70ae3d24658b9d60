"""A point source's wings modelled, not masked, in a spec3 exposure's sky factor.

`jwst_mbkg_plus.spec3.sky_region` masks a source with its wings: every line
(row of a fixed slit, column of the MIRI LRS slit) whose light is above the
noise, then a margin. A point source's wings reach far (a Moffat profile of
index 2.5, 5 times the sky at its peak, still holds 0.5 % of the sky 10 rows
from its centre), so at 20 % noise per pixel the fixed slit keeps ~14 of its
32 rows and the factor's noise is what is left. Those rows hold sky
information: their light is the sky plus a known profile times the source's
spectrum. This module uses them, with the shared core
`jwst_mbkg_plus.algorithms.wing_model` (the MOS step's source-modelled slitlet
factor uses the same): the profile, its plausible errors, the elimination of
the source's spectrum per column and the choice of lines by leak against noise.

What is spec3's here:

* ``P`` is measured from the exposure's own data: the lines' mean residual
  after the masked fit, ``data - f0 master``, fitted with a constant (``f0``'s
  own error) plus a Moffat of free centre, core width and index
  (`~jwst_mbkg_plus.algorithms.wing_profile.fit_profile`; the index kept only
  where it is significant,
  `~jwst_mbkg_plus.algorithms.wing_profile.winged_or_gaussian`). It is used
  only if it describes the profile (chi-square, p >= ``PROFILE_P_VALUE``) and
  the blue and red halves of the band share its centre, width and index (the
  same test): a source whose profile is not that of a point source (a second
  source, an extended one, a profile with no wings, a bad line, a tilted
  trace) keeps the masked sky.
* A point spread function that widens to the red: the profiles of
  ``WIDTH_BANDS`` bands of wavelength are fitted at once with one width and
  with a width linear in wavelength
  (`~jwst_mbkg_plus.algorithms.wing_profile.fit_profile_bands`), and the slope
  is kept where the evidence supports it (`_widening`); the halves must then
  share centre and index, and every column's wings are those of its own width
  (`~jwst_mbkg_plus.algorithms.wing_profile.profile_image`).
* The source's spectrum ``a(x)`` is free in every column and eliminated
  jointly with the factor
  (`~jwst_mbkg_plus.algorithms.wing_model.joint_sky_factor`, the MOS step's
  elimination: variable projection, the exact least squares and covariance
  for every model of the factor, unbiased whatever ``a(x)``), on the lines
  at least a cut (``WING_CUTS``) from the profile's centre. The plausible
  leak joins the factor's variance as a level term (the spectrum's noise is
  in the joint fit's covariance).
* The cut is the one of least ``hypot(noise, leak)`` among those whose leak
  is at most ``LEAK_FRACTION`` (1) times the noise: the shape is the
  exposure's own, its error a statistical one of this exposure (the MOS
  step's common shape is shared by every slitlet and counts twice). The wing
  model is used when it gives the factor a smaller error than the masked sky.
"""

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from jwst_mbkg_plus.algorithms.sky_factor import SKY_CLIP
from jwst_mbkg_plus.algorithms.wing_model import joint_sky_factor
from jwst_mbkg_plus.algorithms.wing_profile import (
    fit_profile,
    fit_profile_bands,
    gaussian_unless_winged,
    profile_image,
    winged_or_gaussian,
)

__all__ = ["LEAK_FRACTION", "PROFILE_P_VALUE", "WING_CUTS", "WingModel", "model_wings"]

log = logging.getLogger(__name__)

#: Smallest chi-square probability of the profile fit for the wing model to be used.
PROFILE_P_VALUE = 0.01

#: Largest plausible leak of source light into the factor, in units of its noise.
LEAK_FRACTION = 1.0

#: Bands of wavelength in which a profile's width is measured (`_widening`).
WIDTH_BANDS = 6

#: Distances from the source's centre (lines) tried as the nearest lines fitted.
WING_CUTS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)


@dataclass(frozen=True)
class WingModel:
    """
    The source's profile along the slit and the lines it lets the sky factor use.

    Attributes
    ----------
    used : bool
        Whether the factor is fitted with the wing model.
    status : str
        Why (or why not).
    lines : ndarray of int
        Lines the factor is fitted on (empty when not used).
    params : dict
        The profile fit: ``centre``, ``sigma`` (core width, lines), ``beta``
        (Moffat index; 1e6 for a Gaussian), ``amplitude`` and ``offset``
        (data units), ``chi2``, ``dof``, ``p_value``.
    leak, noise : float
        Plausible leak of source light into the factor's level and the
        factor's noise, both relative, for the lines used.
    noise_masked : float
        The factor's noise from the masked sky, for comparison.
    core : ndarray of int or None
        Lines nearer the source than the cut, left out of the fit.
    extra_variance : float
        Variance of the factor's level that its own fit does not hold: the
        plausible leak, squared.
    """

    used: bool
    status: str
    lines: np.ndarray
    params: dict
    leak: float = np.nan
    noise: float = np.nan
    noise_masked: float = np.nan
    core: np.ndarray = None
    extra_variance: float = 0.0

    def to_record(self):
        """Plain-type record for the QA file."""
        return {"wing_model_used": bool(self.used), "wing_model_status": self.status,
                "wing_model_lines": [int(i) for i in self.lines],
                "wing_profile": {k: float(v) for k, v in self.params.items()},
                "wing_leak": float(self.leak), "wing_noise": float(self.noise),
                "masked_noise": float(self.noise_masked),
                "wing_core_lines": [] if self.core is None else [int(i) for i in self.core]}


def _collapse(r, var, ok, have):
    """Mean over the columns of each line's residual, and its standard error."""
    n = ok.sum(axis=1)
    p = np.where(have, r.sum(axis=1) / np.maximum(n, 1), np.nan)
    sig = np.where(have, np.sqrt(np.where(ok, var, 0.0).sum(axis=1)) / np.maximum(n, 1), np.nan)
    return p, sig


def _same_in_both_halves(r, var, ok, have, s, theta, p_value, compare=(0, 1, 2)):
    """Chi-square probability that the blue and red halves share the profile's shape.

    The model holds one profile (centre, width, index) for every wavelength; a
    point spread function that widens to the red, or a tilted trace, would not
    be one. ``compare``: which of (centre, width, index) are compared (not the
    width where it is modelled as changing with wavelength).
    """
    half = r.shape[1] // 2
    fits = []
    for cols in (slice(0, half), slice(half, None)):
        sub = np.zeros_like(ok)
        sub[:, cols] = ok[:, cols]
        h = have & (sub.sum(axis=1) > 0)
        if h.sum() < 8:
            return 1.0, "a half of the band has too few lines"
        p, sig = _collapse(np.where(sub, r, 0.0), var, sub, h)
        t, c, _, dof = fit_profile(s[h], p[h], sig[h], theta)
        if c is None:
            return 0.0, "no fit in one half"
        keep = 2 + np.asarray(compare)
        fits.append((t[keep], c[np.ix_(keep, keep)]))
    d = fits[0][0] - fits[1][0]
    chi2 = float(d @ np.linalg.pinv(fits[0][1] + fits[1][1]) @ d)
    prob = float(stats.chi2.sf(chi2, d.size))
    names = [("centre", "width", "index")[i] for i in compare]
    names = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    return prob, (f"{names} of the blue and red halves differ by chi2 "
                  f"{chi2:.1f} for {d.size}, p = {prob:.2g}")


def _column_coordinate(wavelength, ok):
    """Each column's wavelength, -0.5 to 0.5 over the columns used (column index if none)."""
    n_cols = ok.shape[1]
    cols = np.arange(n_cols, dtype=float)
    if wavelength is not None:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            w = np.nanmedian(np.where(ok, wavelength, np.nan), axis=0)
        good = np.isfinite(w)
        cols = np.interp(cols, cols[good], w[good]) if good.sum() >= 2 else cols
    used = ok.any(axis=0)
    lo, hi = cols[used].min(), cols[used].max()
    return (cols - 0.5 * (lo + hi)) / (hi - lo) if hi > lo else None


def _widening(r, var, ok, have, s, theta, tau, p_value, n_bands=WIDTH_BANDS):
    """
    The profile's width linear in wavelength, where the evidence supports it.

    Every band of columns is collapsed to its own profile, and all are fitted at
    once (their own constant and amplitude; one centre and index) with one width
    and with a width linear in the column's wavelength. The slope is kept when
    it lowers the chi-square beyond ``p_value`` (likelihood ratio, 1 degree of
    freedom, in units of the reduced chi-square) and by more than the BIC's
    ``ln n``, and the bands' fit describes them (chi-square, p >= ``p_value``).

    Returns
    -------
    wide : tuple or None
        ``(shape, cov, amplitude)`` with ``shape`` ``(centre, width, slope,
        q)``; None when one width is kept.
    record : dict
        The evidence (empty when not measured).
    """
    if tau is None:
        return None, {}
    groups = np.array_split(np.flatnonzero(ok.any(axis=0)), n_bands)
    ss, pp, ee, bb, tb = [], [], [], [], []
    for b, cols in enumerate(groups):
        sub = np.zeros_like(ok)
        sub[:, cols] = ok[:, cols]
        h = have & (sub.sum(axis=1) > 0)
        if h.sum() < 8:
            return None, {}
        p, sig = _collapse(np.where(sub, r, 0.0), var, sub, h)
        ss.append(s[h])
        pp.append(p[h])
        ee.append(sig[h])
        bb.append(np.full(int(h.sum()), b))
        tb.append(float(np.mean(tau[cols])))
    args = (np.concatenate(ss), np.concatenate(pp), np.concatenate(ee), np.concatenate(bb),
            np.array(tb), theta)
    try:
        _, _, chi_one, _, _ = fit_profile_bands(*args, linear=False)
        shape, cov, chi_lin, dof, amp = fit_profile_bands(*args, linear=True)
    except (ValueError, np.linalg.LinAlgError):
        return None, {}
    s2 = max(chi_lin / dof, 1.0) if dof > 0 else 1.0
    gain = (chi_one - chi_lin) / s2
    prob = float(stats.chi2.sf(max(gain, 0.0), 1))
    fit_p = float(stats.chi2.sf(chi_lin, dof)) if dof > 0 else 0.0
    used = bool(prob < p_value and gain > np.log(args[0].size) and fit_p >= p_value)
    record = {"width_linear": float(used), "width_mid": float(shape[1]),
              "width_slope": float(shape[2]), "width_slope_p_value": prob,
              "bands_p_value": fit_p}
    return ((shape, cov, amp) if used else None), record


def model_wings(data, var, model, use, line_ok, source_lines, factor0, *,
                leak_fraction=LEAK_FRACTION, p_value=PROFILE_P_VALUE, min_lines=3,
                wavelength=None, factor_model="auto", apply="auto", clip=SKY_CLIP):
    """
    Decide the wing model of one exposure and fit its sky factor with it.

    All arrays are oriented lines x columns (the wavelength runs along axis 1).

    Parameters
    ----------
    data, var, model : ndarray
        Science data, the variances the factor is weighted with, and the
        expanded master.
    use : ndarray of bool
        Pixels that may be used.
    line_ok : ndarray of bool
        Lines with a profile value that are not bad lines.
    source_lines : ndarray of bool
        Lines `sky_region` masked as source (core, wings and margins).
    factor0 : ndarray
        The factor fitted on the masked sky, at every pixel.
    leak_fraction : float, optional
        Largest plausible leak, in units of the factor's noise.
    p_value : float, optional
        Smallest chi-square probability of the profile fit.
    min_lines : int, optional
        Fewest lines for the wing model.
    wavelength : ndarray, optional
        Pixel wavelengths: the factor's coordinate, and a profile's whose width
        changes with wavelength (default: the column index stands for it).
    factor_model, apply, clip
        The factor's ``model``, ``apply`` and ``clip`` of
        `~jwst_mbkg_plus.algorithms.sky_factor.fit_sky_factor`.

    Returns
    -------
    wings : WingModel
        The decision and the profile.
    factor : SkyFactor or None
        The factor fitted with the source's spectrum eliminated jointly
        (`~jwst_mbkg_plus.algorithms.wing_model.joint_sky_factor`), its
        covariance that of the joint fit; ``None`` when the model is not used.
        The plausible leak is not in it (``wings.extra_variance``).
    """
    n_lines = data.shape[0]
    none = np.array([], dtype=int)
    if not source_lines.any():
        return WingModel(False, "no source found: nothing to model", none, {}), None
    ok = use & line_ok[:, None]
    n = ok.sum(axis=1)
    have = line_ok & (n > 0)
    s = np.arange(n_lines, dtype=float)
    r = np.where(ok, data - factor0 * model, 0.0)
    p, sig = _collapse(r, var, ok, have)
    if have.sum() < 8:
        return WingModel(False, f"{int(have.sum())} lines: too few for a profile", none,
                         {}), None
    c0 = float(np.median(p[have & ~source_lines])) if np.any(have & ~source_lines) else 0.0
    src = have & source_lines
    if not src.any():
        return WingModel(False, "the source's lines hold no data", none, {}), None
    peak = int(np.flatnonzero(src)[np.argmax(p[src])])
    amp0 = max(p[peak] - c0, 1e-12)
    half = int(np.sum(src & (p - c0 >= 0.5 * amp0)))
    try:
        theta, cov, chi2, dof = fit_profile(
            s[have], p[have], sig[have],
            np.array([c0, amp0, s[peak], max(half / 2.355, 0.5), 0.4]))
    except (ValueError, np.linalg.LinAlgError) as exc:
        return WingModel(False, f"no profile fit ({exc}): its wings masked", none, {}), None
    c, amp, centre, width, q = theta
    prob = float(stats.chi2.sf(chi2, dof)) if dof > 0 else 0.0
    params = {"centre": centre, "sigma": width, "beta": 1.0 / q if q > 1e-6 else 1e6,
              "amplitude": amp, "offset": c, "chi2": chi2, "dof": float(dof), "p_value": prob}
    if cov is None or prob < p_value:
        return WingModel(False, f"the profile is not a point source's (Moffat chi2 {chi2:.1f} "
                         f"for {dof}, p = {prob:.2g}): its wings masked", none, params), None
    # A width that changes with wavelength (a PSF that widens to the red), where the
    # evidence supports it; the halves must then still share centre and index.
    tau = _column_coordinate(wavelength, ok)
    wide, evidence = _widening(r, var, ok, have, s, theta, tau, p_value)
    params.update(evidence)
    try:
        same, text = _same_in_both_halves(r, var, ok, have, s, theta, p_value,
                                          compare=(0, 2) if wide else (0, 1, 2))
    except (ValueError, np.linalg.LinAlgError) as exc:
        same, text = 0.0, f"no fit of the halves: {exc}"
    params["halves_p_value"] = same
    if same < p_value:
        return WingModel(False, f"the profile changes along the band ({text}): one profile "
                         "for every wavelength would leak its wings; they are masked", none,
                         params), None
    # A Moffat index only where the wings show one (a Gaussian's noisy index would add
    # wings); then the shape's plausible errors, and the lines of least total error.
    if wide is None:
        shape, shape_cov = winged_or_gaussian(centre, width, q, cov[2:, 2:])
    else:
        shape, shape_cov = gaussian_unless_winged(wide[0], wide[1])
    W = np.where(ok, 1.0 / np.where(ok, var, 1.0), 0.0)
    sky = have & ~source_lines
    noise_masked = (1.0 / np.sqrt(np.sum(W[sky] * np.where(ok, model, 0.0)[sky] ** 2))
                    if sky.any() else np.inf)
    distance = np.abs(s - shape[0])
    cuts = [c for c in WING_CUTS if np.sum(have & (distance >= c)) >= min_lines]
    wave = (np.broadcast_to(np.arange(data.shape[1], dtype=float)[None, :], data.shape)
            if wavelength is None else wavelength)
    fit = joint_sky_factor(
        wave, data, var, model, ok & have[:, None], np.broadcast_to(distance[:, None],
                                                                   data.shape),
        np.asarray(shape, dtype=float), shape_cov,
        lambda t: np.broadcast_to(profile_image(s, t, tau), data.shape), cuts=cuts,
        coverage=1.0, max_leak=leak_fraction, apply=apply, clip=clip,
        factor_model=factor_model)
    if fit is None:
        return WingModel(False, "no fit on lines whose plausible leak of the wings is below "
                         f"{leak_fraction:g} of the factor's noise", none, params), None
    noise, leak = fit.noise, fit.leak
    lines = np.flatnonzero(have & (distance >= fit.cut))
    core = np.flatnonzero(have & (distance < fit.cut))
    if not np.hypot(noise, leak) < noise_masked:
        return WingModel(False, f"the wing model's {lines.size} lines give the factor no more "
                         f"information than the masked sky ({noise:.2e} against "
                         f"{noise_masked:.2e})", none, params, leak, noise, noise_masked), None
    width = (f"{width:.2f}" if wide is None else
             f"{shape[1]:.2f} {shape[2]:+.2f} x (wavelength, -0.5 to 0.5 over the band)")
    status = (f"wings modelled: Moffat centre {centre:.2f}, sigma {width}, beta "
              f"{params['beta']:.3g} (chi2 {chi2:.1f} for {dof}); spectrum free in every "
              f"column, fitted with the factor on {lines.size} lines ({core.size} nearest "
              f"the source left out), factor noise {noise:.2e} (masked sky "
              f"{noise_masked:.2e}), plausible leak {leak:.2e}")
    return (WingModel(True, status, lines, params, leak, noise, noise_masked, core,
                      leak**2), fit.fit)
