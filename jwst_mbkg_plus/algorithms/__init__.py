"""Datamodel-free algorithms for master background subtraction: arrays in, arrays out.

Nothing in this subpackage imports ``stdatamodels`` or ``jwst``; the steps in
`jwst_mbkg_plus.mos` and `jwst_mbkg_plus.spec3` unpack datamodels and call
these functions.

Modules
-------
master
    The master-background core the MOS step, the spec3 step and the ``master``
    command share: vet whole spectra, combine per wavelength, fill, smooth.
qa_stats
    The one definition of each QA statistic (coefficient of variation, ...).
grid
    Common wavelength grid and resampling with variance propagation.
combine
    Robust per-wavelength combination of spectra (clipped mean, median, ...).
smoothing
    NaN-aware running median with explicit end policy and variance.
adaptive_smoothing, noise_correlation
    A master smoothed by evidence (local polynomials, Lepski's rule, directional
    windows); the noise neighbouring samples share, which scales its variances.
selection
    Vetting of whole background spectra against the consensus.
excess
    An additive excess told from a smooth level; verdicts on two spectra.
profiles
    Row profiles of background slitlets: undeclared sources along the slit.
source_evidence
    Whether a slitlet named as background holds a source.
outliers
    2-D pixel outliers against a model; 1-D per-bin clipping.
binning
    "Full slitlet" background from all pixels binned in wavelength.
expand
    1-D master to 2-D by pixel wavelength; subtraction with variance.
errors
    Variance propagation rules and the correlated master-background error.
column_variance
    Variance of a column sum of the expanded master, from its samples' covariance.
pulls
    Robust spread and outlier fraction of residual / error, for QA records.
levels, spatial, chromatic
    Background level across the MSA: per-slitlet levels, the spatial models,
    their wavelength dependence.
sky_factor
    A target's smooth multiplicative sky factor in wavelength (per slitlet or
    per exposure), its complexity chosen by evidence.
fit_weights
    Fit weights from the variance near each wavelength, not each pixel's own
    (VAR_POISSON follows the pixel's own count and biases a weighted fit low).
stats, interp
    NaN-aware order statistics and checked interpolation shared by the above.
"""

from jwst_mbkg_plus.algorithms.binning import BinnedSpectrum, bin_pixels
from jwst_mbkg_plus.algorithms.combine import CombinedSpectrum, combine_spectra
from jwst_mbkg_plus.algorithms.expand import expand_to_2d, subtract_background
from jwst_mbkg_plus.algorithms.grid import (
    common_wavelength_grid,
    grid_edges,
    resample_spectra,
    resample_spectrum,
)
from jwst_mbkg_plus.algorithms.outliers import find_pixel_outliers, flag_binned_outliers
from jwst_mbkg_plus.algorithms.selection import VettingResult, vet_spectra
from jwst_mbkg_plus.algorithms.smoothing import median_filter_nan

__all__ = [
    "BinnedSpectrum",
    "CombinedSpectrum",
    "VettingResult",
    "bin_pixels",
    "combine_spectra",
    "common_wavelength_grid",
    "expand_to_2d",
    "find_pixel_outliers",
    "flag_binned_outliers",
    "grid_edges",
    "median_filter_nan",
    "resample_spectra",
    "resample_spectrum",
    "subtract_background",
    "vet_spectra",
]
