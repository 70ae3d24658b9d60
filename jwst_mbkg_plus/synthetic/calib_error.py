"""Per-slitlet calibration errors of a synthetic scene.

Real NIRSpec apertures are each calibrated through their own flats, pathloss
and bar-shadow corrections, and a uniform sky comes out a few percent
different in every slitlet (STScI: background measurements consistent to
"~5 %" across apertures). A scene's ``calibration_error`` paints that: every
slitlet's light (sky, source, contaminant) is multiplied by its own smooth
factor in wavelength,

    c_s(lambda) = 1 + level_s + tilt_s * u / 2 + curvature_s * (u**2 - 1/3),

with ``u`` the wavelength scaled to [-1, 1] over the grating's band. The
reference files do not know the factor, so the pipeline's calibrated slitlet
is ``c_s x`` the truth: the error is in the calibration. ``tilt_s`` is the
change from the blue to the red end of the band; ``curvature_s`` bends the
middle against the ends with no change of the band's mean.

``calibration_error = (level_rms, tilt_rms, curvature_rms, correlation)``:
the three terms are Gaussian with those rms; ``correlation`` (0..1) is the
fraction of each term's variance that follows a smooth function of the MSA
position (a random plane per quadrant in shutter row and column), the rest is
independent between slitlets. The truth file records each slit's factor per
pixel (``calibration_error``) and its three terms.
"""

import numpy as np

import jwst_mbkg_plus.synthetic.instrument as instrument

__all__ = ["calibration_error_factor", "calibration_error_terms", "check_calibration_error"]


def check_calibration_error(value):
    """
    Validate and normalise a scene's ``calibration_error``.

    Parameters
    ----------
    value : tuple
        ``()`` or ``(level_rms, tilt_rms, curvature_rms[, correlation])``.

    Returns
    -------
    tuple of float
        ``()`` or four floats.

    Raises
    ------
    ValueError
        If the values are out of range.
    """
    spec = tuple(float(v) for v in value)
    if not spec:
        return ()
    if len(spec) == 3:
        spec = (*spec, 0.0)
    if len(spec) != 4:
        raise ValueError(
            "calibration_error needs (level_rms, tilt_rms, curvature_rms[, correlation]) or ()"
        )
    if any(not np.isfinite(v) or v < 0 or v > 0.3 for v in spec[:3]):
        raise ValueError(f"calibration_error rms values must be in [0, 0.3], got {spec[:3]}")
    if not 0 <= spec[3] <= 1:
        raise ValueError(f"calibration_error correlation must be in [0, 1], got {spec[3]}")
    return spec if any(spec[:3]) else ()


def calibration_error_terms(spec, slitlets, seed):
    """
    Level, tilt and curvature of every slitlet.

    Parameters
    ----------
    spec : tuple
        A normalised ``calibration_error`` (`check_calibration_error`).
    slitlets : list of `~jwst_mbkg_plus.synthetic.slitlet.Slitlet`
        The layout (positions for the correlated part).
    seed : int
        The scene's seed.

    Returns
    -------
    ndarray, shape (n_slitlets, 3)
        Zeros when ``spec`` is empty.
    """
    n = len(slitlets)
    if not spec:
        return np.zeros((n, 3))
    rng = np.random.default_rng([seed, 3])
    rms = np.asarray(spec[:3])
    rho = spec[3]
    own = rng.standard_normal((n, 3))
    spatial = np.zeros((n, 3))
    if rho > 0 and n > 1:
        row = np.array([(s.row - 0.5 * instrument.N_ROWS) / instrument.N_ROWS for s in slitlets])
        col = np.array([
            (s.first_column + 0.5 * s.n_shutters - 0.5 * instrument.N_COLUMNS)
            / instrument.N_COLUMNS for s in slitlets
        ])
        quad = np.array([s.quadrant for s in slitlets]) - 1
        planes = rng.standard_normal((4, 3, 3))  # quadrant, term, (const, row, col)
        spatial = (planes[quad, :, 0] + planes[quad, :, 1] * row[:, None] * 2
                   + planes[quad, :, 2] * col[:, None] * 2)
        spread = spatial.std(axis=0)
        spatial = (spatial - spatial.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    return rms * (np.sqrt(rho) * spatial + np.sqrt(1 - rho) * own)


def calibration_error_factor(terms, wavelength, grating):
    """
    A slitlet's calibration factor at pixel wavelengths.

    Parameters
    ----------
    terms : array_like, shape (3,)
        Level, tilt (blue-to-red change) and curvature.
    wavelength : ndarray
        Micron.
    grating : str
        The scene's grating (its band scales the wavelength).

    Returns
    -------
    ndarray
        ``c_s(lambda)``, same shape as ``wavelength``.
    """
    level, tilt, curvature = (float(t) for t in terms)
    lo, hi = instrument.GRATINGS[grating]["wrange"]
    u = np.clip(
        (np.asarray(wavelength, dtype=float) - 0.5 * (lo + hi) * 1e6) / (0.5 * (hi - lo) * 1e6),
        -1.0, 1.0,
    )
    return 1.0 + level + 0.5 * tilt * u + curvature * (u**2 - 1.0 / 3.0)
