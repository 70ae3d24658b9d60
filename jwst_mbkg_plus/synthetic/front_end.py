"""jwst's calwebb_spec2 steps that come before the MOS master background."""

from jwst.assign_wcs import AssignWcsStep
from jwst.extract_2d import Extract2dStep
from jwst.msaflagopen import MSAFlagOpenStep
from jwst.srctype import SourceTypeStep

__all__ = ["extract_slits"]


def extract_slits(rate_path):
    """
    Run assign_wcs, msaflagopen, extract_2d and srctype on a MOS rate file.

    These are the calwebb_spec2 steps before ``master_background_mos``; their
    output is what the MOS master background steps take. Reference files come
    from whatever CRDS context is active (e.g.
    `~jwst_mbkg_plus.synthetic.local_crds_context`).

    Parameters
    ----------
    rate_path : str or `~pathlib.Path`
        A NIRSpec MOS ``_rate.fits`` file (its MSA metadata file beside it).

    Returns
    -------
    `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The extracted slits with their source types.
    """
    model = AssignWcsStep.call(str(rate_path))
    model = MSAFlagOpenStep.call(model)
    model = Extract2dStep.call(model)
    return SourceTypeStep.call(model)
