"""The ``jwst-mbkg-plus plot`` command: the right QA plots for each product.

cal/s2d slits (image, and the residual pulls of the background slits when
their background was subtracted), x1d/c1d/masterbg1d spectra, and the
``*_mbkgqa.asdf`` QA records; the plots themselves are `jwst_mbkg_plus.plots`.
"""

import logging
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.io.products import read_qa
from jwst_mbkg_plus.io.slits import DO_NOT_USE, select_background_slits, slit_label
from jwst_mbkg_plus.io.spectra import spectrum_name, table_columns
from jwst_mbkg_plus.plots import (
    plot_qa_record,
    plot_residual_histograms,
    plot_slit,
    plot_spatial_factor,
    plot_spectra,
)
from jwst_mbkg_plus.tools import ToolInputError, tool_reading

__all__ = ["background_pulls", "plot_files"]

log = logging.getLogger(__name__)


def background_pulls(model, *, slits=None):
    """
    Residual / error of the background slits of a subtracted MultiSlitModel.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        A cal product after master background subtraction.
    slits : list of str, optional
        Slits to use (slitlet id, name, source id or source name); default
        those the MSA file designates background.

    Returns
    -------
    dict of str to ndarray
        Slit label -> pulls of its valid pixels.
    """
    chosen = select_background_slits(model.slits, include=slits or None)
    out = {}
    for index in chosen.indices:
        slit = model.slits[index]
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = np.asarray(slit.data, dtype=float) / np.asarray(slit.err, dtype=float)
        good = np.isfinite(pull) & ((np.asarray(slit.dq) & DO_NOT_USE) == 0)
        out[slit_label(slit)] = pull[good]
    return out


def _slit_matches(slit, wanted):
    if not wanted:
        return True
    keys = {str(getattr(slit, attr, None))
            for attr in ("name", "source_name", "source_id", "slitlet_id")}
    return bool(keys & set(wanted))


def _x1d_spectra(model):
    out = []
    for i, spec in enumerate(model.spec):
        columns = table_columns(spec.spec_table, ("WAVELENGTH", "SURF_BRIGHT"),
                                optional=("SB_ERROR",))
        err = columns["SB_ERROR"]
        label = spectrum_name(spec, i)
        if label == str(i):
            # No name, slitlet or source: say what the spectrum is, not its index.
            combined = isinstance(model, datamodels.MultiCombinedSpecModel)
            label = ("master background" if combined and len(model.spec) == 1
                     else f"spectrum {i + 1}")
        wave, flux = columns["WAVELENGTH"], columns["SURF_BRIGHT"]
        if wave.ndim > 1:
            wave, flux = wave[0], flux[0]
            err = None if err is None else err[0]
        out.append((label, wave, flux, err))
    return out


def _plot_datamodel(path, outdir, slits, progress):
    written = []
    stem = path.name.removesuffix(".fits")
    with datamodels.open(path) as model:
        if isinstance(model, datamodels.MultiSlitModel):
            chosen = [s for s in model.slits if _slit_matches(s, slits)]
            if not chosen:
                raise ValueError(f"no slit matches --slits {' '.join(slits)}")
            for k, slit in enumerate(chosen, start=1):
                if progress is not None:
                    progress(f"  slit {slit.name} ({k}/{len(chosen)})")
                written.append(plot_slit(slit, outdir / f"{stem}_slit{slit.name}.png"))
            if model.meta.cal_step.master_background == "COMPLETE":
                try:
                    pulls = background_pulls(model, slits=None)
                    written.append(plot_residual_histograms(
                        pulls, outdir / f"{stem}_residuals.png",
                        title=f"{path.name}: background slitlets after subtraction"))
                except ValueError as err:
                    log.warning("%s: no residual histograms (%s)", path, err)
        elif hasattr(model, "spec"):
            spectra = _x1d_spectra(model)
            # A master background (masterbg1d, c1d) belongs to no slit: --slits keeps it.
            if slits and not isinstance(model, datamodels.MultiCombinedSpecModel):
                spectra = [s for s, spec in zip(spectra, model.spec, strict=True)
                           if _slit_matches(spec, slits)]
                if not spectra:
                    raise ValueError(f"no spectrum matches --slits {' '.join(slits)}")
            written.append(plot_spectra(spectra, outdir / f"{stem}_spectra.png",
                                        title=path.name))
        elif np.ndim(getattr(model, "data", None)) in (2, 3):
            written.append(plot_slit(model, outdir / f"{stem}.png", title=path.name))
        else:
            raise ValueError(f"no plot for a {type(model).__name__}")
    return written


def plot_files(paths, outdir, *, slits=None, progress=None):
    """
    Write the QA plots of each file: the ``jwst-mbkg-plus plot`` command.

    - cal/s2d (``MultiSlitModel``): one image per slit; for products after
      master background subtraction, residual histograms of the background slits;
    - x1d/c1d/masterbg1d: the spectra, with error bands;
    - ``*_mbkgqa.asdf`` of either plus step (and the JSON record older
      versions of the spec3 step wrote): :func:`plot_qa_record`;
    - any other 2-D image product: its image.

    Parameters
    ----------
    paths : sequence of str or `~pathlib.Path`
        Input files (not modified).
    outdir : str or `~pathlib.Path`
        Folder for the PNG files (created); existing PNGs of the same name are
        replaced.
    slits : list of str, optional
        Only these slits/spectra (slitlet id, name, source id or source name).
    progress : callable, optional
        Called with a message per file and per slit.

    Returns
    -------
    list of `~pathlib.Path`
        The PNG files written.

    Raises
    ------
    jwst_mbkg_plus.tools.ToolInputError
        If a file is missing or cannot be plotted.
    """
    outdir = Path(outdir).expanduser()
    paths = [Path(p).expanduser() for p in paths]
    for path in paths:
        if not path.exists():
            raise ToolInputError(path, "no such file")
        with tool_reading(path, "product to plot"):
            pass  # a folder or an unreadable file is named here, before any plot
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for k, path in enumerate(paths, start=1):
        if progress is not None:
            progress(f"[{k}/{len(paths)}] {path.name}")
        try:
            if path.suffix in (".asdf", ".json"):
                qa = read_qa(path)
                written.append(plot_qa_record(qa, outdir / f"{path.stem}.png", title=path.name))
                if (qa.get("spatial_model") or {}).get("model"):
                    written.append(plot_spatial_factor(
                        qa, outdir / f"{path.stem}_spatial.png", title=path.name))
            else:
                written.extend(_plot_datamodel(path, outdir, slits, progress))
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise ToolInputError(path, f"cannot be plotted ({err})") from None
    return written
