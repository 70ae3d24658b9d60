"""What makes a spec3 scene real: sky drift between exposures, source wings, extended sources.

In calwebb_spec3 the master background comes from exposures taken at another
time or pointing (dedicated background observations, or the other nods). The
sky of a science exposure is not the same: MIRI's thermal background changes
with pointing and time, and so do stray and zodiacal light. This module holds
the pieces `jwst_mbkg_plus.synthetic.spec3_modes` paints with:

* :func:`drift_factor`: the science exposure's sky over the background
  exposures' sky, ``1 + level + red * t`` with ``t`` the position in the band
  (0 at the blue end, 1 at the red end). A drift that grows to the red is the
  realistic case for a thermal sky;
* :func:`exposure_drift`: the ``(level, red)`` of one exposure from the scene
  options (a number for every exposure, or one value per exposure);
* :func:`source_profile`: a compact source's profile across the slit, either
  the old cosine bump (exactly zero beyond its half width) or a Moffat profile
  (beta 2.5, the same FWHM) whose wings reach every row of a short slit, the
  trap of a sky measured beside the source;
* :func:`extended_profile`: an extended source filling a given fraction of an
  IFU field, with a gentle gradient and tapered edges.
"""

import numpy as np

__all__ = [
    "MOFFAT_BETA",
    "drift_factor",
    "exposure_drift",
    "extended_profile",
    "source_profile",
]

#: Moffat index of the winged source profile (ground-based seeing is ~2.5-4.5; a
#: diffraction-limited PSF's wings fall as r^-3, i.e. beta = 1.5 in one dimension).
MOFFAT_BETA = 2.5


def drift_factor(t, level=0.0, red=0.0):
    """
    Sky of a science exposure over that of the background exposures.

    Parameters
    ----------
    t : array_like
        Position in the band: 0 at the blue end, 1 at the red end (clipped).
    level : float, optional
        Drift at every wavelength (0.03: 3 % brighter).
    red : float, optional
        Extra drift growing linearly from 0 at the blue end to ``red`` at the red end.

    Returns
    -------
    ndarray
        ``1 + level + red * t``.
    """
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    return 1.0 + level + red * t


def _per_exposure(value, index):
    if np.ndim(value) == 0:
        return float(value)
    value = list(value)
    return float(value[index % len(value)])


def exposure_drift(params, index):
    """
    ``(level, red)`` drift of science exposure ``index``.

    Parameters
    ----------
    params : dict
        Scene options: ``drift`` and ``drift_red``, each a number (all
        exposures) or a sequence (one per exposure, cycled).
    index : int
        Exposure index.

    Returns
    -------
    tuple of float
        Level and red-end drift.
    """
    return (_per_exposure(params.get("drift", 0.0), index),
            _per_exposure(params.get("drift_red", 0.0), index))


def source_profile(coord, centre, half_width, *, wings=False, beta=MOFFAT_BETA):
    """
    Profile (peak 1) of a compact source across the slit.

    Parameters
    ----------
    coord : array_like
        Spatial coordinate of every pixel (rows, columns or slices).
    centre : float
        Source position.
    half_width : float
        Half width of the cosine bump (its FWHM); the Moffat profile has the
        same FWHM.
    wings : bool, optional
        Moffat profile (``MOFFAT_BETA``) with wings everywhere, instead of the
        cosine bump that is exactly zero beyond ``half_width``.
    beta : float, optional
        Moffat index of the winged profile.

    Returns
    -------
    ndarray
        The profile.
    """
    d = np.abs(np.asarray(coord, dtype=np.float64) - centre)
    if wings:
        alpha = half_width / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
        return (1.0 + (d / alpha) ** 2) ** (-beta)
    x = d / half_width
    return np.where(x < 1.0, 0.5 * (1.0 + np.cos(np.pi * np.minimum(x, 1.0))), 0.0)


def extended_profile(coord, n_elements, fraction, *, taper=1.5):
    """
    An extended source filling ``fraction`` of a field of ``n_elements`` elements.

    The source is centred on the field, brighter to one side (0.6 to 1.0 of
    its peak across it) and falls to zero with a cosine taper of ``taper``
    elements at each edge; the taper is inside the filled fraction.

    Parameters
    ----------
    coord : array_like
        Spatial element (e.g. IFU slice) of every pixel, 0 .. ``n_elements - 1``.
    n_elements : int
        Elements across the field.
    fraction : float
        Fraction of the field the source covers (0 < fraction <= 1).
    taper : float, optional
        Width of each edge's taper, in elements.

    Returns
    -------
    ndarray
        The profile (peak 1), exactly 0 outside the covered fraction.
    """
    c = np.asarray(coord, dtype=np.float64)
    width = fraction * n_elements
    lo = 0.5 * (n_elements - width) - 0.5
    hi = lo + width
    gradient = 0.6 + 0.4 * np.clip((c - lo) / max(width, 1e-9), 0.0, 1.0)
    edge = np.minimum(c - lo, hi - c)
    shape = np.where(edge >= taper, 1.0,
                     np.where(edge > 0, 0.5 * (1.0 - np.cos(np.pi * np.clip(edge, 0, taper)
                                                            / taper)), 0.0))
    return gradient * shape
