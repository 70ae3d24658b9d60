"""The jwst, stpipe and stdatamodels sources the compatibility layer mirrors, with their digests.

Data of `jwst_mbkg_plus.jwst_internals`, kept apart so that the layer's code stays
short; ``tests/test_package_layout.py`` checks each digest against the installed jwst.
"""

#: The jwst minor versions the package supports and CI tests (``.ci/run``).
SUPPORTED_JWST = ("1.19", "1.20", "2.0", "3.0")

#: Source -> digest (sha256 of ``inspect.getsource``, 16 hex digits), per supported
#: jwst minor version (with the stpipe and stdatamodels it pins): the code the plus
#: steps copy or lean on. ``None``: not a function in that version (see its shim).
_MIRRORED = {
    # can_interpolate_flat, flat_handover.flat_field_keeping_flat and
    # flat_handover.FlatFieldReuseStep re-code its guards and call
    # flat_field.do_correction with a user-supplied flat, as it does
    # (jwst <= 2.0 adds the use_correction_pars guard).
    "jwst.flatfield.flat_field_step:FlatFieldStep.process": {
        "1.19": "4e78c1e3e9c2e2a3", "1.20": "94ffc1748fdd905a",
        "2.0": "be3c7ebd5ce4431a", "3.0": "8c3320310f90b773",
    },
    # The plus steps apply flats through it and use the model it returns (a copy in
    # jwst 1.19 and 1.20, the input itself from 2.0).
    "jwst.flatfield.flat_field:do_correction": {
        "1.19": "acebbb57fe15df60", "1.20": "acebbb57fe15df60",
        "2.0": "832109ce03374266", "3.0": "832109ce03374266",
    },
    # interpolate_slit_flat reproduces it without validating the SlitModel.
    "jwst.flatfield.flat_field:flat_for_nirspec_slit": {
        "1.19": "97a0cb94eff1db14", "1.20": "97a0cb94eff1db14",
        "2.0": "9069258b9da6851f", "3.0": "9069258b9da6851f",
    },
    # dispersion_axis reads the dispersion direction as it does.
    "jwst.flatfield.flat_field:do_nirspec_flat_field": {
        "1.19": "80f7ad8c4af3cbe4", "1.20": "80f7ad8c4af3cbe4",
        "2.0": "dffa7b5b590ca3d6", "3.0": "dffa7b5b590ca3d6",
    },
    # uncalibrate_like_jwst repeats its inverse pass (photom, barshadow,
    # pathloss, flat_field with inverse=True; jwst <= 2.0 sets
    # use_correction_pars on them, which reuses the same factors).
    "jwst.master_background.master_background_mos_step:"
    "MasterBackgroundMosStep._calc_master_background": {
        "1.19": "353613d572e4b34b", "1.20": "91dffe76e33735ce",
        "2.0": "11dfbbebc1ad644c", "3.0": "dff4e3a3ef225405",
    },
    # The spec3 plus step calls both as jwst's MasterBackgroundStep.process does.
    "jwst.master_background.master_background_step:split_container": {
        "1.19": "403f4e09b5815b28", "1.20": "403f4e09b5815b28",
        "2.0": "403f4e09b5815b28", "3.0": "996f294eed8d4deb",
    },
    # A method from jwst 2.0; a property reading step.input_model before (see
    # background_requested).
    "jwst.master_background.master_background_step:MasterBackgroundStep._do_sub": {
        "1.19": None, "1.20": None, "2.0": "bf86961e57edf3e6", "3.0": "bf86961e57edf3e6",
    },
    # crds_parameters / record_reference_file: one CRDS query for the four flats;
    # plus_step.PlusMixin overrides _get_crds_parameters to read behind the guard.
    "jwst.stpipe.core:JwstStep._get_crds_parameters": dict.fromkeys(SUPPORTED_JWST,
                                                                   "ec5b56e88ec91ce7"),
    "stpipe.step:Step._get_crds_parameters": dict.fromkeys(SUPPORTED_JWST, "60ae5a80437fa5c2"),
    # validation_settings reads the private attributes __init__ stores.
    "stdatamodels.model_base:DataModel.__init__": {
        "1.19": "e02558119b2629f7", "1.20": "1f5cc93ea3429f95",
        "2.0": "c030941efa29e3c3", "3.0": "2edd6993ddd7c843",
    },
    # record_step_status: the status keyword and FAILED from 3.0 on.
    "jwst.stpipe.utilities:record_step_status": {
        "1.19": "e178da216a2d7a00", "1.20": "4026ef9041cc0df9",
        "2.0": "05357fbde2e7da12", "3.0": "fd6da4e2aafd3e19",
    },
}
