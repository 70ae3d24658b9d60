"""The plus step's QA pulls over many runs, read from their saved QA records.

``validate_mos.py`` keeps each run's products in its work folder (the plus step's
``<folder>/plus/*_mbkgqa.asdf``). This prints, for each glob pattern of QA files,
the mean and range of the error-model pull spreads (``pull_summary`` and
``column_pull_summary``: 1.4826 x MAD of residual over the error model, per pixel
and per column) and how many runs are within 1 +/- ``--tolerance``.

Usage::

    python validation/qa_pulls.py \
        "/tmp/mbkg_validation/PRISM_NRS1_prism_sky_clean_0.2*/plus/*_mbkgqa.asdf"
"""

import argparse
import glob

import numpy as np


def qa_pulls(paths):
    """
    Per-pixel and per-column QA pull spreads of some QA records.

    Parameters
    ----------
    paths : list of str
        ``*_mbkgqa.asdf`` files.

    Returns
    -------
    pixel, column : ndarray
        One value per file.
    """
    from jwst_mbkg_plus.io.products import read_qa

    pixel, column = [], []
    for path in paths:
        qa = read_qa(path)
        pixel.append(qa["pull_summary"]["pull_spread"])
        column.append(qa["column_pull_summary"]["pull_spread"])
    return np.array(pixel, dtype=float), np.array(column, dtype=float)


def main(argv=None):
    """Print the QA pulls of each pattern's files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="+", help="glob patterns of *_mbkgqa.asdf files")
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args(argv)
    for pattern in args.patterns:
        paths = sorted(glob.glob(pattern))
        if not paths:
            print(f"{pattern}: no file")
            continue
        pixel, column = qa_pulls(paths)
        tolerance = args.tolerance
        within = np.sum((np.abs(pixel - 1) <= tolerance) & (np.abs(column - 1) <= tolerance))
        print(
            f"{pattern}: {len(paths)} runs; per pixel mean {pixel.mean():.3f} "
            f"({pixel.min():.3f}-{pixel.max():.3f}), per column mean {column.mean():.3f} "
            f"({column.min():.3f}-{column.max():.3f}); both within 1 +/- {args.tolerance:g}: "
            f"{within} of {len(paths)}"
        )


if __name__ == "__main__":
    main()
