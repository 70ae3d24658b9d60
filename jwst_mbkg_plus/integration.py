"""Entry point of the ``stpipe.steps`` group.

No jwst import happens here, so ``strun`` and ``stpipe list`` stay fast.
"""

__all__ = ["get_steps"]


def get_steps():
    """
    Return the stpipe steps and pipelines this package provides.

    Registered with the ``stpipe.steps`` entry point. The aliases are new and
    unique: registering jwst's own aliases would make every bare use of them
    ambiguous for every user.

    Returns
    -------
    list of tuple (str, str, bool)
        Fully-qualified class name, class alias, and whether it is a Pipeline.
    """
    return [
        ("jwst_mbkg_plus.MasterBackgroundMosPlusStep", "master_background_mos_plus", True),
        ("jwst_mbkg_plus.MasterBackgroundPlusStep", "master_background_plus", False),
        ("jwst_mbkg_plus.Spec2PipelinePlus", "calwebb_spec2_plus", True),
        ("jwst_mbkg_plus.Spec3PipelinePlus", "calwebb_spec3_plus", True),
    ]
