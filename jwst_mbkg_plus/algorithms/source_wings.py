"""The light of a slitlet's sources in its sky rows: a Moffat profile and other sources.

A point source's wings do not stop at a shutter's edge: a Moffat profile of
index 2.5 still holds ~2 % of its peak one shutter from its centre, several
percent of the sky for a source a few times brighter than it. A sky factor fitted
to those rows takes the wings for sky and over-subtracts the source. A second
source in a neighbouring shutter (undeclared in the MSA file) is worse: its core
sits in the rows the sky is measured on.

:func:`source_wings` measures the profile along the slit, the ratio data /
modelled background in bins of signed position about the declared source
(over the positions every column reaches, so that each bin mixes the same
wavelengths), and fits ``f + A (1 + ((s - s0) / alpha)^2)^-beta`` (a Moffat, which becomes a
Gaussian for large ``beta``; ``f`` the sky factor). A profile that rises again
away from the source (by more than ``sigma``) holds a second source: it is
fitted too (same ``alpha`` and ``beta``), and the rows from the valley between
them outwards are left out of the sky.
The profile is measured on the data divided, per column, by the source's light
summed over the rows about it (smoothed along the dispersion), so that the
source's spectrum does not shape it; the wings follow that light per column.
The returned wings (in units of the modelled background) are subtracted before
the sky factor is fitted.
"""

import dataclasses
import logging

import numpy as np
from scipy.ndimage import median_filter
from scipy.optimize import curve_fit

from jwst_mbkg_plus.algorithms.free_rows import _median_and_error
from jwst_mbkg_plus.algorithms.wing_profile import profile_shape as _shape

__all__ = ["PROFILE_BIN", "WingProfile", "source_wings"]

#: Default width (slit-frame units) of the distance bins the profile is measured in.
PROFILE_BIN = 0.1

log = logging.getLogger(__name__)


def _moffat(s, f, amplitude, s0, width, q, *others):
    """Sky plus the declared source, and ``(amplitude, centre)`` pairs of other sources."""
    out = f + amplitude * _shape(s, s0, width, q)
    for a_k, s_k in zip(others[::2], others[1::2], strict=True):
        out = out + a_k * _shape(s, s_k, width, q)
    return out


def _profile(offset, ratio, ok, bin_width, min_bin_pixels):
    # Only offsets that (nearly) every column reaches: each bin then mixes the
    # same wavelengths, so the source's spectrum does not shape the profile.
    columns = ok.any(axis=0)
    masked = np.where(ok, offset, np.nan)[:, columns]
    lo = np.percentile(np.nanmin(masked, axis=0), 90)
    hi = np.percentile(np.nanmax(masked, axis=0), 10)
    ok = ok & (offset >= lo) & (offset <= hi)
    s = offset[ok]
    r = ratio[ok]
    edges = np.arange(s.min(), s.max() + bin_width, bin_width)
    index = np.digitize(s, edges)
    centres, medians, errors = [], [], []
    for b in np.unique(index):
        inside = index == b
        if inside.sum() < min_bin_pixels:
            continue
        med, err = _median_and_error(r[inside])
        centres.append(float(np.median(s[inside])))
        medians.append(med)
        errors.append(max(err, 1e-6 * max(abs(med), 1e-12)))
    return np.array(centres), np.array(medians), np.array(errors)


def _valley_cuts(centres, medians, errors, sigma, near=0.5):
    """Per side, where the profile rises again away from the declared source."""
    central = np.abs(centres) < near
    peak = int(np.argmax(np.where(central, medians, -np.inf))) if central.any() else int(
        np.argmax(medians))
    cuts = {}
    for side, order in ((-1, range(peak - 1, -1, -1)), (1, range(peak + 1, centres.size))):
        low = None
        for j in order:
            if low is None or medians[j] < medians[low]:
                low = j
            elif medians[j] - medians[low] > sigma * np.hypot(errors[j], errors[low]):
                cuts[side] = abs(centres[low] - centres[peak])
                break
    return cuts, float(centres[peak])


def _fit(centres, medians, errors, use, companions=()):
    """Fit the sky, the declared source and ``companions`` (first-guess centres)."""
    c, m, e = centres[use], medians[use], errors[use]
    central = np.abs(c) < 0.5
    peak = int(np.argmax(np.where(central, m, -np.inf))) if central.any() else int(np.argmax(m))
    f0 = float(np.percentile(m, 20))
    # (sky, amplitude, centre, width, 1 / beta): beta 2.5 to start, the Gaussian included.
    p0 = [f0, max(float(m[peak]) - f0, 1e-6), float(c[peak]), 0.15, 0.4]
    lower = [-np.inf, 0.0, float(c.min()), 0.01, 0.0]
    upper = [np.inf, np.inf, float(c.max()), 2.0, 1.0]
    for s_k in companions:
        at = int(np.argmin(np.abs(c - s_k)))
        p0 += [max(float(m[at]) - f0, 1e-6), float(s_k)]
        lower += [0.0, float(s_k) - 0.5]
        upper += [np.inf, float(s_k) + 0.5]
    params, _ = curve_fit(_moffat, c, m, p0=p0, sigma=e, absolute_sigma=True,
                          bounds=(lower, upper), maxfev=10000)
    return params


def _one_pass(ratio, ok, offset, sky0, *, bin_width, sigma, min_bin_pixels, smooth_columns,
              core_half, error_floor):
    """One measurement of the profile about a first guess of the sky factor."""
    other = np.zeros(ratio.shape, dtype=bool)
    # Per column, the source's light summed over the rows about it: dividing by
    # it takes the source's spectrum out of the profile.
    excess = np.where(ok, ratio - sky0, 0.0)
    near = ok & (np.abs(offset) < core_half)
    width = max(1, min(int(smooth_columns), ratio.shape[1]))
    flux = median_filter(np.where(near, excess, 0.0).sum(axis=0), size=width, mode="nearest")
    columns = (flux > 0) & (near.sum(axis=0) >= 3)
    if columns.sum() < min_bin_pixels:
        return "no source light to measure the profile on"
    ok = ok & columns[None, :]
    scaled = np.where(ok, excess / np.where(columns, flux, 1.0)[None, :], np.nan)
    centres, medians, errors = _profile(offset, scaled, ok, bin_width, min_bin_pixels)
    if centres.size < 8:
        return f"{centres.size} profile bins: too few"
    # Model error floor: a profile is not exactly a Moffat.
    errors = np.maximum(errors, error_floor * float(np.max(medians)))
    # A profile that rises again away from the source holds another source:
    # it is fitted with the declared one (same alpha and beta), and the rows
    # from its valley outwards are left out of the sky.
    cuts, peak = _valley_cuts(centres, medians, errors, sigma)
    companions = []
    for side, start in cuts.items():
        beyond = (np.sign(centres - peak) == side) & (np.abs(centres - peak) >= start)
        companions.append(float(centres[beyond][np.argmax(medians[beyond])]))
    use = np.ones(centres.size, dtype=bool)
    try:
        params = _fit(centres, medians, errors, use, companions)
    except (RuntimeError, ValueError) as exc:
        return f"profile fit failed: {exc}"
    for side, start in cuts.items():
        other |= (np.sign(offset - peak) == side) & (np.abs(offset - peak) >= start)
    resid = (medians - _moffat(centres, *params)) / errors
    # Every source's light (per unit of the declared source's flux per column).
    light = _moffat(offset, 0.0, *params[1:])
    wings = np.where(np.isfinite(offset) & columns[None, :],
                     np.clip(flux, 0.0, None)[None, :] * light, 0.0)
    profile = WingProfile(centres=centres, medians=medians, errors=errors,
                          flux=np.clip(flux, 0.0, None), columns=columns,
                          params=np.asarray(params, dtype=float), n_other=len(companions))
    return wings, other, params[:5], cuts, peak, resid, profile


@dataclasses.dataclass
class WingProfile:
    """
    The measured profile of a slitlet's source and its fit (for a pooled shape).

    Attributes
    ----------
    centres, medians, errors : ndarray
        Profile bins: position about the declared source, data / model minus the
        sky per unit of the source's flux per column, and their errors.
    flux : ndarray
        The source's flux per column (units of the modelled background).
    columns : ndarray of bool
        Columns where the source was measured (wings are 0 elsewhere).
    params : ndarray
        The slitlet's own fit: sky, amplitude, centre, width, ``1 / beta``, then
        an amplitude and a centre per other source.
    n_other : int
        Other sources fitted.
    """

    centres: np.ndarray
    medians: np.ndarray
    errors: np.ndarray
    flux: np.ndarray
    columns: np.ndarray
    params: np.ndarray
    n_other: int = 0


def source_wings(data, model, offset, valid=None, *, bin_width=PROFILE_BIN, sigma=4.0,
                 min_bin_pixels=30, smooth_columns=51, core_half=1.0,
                 error_floor=0.002, n_passes=3, return_profile=False):
    """
    The light of a slitlet's sources on every pixel, in units of its modelled background.

    Parameters
    ----------
    data, model : ndarray
        Calibrated data and the modelled background (2-D, dispersion along
        the columns).
    offset : ndarray
        Signed position of each pixel along the slit from the declared source
        (slit-frame units).
    valid : ndarray of bool, optional
        Pixels that may be used.
    bin_width : float, optional
        Width of the profile's bins (slit-frame units).
    sigma : float, optional
        Excess over the fitted profile (in its error) of a bin outside the
        core that marks a second source.
    min_bin_pixels : int, optional
        Fewest pixels of a profile bin.
    smooth_columns : int, optional
        Columns of the running median of the source's flux along the dispersion.
    core_half : float, optional
        Half height of the rows whose light is the source's flux per column
        (slit-frame units); the sky's first guess is the median beyond it.
    error_floor : float, optional
        Smallest error of a profile bin, as a fraction of the profile's peak.
    n_passes : int, optional
        Measurements of the profile, each about the sky left by the previous
        one's wings (the first about the median beyond ``core_half``).
    return_profile : bool, optional
        Also return the measured profile (`WingProfile`, None when not fitted),
        for `~jwst_mbkg_plus.algorithms.pooled_profile`.

    Returns
    -------
    wings : ndarray
        Light of the declared source at each pixel over the modelled
        background (0 where unknown); all zeros when the profile cannot be fitted.
    other : ndarray of bool
        Pixels left out for holding other sources (a companion and beyond it).
    record : dict
        ``status`` ("fitted", or why not), and when fitted ``sky`` (the sky
        factor beyond ``core_half`` once the wings are out), ``amplitude`` (of the profile per
        unit of the source's flux per column),
        ``centre``, ``alpha``, ``beta``, ``other_sources`` (offsets of the first
        bin of each side left out) and ``reduced_chi2``.
    profile : WingProfile or None
        Only with ``return_profile``.
    """
    data, model, offset = (np.asarray(a, dtype=float) for a in (data, model, offset))
    zeros = np.zeros(data.shape)
    other = np.zeros(data.shape, dtype=bool)
    ok = np.isfinite(data) & np.isfinite(model) & (model > 0) & np.isfinite(offset)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    if ok.sum() < 8 * min_bin_pixels:
        out = zeros, other, {"status": f"{int(ok.sum())} pixels: too few for a profile"}
        return (*out, None) if return_profile else out
    ratio = np.where(ok, data / np.where(ok, model, 1.0), np.nan)
    far = ok & (np.abs(offset) > core_half)
    sky0 = float(np.median(ratio[far] if far.sum() >= min_bin_pixels else ratio[ok]))
    result = None
    for _ in range(n_passes):
        result = _one_pass(ratio, ok, offset, sky0, bin_width=bin_width, sigma=sigma,
                           min_bin_pixels=min_bin_pixels, smooth_columns=smooth_columns,
                           core_half=core_half,
                           error_floor=error_floor)
        if isinstance(result, str):
            out = zeros, other, {"status": result}
            return (*out, None) if return_profile else out
        wings, other, params, cuts, peak, resid, profile = result
        # The sky beyond the core once the wings are out: the next pass's start.
        clean = far & ~other
        if clean.sum() < min_bin_pixels:
            break
        sky0 = float(np.median((ratio - wings)[clean]))
    f, amplitude, s0, width, q = params
    # Moffat alpha and beta (a Gaussian is reported as beta 1e6).
    beta = 1.0 / q if q > 1e-6 else 1e6
    record = {
        "status": "fitted", "sky": sky0, "amplitude": float(amplitude), "centre": float(s0),
        "sigma": float(width),
        "alpha": float(width * np.sqrt(2.0 * beta)), "beta": float(beta),
        "other_sources": sorted(float(peak + side * start) for side, start in cuts.items()),
        "reduced_chi2": float(np.sum(resid**2) / max(resid.size - 5, 1)),
    }
    return (wings, other, record, profile) if return_profile else (wings, other, record)
