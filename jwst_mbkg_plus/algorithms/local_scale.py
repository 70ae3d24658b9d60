"""Rescaling a slitlet's background with its own source-free rows.

A slitlet of several shutters around a compact source sees the sky in the
shutters beside it. The ratio of those pixels to the modelled background
(master x spatial factor) measures the local background level, whatever the
field-scale model missed. The danger is the source's wings: light of the source
in the "free" rows biases the scale up and over-subtracts the source. Two
guards:

* only pixels at least ``guard`` (slit-frame units, i.e. shutter heights) from
  the source position are used;
* the used rows are split by distance from the source; while the nearer half
  is significantly brighter than the farther half (wings), it is dropped.

What remains must hold ``min_pixels`` pixels, else the slitlet keeps the
model's level (scale 1), and the reason is recorded.
"""

import logging
from dataclasses import dataclass

import numpy as np

from jwst_mbkg_plus.algorithms.stats import MAD_TO_SIGMA

__all__ = ["LocalScale", "local_scale"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalScale:
    """
    A slitlet's background scale from its source-free rows.

    Attributes
    ----------
    scale, error : float
        Multiplies the modelled background; 1 and 0 when not measured.
    n_pixels : int
        Pixels the scale was measured on.
    min_distance : float
        Smallest distance from the source of the pixels used (slit-frame units).
    status : str
        ``measured``, or why the slitlet keeps scale 1.
    """

    scale: float
    error: float
    n_pixels: int
    min_distance: float
    status: str

    @property
    def applied(self):
        """Whether the scale was measured (and is applied)."""
        return self.status == "measured"

    def to_record(self):
        """
        Plain-Python summary for the QA record.

        Returns
        -------
        dict
            ``scale``, ``error``, ``n_pixels``, ``min_distance``, ``status``.
        """
        return {
            "scale": float(self.scale),
            "error": float(self.error),
            "n_pixels": int(self.n_pixels),
            "min_distance": float(self.min_distance),
            "status": self.status,
        }


def _not_measured(status, n_pixels=0):
    return LocalScale(1.0, 0.0, int(n_pixels), float("nan"), status)


def _scale(data, var, model, sigma, maxiters):
    """Weighted scale of ``data ~ s * model`` with clipping; (scale, error, n)."""
    ok = np.ones(data.size, dtype=bool)
    s = np.nan
    for _ in range(maxiters + 1):
        w = model[ok] ** 2 / var[ok]
        s = np.sum(data[ok] * model[ok] / var[ok]) / np.sum(w)
        z = (data - s * model) / np.sqrt(var)
        spread = MAD_TO_SIGMA * np.median(np.abs(z[ok] - np.median(z[ok])))
        keep = np.abs(z) <= sigma * max(spread, 1.0)
        if keep.sum() == ok.sum() or keep.sum() < 2:
            break
        ok = keep
    w = model[ok] ** 2 / var[ok]
    chi2 = np.sum((data[ok] - s * model[ok]) ** 2 / var[ok]) / max(ok.sum() - 1, 1)
    return float(s), float(np.sqrt(max(chi2, 1.0) / np.sum(w))), int(ok.sum())


def local_scale(data, var, model, distance, valid=None, *, guard=1.0, min_pixels=200,
                wing_sigma=3.0, sigma=3.0, maxiters=5):
    """
    Measure a slitlet's background scale from the pixels far from its source.

    Parameters
    ----------
    data, var : ndarray
        Calibrated surface brightness and its variance (same shape).
    model : ndarray
        Modelled background at the same pixels (same units as ``data``).
    distance : ndarray
        Distance of each pixel from the source along the slit (slit-frame
        units); ``inf`` everywhere for a slitlet with no source.
    valid : ndarray of bool, optional
        Pixels that may be used (default: all finite ones).
    guard : float, optional
        Smallest distance from the source of a pixel used.
    min_pixels : int, optional
        Fewest pixels for a measurement.
    wing_sigma : float, optional
        Significance at which the nearer half of the rows counts as brighter
        than the farther half (the source's wings) and is dropped.
    sigma : float, optional
        Pixel clipping threshold (robust standard deviations).
    maxiters : int, optional
        Pixel clipping iterations.

    Returns
    -------
    LocalScale
        The scale and its error, or scale 1 with the reason.
    """
    data, var, model, distance = (
        np.asarray(a, dtype=float) for a in (data, var, model, distance)
    )
    ok = np.isfinite(data) & np.isfinite(var) & (var > 0) & np.isfinite(model) & (model > 0)
    ok &= ~np.isnan(distance)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    far = ok & (distance >= guard)
    if far.sum() < min_pixels:
        return _not_measured(
            f"{int(far.sum())} pixels at >= {guard:g} shutter from the source "
            f"(fewer than {min_pixels})",
            far.sum(),
        )
    d, v, m, dist = data[far], var[far], model[far], distance[far]
    # Wings: compare the nearer and the farther half of what is left.
    while True:
        finite_dist = dist[np.isfinite(dist)]
        if finite_dist.size < 2 * min_pixels or np.ptp(finite_dist) == 0:
            break
        split = np.median(finite_dist)
        near = dist <= split
        if near.all() or not near.any():
            break
        s_near, e_near, _ = _scale(d[near], v[near], m[near], sigma, maxiters)
        s_far, e_far, _ = _scale(d[~near], v[~near], m[~near], sigma, maxiters)
        if s_near - s_far <= wing_sigma * np.hypot(e_near, e_far):
            break
        log.debug("Dropping rows within %.2f of the source: wings (%.4f vs %.4f)", split,
                  s_near, s_far)
        d, v, m, dist = d[~near], v[~near], m[~near], dist[~near]
    if d.size < min_pixels:
        return _not_measured(
            f"{d.size} pixels left after dropping the source's wings (fewer than {min_pixels})",
            d.size,
        )
    scale, error, n_used = _scale(d, v, m, sigma, maxiters)
    if not (np.isfinite(scale) and scale > 0):
        return _not_measured("no positive scale", n_used)
    return LocalScale(scale, error, n_used, float(np.min(dist)), "measured")
