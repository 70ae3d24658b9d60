"""Plots of the QA record of either plus step, and of the spatial factor over the MSA."""

import logging

import numpy as np

from jwst_mbkg_plus.algorithms.pulls import OUTLIER_THRESHOLD, SPREAD_TOLERANCE
from jwst_mbkg_plus.algorithms.spatial import SpatialFit
from jwst_mbkg_plus.plots.figure import (
    REJECTED_COLOR,
    figure,
    finite_range,
    natural_key,
    save,
)

__all__ = [
    "plot_qa_record",
    "plot_spatial_factor",
]

log = logging.getLogger(__name__)


def _residual_values(residuals, labels, key, fallback=None):
    """One residual statistic per label (NaN where absent), and whether the fallback was used."""
    values = np.array([residuals.get(lab, {}).get(key, np.nan) for lab in labels], dtype=float)
    if fallback is not None and not np.isfinite(values).any():
        return _residual_values(residuals, labels, fallback)[0], True
    return values, False


def plot_qa_record(qa, path, *, title=None):
    """
    Plot a QA record of the plus steps (``*_mbkgqa.asdf``, MOS or spec3).

    Four panels, one bar per background slitlet (MOS) or background spectrum
    (spec3): the vetting score (rejected ones in red, threshold dotted); the
    median residual after subtraction (MOS: the slitlet subtracted with the
    master made without it; spec3: the spectrum against that master); the
    robust spread (1.4826 x MAD) of the pulls, residual / error, over the
    pixels the step did not reject, per pixel and per column sum, against the
    band 1 +/- 0.05 of right errors (MOS: the error model's pulls with their
    standard errors, and residual / ERR beside what it is when the model is
    right); and the fraction of pulls beyond 5, with the pixels rejected (and
    flagged in DQ) written above each bar. The
    clipped fraction, median coefficient of variation and pooled pull spread
    are in the title.

    Parameters
    ----------
    qa : dict
        The ``master_background_qa`` tree.
    path : str or `~pathlib.Path`
        PNG file to write.
    title : str, optional
        Figure title.

    Returns
    -------
    `~pathlib.Path`
        The PNG written.
    """
    vetting = dict(qa.get("vetting") or {})
    scores = dict(vetting.get("scores") or {})
    rejected = dict(vetting.get("rejected") or {})
    residuals = dict(qa.get("residuals") or {})
    definition = dict(qa.get("pulls") or {})
    inputs = list(qa.get("inputs") or [])
    if not vetting and inputs:  # a spec3 record of an older version
        scores = {e["name"]: e["score"] for e in inputs if e.get("score") is not None}
        rejected = {e["name"]: e["reason"] for e in inputs if not e.get("accepted", True)}
        vetting = {"applied": bool(scores), "scores": scores, "rejected": rejected}
    labels = sorted(qa.get("slits") or [e["name"] for e in inputs] or scores or residuals,
                    key=natural_key)
    fig = figure(figsize=(10, 10), layout="constrained")
    ax_score, ax_rel, ax_pull, ax_out = fig.subplots(4, 1, sharex=True)
    pos = np.arange(len(labels))

    score = np.array([scores.get(lab, np.nan) for lab in labels], dtype=float)
    colors = [REJECTED_COLOR if lab in rejected else "tab:blue" for lab in labels]
    ax_score.bar(pos, np.nan_to_num(score), color=colors)
    threshold = vetting.get("threshold")
    if threshold is not None:
        for sign in (1, -1):
            ax_score.axhline(sign * float(threshold), color="0.3", ls=":", lw=1)
    ax_score.set_ylabel("vetting score [sigma]")
    applied = vetting.get("applied", bool(scores))
    ax_score.set_title(
        f"Vetting ({len(rejected)} rejected, red; threshold dotted)" if applied
        else "Vetting not applied", fontsize=9,
    )

    rel, _ = _residual_values(residuals, labels, "median_relative")
    ax_rel.bar(pos, 100 * np.nan_to_num(rel), color=colors)
    ax_rel.axhline(0, color="0.3", lw=0.8)
    ax_rel.set_ylabel("median residual\n[% of bkg]")
    ax_rel.set_title("After subtraction, each against the master made without it", fontsize=9)

    low, high = definition.get("target") or (1 - SPREAD_TOLERANCE, 1 + SPREAD_TOLERANCE)
    ax_pull.axhspan(float(low), float(high), color="tab:green", alpha=0.2, lw=0,
                    label=f"right errors: {float(low):.2f}-{float(high):.2f}")
    ax_pull.axhline(1.0, color="0.3", ls=":", lw=1)
    statistic = "1.4826 MAD"
    errors = {}
    if "err_pull_spread" in next(iter(residuals.values()), {}):
        # The error model (1 when right), then residual / ERR beside its expectation.
        pixel, _ = _residual_values(residuals, labels, "pull_spread")
        column, _ = _residual_values(residuals, labels, "column_pull_spread")
        err_pixel, _ = _residual_values(residuals, labels, "err_pull_spread")
        err_column, _ = _residual_values(residuals, labels, "err_column_pull_spread")
        expected, _ = _residual_values(residuals, labels, "expected_err_pull_spread")
        expected_column, _ = _residual_values(residuals, labels, "expected_err_column_pull_spread")
        pixel_error, _ = _residual_values(residuals, labels, "pull_spread_error")
        column_error, _ = _residual_values(residuals, labels, "column_pull_spread_error")
        errors = {"pixel / error model": pixel_error, "column sum / error model": column_error}
        bars = [("pixel / error model", pixel, "o", 7),
                ("column sum / error model", column, "s", 7),
                ("pixel / ERR", err_pixel, "x", 6),
                ("column sum / ERR", err_column, "+", 7)]
        references = [("/ ERR expected (ERR raised for column sums)", expected),
                      (None, expected_column)]
    else:  # spec3 records, and MOS records of earlier versions
        pixel, old = _residual_values(residuals, labels, "pull_spread", fallback="pull_std")
        column, _ = _residual_values(residuals, labels, "column_pull_spread",
                                     fallback="column_pull_std")
        statistic = "plain std (old record)" if old else statistic
        bars = [("pixel pulls", pixel, "o", 7), ("column-sum pulls", column, "s", 7)]
        references = []
    # Markers, not bars: the reference band stays visible behind them.
    for name, values, marker, size in bars:
        if np.isfinite(values).any():
            # Error bars: the spread's own standard error (0.058 for 400 columns).
            ax_pull.errorbar(pos, values, yerr=errors.get(name), fmt=marker, ms=size,
                             capsize=2, label=f"{name}, {statistic}")
    for name, values in references:
        if np.isfinite(values).any():
            ax_pull.plot(pos, values, "_", ms=14, mew=2, color="0.3", ls="none",
                         label=name or "_nolegend_")
    ax_pull.set_ylabel("pull spread")
    pixels = definition.get("pixels", "pixels not rejected by the step")
    ax_pull.set_title(f"Residual / error over {pixels}", fontsize=9)
    finite = np.concatenate([v[np.isfinite(v)] for _, v, *_ in bars])
    top = max(1.25, 1.05 * float(finite.max())) if finite.size else 1.25
    bottom = min(0.75, 0.95 * float(finite.min())) if finite.size else 0.75
    ax_pull.set_ylim(bottom, top)
    ax_pull.legend(fontsize=7, loc="lower right", ncols=3)

    limit = float(definition.get("outlier_threshold", OUTLIER_THRESHOLD))
    fraction, _ = _residual_values(residuals, labels, "pull_outlier_fraction")
    ax_out.bar(pos, 100 * np.nan_to_num(fraction), color="tab:purple")
    n_rejected = [residuals.get(lab, {}).get("rejected_pixels") for lab in labels]
    flagged = dict((qa.get("flagged_pixels") or {}).get("slits") or {})
    for x, lab, n_rej in zip(pos, labels, n_rejected, strict=True):
        if n_rej is None:
            continue
        text = f"{n_rej} rej." + (f"\n{flagged[lab]} flagged" if lab in flagged else "")
        ax_out.annotate(text, (x, 0), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=6)
    ax_out.set_ylabel(f"|pull| > {limit:g}\n[% of pixels]")
    ax_out.set_ylim(0, max(0.1, 130 * float(np.nanmax(np.append(fraction, 0)))))
    ax_out.set_title(f"Left in the data: fraction of |pull| > {limit:g} (0 for right errors); "
                     "pixels rejected by the step (and flagged in DQ)", fontsize=9)
    ax_out.set_xticks(pos, labels, rotation=30, ha="right", fontsize=7)
    extra = []
    clipped = qa.get("clipped_fraction")
    cv = qa.get("coefficient_of_variation")
    summary = dict(qa.get("pull_summary") or {})
    if clipped is not None:
        extra.append(f"{100 * float(clipped):.2f}% points clipped")
    if cv is not None and np.isfinite(float(cv)):
        extra.append(f"median coeff. of variation {100 * float(cv):.2f}%")
    column_summary = dict(qa.get("column_pull_summary") or {})
    err_summary = dict(qa.get("err_pull_summary") or {})
    if summary.get("n_pixels"):
        extra.append(f"pooled pull spread {float(summary['pull_spread']):.3f} per pixel"
                     + (f", {float(column_summary['pull_spread']):.3f} per column"
                        if column_summary.get("n_pixels") else ""))
    if err_summary.get("n_pixels"):
        extra.append(f"residual / ERR {float(err_summary['pull_spread']):.3f} per pixel")
    heading = title or "Master background QA"
    lines = [", ".join(extra[i:i + 2]) for i in range(0, len(extra), 2)]
    fig.suptitle("\n".join([heading, *lines]))
    return save(fig, path)


def _quadrant_of_grid(xg, yg, points):
    """Quadrant of each grid point: that of the nearest slitlet (the map shows data only)."""
    px = np.array([p[0] for p in points], dtype=float)
    py = np.array([p[1] for p in points], dtype=float)
    pq = np.array([p[2] for p in points], dtype=int)
    d2 = (xg[..., None] - px) ** 2 + (yg[..., None] - py) ** 2
    return pq[np.argmin(d2, axis=-1)]


def plot_spatial_factor(qa, path, *, title=None):
    """
    Map of the fitted spatial factor of the background over the MSA.

    The colour image is the factor the master background is multiplied by
    (each grid point takes the quadrant of the nearest slitlet); circles are
    the background slitlets' measured levels (relative to the master; crosses:
    not used), squares the other slitlets with their applied factor (times
    their own sky factor with ``slit_scale``), in the same colour scale. A lower
    panel shows each background slitlet's level minus the fitted factor, in
    units of its error.

    Parameters
    ----------
    qa : dict
        The ``master_background_qa`` tree of a run with ``spatial_model``.
    path : str or `~pathlib.Path`
        PNG file to write.
    title : str, optional
        Figure title.

    Returns
    -------
    `~pathlib.Path`
        The PNG written.

    Raises
    ------
    ValueError
        If the record holds no spatial fit.
    """
    record = dict(qa.get("spatial_model") or {})
    if not record.get("model"):
        raise ValueError("the QA record holds no spatial fit (spatial_model was 'none' "
                         "or too few background slitlets)")
    fit = SpatialFit.from_record(record)
    bkg = dict(record.get("background_slits") or {})
    applied = dict(qa.get("applied_scaling") or {})
    others = {k: v for k, v in applied.items() if k not in bkg and "x" in v}
    points = [(v["x"], v["y"], v["quadrant"]) for v in list(bkg.values()) + list(others.values())]
    points = [p for p in points if np.isfinite(p[0]) and np.isfinite(p[1])]
    if not points:
        raise ValueError("the QA record holds no slitlet positions")
    xs = np.array([p[0] for p in points]) * 1e3
    ys = np.array([p[1] for p in points]) * 1e3
    pad_x = max(0.1 * np.ptp(xs), 0.5)
    pad_y = max(0.1 * np.ptp(ys), 0.5)
    xg, yg = np.meshgrid(np.linspace(xs.min() - pad_x, xs.max() + pad_x, 120),
                         np.linspace(ys.min() - pad_y, ys.max() + pad_y, 120))
    qg = _quadrant_of_grid(xg * 1e-3, yg * 1e-3, points)
    factor, _ = fit.predict(xg.ravel() * 1e-3, yg.ravel() * 1e-3, qg.ravel())
    factor = factor.reshape(xg.shape)

    measured = [v.get("ratio", np.nan) for v in bkg.values()]
    applied_values = [
        v.get("spatial_factor", 1.0) * (v.get("sky_factor") or {}).get("level", 1.0)
        for v in others.values()
    ]
    values = np.concatenate([factor.ravel(), measured, applied_values])
    lo, hi = finite_range(values, 0.5, 99.5) or (0.9, 1.1)
    fig = figure(figsize=(8, 8.5), layout="constrained")
    ax_map, ax_res = fig.subplots(2, 1, height_ratios=(3, 1))
    image = ax_map.pcolormesh(xg, yg, factor, cmap="coolwarm", vmin=lo, vmax=hi, shading="auto")
    fig.colorbar(image, ax=ax_map, label="background factor")
    for label, v in bkg.items():
        marker = "o" if v.get("accepted", True) else "X"
        ax_map.scatter(v["x"] * 1e3, v["y"] * 1e3, c=[v.get("ratio", np.nan)], cmap="coolwarm",
                       vmin=lo, vmax=hi, marker=marker, s=90, edgecolors="black")
        ax_map.annotate(label.split(":")[0], (v["x"] * 1e3, v["y"] * 1e3), fontsize=7,
                        xytext=(5, 5), textcoords="offset points")
    for label, value in zip(others, applied_values, strict=True):
        v = others[label]
        ax_map.scatter(v["x"] * 1e3, v["y"] * 1e3, c=[value], cmap="coolwarm", vmin=lo,
                       vmax=hi, marker="s", s=60, edgecolors="0.3")
        ax_map.annotate(label.split(":")[0], (v["x"] * 1e3, v["y"] * 1e3), fontsize=7,
                        xytext=(5, -9), textcoords="offset points", color="0.3")
    ax_map.set_xlabel("MSA x [mm]")
    ax_map.set_ylabel("MSA y [mm]")
    ax_map.set_title(
        f"model {record['model']}, reduced chi2 {float(record['reduced_chi2']):.2f} "
        f"(circles: background slitlets, squares: others)", fontsize=9
    )
    labels = list(bkg)
    pulls = [
        (v.get("ratio", np.nan) - v.get("factor", np.nan)) / v.get("ratio_error", np.nan)
        for v in bkg.values()
    ]
    ax_res.bar(np.arange(len(labels)), np.nan_to_num(pulls), color="tab:blue")
    ax_res.axhline(0, color="0.3", lw=0.8)
    ax_res.set_xticks(np.arange(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    ax_res.set_ylabel("(level - fit) / error")
    fig.suptitle(title or "Spatial factor of the background across the MSA")
    return save(fig, path)
