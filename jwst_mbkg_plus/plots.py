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

import logging
from pathlib import Path

import numpy as np

from jwst_mbkg_plus.algorithms.qa_stats import coefficient_of_variation

__all__ = [
    "plot_master_background",
    "plot_qa_record",
    "plot_residual_histograms",
    "plot_slit",
    "plot_spatial_factor",
    "plot_spectra",
]

log = logging.getLogger(__name__)

_REJECTED_COLOR = "tab:red"
_MASTER_COLOR = "black"


def _figure(**kwargs):
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


def _save(fig, path):
    from jwst_mbkg_plus.safe_io import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    log.info("wrote %s", path)
    return path


def _finite_range(values, lo=1.0, hi=99.0):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    a, b = np.percentile(values, [lo, hi])
    if not b > a:
        a, b = a - 1.0, b + 1.0
    pad = 0.08 * (b - a)
    return a - pad, b + pad


def plot_master_background(wave, spectra, accepted, master, master_err, clipped_mask=None,
                           labels=None, *, path, cv=None, title=None):
    """
    Plot background spectra, the rejected ones, the master and its scatter.

    Parameters
    ----------
    wave : array_like, shape (n_wave,)
        Common wavelength grid, micron.
    spectra : array_like, shape (n_spectra, n_wave)
        Input spectra on the grid, MJy/sr.
    accepted : array_like of bool, shape (n_spectra,)
        False for spectra rejected by the vetting (drawn in red, dashed).
    master : array_like, shape (n_wave,)
        Master background.
    master_err : array_like, shape (n_wave,) or None
        Its 1-sigma uncertainty (shaded band).
    clipped_mask : array_like of bool, shape (n_spectra, n_wave), optional
        Points rejected by the per-wavelength clip (marked with crosses).
    labels : sequence of str, optional
        Spectrum names for the legend (up to 12 shown).
    path : str or `~pathlib.Path`
        PNG file to write.
    cv : array_like, shape (n_wave,), optional
        Coefficient of variation to plot; default the robust scatter of the
        accepted, unclipped points over the master
        (:func:`~jwst_mbkg_plus.algorithms.qa_stats.coefficient_of_variation`).
    title : str, optional
        Figure title.

    Returns
    -------
    `~pathlib.Path`
        The PNG written.
    """
    wave = np.asarray(wave, dtype=float)
    spectra = np.atleast_2d(np.asarray(spectra, dtype=float))
    accepted = np.asarray(accepted, dtype=bool)
    master = np.asarray(master, dtype=float)
    clipped = (np.zeros(spectra.shape, bool) if clipped_mask is None
               else np.asarray(clipped_mask, dtype=bool))
    if labels is None:
        labels = [f"spectrum {i}" for i in range(spectra.shape[0])]
    if cv is None:
        cv = coefficient_of_variation(np.where(clipped, np.nan, spectra)[accepted], master)

    fig = _figure(figsize=(10, 7.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    show_legend = spectra.shape[0] <= 12
    from matplotlib import colormaps

    # Accepted spectra in blues and greens, so red means rejected only.
    shades = colormaps["viridis"](np.linspace(0.15, 0.8, max(int(accepted.sum()), 1)))
    n_shown = 0
    for i, row in enumerate(spectra):
        if accepted[i]:
            top.plot(wave, row, lw=0.7, alpha=0.7, color=shades[n_shown],
                     label=labels[i] if show_legend else None)
            n_shown += 1
        else:
            top.plot(wave, row, lw=1.2, ls="--", color=_REJECTED_COLOR,
                     label=f"{labels[i]} (rejected)")
    if clipped.any():
        ii, jj = np.nonzero(clipped)
        top.plot(wave[jj], spectra[ii, jj], "x", ms=4, color="tab:orange",
                 label=f"clipped points ({clipped.sum()})")
    if master_err is not None:
        err = np.asarray(master_err, dtype=float)
        top.fill_between(wave, master - err, master + err, color="0.5", alpha=0.4, lw=0,
                         label="master +/- 1 sigma")
    top.plot(wave, master, color=_MASTER_COLOR, lw=1.6, label="master background")
    limits = _finite_range(np.concatenate([spectra.ravel(), master]), 0.2, 99.9)
    if limits is not None:
        top.set_ylim(*limits)
    top.set_ylabel("surface brightness [MJy/sr]")
    n_rej = int((~accepted).sum())
    top.set_title(title or f"Master background from {int(accepted.sum())} spectra "
                           f"({n_rej} rejected)")
    top.legend(fontsize=7, ncols=2, loc="best")
    bottom.plot(wave, 100 * np.asarray(cv, dtype=float), color="tab:blue", lw=0.8)
    finite_cv = np.asarray(cv, dtype=float)[np.isfinite(cv)]
    if finite_cv.size:
        bottom.axhline(100 * np.median(finite_cv), color="0.3", ls=":", lw=1,
                       label=f"median {100 * np.median(finite_cv):.2f}%")
        bottom.legend(fontsize=7, loc="upper right")
        cv_limits = _finite_range(100 * finite_cv, 0.5, 99.5)
        bottom.set_ylim(max(0.0, cv_limits[0]), cv_limits[1])
    bottom.set_ylabel("coeff. of variation [%]")
    bottom.set_xlabel("wavelength [um]")
    return _save(fig, path)


def plot_residual_histograms(residual_pulls, path, *, title=None):
    """
    Plot histograms of residual / error for background slitlets after subtraction.

    Parameters
    ----------
    residual_pulls : dict of str to array_like
        Slit label -> pulls (subtracted data / ERR); non-finite values are ignored.
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
        If no slit has a finite pull.
    """
    from jwst_mbkg_plus.algorithms.pulls import pull_statistics

    pulls = {}
    for label, values in residual_pulls.items():
        values = np.asarray(values, dtype=float).ravel()
        values = values[np.isfinite(values)]
        if values.size:
            pulls[label] = values
    if not pulls:
        raise ValueError("no finite residual to plot")
    pulls = {label: pulls[label] for label in sorted(pulls, key=_natural_key)}
    n = len(pulls)
    ncols = min(n, 4)
    nrows = -(-n // ncols)
    fig = _figure(figsize=(3.2 * ncols, 2.8 * nrows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    edges = np.linspace(-6, 6, 61)
    x = np.linspace(-6, 6, 241)
    gauss = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
    for ax, (label, values) in zip(axes, pulls.items(), strict=False):
        stats = pull_statistics(values)
        inside = np.clip(values, edges[0], edges[-1])
        ax.hist(inside, bins=edges, density=True, color="tab:blue", alpha=0.7,
                label="pulls (end bins: beyond +/-6)")
        ax.plot(x, gauss, color="black", lw=1.2, label="N(0, 1)")
        ax.set_title(f"{label}: {stats['n']} px\nspread {stats['spread']:.3f} (1.4826 MAD), "
                     f"|pull| > 5: {100 * stats['outlier_fraction']:.2f}%", fontsize=8)
        ax.set_xlabel("residual / error")
        ax.set_yscale("log")
        ax.set_ylim(1e-4, 1.0)
    for ax in axes[n:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=6, loc="upper right")
    fig.suptitle((title or "Background slitlets after subtraction")
                 + ": residual / error of the pixels not flagged DO_NOT_USE")
    return _save(fig, path)


def plot_slit(model_or_slit, path, *, title=None):
    """
    Plot the image of one slit (or any 2-D datamodel).

    Axes are 0-based detector pixels (from the slit's ``xstart``/``ystart``),
    the coordinates ``jwst-mbkg-plus flag-pixels --pixel`` takes; DO_NOT_USE
    pixels are outlined in white.

    Parameters
    ----------
    model_or_slit : `~stdatamodels.jwst.datamodels.SlitModel` or datamodel
        Anything with a 2-D (or 3-D: first plane) ``data`` array, e.g. a slit
        of a cal or s2d product.
    path : str or `~pathlib.Path`
        PNG file to write.
    title : str, optional
        Figure title; default the slit's name and source.

    Returns
    -------
    `~pathlib.Path`
        The PNG written.

    Raises
    ------
    ValueError
        If the data are not 2-D or 3-D.
    """
    data = getattr(model_or_slit, "data", None)
    if data is None:
        raise ValueError(f"a {type(model_or_slit).__name__} has no data array to plot as an image")
    data = np.asarray(data, dtype=float)
    if data.ndim == 3:
        data = data[0]
    if data.ndim != 2:
        raise ValueError(f"cannot plot data of shape {data.shape} as an image")
    if title is None:
        name = getattr(model_or_slit, "name", None)
        source = getattr(model_or_slit, "source_name", None)
        title = " ".join(str(v) for v in (f"slit {name}" if name else None, source) if v)
        title = title or Path(str(path)).stem
    ny, nx = data.shape
    fig = _figure(figsize=(10, 1.6 + min(6.0, 10 * ny / max(nx, 1) + 1.2)),
                  layout="constrained")
    ax = fig.subplots()
    limits = _finite_range(data)
    vmin, vmax = limits if limits is not None else (0, 1)
    # Axes in 0-based detector pixels (as flag-pixels --pixel takes them) for
    # slits cut from a detector image.
    x0 = int(getattr(model_or_slit, "xstart", None) or 1) - 1
    y0 = int(getattr(model_or_slit, "ystart", None) or 1) - 1
    extent = (x0 - 0.5, x0 + nx - 0.5, y0 - 0.5, y0 + ny - 0.5)
    image = ax.imshow(data, origin="lower", aspect="auto", vmin=vmin, vmax=vmax,
                      cmap="viridis", interpolation="nearest", extent=extent)
    dq = getattr(model_or_slit, "dq", None)
    if dq is not None and np.shape(dq)[-2:] == data.shape:
        bad = (np.asarray(dq).reshape(-1, ny, nx)[0] & 1) != 0
        if bad.any():
            ax.contour(bad, levels=[0.5], colors="white", linewidths=0.4, extent=extent)
    unit = getattr(getattr(model_or_slit, "meta", None), "bunit_data", None)
    fig.colorbar(image, ax=ax, label=f"data [{unit}]" if unit else "data", pad=0.01)
    ax.set_xlabel("detector x [pixel, 0-based]")
    ax.set_ylabel("detector y [pixel, 0-based]")
    ax.set_title(f"{title} ({nx} x {ny} px; {np.isfinite(data).sum()} finite)")
    return _save(fig, path)


def plot_spectra(spectra, path, *, title=None, ylabel="surface brightness [MJy/sr]"):
    """
    Plot 1-D spectra, with error bands where errors are given.

    Parameters
    ----------
    spectra : sequence of tuple
        ``(label, wavelength, value, error_or_None)`` per spectrum.
    path : str or `~pathlib.Path`
        PNG file to write.
    title : str, optional
        Figure title.
    ylabel : str, optional
        Label of the y axis.

    Returns
    -------
    `~pathlib.Path`
        The PNG written.

    Raises
    ------
    ValueError
        If no spectrum has a finite value.
    """
    fig = _figure(figsize=(10, 5), layout="constrained")
    ax = fig.subplots()
    values = []
    for label, wave, flux, err in spectra:
        wave = np.asarray(wave, dtype=float)
        flux = np.asarray(flux, dtype=float)
        (line,) = ax.plot(wave, flux, lw=0.8, label=label if len(spectra) <= 15 else None)
        if err is not None:
            err = np.asarray(err, dtype=float)
            ax.fill_between(wave, flux - err, flux + err, color=line.get_color(), alpha=0.25,
                            lw=0)
        values.append(flux.ravel())
    limits = _finite_range(np.concatenate(values) if values else [])
    if limits is None:
        raise ValueError("no finite value to plot")
    ax.set_ylim(*limits)
    ax.set_xlabel("wavelength [um]")
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{len(spectra)} spectra")
    if len(spectra) <= 15:
        ax.legend(fontsize=7, ncols=2)
    return _save(fig, path)


def _natural_key(label):
    """Sort key ordering numbers inside labels by value: 2:BKG2 before 10:BKG10."""
    import re

    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", str(label))]


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
    band 1 +/- 0.05 of right errors; and the fraction of pulls beyond 5, with
    the pixels rejected (and flagged in DQ) written above each bar. The
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
    from jwst_mbkg_plus.algorithms.pulls import OUTLIER_THRESHOLD, SPREAD_TOLERANCE

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
                    key=_natural_key)
    fig = _figure(figsize=(10, 10), layout="constrained")
    ax_score, ax_rel, ax_pull, ax_out = fig.subplots(4, 1, sharex=True)
    pos = np.arange(len(labels))

    score = np.array([scores.get(lab, np.nan) for lab in labels], dtype=float)
    colors = [_REJECTED_COLOR if lab in rejected else "tab:blue" for lab in labels]
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
    pixel, old = _residual_values(residuals, labels, "pull_spread", fallback="pull_std")
    column, old_column = _residual_values(residuals, labels, "column_pull_spread",
                                          fallback="column_pull_std")
    statistic = "plain std (old record)" if old else "1.4826 MAD"
    bars = [("pixel pulls", pixel, statistic)]
    if np.isfinite(column).any():
        bars.append(("column-sum pulls", column,
                     "plain std (old record)" if old_column else "1.4826 MAD"))
    # Markers, not bars: the reference band stays visible behind them.
    for (name, values, stat), marker in zip(bars, ("o", "s"), strict=False):
        ax_pull.plot(pos, values, marker, ms=7, ls="none", label=f"{name}, {stat}")
    ax_pull.set_ylabel("pull spread")
    pixels = definition.get("pixels", "pixels not rejected by the step")
    ax_pull.set_title(f"Residual / error over {pixels}", fontsize=9)
    finite = np.concatenate([pixel[np.isfinite(pixel)], column[np.isfinite(column)]])
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
    if summary.get("n_pixels"):
        extra.append(f"pooled pull spread {float(summary['pull_spread']):.3f}")
    heading = title or "Master background QA"
    fig.suptitle(heading + ("\n" + ", ".join(extra) if extra else ""))
    return _save(fig, path)


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
    their own scale with ``slit_scale``), in the same colour scale. A lower
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
    from jwst_mbkg_plus.algorithms.spatial import SpatialFit

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
        v.get("spatial_factor", 1.0) * (v.get("slit_scale") or {}).get("scale", 1.0)
        for v in others.values()
    ]
    values = np.concatenate([factor.ravel(), measured, applied_values])
    lo, hi = _finite_range(values, 0.5, 99.5) or (0.9, 1.1)
    fig = _figure(figsize=(8, 8.5), layout="constrained")
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
    return _save(fig, path)
