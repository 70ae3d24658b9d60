"""Options and result types of the MOS master background.

`MasterOptions` holds the step parameters the engine reads (once, never
written back); `MasterBackground` is the 1-D master with its provenance
(QA record, leave-one-out masters, spatial factor, rejected pixels).
"""


import logging
from dataclasses import dataclass, field

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

from jwst_mbkg_plus.algorithms import chromatic
from jwst_mbkg_plus.algorithms.master import MasterSpectrum, odd_kernel
from jwst_mbkg_plus.io.products import masterbg1d_model
from jwst_mbkg_plus.io.slits import DO_NOT_USE

__all__ = [
    "JWST_EQUIVALENT_SETTINGS",
    "REJECTED_DQ",
    "MasterBackground",
    "MasterBackgroundError",
    "MasterOptions",
    "SLIT_SCALE_MODES",
    "normalise_slit_scale",
]

log = logging.getLogger(__name__)

#: DQ bits set on the background-slitlet pixels rejected by ``reject_pixels``
#: (``flag_rejected``): OUTLIER, as jwst's outlier_detection sets, and
#: DO_NOT_USE, so that resample_spec and extract_1d leave them out.
REJECTED_DQ = dqflags.pixel["OUTLIER"] | DO_NOT_USE

#: Parameters with which the MOS plus step reproduces jwst's step bit for bit.
JWST_EQUIVALENT_SETTINGS = {
    "bkg_method": "extract_1d",
    "combine_method": "jwst",
    "vet_spectra": False,
    "reject_pixels": False,
    "propagate_errors": False,
    "outside_range": "nan",
    "spatial_model": "none",
    "master_smoothing": "none",
    "use_source_sky": False,
}


#: Values of ``slit_scale`` after `normalise_slit_scale`.
SLIT_SCALE_MODES = ("auto", "always", "none")

def normalise_slit_scale(value):
    """
    ``slit_scale`` as one of `SLIT_SCALE_MODES`.

    Parameters
    ----------
    value : str or bool or None
        ``'auto'``; ``True``, ``'true'``, ``'always'``; ``False``, ``None``,
        ``'false'``, ``'none'``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        For anything else.
    """
    if value is True:
        return "always"
    if value is False or value is None:
        return "none"
    text = str(value).strip().lower()
    mapping = {"auto": "auto", "true": "always", "always": "always", "yes": "always",
               "false": "none", "none": "none", "no": "none", "off": "none"}
    if text not in mapping:
        raise ValueError(f"slit_scale must be 'auto', True/'always' or False/'none', "
                         f"not {value!r}")
    return mapping[text]


class MasterBackgroundError(RuntimeError):
    """No usable master background could be made from the inputs."""


@dataclass(frozen=True)
class MasterOptions:
    """The step parameters the engine uses, read once (never written back)."""

    bkg_slits: tuple = ()
    exclude_slits: tuple = ()
    bkg_method: str = "full_slitlet"
    combine_method: str = "clipped_mean"
    sigma_clip: float | None = 3.0
    min_spectra: int = 2
    median_kernel: int = 1
    master_smoothing: str = "adaptive"
    vet_spectra: bool = True
    vet_threshold: float = 5.0
    reject_pixels: bool = True
    pixel_sigma: float = 5.0
    pixel_maxiters: int = 3
    flag_rejected: bool = True
    propagate_errors: bool = True
    error_extraction_height: int | None = None
    outside_range: str = "flag"
    spatial_model: str = "auto"
    slit_scale: str = "auto"
    slit_scale_guard: float = 1.0
    use_source_sky: bool = True

    @classmethod
    def from_step(cls, step):
        """
        Read the options from a step's parameters.

        Parameters
        ----------
        step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
            The step.

        Returns
        -------
        MasterOptions
            The options.
        """
        kernel = odd_kernel(step.median_kernel)
        spatial_model = step.spatial_model
        if step.combine_method == "jwst" and spatial_model == "auto":
            # jwst's master has no spatial factor; 'auto' is the default, not a request.
            spatial_model = "none"
        slit_scale = normalise_slit_scale(step.slit_scale)
        if step.combine_method == "jwst" and slit_scale == "auto":
            slit_scale = "none"
        return cls(
            bkg_slits=tuple(step.bkg_slits or ()),
            exclude_slits=tuple(step.exclude_slits or ()),
            bkg_method=step.bkg_method,
            combine_method=step.combine_method,
            sigma_clip=step.sigma_clip,
            min_spectra=step.min_spectra,
            median_kernel=kernel,
            master_smoothing=getattr(step, "master_smoothing", "adaptive"),
            vet_spectra=step.vet_spectra,
            vet_threshold=step.vet_threshold,
            reject_pixels=step.reject_pixels,
            pixel_sigma=step.pixel_sigma,
            pixel_maxiters=step.pixel_maxiters,
            flag_rejected=step.flag_rejected,
            propagate_errors=step.propagate_errors,
            error_extraction_height=step.error_extraction_height,
            outside_range=step.outside_range,
            spatial_model=spatial_model,
            slit_scale=slit_scale,
            slit_scale_guard=step.slit_scale_guard,
            use_source_sky=bool(getattr(step, "use_source_sky", True))
            and step.combine_method != "jwst",
        )


@dataclass
class MasterBackground(MasterSpectrum):
    """
    A 1-D master background with its provenance.

    Attributes
    ----------
    wavelength : ndarray
        Micron, strictly increasing.
    surf_bright : ndarray
        MJy/sr.
    var : ndarray
        Variance of ``surf_bright``, (MJy/sr)**2; zeros if unknown.
    n_used : ndarray
        Background spectra contributing at each wavelength.
    bkg_x1d : `~stdatamodels.jwst.datamodels.MultiSpecModel` or None
        The extracted background spectra (``bkg_method='extract_1d'``).
    qa : dict
        QA record: selection, vetting, clipping and residual statistics.
    input_range : tuple of float or None
        Wavelength range (micron) the inputs cover; pixels inside it always get
        a background, the master's end values where it stops a fraction of a
        sample short. None: the master's own range.
    leave_one_out : dict
        For each background slit (index into the model's slits) that went into
        the master, the master made without it: subtracted from that slit, so
        its residuals are an independent check of the background.
    spatial : `~jwst_mbkg_plus.algorithms.spatial.SpatialFit` or None
        The spatial factor across the MSA the master is multiplied by
        (``spatial_model``); None: the same background everywhere.
    spatial_chromatic : `~jwst_mbkg_plus.algorithms.chromatic.ChromaticSpatialFit` or None
        The wavelength dependence of that factor, where the background
        slitlets' levels show one; None: the factor is grey.
    rejected_masks : dict
        For each background slit (index into the model's slits) with pixels
        rejected by ``reject_pixels``, the boolean mask of those pixels (the
        final round's, that the master was made without).
    flag_masks : dict
        The subset of ``rejected_masks`` to flag in the output DQ
        (``flag_rejected``): the slitlets that went into the master.
    interpolation : str
        How the master is expanded to pixels: ``"linear"``, or ``"cubic"``
        where its grid follows a varying dispersion (the prism).
    self_subtracted : dict
        For each background slit (index into the model's slits) with pixels
        beyond its leave-one-out master's range, the boolean mask of those
        pixels: they got the full master (this slit included), so the QA
        leaves them out of the pulls.
    spectra : tuple of ndarray or None
        The grid and the accepted background spectra and their variances as
        they were combined (divided by their spatial factors), for a second
        pass that adds the source slitlets' sky (``use_source_sky``); None
        when the master was not combined from spectra here.
    """

    bkg_x1d: object = None
    input_range: tuple | None = None
    leave_one_out: dict = field(default_factory=dict)
    spatial: object = None
    spatial_chromatic: object = None
    rejected_masks: dict = field(default_factory=dict)
    flag_masks: dict = field(default_factory=dict)
    interpolation: str = "linear"
    self_subtracted: dict = field(default_factory=dict)
    spectra: tuple | None = None

    def spatial_factors(self, positions, wavelength):
        """
        The spatial factor and its error at some MSA positions and wavelengths.

        `~jwst_mbkg_plus.algorithms.chromatic.factors_at` of this master's
        ``spatial`` and ``spatial_chromatic`` fits: 1 and 0 without a fit.
        """
        return chromatic.factors_at(self.spatial, self.spatial_chromatic, positions, wavelength)

    @property
    def covered_range(self):
        """Wavelength range (micron) in which every pixel gets a background."""
        if self.input_range is not None:
            return self.input_range
        return float(self.wavelength[0]), float(self.wavelength[-1])

    def to_model(self, template=None):
        """
        Return the ``masterbg1d`` product.

        Parameters
        ----------
        template : `~stdatamodels.jwst.datamodels.JwstDataModel`, optional
            Model whose primary metadata the product copies.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.MultiCombinedSpecModel`
            The product.
        """
        return masterbg1d_model(
            self.wavelength,
            self.surf_bright,
            np.sqrt(self.var),
            self.n_used,
            template=template,
        )



