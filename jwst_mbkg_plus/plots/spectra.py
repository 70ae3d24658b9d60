"""Plots of spectra and slits: the master with its inputs, residual histograms, slit images."""

import logging
from pathlib import Path

import numpy as np

from jwst_mbkg_plus.algorithms.pulls import pull_statistics
from jwst_mbkg_plus.algorithms.qa_stats import coefficient_of_variation
from jwst_mbkg_plus.plots.figure import (
    MASTER_COLOR,
    REJECTED_COLOR,
    figure,
    finite_range,
    natural_key,
    save,
)

__all__ = [
    "plot_master_background",
    "plot_residual_histograms",
    "plot_slit",
    "plot_spectra",
]

log = logging.getLogger(__name__)


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

    fig = figure(figsize=(10, 7.5), layout="constrained")
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
            top.plot(wave, row, lw=1.2, ls="--", color=REJECTED_COLOR,
                     label=f"{labels[i]} (rejected)")
    if clipped.any():
        ii, jj = np.nonzero(clipped)
        top.plot(wave[jj], spectra[ii, jj], "x", ms=4, color="tab:orange",
                 label=f"clipped points ({clipped.sum()})")
    if master_err is not None:
        err = np.asarray(master_err, dtype=float)
        top.fill_between(wave, master - err, master + err, color="0.5", alpha=0.4, lw=0,
                         label="master +/- 1 sigma")
    top.plot(wave, master, color=MASTER_COLOR, lw=1.6, label="master background")
    limits = finite_range(np.concatenate([spectra.ravel(), master]), 0.2, 99.9)
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
        cv_limits = finite_range(100 * finite_cv, 0.5, 99.5)
        bottom.set_ylim(max(0.0, cv_limits[0]), cv_limits[1])
    bottom.set_ylabel("coeff. of variation [%]")
    bottom.set_xlabel("wavelength [um]")
    return save(fig, path)


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
    pulls = {}
    for label, values in residual_pulls.items():
        values = np.asarray(values, dtype=float).ravel()
        values = values[np.isfinite(values)]
        if values.size:
            pulls[label] = values
    if not pulls:
        raise ValueError("no finite residual to plot")
    pulls = {label: pulls[label] for label in sorted(pulls, key=natural_key)}
    n = len(pulls)
    ncols = min(n, 4)
    nrows = -(-n // ncols)
    fig = figure(figsize=(3.2 * ncols, 2.8 * nrows + 0.5), layout="constrained")
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
    return save(fig, path)


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
    fig = figure(figsize=(10, 1.6 + min(6.0, 10 * ny / max(nx, 1) + 1.2)),
                  layout="constrained")
    ax = fig.subplots()
    limits = finite_range(data)
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
    return save(fig, path)


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
    fig = figure(figsize=(10, 5), layout="constrained")
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
    limits = finite_range(np.concatenate(values) if values else [])
    if limits is None:
        raise ValueError("no finite value to plot")
    ax.set_ylim(*limits)
    ax.set_xlabel("wavelength [um]")
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{len(spectra)} spectra")
    if len(spectra) <= 15:
        ax.legend(fontsize=7, ncols=2)
    return save(fig, path)


