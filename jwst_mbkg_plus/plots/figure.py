"""What every plot shares: figures on the Agg canvas, saving, colours, label order.

No pyplot state or global backend of the calling program is touched.
"""

import logging
import re
from pathlib import Path

import numpy as np

from jwst_mbkg_plus.safe_io import atomic_output

__all__ = [
    "MASTER_COLOR",
    "REJECTED_COLOR",
    "figure",
    "finite_range",
    "natural_key",
    "save",
]

log = logging.getLogger(__name__)


REJECTED_COLOR = "tab:red"


MASTER_COLOR = "black"


def figure(**kwargs):
    """Return a new Agg-rendered Figure; clear ImportError without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "QA plots need matplotlib, an optional dependency of jwst_mbkg_plus: "
            "pip install matplotlib (or pip install 'jwst_mbkg_plus[plot]')"
        ) from err
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save(fig, path):

    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    log.info("wrote %s", path)
    return path


def finite_range(values, lo=1.0, hi=99.0):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    a, b = np.percentile(values, [lo, hi])
    if not b > a:
        a, b = a - 1.0, b + 1.0
    pad = 0.08 * (b - a)
    return a - pad, b + pad


def natural_key(label):
    """Sort key ordering numbers inside labels by value: 2:BKG2 before 10:BKG10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", str(label))]
