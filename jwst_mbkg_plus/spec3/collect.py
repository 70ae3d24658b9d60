"""Background spectra of the ``exptype: background`` x1d members, read as jwst 3.0 reads them."""

import logging
from dataclasses import dataclass

import numpy as np

from jwst_mbkg_plus.io.slits import DO_NOT_USE
from jwst_mbkg_plus.io.spectra import sort_by_wavelength, table_columns

__all__ = [
    "BackgroundSpectrum",
    "background_column",
    "collect_background_spectra",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackgroundSpectrum:
    """One background spectrum taken from an ``x1d`` member.

    Attributes
    ----------
    name : str
        ``<file name>[<spectrum index>]``, used in logs and QA.
    wavelength : ndarray
        Strictly increasing wavelengths, micron.
    surf_bright : ndarray
        Surface brightness, MJy/sr.
    var : ndarray or None
        Its variance (None when the product has no usable errors).
    column : str
        Column read: ``"BACKGROUND"`` or ``"SURF_BRIGHT"``.
    exposure_time : float
        Weight in the combination (jwst's ``exptime_key="exposure_time"``).
    """

    name: str
    wavelength: np.ndarray
    surf_bright: np.ndarray
    var: np.ndarray | None
    column: str
    exposure_time: float


def background_column(model, spec):
    """
    Return the ``x1d`` column holding the background, as jwst 3.0 decides.

    ``BACKGROUND`` for nodded exposures (``bkgdtarg is False``, not merely
    unset), NIRSpec IFU extended sources and MIRI MRS (always treated as
    extended); ``SURF_BRIGHT`` otherwise (dedicated background exposures).

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.MultiSpecModel`
        The ``x1d`` product.
    spec : `~stdatamodels.jwst.datamodels.SpecModel`
        One of its spectra.

    Returns
    -------
    str
        ``"BACKGROUND"`` or ``"SURF_BRIGHT"``.
    """
    exp_type = model.meta.exposure.type
    first = model.spec[0] if len(model.spec) else spec
    ifu_extended = (exp_type == "NRS_IFU" and first.source_type == "EXTENDED") or (
        exp_type == "MIR_MRS"
    )
    if model.meta.observation.bkgdtarg is False or ifu_extended:
        return "BACKGROUND"
    return "SURF_BRIGHT"


def _spectrum_from_table(name, table, column, exposure_time):
    error_column = "BKGD_ERROR" if column == "BACKGROUND" else "SB_ERROR"
    columns = table_columns(table, ("WAVELENGTH", column, error_column), checked=(column,),
                            name=name)
    wave, sb = columns["WAVELENGTH"], columns[column]
    dq = np.asarray(table["DQ"]) if "DQ" in table.dtype.names else np.zeros(wave.shape, int)
    good = np.isfinite(wave) & np.isfinite(sb) & ((dq & DO_NOT_USE) == 0)
    columns = sort_by_wavelength({k: v[good] for k, v in columns.items()}, kind="stable")
    wave, sb, err = columns["WAVELENGTH"], columns[column], columns[error_column]
    keep = np.diff(wave, prepend=-np.inf) > 0  # drop duplicate wavelengths
    wave, sb, err = wave[keep], sb[keep], err[keep]
    var = err**2 if np.all(np.isfinite(err) & (err > 0)) else None
    return BackgroundSpectrum(name, wave, sb, var, column, exposure_time)


def collect_background_spectra(models):
    """
    Read the background spectra of ``x1d`` members, without modifying them.

    Parameters
    ----------
    models : iterable of `~stdatamodels.jwst.datamodels.MultiSpecModel`
        The ``exptype: background`` members.

    Returns
    -------
    list of BackgroundSpectrum
        One per spectrum with at least two usable samples.

    Raises
    ------
    TypeError
        If a member is not a ``MultiSpecModel``-like product with ``spec``.
    """
    spectra = []
    for i, model in enumerate(models):
        if not hasattr(model, "spec"):
            raise TypeError(
                f"background member {i} ({type(model).__name__}) is not an x1d product"
            )
        exptime = model.meta.exposure.exposure_time
        exptime = float(exptime) if exptime else 1.0
        fname = model.meta.filename or f"background_{i}"
        for k, spec in enumerate(model.spec):
            column = background_column(model, spec)
            s = _spectrum_from_table(f"{fname}[{k}]", spec.spec_table, column, exptime)
            if s.wavelength.size < 2:
                log.warning("Background spectrum %s has fewer than 2 usable samples; ignored",
                            s.name)
                continue
            log.debug("Background spectrum %s: column %s, %d samples", s.name, column,
                      s.wavelength.size)
            spectra.append(s)
    return spectra


