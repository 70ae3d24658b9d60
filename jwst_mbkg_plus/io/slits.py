"""Slits of a MultiSlitModel: background selection, labels, variance.

Also the package's one definition of ``DO_NOT_USE``.
"""

import logging
from dataclasses import dataclass

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

__all__ = [
    "BackgroundSelection",
    "BackgroundSelectionError",
    "DO_NOT_USE",
    "is_msa_background",
    "select_background_slits",
    "slit_label",
    "slit_variance",
]

log = logging.getLogger(__name__)

DO_NOT_USE = dqflags.pixel["DO_NOT_USE"]


class BackgroundSelectionError(ValueError):
    """The requested background slitlets cannot be found or none remain."""


@dataclass(frozen=True)
class BackgroundSelection:
    """
    Which slits of a MultiSlitModel are background, and why.

    Attributes
    ----------
    indices : tuple of int
        Indices into ``model.slits`` of the background slits.
    labels : tuple of str
        ``slit_label`` of each selected slit.
    source : str
        ``"msa"`` if chosen from the MSA metadata designation, ``"parameter"`` if
        from an explicit list.
    excluded : tuple of str
        Labels of slits that would have been selected but are in the
        exclusion list.
    """

    indices: tuple
    labels: tuple
    source: str
    excluded: tuple = ()


def is_msa_background(slit):
    """
    Return True if the MSA metadata designates a slit as background.

    Same rule as jwst's ``nirspec_utils.is_background_msa_slit``: the source
    name contains "BKG" or "BACKGROUND".

    Parameters
    ----------
    slit : `~stdatamodels.jwst.datamodels.SlitModel`
        The slit.

    Returns
    -------
    bool
        Whether the slit is a designated background slit.
    """
    name = str(slit.source_name).upper()
    return "BKG" in name or "BACKGROUND" in name


def slit_label(slit):
    """
    Return a short human-readable name of a slit: ``"<slitlet_id>:<source_name>"``.

    Parameters
    ----------
    slit : `~stdatamodels.jwst.datamodels.SlitModel`
        The slit.

    Returns
    -------
    str
        The label.
    """
    return f"{slit.slitlet_id if slit.slitlet_id is not None else slit.name}:{slit.source_name}"


def _slit_keys(slit):
    """Every string a user may use to name a slit."""
    keys = {str(slit.name), str(slit.source_name), str(slit.source_id)}
    if slit.slitlet_id is not None:
        keys.add(str(slit.slitlet_id))
    return {k for k in keys if k not in ("None", "")}


def select_background_slits(slits, *, include=None, exclude=None):
    """
    Choose the background slits of a MOS exposure.

    Parameters
    ----------
    slits : sequence of `~stdatamodels.jwst.datamodels.SlitModel`
        The slits of the exposure.
    include : list of str or None, optional
        Slits to use as background, each named by slitlet id, slit name, source
        id or source name. None uses the MSA metadata designation
        (:func:`is_msa_background`).
    exclude : list of str or None, optional
        Slits never to use as background, named as for ``include``.

    Returns
    -------
    BackgroundSelection
        The selected slits.

    Raises
    ------
    BackgroundSelectionError
        If a name in ``include`` or ``exclude`` matches no slit, or no
        background slit remains.
    """
    keys = [_slit_keys(slit) for slit in slits]
    known = set().union(*keys) if keys else set()

    def _check(names, what):
        unknown = [str(n) for n in names if str(n) not in known]
        if unknown:
            raise BackgroundSelectionError(
                f"{what} names slits not in this exposure: {', '.join(unknown)}. "
                "Use slitlet ids, slit names, source ids or source names of the input's slits."
            )

    include = [str(n) for n in include] if include else None
    exclude = [str(n) for n in exclude] if exclude else []
    if include:
        _check(include, "bkg_slits")
    _check(exclude, "exclude_slits")

    chosen, dropped = [], []
    for i, slit in enumerate(slits):
        wanted = bool(keys[i] & set(include)) if include else is_msa_background(slit)
        if not wanted:
            continue
        if keys[i] & set(exclude):
            dropped.append(slit_label(slit))
            continue
        chosen.append(i)

    if not chosen:
        how = "bkg_slits" if include else "the MSA metadata (source names with BKG/BACKGROUND)"
        raise BackgroundSelectionError(
            f"No background slitlets remain: none selected by {how}"
            + (f" after excluding {', '.join(dropped)}" if dropped else "")
            + ". Name background slitlets with bkg_slits, or supply user_background."
        )
    return BackgroundSelection(
        indices=tuple(chosen),
        labels=tuple(slit_label(slits[i]) for i in chosen),
        source="parameter" if include else "msa",
        excluded=tuple(dropped),
    )


def slit_variance(slit):
    """
    Return the total variance of a slit's data.

    ``VAR_POISSON + VAR_RNOISE + VAR_FLAT`` where those arrays exist, otherwise
    ``ERR**2``.

    Parameters
    ----------
    slit : `~stdatamodels.jwst.datamodels.SlitModel`
        The slit.

    Returns
    -------
    ndarray
        Variance, float64, same shape as ``slit.data``.
    """
    parts = []
    for name in ("var_poisson", "var_rnoise", "var_flat"):
        if slit.hasattr(name) and getattr(slit, name) is not None:
            arr = getattr(slit, name)
            if arr.shape == slit.data.shape:
                parts.append(arr.astype(np.float64))
    if parts:
        return np.sum(parts, axis=0)
    return slit.err.astype(np.float64) ** 2
