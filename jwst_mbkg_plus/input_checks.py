"""What the plus steps need of their input and parameters, checked before any work.

Each function returns a message saying what is wrong and what to do (empty
if nothing is), so the steps can record FAILED with it instead of failing
somewhere deep inside jwst, crds or numpy.
"""

import logging
import os

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.io.slits import BackgroundSelectionError, select_background_slits

__all__ = [
    "MOS_EXP_TYPES",
    "ParameterError",
    "calibration_failure",
    "unique_files",
    "unique_members",
    "list_parameter",
    "mos_calibration_problem",
    "mos_input_problem",
    "mos_parameter_problem",
    "mos_slit_problem",
    "spec3_science_problem",
]

log = logging.getLogger(__name__)

#: Exposure types the MOS step handles (jwst runs master_background_mos for these).
MOS_EXP_TYPES = ("NRS_MSASPEC",)

_SPEC3_HINT = (
    "the calwebb_spec3 step master_background_plus (calwebb_spec3_plus) handles "
    "NIRSpec fixed-slit and IFU and MIRI LRS and MRS"
)


class ParameterError(ValueError):
    """Step parameters that contradict each other."""


def list_parameter(value, name):
    """
    Normalise a list parameter as users type it to a list of distinct strings.

    ``strun --bkg_slits=12`` gives the string ``'12'``, ``--bkg_slits=12,13`` a
    list, a steps dict may give ``12``, ``[12, 13]`` or ``'12, 13'``, an ASDF
    parameter file a list or a string: all become ``['12']`` or
    ``['12', '13']``. Repeated entries are dropped with a warning.

    Parameters
    ----------
    value : None, str, int or sequence
        The parameter's value.
    name : str
        The parameter's name, for the warning.

    Returns
    -------
    list of str or None
        None if ``value`` is None, else the entries in order, each once.
    """
    if value is None:
        return None
    items = [value] if isinstance(value, (str, bytes, int, float)) else list(value)
    entries = []
    for item in items:
        text = item.decode() if isinstance(item, bytes) else str(item)
        entries.extend(t.strip() for t in text.split(",") if t.strip())
    unique = list(dict.fromkeys(entries))
    if len(unique) < len(entries):
        repeated = sorted({e for e in entries if entries.count(e) > 1})
        log.warning("%s names %s more than once; each is used once.", name,
                    ", ".join(repeated))
    return unique


def _model_digest(model):
    """A digest of a model's values (spectra tables, or the data array)."""
    import hashlib

    digest = hashlib.sha256()
    spectra = getattr(model, "spec", None)
    if spectra is not None and len(spectra):
        for spec in spectra:
            digest.update(np.asarray(spec.spec_table).tobytes())
    elif getattr(model, "data", None) is not None:
        digest.update(np.ascontiguousarray(model.data).tobytes())
    else:
        return None
    return digest.hexdigest()


def unique_members(models, what="background member"):
    """
    Drop repeated models (the same values twice) with a warning naming them.

    Parameters
    ----------
    models : sequence of `~stdatamodels.jwst.datamodels.JwstDataModel`
        E.g. the background members of an association.
    what : str, optional
        What they are, for the warning.

    Returns
    -------
    list
        The models, each once, in order.
    """
    seen, kept = {}, []
    for model in models:
        key = _model_digest(model)
        name = getattr(model.meta, "filename", None) or f"{what} {len(kept) + 1}"
        if key is not None and key in seen:
            log.warning("%s %s holds the same values as %s: used once, not counted twice.",
                        what.capitalize(), name, seen[key])
            continue
        if key is not None:
            seen[key] = name
        kept.append(model)
    return kept


def unique_files(paths, what="input file"):
    """
    Drop files given twice (same file, or identical content) with a warning.

    Parameters
    ----------
    paths : sequence of str or `~pathlib.Path`
        The files, in order.
    what : str, optional
        What they are, for the warning.

    Returns
    -------
    list of `~pathlib.Path`
        The files, each once, in order.
    """
    import hashlib
    from pathlib import Path

    seen, kept = {}, []
    for path in paths:
        path = Path(path)
        try:
            key = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        except OSError:
            key = None
        key = key or str(path.resolve())
        if key in seen:
            log.warning("%s %s is the same as %s: used once, not counted twice.",
                        what.capitalize(), path, seen[key])
            continue
        seen[key] = path
        kept.append(path)
    return kept


def _exp_type(model):
    try:
        return model.meta.exposure.type
    except AttributeError:
        return None


def mos_input_problem(model, source=None):
    """
    Say why a model is not input the MOS step can use, or ''.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The opened input.
    source : str or path-like, optional
        The file it was opened from, to say what that file is.

    Returns
    -------
    str
        The problem and the fix, or '' if the model is NIRSpec MOS slits as
        after calwebb_spec2's srctype.
    """
    kind = type(model).__name__
    name = getattr(getattr(model, "meta", None), "filename", None) or "the input"
    if isinstance(source, str | os.PathLike) and not isinstance(model,
                                                              datamodels.MultiSlitModel):
        from jwst_mbkg_plus.safe_io import describe_file

        what = describe_file(source)
        if what.startswith("an ASDF file holding"):
            return (f"{source} is {what}, not extracted slits: give the output of srctype "
                    "(calwebb_spec2), or the rate file to calwebb_spec2_plus.")
    if isinstance(model, (datamodels.MultiCombinedSpecModel, datamodels.CombinedSpecModel,
                          datamodels.MultiSpecModel)):
        return (
            f"{name} is a 1-D spectrum product ({kind}), not 2-D slits. To subtract it as the "
            "master background, give it as user_background=... and the extracted slits "
            "(the output of srctype in calwebb_spec2) as the input."
        )
    exp_type = _exp_type(model)
    if exp_type is None and isinstance(model, datamodels.MultiSlitModel):
        return (
            f"{name} has no exposure type (meta.exposure.type, FITS keyword EXP_TYPE, is "
            "not set), so jwst cannot choose its reference files: set it (NRS_MSASPEC for "
            "NIRSpec MOS) or give the output of calwebb_spec2's srctype, which keeps it."
        )
    if exp_type is not None and exp_type not in MOS_EXP_TYPES:
        return (
            f"{name} holds {exp_type} data; master_background_mos_plus handles NIRSpec "
            f"MOS ({', '.join(MOS_EXP_TYPES)}) only: {_SPEC3_HINT}."
        )
    if not isinstance(model, datamodels.MultiSlitModel):
        return (
            f"{name} is of type {kind}, not extracted slits: master_background_mos_plus needs a "
            "MultiSlitModel as after assign_wcs, msaflagopen, extract_2d and srctype. Run "
            "calwebb_spec2_plus on the rate file, or those steps first."
        )
    if len(model.slits) == 0:
        return (
            f"{name} holds no slits: extract_2d found no open slitlet. Check the MSA "
            "metadata file (MSAMETFL) and that extract_2d ran on this exposure."
        )
    return ""


def _slit_defect(slit):
    """What makes one slit unusable by the nested calibration steps, or ''."""
    data = getattr(slit, "data", None)
    if data is None or getattr(data, "size", 0) == 0:
        return "holds no data (zero-size SCI array)"
    if data.ndim != 2:
        return f"has {data.ndim}-D data of shape {data.shape}, not a 2-D cutout"
    try:
        wcs = slit.meta.wcs
    except AttributeError:
        wcs = None
    if wcs is None:
        return "has no WCS (meta.wcs), which flat_field and photom need"
    return ""


def mos_slit_problem(model):
    """
    Say which slits the nested calibration steps cannot handle, or ''.

    jwst's flat_field, pathloss and barshadow fail deep inside on a slit
    without WCS or without data; this names every such slit first.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The input slits (already checked with `mos_input_problem`).

    Returns
    -------
    str
        The slits, what is wrong with each and the fix, or ''.
    """
    from jwst_mbkg_plus.io.slits import slit_label

    bad = []
    for slit in model.slits:
        defect = _slit_defect(slit)
        if defect:
            bad.append(f"slit {slit_label(slit)} {defect}")
    if not bad:
        return ""
    name = model.meta.filename or "the input"
    return (
        f"{name}: {len(bad)} of {len(model.slits)} slits cannot be calibrated: "
        + "; ".join(bad[:5]) + ("; ..." if len(bad) > 5 else "")
        + ". Give the output of extract_2d/srctype run on this exposure (extract_2d "
        "attaches each slit's WCS and cutout), or remove those slits."
    )


def calibration_failure(err):
    """
    The message for an exception raised inside jwst's nested calibration steps.

    Parameters
    ----------
    err : Exception
        What flat_field, pathloss, barshadow or photom raised.

    Returns
    -------
    str
        What failed, where, and what to check.
    """
    where = ""
    tb = err.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith("jwst."):
            where = module
        tb = tb.tb_next
    return (
        f"the calibration pass (flat_field, pathloss, barshadow, photom, run as jwst runs "
        f"them) failed{' in ' + where if where else ''}: {type(err).__name__}: {err}. The "
        "input slits or the reference files do not fit each other: check that the input is "
        "the output of srctype for this exposure and that CRDS serves this instrument mode."
    )


def mos_calibration_problem(model):
    """
    Say why MOS slits are at the wrong calibration stage for the step, or ''.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The input slits.

    Returns
    -------
    str
        The problem and the fix, or ''.
    """
    name = model.meta.filename or "the input"
    done = [
        s for s in ("flat_field", "photom")
        if getattr(model.meta.cal_step, s, None) == "COMPLETE"
    ]
    if done:
        return (
            f"{name} is already calibrated ({', '.join(done)} COMPLETE): the MOS master "
            "background runs before flat_field. Give the output of srctype (or the rate file "
            "to calwebb_spec2_plus)."
        )
    return ""


def mos_parameter_problem(step, model):
    """
    Say why the MOS step's parameters cannot work on this model, or ''.

    Parameters
    ----------
    step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
        The step.
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        Its input (already checked with `mos_input_problem`).

    Returns
    -------
    str
        The problem and the fix, or ''.
    """
    if step.median_kernel is not None and step.median_kernel < 1:
        return f"median_kernel={step.median_kernel} must be >= 1 (1: no median filter)."
    if step.user_background:
        # The rest concern background slitlets; the file's own length is checked on reading.
        return ""
    clips = getattr(step, "combine_method", "clipped_mean") in ("clipped_mean", "weighted_mean",
                                                                 "jwst")
    if clips and step.sigma_clip is not None and step.sigma_clip <= 0:
        return (
            f"sigma_clip={step.sigma_clip} would clip every point: give a value > 0 "
            "(default 3), or combine_method='mean' or 'median' to combine without clipping."
        )
    if step.reject_pixels and step.pixel_sigma <= 0:
        return (
            f"pixel_sigma={step.pixel_sigma} would reject every background pixel: give a "
            "value > 0 (default 5), or reject_pixels=False."
        )
    if step.vet_spectra and step.vet_threshold <= 0:
        return (
            f"vet_threshold={step.vet_threshold} would reject every background spectrum: "
            "give a value > 0 (default 5), or vet_spectra=False."
        )
    if step.bkg_slits is not None and len(step.bkg_slits) == 0:
        return (
            "bkg_slits=[] names no slitlet: name the background slitlets, or leave "
            "bkg_slits unset (None) to use those the MSA metadata file designates."
        )
    columns = max((s.data.shape[-1] for s in model.slits if s.data is not None
                   and s.data.ndim == 2), default=0)
    kernel = step.median_kernel or 1
    if kernel > 1 and kernel >= columns:
        return (
            f"median_kernel={kernel} is longer than the longest slit spectrum ({columns} "
            "columns): the running median would flatten the master background. Use an odd "
            "value well below that (e.g. 3-31), or 1 for none."
        )
    try:
        selection = select_background_slits(
            model.slits, include=step.bkg_slits or None, exclude=step.exclude_slits or None
        )
    except BackgroundSelectionError as err:
        return str(err)
    if len(selection.indices) < step.min_spectra:
        log.warning(
            "min_spectra=%d but only %d background spectra: at every wavelength the master "
            "background is their plain mean (no clipping or vetting of points), as documented; "
            "lower min_spectra to combine them robustly.",
            step.min_spectra, len(selection.indices),
        )
    return ""


def spec3_science_problem(models):
    """
    Say why science models are not input the spec3 step can use, or ''.

    Parameters
    ----------
    models : sequence of `~stdatamodels.jwst.datamodels.JwstDataModel`
        The science members (or the single science model).

    Returns
    -------
    str
        The problem and the fix, or ''.
    """
    if len(models) == 0:
        return (
            "the association holds no science member: give a spec3 association with "
            "exptype 'science' members."
        )
    for model in models:
        exp_type = _exp_type(model)
        if exp_type in MOS_EXP_TYPES:
            name = model.meta.filename or "a science member"
            return (
                f"{name} is NIRSpec MOS ({exp_type}) data, whose master background is "
                "subtracted in calwebb_spec2 by master_background_mos_plus (from the "
                "background slitlets, or a user_background); master_background_plus does "
                "not handle MOS."
            )
    return ""
