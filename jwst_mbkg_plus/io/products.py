"""Output products of the plus steps: the ``masterbg1d`` model and the QA record file."""

import json
import logging
from pathlib import Path

import asdf
import numpy as np
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.jwst_internals import table_dtype
from jwst_mbkg_plus.safe_io import atomic_output

__all__ = ["masterbg1d_model", "plain_record", "write_qa"]

log = logging.getLogger(__name__)


def masterbg1d_model(wavelength, surf_bright, sb_error, n_input, *, template=None):
    """
    Build a ``masterbg1d`` product from a 1-D master background.

    The same datamodel jwst 3.0 writes for ``masterbg1d``
    (`~stdatamodels.jwst.datamodels.MultiCombinedSpecModel` with one spectrum),
    so jwst's own ``user_background`` and this package's both read it back.

    Parameters
    ----------
    wavelength : ndarray
        Wavelengths in micron, strictly increasing.
    surf_bright : ndarray
        Master background surface brightness, MJy/sr.
    sb_error : ndarray
        Its 1-sigma uncertainty, MJy/sr.
    n_input : ndarray
        Number of background spectra that contributed at each wavelength.
    template : `~stdatamodels.jwst.datamodels.JwstDataModel`, optional
        Model whose metadata is copied into the product.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.MultiCombinedSpecModel`
        The product. FLUX and ERROR (point-source units) are NaN: a master
        background is a surface brightness.
    """
    n = len(wavelength)
    dtype = table_dtype(datamodels.CombinedSpecModel(), "spec_table")
    table = np.zeros(n, dtype=dtype)
    table["WAVELENGTH"] = wavelength
    table["FLUX"] = np.nan
    table["ERROR"] = np.nan
    table["SURF_BRIGHT"] = surf_bright
    table["SB_ERROR"] = sb_error
    table["DQ"] = np.where(np.isfinite(surf_bright), 0, 1).astype(np.uint32)
    weight = np.asarray(n_input, dtype=np.float64)
    table["WEIGHT"] = np.where(np.isfinite(weight), weight, 1.0)
    table["N_INPUT"] = np.asarray(n_input, dtype=np.float64)
    spectrum = datamodels.CombinedSpecModel(spec_table=table)
    columns = spectrum.spec_table.columns
    columns["wavelength"].unit = "um"
    columns["surf_bright"].unit = "MJy/sr"
    columns["sb_error"].unit = "MJy/sr"
    columns["flux"].unit = "Jy"
    columns["error"].unit = "Jy"
    model = datamodels.MultiCombinedSpecModel()
    if template is not None:
        model.update(template, only="PRIMARY")
    model.spec.append(spectrum)
    return model


def write_qa(qa, path):
    """
    Write the QA record to an ASDF file.

    Parameters
    ----------
    qa : dict
        The record.
    path : str
        Output path.
    """
    with atomic_output(path) as tmp:
        asdf.AsdfFile({"master_background_qa": plain_record(qa)}).write_to(tmp)


def plain_record(value):
    """
    Convert numpy scalars in a nested QA record to plain Python.

    Parameters
    ----------
    value : dict, list, tuple or scalar
        The record or a part of it.

    Returns
    -------
    dict, list or scalar
        The same content with string keys and Python scalars, as ASDF and
        datamodel metadata store it.
    """
    if isinstance(value, dict):
        return {str(k): plain_record(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_record(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_qa(path):
    """
    Read a QA record written by either plus step.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        ``*_mbkgqa.asdf`` (MOS and spec3), or the ``*_mbkgqa.json`` older
        versions of the spec3 step wrote.

    Returns
    -------
    dict
        The ``master_background_qa`` tree.

    Raises
    ------
    ValueError
        If the file holds no QA record.
    """
    path = Path(path)
    if path.suffix == ".json":

        qa = json.loads(path.read_text())
        if not isinstance(qa, dict) or "inputs" not in qa:
            raise ValueError("not a master background QA record (no 'inputs')")
        return qa
    with asdf.open(path, lazy_load=False, memmap=False) as af:
        if "master_background_qa" not in af.tree:
            raise ValueError("not a *_mbkgqa.asdf QA record (no master_background_qa)")
        qa = af.tree["master_background_qa"]
        return {key: qa[key] for key in qa}
