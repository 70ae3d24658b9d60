"""Write a user background in the format jwst's ``user_background`` parameter takes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import astropy.units as u
import numpy as np

from jwst_mbkg_plus.io.products import masterbg1d_model
from jwst_mbkg_plus.io.user_background.columns_units import MJYSR
from jwst_mbkg_plus.safe_io import (
    atomic_save_model,
)

__all__ = [
    "write_user_background",
]

log = logging.getLogger(__name__)

def write_user_background(
    path, wavelength, surf_bright, sb_error=None, *, n_inputs=None, overwrite=False
):
    """Write a 1-D background that `read_user_background` and jwst both accept.

    The file is a ``masterbg1d`` product as jwst 3.0 writes it
    (`~jwst_mbkg_plus.io.products.masterbg1d_model`: a
    `~stdatamodels.jwst.datamodels.MultiCombinedSpecModel` with one spectrum)
    with WAVELENGTH [um], SURF_BRIGHT and SB_ERROR [MJy/sr], FLUX and ERROR
    [Jy] (NaN: a background has no point-source flux), DQ, WEIGHT and N_INPUT.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output file name (``.fits``).
    wavelength : array-like or `~astropy.units.Quantity`
        Wavelengths; micron if plain numbers.  Must be finite, positive and
        strictly increasing after unit conversion.
    surf_bright : array-like or `~astropy.units.Quantity`
        Surface brightness; MJy/sr if plain numbers.
    sb_error : array-like or `~astropy.units.Quantity`, optional
        1-sigma uncertainty of ``surf_bright``, same unit rules; NaN if omitted.
    n_inputs : int or array-like, optional
        Number of spectra combined at each wavelength (N_INPUT); NaN if omitted.
    overwrite : bool, optional
        Replace an existing file.

    Returns
    -------
    `~pathlib.Path`
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the arrays are not 1-D, differ in length, or hold invalid values.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if isinstance(wavelength, u.Quantity):
        wave = wavelength.to_value(u.um, equivalencies=u.spectral())
    else:
        wave = wavelength
    wave = np.array(wave, dtype=np.float64, copy=True)

    def to_sb(values, name):
        if isinstance(values, u.Quantity):
            out = values.to_value(MJYSR, equivalencies=u.spectral_density(wave * u.um))
        else:
            out = values
        out = np.array(out, dtype=np.float64, copy=True)
        if out.shape != wave.shape:
            raise ValueError(f"{name} has shape {out.shape}, wavelength {wave.shape}")
        return out

    if wave.ndim != 1 or wave.size < 2:
        raise ValueError(f"wavelength must be 1-D with >= 2 points, got shape {wave.shape}")
    sb = to_sb(surf_bright, "surf_bright")
    err = np.full_like(wave, np.nan) if sb_error is None else to_sb(sb_error, "sb_error")
    if not np.all(np.isfinite(wave)) or np.any(wave <= 0) or np.any(np.diff(wave) <= 0):
        raise ValueError("wavelength must be finite, positive and strictly increasing")
    if np.any(err < 0):
        raise ValueError("sb_error must be >= 0")
    n_in = np.full_like(wave, np.nan)
    if n_inputs is not None:
        n_in = np.broadcast_to(np.asarray(n_inputs, dtype=np.float64), wave.shape).copy()

    with masterbg1d_model(wave, sb, err, n_in) as model:
        model.spec[0].source_type = "EXTENDED"
        atomic_save_model(model, path)
    log.info("wrote user background %s (%d points)", path, wave.size)
    return path
