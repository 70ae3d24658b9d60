"""The one reader of 1-D spectra in jwst x1d, c1d and masterbg1d tables.

The MOS step (its ``extract_1d`` background spectra and jwst's combined master),
the spec3 step (the background members), ``jwst-mbkg-plus master`` and the plots
all read ``spec_table`` columns through :func:`table_columns`, so that a column
is read, converted and ordered one way everywhere.
"""

import logging

import numpy as np

__all__ = ["column_names", "sort_by_wavelength", "spectrum_name", "table_columns"]

log = logging.getLogger(__name__)


def column_names(table):
    """
    Upper-case names of the columns of a spectrum table.

    Parameters
    ----------
    table : numpy record array or FITS_rec
        A ``spec_table``.

    Returns
    -------
    set of str
        The names.
    """
    return {name.upper() for name in table.dtype.names}


def table_columns(table, names, *, optional=(), checked=(), name="spectrum"):
    """
    Columns of a spectrum table as float64 arrays.

    Parameters
    ----------
    table : numpy record array or FITS_rec
        A ``spec_table``.
    names : sequence of str
        Columns that must be there.
    optional : sequence of str, optional
        Columns that may be missing (None then).
    checked : sequence of str, optional
        Columns whose fill values (-9999, 1e30, ...) and values far outside the
        column's robust range
        (`~jwst_mbkg_plus.io.user_background.values.absurd_rows`) become NaN,
        with a warning naming the rows.
    name : str, optional
        The spectrum, for that warning.

    Returns
    -------
    dict
        Name -> float64 array (a copy), or None for a missing optional column.

    Raises
    ------
    KeyError
        If a required column is missing.
    """
    present = column_names(table)
    out = {}
    for col in (*names, *optional):
        if col.upper() not in present:
            if col in names:
                raise KeyError(f"spectrum table has no {col} column")
            out[col] = None
            continue
        out[col] = np.array(table[col], dtype=np.float64)
    for column in checked:
        _blank_absurd(out.get(column), column, name)
    return out


def _blank_absurd(values, column, name):
    """Set a column's fill values and absurd rows to NaN (in place), with a warning."""
    from jwst_mbkg_plus.io.user_background.values import absurd_rows, describe_rows

    if values is None or values.size == 0:
        return
    bad = absurd_rows(values)
    if not bad.any() or bad.sum() > 0.5 * np.isfinite(values).sum():
        return
    rows = np.flatnonzero(bad)
    log.warning("%s: %s of column %s left out: fill values or values more than 10 times the "
                "spectrum's robust range beyond it (row 1 is the first).", name,
                describe_rows(rows + 1, values[rows]), column)
    values[bad] = np.nan


def sort_by_wavelength(columns, *, kind="quicksort", key="WAVELENGTH"):
    """
    Order every column of a spectrum by wavelength.

    Parameters
    ----------
    columns : dict
        Name -> 1-D array (or None), as from `table_columns`.
    kind : str, optional
        `numpy.argsort` algorithm (``"stable"`` keeps the order of equal wavelengths).
    key : str, optional
        The wavelength column.

    Returns
    -------
    dict
        The same columns, reordered.
    """
    order = np.argsort(columns[key], kind=kind)
    return {name: None if values is None else values[order] for name, values in columns.items()}


def spectrum_name(spec, index):
    """
    Return a name for one spectrum of an x1d-like product.

    Parameters
    ----------
    spec : `~stdatamodels.jwst.datamodels.SpecModel` or similar
        The spectrum.
    index : int
        Its position in the product, used when it has no name, slitlet id or
        source name.

    Returns
    -------
    str
        The first of ``name``, ``slitlet_id``, ``source_name`` that is set, else
        ``index``. A ``slitlet_id`` of 0 is not a slitlet: it is what an unset
        one reads as in the schemas of jwst 1.19 (stdatamodels 4.0).
    """
    for attr in ("name", "slitlet_id", "source_name"):
        value = getattr(spec, attr, None)
        if value in (None, "") or (attr == "slitlet_id" and value == 0):
            continue
        return str(value)
    return str(index)
