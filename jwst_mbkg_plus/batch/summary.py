"""The summary of a batch run: ``summary.ecsv`` and ``summary.png``.

One row per exposure: file name, visit, detector, status (done, skipped,
failed), error message, run time, the master background's median level
(MJy/sr, from the ``masterbg1d`` product), the level factor a visit master
fitted (NaN for a per-exposure master), the background slitlets the vetting
rejected, and the residual QA of the background slitlets (median relative
residual, each subtracted with a master made without it, and the robust spread
of residual / error, 1 when the errors are right), all read from the MOS plus
step's QA record.
"""

import logging
from pathlib import Path

import numpy as np

from jwst_mbkg_plus.safe_io import atomic_output

__all__ = ["SUMMARY_COLUMNS", "read_summary", "summary_table", "write_summary"]

log = logging.getLogger(__name__)

#: Columns of the summary table: (name, dtype, unit, description).
SUMMARY_COLUMNS = (
    ("file", str, None, "input rate file"),
    ("visit", str, None, "visit id"),
    ("detector", str, None, "detector"),
    ("status", str, None, "done, skipped (finished by an earlier run) or failed"),
    ("error", str, None, "why it failed, naming the file"),
    ("seconds", float, "s", "run time of the exposure"),
    ("master_median", float, "MJy/sr", "median of the master background spectrum"),
    ("master_level", float, None, "level factor fitted by a visit master (NaN: per exposure)"),
    ("n_background_slitlets", int, None, "background slitlets used"),
    ("rejected_slitlets", str, None, "background slitlets rejected by the vetting"),
    ("residual_median", float, None, "median over background slitlets of the median "
     "relative residual (leave-one-out)"),
    ("pull_spread", float, None, "1.4826 MAD of residual / error over the background "
     "slitlets' kept pixels (1 when the errors are right)"),
    ("peak_rss_mb", float, "MB", "peak memory of the process that ran it, at its end"),
)


def summary_table(records):
    """
    Build the summary table of a batch.

    Parameters
    ----------
    records : list of dict
        One record per exposure (`~jwst_mbkg_plus.batch.runner.process_exposure`).

    Returns
    -------
    `~astropy.table.Table`
        One row per record, the columns of :data:`SUMMARY_COLUMNS`.
    """
    from astropy.table import Table

    table = Table()
    for name, dtype, unit, description in SUMMARY_COLUMNS:
        values = []
        for r in records:
            value = r.get(name)
            if name == "rejected_slitlets":
                value = ",".join(str(v) for v in (value or []))
            if dtype is float:
                value = float("nan") if value is None else float(value)
            elif dtype is int:
                value = int(value or 0)
            else:
                value = "" if value is None else str(value)
            values.append(value)
        col_dtype = {float: float, int: int}.get(dtype, str)
        table[name] = np.array(values, dtype=col_dtype) if values else np.array([], col_dtype)
        if unit:
            table[name].unit = unit
        table[name].description = description
    return table


def _plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(table)
    colors = {"done": "tab:green", "skipped": "tab:blue", "failed": "tab:red"}
    fig, axes = plt.subplots(3, 1, figsize=(max(6.0, 0.45 * n + 2), 8), sharex=True)
    x = np.arange(n)
    c = [colors.get(s, "grey") for s in table["status"]]
    axes[0].bar(x, np.nan_to_num(table["master_median"]), color=c)
    axes[0].set_ylabel("master median [MJy/sr]")
    axes[1].bar(x, 100 * np.nan_to_num(table["residual_median"]), color=c)
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set_ylabel("bkg slitlet residual [%]")
    axes[2].bar(x, np.nan_to_num(table["pull_spread"]), color=c)
    axes[2].axhspan(0.95, 1.05, color="0.85", zorder=0)
    axes[2].set_ylabel("pull spread")
    axes[2].set_xticks(x)
    axes[2].set_xticklabels([f.replace("_rate.fits", "") for f in table["file"]],
                            rotation=60, ha="right", fontsize=7)
    for i, s in enumerate(table["status"]):
        if s == "failed":
            axes[0].text(i, 0, "failed", rotation=90, ha="center", va="bottom", color="tab:red")
    handles = [plt.Rectangle((0, 0), 1, 1, color=v) for v in colors.values()]
    axes[0].legend(handles, list(colors), fontsize=8, loc="upper right")
    counts = ", ".join(f"{int(np.sum(table['status'] == s))} {s}" for s in colors)
    axes[0].set_title(f"batch summary: {n} exposures ({counts})")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def write_summary(records, output_dir, *, plot=True):
    """
    Write ``summary.ecsv`` (and ``summary.png``) into a folder.

    Parameters
    ----------
    records : list of dict
        One record per exposure.
    output_dir : str or pathlib.Path
        The folder.
    plot : bool, optional
        Also write the PNG (skipped with a warning if matplotlib is missing).

    Returns
    -------
    ecsv, png : pathlib.Path, pathlib.Path or None
        The files written.
    """
    output_dir = Path(output_dir)
    table = summary_table(records)
    ecsv = output_dir / "summary.ecsv"
    with atomic_output(ecsv) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    png = None
    if plot:
        try:
            _plot(table, output_dir / "summary.png")
            png = output_dir / "summary.png"
        except ImportError:
            log.warning("matplotlib is not installed: summary.png not written")
    return ecsv, png


def read_summary(path):
    """
    Read a summary table.

    Parameters
    ----------
    path : str or pathlib.Path
        ``summary.ecsv``.

    Returns
    -------
    `~astropy.table.Table`
        The table.
    """
    from astropy.table import Table

    return Table.read(path, format="ascii.ecsv")
