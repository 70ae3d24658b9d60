"""Every jwst, stpipe and stdatamodels internal the plus steps rely on, in one place.

jwst_mbkg_plus is pinned to jwst 3.0.x (stpipe 1.1, stdatamodels 6.0). The
names here are either not public (a leading underscore, or missing from their
module's ``__all__``) or stand for a piece of jwst logic that the plus steps
copy instead of calling. Each says which jwst 3.0 source it mirrors, and
`MIRRORED_SOURCES` records a digest of that source: ``tests/test_jwst_internals.py``
fails, naming the source, when a jwst upgrade changes one, so that a new check
in jwst is never skipped without anyone noticing.

Nothing else in the package may touch a private attribute of a jwst, stpipe or
stdatamodels object.
"""

import hashlib
import importlib
import inspect
import logging

# Constants of jwst/flatfield/flat_field.py that are not in its __all__.
from jwst.flatfield.flat_field import BADFLAT, HORIZONTAL, MICRONS_100
from jwst.lib.basic_utils import disable_logging
from jwst.master_background.master_background_step import split_container

__all__ = [
    "BADFLAT",
    "HORIZONTAL",
    "MICRONS_100",
    "MIRRORED_SOURCES",
    "background_requested",
    "can_interpolate_flat",
    "crds_parameters",
    "mirrored_source_digest",
    "quiet_below_error",
    "record_reference_file",
    "split_container",
    "validation_settings",
]

#: Source -> digest (sha256 of ``inspect.getsource``, 16 hex digits) at jwst 3.0.0,
#: stpipe 1.1.0, stdatamodels 6.0: the code the plus steps copy or lean on.
MIRRORED_SOURCES = {
    # can_interpolate_flat, flat_handover.flat_field_keeping_flat and
    # flat_handover.FlatFieldReuseStep re-code its guards and call
    # flat_field.do_correction with a user-supplied flat, as it does.
    "jwst.flatfield.flat_field_step:FlatFieldStep.process": "8c3320310f90b773",
    # interpolate_slit_flat reproduces it without validating the SlitModel.
    "jwst.flatfield.flat_field:flat_for_nirspec_slit": "9069258b9da6851f",
    # dispersion_axis reads the dispersion direction as it does.
    "jwst.flatfield.flat_field:do_nirspec_flat_field": "dffa7b5b590ca3d6",
    # uncalibrate_like_jwst repeats its inverse pass (photom, barshadow,
    # pathloss, flat_field with inverse=True, under disable_logging).
    "jwst.master_background.master_background_mos_step:"
    "MasterBackgroundMosStep._calc_master_background": "dff4e3a3ef225405",
    # The spec3 plus step calls both as jwst's MasterBackgroundStep.process does.
    "jwst.master_background.master_background_step:split_container": "996f294eed8d4deb",
    "jwst.master_background.master_background_step:MasterBackgroundStep._do_sub":
        "bf86961e57edf3e6",
    # crds_parameters / record_reference_file: one CRDS query for the four flats;
    # plus_step.PlusMixin overrides _get_crds_parameters to read behind the guard.
    "jwst.stpipe.core:JwstStep._get_crds_parameters": "ec5b56e88ec91ce7",
    "stpipe.step:Step._get_crds_parameters": "60ae5a80437fa5c2",
    # validation_settings reads the private attributes __init__ stores.
    "stdatamodels.model_base:DataModel.__init__": "2edd6993ddd7c843",
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


def background_requested(step, container):
    """
    Whether jwst's spec3 step would subtract a background from ``container``.

    Calls ``MasterBackgroundStep._do_sub``
    (jwst/master_background/master_background_step.py), which also logs and
    records the cases it skips.

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
    return step._do_sub(container)


def can_interpolate_flat(flat_step, model):
    """
    Whether flat_field would interpolate a NIRSpec MOS flat from reference files.

    The conditions under which ``FlatFieldStep.process``
    (jwst/flatfield/flat_field_step.py) reaches ``do_correction`` with the
    reference files of an NRS_MSASPEC exposure.

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

    Returns
    -------
    contextlib.AbstractContextManager
        jwst's ``disable_logging(level=logging.WARNING)``.
    """
    return disable_logging(level=logging.WARNING)
