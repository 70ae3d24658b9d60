"""QA plots of master backgrounds and their inputs, as PNG files.

matplotlib is an optional dependency (``pip install matplotlib``, or the
package's ``plot`` extra); it is imported only when a plot is made. Plots are
drawn on `matplotlib.figure.Figure` objects rendered by the Agg canvas, so no
pyplot state or global backend of the calling program is touched.

- :func:`plot_master_background`: the input spectra, rejected ones
  highlighted, the master with its error band, clipped points marked, and a
  lower panel with the coefficient of variation against wavelength;
- :func:`plot_residual_histograms`: residual / error of background slitlets
  after subtraction, with a unit Gaussian;
- :func:`plot_slit`: the image of one slit (cal, s2d);
- :func:`plot_spectra`: 1-D spectra (x1d, c1d, masterbg1d);
- :func:`plot_qa_record`: the ``*_mbkgqa.asdf`` QA record of either plus step;
- :func:`plot_spatial_factor`: a map over the MSA of the fitted spatial
  factor (``spatial_model``), the background slitlets' measured levels, and
  the per-slitlet scales (``slit_scale``);

The ``jwst-mbkg-plus plot`` command that picks the right plots for each file is
`jwst_mbkg_plus.tools.plot`.
"""

from jwst_mbkg_plus.plots.qa import plot_qa_record, plot_spatial_factor
from jwst_mbkg_plus.plots.spectra import (
    plot_master_background,
    plot_residual_histograms,
    plot_slit,
    plot_spectra,
)

__all__ = [
    "plot_master_background",
    "plot_qa_record",
    "plot_residual_histograms",
    "plot_slit",
    "plot_spatial_factor",
    "plot_spectra",
]
