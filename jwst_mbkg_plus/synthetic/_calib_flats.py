"""The synthetic NIRSpec flats (d-, s- and f-flat) in the formats jwst's flat_field reads."""

import logging

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.synthetic._calib_files import (
    DETECTOR_SIZE,
    MSA_COLUMNS,
    MSA_ROWS,
    fast_table,
    plane_wavelengths,
    save,
    set_meta,
)

from . import _calib_functions as cf

__all__ = [
    "write_dflat",
    "write_fflat",
    "write_sflat",
]

log = logging.getLogger(__name__)


def write_dflat(path, *, detector):
    """
    Write the d-flat: two full-frame planes at 0.6 and 5.3 micron plus a fast table.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output FITS file.
    detector : {"NRS1", "NRS2"}
        Detector.

    Returns
    -------
    `~pathlib.Path`
        The written file.
    """
    x = np.arange(DETECTOR_SIZE, dtype=np.float64)[np.newaxis, :]
    y = np.arange(DETECTOR_SIZE, dtype=np.float64)[:, np.newaxis]
    data = np.empty((2, DETECTOR_SIZE, DETECTOR_SIZE), dtype=np.float32)
    for k, wave in enumerate((cf.WAVE_MIN, cf.WAVE_MAX)):
        data[k] = cf.dflat_image(wave, x, y, detector)
    model = datamodels.NirspecFlatModel()
    model.data = data
    # Explicit DQ and ERR (zeros, as stdatamodels >= 4.1 defaults them): with
    # stdatamodels 4.0 (jwst 1.19) they would stay empty and flat_field fail.
    model.dq = np.zeros(data.shape, dtype=np.uint32)
    model.err = np.zeros(data.shape, dtype=np.float32)
    model.wavelength = plane_wavelengths()
    model.flat_table = fast_table(lambda w: cf.dflat_fast(w, detector))
    set_meta(
        model,
        reftype="dflat",
        detector=detector,
        filter_name="N/A",
        grating="N/A",
        description=f"Synthetic NIRSpec D-flat for {detector} (two linear planes)",
    )
    return save(model, path)


def write_sflat(path, *, detector, filter_name, grating):
    """
    Write the s-flat: one 2-D full-frame image plus a fast table.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output FITS file.
    detector : {"NRS1", "NRS2"}
        Detector.
    filter_name, grating : str
        The mode.

    Returns
    -------
    `~pathlib.Path`
        The written file.
    """
    x = np.arange(DETECTOR_SIZE, dtype=np.float64)[np.newaxis, :]
    y = np.arange(DETECTOR_SIZE, dtype=np.float64)[:, np.newaxis]
    model = datamodels.NirspecFlatModel()
    model.data = cf.sflat_image(x, y, detector, filter_name, grating).astype(np.float32)
    model.dq = np.zeros(model.data.shape, dtype=np.uint32)
    model.err = np.zeros(model.data.shape, dtype=np.float32)
    model.flat_table = fast_table(lambda w: cf.sflat_fast(w, detector, filter_name, grating))
    set_meta(
        model,
        reftype="sflat",
        detector=detector,
        filter_name=filter_name,
        grating=grating,
        description=f"Synthetic NIRSpec MOS S-flat for {detector} {filter_name}/{grating}",
    )
    return save(model, path)


def write_fflat(path, *, filter_name, grating):
    """
    Write the MOS f-flat: per quadrant two shutter planes plus a fast table.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output FITS file.
    filter_name, grating : str
        The mode.

    Returns
    -------
    `~pathlib.Path`
        The written file.
    """
    col = np.arange(1, MSA_COLUMNS + 1, dtype=np.float64)[np.newaxis, :]
    row = np.arange(1, MSA_ROWS + 1, dtype=np.float64)[:, np.newaxis]
    model = datamodels.NirspecQuadFlatModel()
    for quadrant in range(1, 5):
        data = np.empty((2, MSA_ROWS, MSA_COLUMNS), dtype=np.float32)
        for k, wave in enumerate((cf.WAVE_MIN, cf.WAVE_MAX)):
            data[k] = cf.fflat_image(wave, quadrant, col, row, filter_name, grating)
        item = model.quadrants.item()
        item.data = data
        item.err = np.zeros_like(data)
        item.wavelength = plane_wavelengths()
        item.flat_table = fast_table(
            lambda w, q=quadrant: cf.fflat_fast(w, q, filter_name, grating)
        )
        model.quadrants.append(item)
    set_meta(
        model,
        reftype="fflat",
        filter_name=filter_name,
        grating=grating,
        description=f"Synthetic NIRSpec MOS F-flat for {filter_name}/{grating}",
    )
    return save(model, path)
