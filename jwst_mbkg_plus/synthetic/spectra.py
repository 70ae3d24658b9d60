"""Background spectra for a scene: the analytic default sky, and sky spectra read from CSV files."""

import logging

import numpy as np

__all__ = [
    "default_background",
    "read_spectrum_csv",
]

log = logging.getLogger(__name__)


def default_background(wavelength, *, line_center=None, line_amplitude=0.5, line_sigma=0.004):
    """
    Analytic zodiacal-light-like background surface brightness.

    A smooth scattered-sunlight continuum falling with wavelength plus a thermal
    term rising beyond ~3.5 micron, plus an optional Gaussian emission line.

    Parameters
    ----------
    wavelength : ndarray
        Wavelength in micron.
    line_center : float or None, optional
        Line centre in micron; no line if None.
    line_amplitude : float, optional
        Line peak as a fraction of the continuum at the line centre.
    line_sigma : float, optional
        Line Gaussian sigma in micron.

    Returns
    -------
    ndarray
        Surface brightness in MJy/sr.
    """
    lam = np.asarray(wavelength, dtype=float)
    continuum = 0.30 * (lam / 1.5) ** -2.2 + 0.02 * np.exp((lam - 3.5) / 0.7)
    if line_center is None:
        return continuum
    cont0 = 0.30 * (line_center / 1.5) ** -2.2 + 0.02 * np.exp((line_center - 3.5) / 0.7)
    line = line_amplitude * cont0 * np.exp(-0.5 * ((lam - line_center) / line_sigma) ** 2)
    return continuum + line


def read_spectrum_csv(path):
    """
    Read a sky spectrum CSV file (columns ``wave`` [micron] and ``flux`` [MJy/sr]).

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    wave, flux : ndarray
        Finite rows, sorted by wavelength.

    Raises
    ------
    ValueError
        If the columns are missing.
    """
    data = np.genfromtxt(path, delimiter=",", names=True)
    names = [n.lower() for n in (data.dtype.names or ())]
    if "wave" not in names or "flux" not in names:
        raise ValueError(f"{path}: needs columns 'wave' [micron] and 'flux' [MJy/sr]")
    wave = np.asarray(data[data.dtype.names[names.index("wave")]], dtype=float)
    flux = np.asarray(data[data.dtype.names[names.index("flux")]], dtype=float)
    good = np.isfinite(wave) & np.isfinite(flux)
    order = np.argsort(wave[good])
    return wave[good][order], flux[good][order]
