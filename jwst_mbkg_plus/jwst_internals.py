"""Every jwst, stpipe, stdatamodels and gwcs internal the package uses: the compatibility layer.

Supported: jwst 1.19.x (stpipe 0.10, stdatamodels 4.0, gwcs 0.25), 1.20.x (0.11,
4.1, 0.26), 2.0.x (1.1, 5.0, 1.0) and 3.0.x (1.1, 6.0, 1.0). Every difference between
them that the package meets is handled here, and only here. Each name says which
versions it covers and which jwst source it mirrors; `_MIRRORED` (kept in
``_jwst_mirrored.py``) holds a digest of
each such source per supported version, and ``tests/test_package_layout.py`` fails,
naming the source, when a jwst release changes one or is not in the table.

Nothing else in the package may touch a private attribute of a jwst, stpipe or
stdatamodels object.
"""

import contextlib
import hashlib
import importlib
import inspect
import logging
from importlib.metadata import version

import numpy as np

# Constants of jwst/flatfield/flat_field.py that are not in its __all__ (all versions).
from jwst.flatfield.flat_field import BADFLAT, HORIZONTAL, MICRONS_100
from jwst.master_background.master_background_step import split_container
from jwst.stpipe import record_step_status as _jwst_record_step_status
from jwst.stpipe.core import JwstStep
from stdatamodels.jwst import datamodels
from stpipe.config_parser import ValidationError as ParameterValidationError

# The supported versions and the table of mirrored sources (data only).
from jwst_mbkg_plus._jwst_mirrored import _MIRRORED, SUPPORTED_JWST

__all__ = [
    "BADFLAT",
    "HORIZONTAL",
    "JWST_MINOR",
    "ParameterValidationError",
    "add_history_entry",
    "quiet_call_options",
    "jwst_loggers",
    "prepare_output",
    "MIRRORED_SOURCES",
    "STATUS_FAILED",
    "SUPPORTED_JWST",
    "background_requested",
    "can_interpolate_flat",
    "crds_parameters",
    "MICRONS_100",
    "mirrored_source_digest",
    "pixel_index",
    "quiet_below_error",
    "record_reference_file",
    "reference_files_used",
    "record_step_status",
    "split_container",
    "table_dtype",
    "validation_settings",
]

#: The installed jwst's minor version, ``"major.minor"``.
JWST_MINOR = ".".join(version("jwst").split(".")[:2])

#: ``record_step_status`` takes a ``status`` keyword, and the datamodel schemas
#: allow ``FAILED`` in ``meta.cal_step``, from jwst 3.0 (stdatamodels 6.0) on.
_HAS_FAILED_STATUS = "status" in inspect.signature(_jwst_record_step_status).parameters

#: The ``meta.cal_step`` value the plus steps record when they cannot do their work.
#: ``"FAILED"`` on jwst 3.0; ``"SKIPPED"`` on jwst 1.19 to 2.0, whose schemas
#: allow only SKIPPED and COMPLETE (a file holding FAILED would not save there).
STATUS_FAILED = "FAILED" if _HAS_FAILED_STATUS else "SKIPPED"


#: Source -> digest at the installed jwst version (empty if it is not supported).
MIRRORED_SOURCES = {
    name: digests[JWST_MINOR]
    for name, digests in _MIRRORED.items()
    if digests.get(JWST_MINOR) is not None
}


def mirrored_source_digest(name):
    """
    Digest of the current source of one entry of `MIRRORED_SOURCES`.

    Parameters
    ----------
    name : str
        ``"module:qualified.name"``.

    Returns
    -------
    str
        First 16 hex digits of the sha256 of its source text.
    """
    module_name, qualname = name.split(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def validation_settings(model):
    """
    The validation switches a datamodel was opened with, to open a copy alike.

    stdatamodels keeps them as private attributes (``DataModel.__init__`` in
    stdatamodels/model_base.py) and offers no accessor.

    Parameters
    ----------
    model : `~stdatamodels.DataModel`
        The model.

    Returns
    -------
    dict
        ``pass_invalid_values`` and ``strict_validation``, as keyword arguments.
    """
    return {
        "pass_invalid_values": model._pass_invalid_values,
        "strict_validation": model._strict_validation,
    }


def crds_parameters(step, model):
    """
    The CRDS matching parameters of ``model`` for ``step``, as stpipe queries them.

    ``Step._get_crds_parameters`` (stpipe/step.py, overridden by
    jwst/stpipe/core.py) is what ``get_reference_file`` calls once per reftype;
    calling it once serves the four flat reftypes with one query.

    Parameters
    ----------
    step : `~jwst.stpipe.JwstStep`
        The step.
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The data.

    Returns
    -------
    parameters : dict
        CRDS matching parameters.
    observatory : str
        ``"jwst"``.
    """
    return step._get_crds_parameters(model)


def record_reference_file(step, reftype, header_name):
    """
    Record a reference file as used, as ``Step.get_reference_file`` does.

    Parameters
    ----------
    step : `~stpipe.Step`
        The step (its ``_reference_files_used`` list becomes the R_<reftype>
        keywords of the output).
    reftype : str
        Reference file type.
    header_name : str
        ``"crds://<file>"`` or ``"N/A"``.
    """
    step._reference_files_used.append((reftype, header_name))


def reference_files_used(step):
    """
    The reference files a step has read, as ``Step.get_reference_file`` records them.

    Parameters
    ----------
    step : `~stpipe.Step`
        The step (its ``_reference_files_used`` list, stpipe 0.10 to 1.1).

    Returns
    -------
    list of tuple
        ``(reftype, path or "crds://<file>" or "N/A")``, in the order read.
    """
    return list(step._reference_files_used)


def background_requested(step, container):
    """
    Whether jwst's spec3 step would subtract a background from ``container``.

    Calls ``MasterBackgroundStep._do_sub``
    (jwst/master_background/master_background_step.py), which also logs and
    records the cases it skips. jwst 2.0 and 3.0: a method taking the
    container. jwst 1.19 and 1.20: a property reading ``step.input_model``,
    which is set to ``container`` for the call.

    Parameters
    ----------
    step : `~jwst.master_background.MasterBackgroundStep`
        The step.
    container : `~jwst.datamodels.ModelContainer`
        The association's models.

    Returns
    -------
    bool
        True if the background should be subtracted.
    """
    do_sub = inspect.getattr_static(type(step), "_do_sub")
    if isinstance(do_sub, property):  # jwst 1.19, 1.20
        step.input_model = container
        return step._do_sub
    return step._do_sub(container)


def can_interpolate_flat(flat_step, model):
    """
    Whether flat_field would interpolate a NIRSpec MOS flat from reference files.

    The conditions under which ``FlatFieldStep.process``
    (jwst/flatfield/flat_field_step.py) reaches ``do_correction`` with the
    reference files of an NRS_MSASPEC exposure. jwst 1.19 to 2.0 also reuse a
    stored flat when ``use_correction_pars`` is set (the attribute is gone in 3.0).

    Parameters
    ----------
    flat_step : `~jwst.flatfield.FlatFieldStep`
        The step.
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The slits.

    Returns
    -------
    bool
        True if the step's own flat would be interpolated.
    """
    return (
        not flat_step.skip
        and not flat_step.inverse
        and flat_step.user_supplied_flat is None
        and not getattr(flat_step, "use_correction_pars", False)
        and not flat_step.pre_hooks
        and not flat_step.post_hooks
        and model.meta.exposure.type == "NRS_MSASPEC"
        and model.meta.instrument.lamp_mode != "IMAGE"
    )


def quiet_below_error():
    """
    Silence WARNING and below in every logger of the process, while in the block.

    ``logging.disable`` is process-wide; jwst's ``MasterBackgroundMosStep``
    wraps its inverse pass in the same call
    (jwst/master_background/master_background_mos_step.py, line 323 in 3.0.0),
    so that the four nested steps' second run does not repeat their logs.

    jwst 1.20 to 3.0 have ``jwst.lib.basic_utils.disable_logging``, jwst 1.19
    has not (and the stock steps of 1.19 to 2.0 log their second pass). The block
    mirrors jwst 3.0's ``disable_logging`` on every version, so the plus step logs
    alike everywhere.

    Returns
    -------
    contextlib.AbstractContextManager
        A context that raises ``logging.disable`` to WARNING, if lower, while in it.
    """
    return _disable_logging(logging.WARNING)


@contextlib.contextmanager
def _disable_logging(level):  # jwst.lib.basic_utils.disable_logging of jwst 1.20 to 3.0

    current_level = logging.root.manager.disable
    if current_level < level:
        logging.disable(level)
        try:
            yield
        finally:
            logging.disable(current_level)
    else:
        yield


def pixel_index(value):
    """
    Integer pixel index of a pixel coordinate: ``floor(value + 0.5)``.

    ``gwcs.utils.to_index`` of gwcs 0.26 to 1.0 (jwst 1.20 to 3.0); gwcs 0.25
    (jwst 1.19) has only the private ``_toindex``.
    """
    return np.asarray(np.floor(np.asarray(value) + 0.5), dtype=int)


def prepare_output(step, init):
    """
    Open a step's input as a model to work on, as ``JwstStep.prepare_output``.

    ``JwstStep.prepare_output`` (jwst/stpipe/core.py) exists from jwst 1.20. On
    jwst 1.19 this mirrors what it does with its default arguments: a path is
    opened with ``datamodels.open``; a list holding models becomes a
    ``ModelContainer``; a model or container is deep-copied when the step runs
    standalone (no parent), so the caller's input is never modified.

    Parameters
    ----------
    step : `~jwst.stpipe.JwstStep`
        The step.
    init : str, path, list, datamodel or container
        Its input.

    Returns
    -------
    datamodel or container
        The model(s) to work on.
    """
    if hasattr(step, "prepare_output"):
        return step.prepare_output(init)
    from jwst.datamodels import ModelContainer

    copy_needed = False
    if isinstance(init, list) and any(isinstance(m, datamodels.JwstDataModel) for m in init):
        init = ModelContainer(init)
        copy_needed = True
    elif isinstance(init, datamodels.JwstDataModel | ModelContainer):
        copy_needed = True
    if not isinstance(init, datamodels.JwstDataModel | ModelContainer):
        return datamodels.open(init)
    if copy_needed and step.parent is None:
        return init.copy()
    return init


def quiet_call_options():
    """``Step.call`` keywords keeping the log setup: none on stpipe 0.10 (jwst 1.19)."""
    from stpipe import step as stpipe_step

    has_it = "configure_log" in inspect.getsource(stpipe_step.Step.call)
    return {"configure_log": False} if has_it else {}


def jwst_loggers():
    """
    The logger names stpipe configures for jwst steps.

    ``JwstStep.get_stpipe_loggers`` (jwst 1.20 to 3.0). stpipe 0.10 (jwst 1.19)
    configures the root logger instead, so every logger shows; its list is then
    the one jwst 1.20 gives.

    Returns
    -------
    tuple of str
        Logger names.
    """
    if hasattr(JwstStep, "get_stpipe_loggers"):
        return tuple(JwstStep.get_stpipe_loggers())
    return ("jwst", "stcal", "stdatamodels", "stpipe", "tweakwcs", "CRDS", "py.warnings")


def add_history_entry(model, description):
    """
    Add a HISTORY entry to a datamodel.

    ``DataModel.add_history_entry`` from stdatamodels 4.1 (jwst 1.20); with
    stdatamodels 4.0 (jwst 1.19), appended to ``model.history`` as
    ``stdatamodels.util.create_history_entry`` makes it.

    Parameters
    ----------
    model : `~stdatamodels.DataModel`
        Modified in place.
    description : str
        The entry.
    """
    if hasattr(type(model), "add_history_entry"):
        model.add_history_entry(description)
        return
    from stdatamodels.util import create_history_entry

    model.history.append(create_history_entry(description))


def table_dtype(model, name):
    """
    The numpy dtype of a table attribute of a datamodel, from its schema.

    ``DataModel.get_dtype`` exists from stdatamodels 4.1 (jwst 1.20); with
    stdatamodels 4.0 (jwst 1.19) the dtype is that of the empty table the
    schema's default gives.

    Parameters
    ----------
    model : `~stdatamodels.DataModel`
        A model (an empty one serves).
    name : str
        The table attribute, e.g. ``"spec_table"``.

    Returns
    -------
    numpy.dtype
    """
    if hasattr(type(model), "get_dtype"):
        return model.get_dtype(name)
    return getattr(model, name).dtype


def record_step_status(datamodel, cal_step, success=True, status=None):
    """
    Record a step's status in ``meta.cal_step``, as jwst 3.0's ``record_step_status``.

    jwst 3.0 (jwst/stpipe/utilities.py) takes ``status`` ("COMPLETE",
    "SKIPPED" or "FAILED"). jwst 1.19 to 2.0 take only ``success`` (False
    records SKIPPED), and their datamodel schemas have no FAILED: there a
    ``status`` of "FAILED" records `STATUS_FAILED` (SKIPPED), what those
    versions' own steps record when they cannot do their work.

    Parameters
    ----------
    datamodel : `~stdatamodels.jwst.datamodels.JwstDataModel` or container
        Modified in place (it is the step's output).
    cal_step : str
        The ``meta.cal_step`` attribute.
    success : bool, optional
        Without ``status``: COMPLETE if True, else `STATUS_FAILED`.
    status : {"COMPLETE", "SKIPPED", "FAILED"}, optional
        The status to record.
    """
    if status is None:
        status = "COMPLETE" if success else STATUS_FAILED
    if status not in ("COMPLETE", "SKIPPED", "FAILED"):
        raise ValueError(f"Step status {status} not in COMPLETE, SKIPPED, FAILED")
    if _HAS_FAILED_STATUS:
        _jwst_record_step_status(datamodel, cal_step, status=status)
    else:
        _jwst_record_step_status(datamodel, cal_step, success=status == "COMPLETE")
