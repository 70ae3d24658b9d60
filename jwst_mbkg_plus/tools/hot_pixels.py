"""Flag hot pixels in the DQ array of a copy of a rate file.

The STScI notebook finds unflagged hot pixels by eye and overwrites DQ in the
rate file in place. :func:`flag_pixels` writes a new file instead, flagging
pixels given by position and/or found by :func:`find_hot_pixels`.

Automatic detection compares each pixel with a running median along the
dispersion direction (detector x for NIRSpec): spectra change slowly along x
but sharply across the slits (y), so a window along x follows the spectral
traces and their edges, where a square window would flag the slit edges. A
pixel is hot when it exceeds that median by ``sigma`` times the local noise
(the running median of ERR along x, so a hot pixel's own large ERR does not
hide it, floored at the image's robust residual scale) and by ``min_contrast``
times the median itself. The window (7 pixels) is longer than twice the
longest injected cluster along x (3 pixels), so clusters are found too.
"""

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from jwst_mbkg_plus.io.slits import DO_NOT_USE
from jwst_mbkg_plus.jwst_internals import add_history_entry
from jwst_mbkg_plus.safe_io import atomic_save_model
from jwst_mbkg_plus.tools import ToolInputError, check_output_path, tool_reading

__all__ = ["FlagResult", "find_hot_pixels", "flag_pixels", "parse_pixel", "resolve_dq_flags"]

log = logging.getLogger(__name__)

_MAD_TO_SIGMA = 1.482602218505602


@dataclass(frozen=True)
class FlagResult:
    """
    Result of `flag_pixels`.

    Attributes
    ----------
    output : `~pathlib.Path`
        The file written.
    positions : list of tuple of int
        0-based ``(x, y)`` of every pixel flagged (given and found).
    n_given : int
        Pixels given by position.
    n_found : int
        Pixels found by the automatic detection.
    n_new : int
        Pixels that did not already have every requested flag.
    flag_value : int
        The DQ bits set.
    """

    output: Path
    positions: list = field(default_factory=list)
    n_given: int = 0
    n_found: int = 0
    n_new: int = 0
    flag_value: int = 0


def parse_pixel(text):
    """
    Parse a pixel position ``"X,Y"`` (0-based detector x and y).

    Parameters
    ----------
    text : str
        The position, e.g. ``"1023,517"``.

    Returns
    -------
    tuple of int
        ``(x, y)``.

    Raises
    ------
    ValueError
        If the text is not two comma-separated non-negative integers.
    """
    parts = str(text).replace(" ", "").split(",")
    if len(parts) != 2:
        raise ValueError(f"pixel {text!r} is not X,Y (two 0-based integers, e.g. 1023,517)")
    try:
        x, y = int(parts[0]), int(parts[1])
    except ValueError:
        raise ValueError(
            f"pixel {text!r} is not X,Y (two 0-based integers, e.g. 1023,517)"
        ) from None
    if x < 0 or y < 0:
        raise ValueError(f"pixel {text!r} has a negative coordinate; positions are 0-based")
    return x, y


def resolve_dq_flags(names):
    """
    Return the DQ value of a list of jwst DQ flag names.

    Parameters
    ----------
    names : sequence of str
        Names from ``stdatamodels.jwst.datamodels.dqflags.pixel`` (e.g.
        ``"DO_NOT_USE"``, ``"HOT"``), case-insensitive.

    Returns
    -------
    int
        The OR of their values.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    value = 0
    for name in names:
        key = str(name).strip().upper()
        if key not in dqflags.pixel:
            raise ValueError(
                f"unknown DQ flag {name!r}; use names of jwst's dqflags.pixel such as "
                "DO_NOT_USE, HOT, WARM, OTHER_BAD_PIXEL"
            )
        value |= int(dqflags.pixel[key])
    return value


def _running_median_x(image, window):
    """NaN-tolerant running median along x (last axis) of a 2-D image."""
    bad = ~np.isfinite(image)
    filled = np.where(bad, 0.0, image).astype(np.float32)
    med = ndimage.median_filter(filled, size=(1, window), mode="nearest")
    if bad.any():
        # Second pass: NaNs replaced by the first-pass median of their neighbours.
        filled[bad] = med[bad]
        med = ndimage.median_filter(filled, size=(1, window), mode="nearest")
    return med


def find_hot_pixels(data, err=None, dq=None, *, sigma=8.0, window=7, min_contrast=1.0):
    """
    Find pixels far above a running median along the dispersion direction.

    Parameters
    ----------
    data : array_like, shape (ny, nx)
        Count-rate image, dispersion along x (NaN = no data).
    err : array_like, shape (ny, nx), optional
        Its 1-sigma uncertainty; without it only the image's robust residual
        scale is used as noise.
    dq : array_like of int, shape (ny, nx), optional
        Pixels with DO_NOT_USE are never reported (they are already excluded).
    sigma : float, optional
        Detection threshold, in units of the local noise.
    window : int, optional
        Odd length (pixels) of the running median along x; at least 3.
    min_contrast : float, optional
        A pixel must also exceed the running median by this multiple of the
        median's absolute value (1.0: at least twice its neighbours).

    Returns
    -------
    ndarray of bool, shape (ny, nx)
        True at the hot pixels found.

    Raises
    ------
    ValueError
        For a non-2-D image, mismatched shapes or invalid options.
    """
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f"data must be a 2-D image, got shape {data.shape}")
    if window < 3 or window % 2 != 1:
        raise ValueError(f"window must be an odd integer >= 3, got {window}")
    if not sigma > 0 or not min_contrast >= 0:
        raise ValueError("sigma must be > 0 and min_contrast >= 0")
    med = _running_median_x(data, window)
    with np.errstate(invalid="ignore"):
        resid = data - med
    finite = np.isfinite(resid)
    sample = resid[finite & (data != 0)]
    floor = 0.0
    if sample.size:
        floor = _MAD_TO_SIGMA * float(np.median(np.abs(sample - np.median(sample))))
    noise = np.full(data.shape, floor, dtype=np.float32)
    if err is not None:
        err = np.asarray(err, dtype=np.float32)
        if err.shape != data.shape:
            raise ValueError(f"err shape {err.shape} differs from data shape {data.shape}")
        with np.errstate(invalid="ignore"):
            err = np.where(np.isfinite(err) & (err > 0), err, np.nan)
        local = _running_median_x(err, window)
        noise = np.fmax(noise, np.where(np.isfinite(local), local, 0.0))
    with np.errstate(invalid="ignore"):
        hot = finite & (resid > sigma * noise) & (resid > min_contrast * np.abs(med))
    if dq is not None:
        dq = np.asarray(dq)
        if dq.shape != data.shape:
            raise ValueError(f"dq shape {dq.shape} differs from data shape {data.shape}")
        hot &= (dq & DO_NOT_USE) == 0
    log.info("find_hot_pixels: %d pixels above %.1f sigma (window %d, noise floor %.3g)",
             int(hot.sum()), sigma, window, floor)
    return hot


def flag_pixels(rate_file, output, *, pixels=(), auto=False, sigma=8.0, window=7,
                min_contrast=1.0, flags=("DO_NOT_USE", "HOT"), overwrite=False):
    """
    Write a copy of a rate file with DQ flags set at given or detected pixels.

    Parameters
    ----------
    rate_file : str or `~pathlib.Path`
        Input ``_rate`` (2-D) or ``_rateints`` (3-D) file; not modified.
    output : str or `~pathlib.Path`
        The new file.
    pixels : sequence of tuple of int or str, optional
        0-based ``(x, y)`` positions (or ``"X,Y"`` strings) to flag.
    auto : bool, optional
        Also flag the pixels found by `find_hot_pixels` (on the median over
        integrations for a 3-D file).
    sigma, window, min_contrast : float, int, float, optional
        Options of `find_hot_pixels`.
    flags : sequence of str, optional
        DQ flag names to set (OR-ed into DQ).
    overwrite : bool, optional
        Replace an existing output file (never the input).

    Returns
    -------
    FlagResult
        The pixels flagged and their counts.

    Raises
    ------
    ToolInputError
        If the input is missing or not a rate file, a pixel lies outside the
        image, a flag name is unknown, or the output is not writable.
    """
    rate_file = Path(rate_file).expanduser()
    if not rate_file.exists():
        raise ToolInputError(rate_file, "no such file; give the path of a _rate.fits file")
    with tool_reading(rate_file, "rate file"):
        pass  # the input first: a folder or an unreadable file is named before the output
    output = check_output_path(output, [rate_file], overwrite=overwrite)
    try:
        flag_value = resolve_dq_flags(flags)
        given = [parse_pixel(p) if isinstance(p, str) else tuple(int(v) for v in p)
                 for p in pixels]
    except ValueError as err:
        raise ToolInputError(rate_file, str(err)) from None
    if not given and not auto:
        raise ToolInputError(rate_file, "nothing to flag: give --pixel X,Y and/or --auto")
    with tool_reading(rate_file, "rate file"):
        model = datamodels.open(rate_file)
        if not isinstance(model, datamodels.ImageModel | datamodels.CubeModel):
            model.close()
            raise ToolInputError(
                rate_file,
                f"is a {type(model).__name__}; flag-pixels needs a _rate (ImageModel) or "
                "_rateints (CubeModel) file, before assign_wcs",
            )
        # Touch the arrays now: a truncated file fails here, inside the guard.
        _ = model.data, model.dq
    with model:
        data = np.asarray(model.data)
        ny, nx = data.shape[-2:]
        mask = np.zeros((ny, nx), dtype=bool)
        for x, y in given:
            if not (0 <= x < nx and 0 <= y < ny):
                raise ToolInputError(
                    rate_file, f"pixel {x},{y} is outside the {nx} x {ny} image (0-based X,Y)"
                )
            mask[y, x] = True
        n_found = 0
        if auto:
            dq2 = np.zeros(data.shape, np.uint32) if model.dq is None else np.asarray(model.dq)
            if data.ndim == 3:
                with np.errstate(invalid="ignore"), warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
                    image = np.nanmedian(np.where(dq2 & 1, np.nan, data), axis=0)
                    err = np.nanmedian(np.asarray(model.err), axis=0)
                dq2 = np.bitwise_and.reduce(dq2, axis=0)
            else:
                image, err = data, None if model.err is None else np.asarray(model.err)
            found = find_hot_pixels(image, err, dq2, sigma=sigma, window=window,
                                    min_contrast=min_contrast)
            n_found = int((found & ~mask).sum())
            mask |= found
        # A file without a DQ array (not a jwst rate file, but possible) gets one.
        dq = np.zeros(data.shape, np.uint32) if model.dq is None else np.array(model.dq)
        already = (dq & flag_value) == flag_value
        if dq.ndim == 3:
            already = already.all(axis=0)
        n_new = int((mask & ~already).sum())
        dq[..., mask] |= np.uint32(flag_value)
        model.dq = dq
        ys, xs = np.nonzero(mask)
        add_history_entry(
            model,
            f"jwst-mbkg-plus flag-pixels from {rate_file.name}: DQ |= {flag_value} at "
            f"{int(mask.sum())} pixels ({len(set(given))} given, {n_found} found)"
        )
        atomic_save_model(model, output)
    log.info("wrote %s: %d pixels flagged (%d new)", output, int(mask.sum()), n_new)
    return FlagResult(
        output=output,
        positions=[(int(x), int(y)) for x, y in zip(xs, ys, strict=True)],
        n_given=len(set(given)),
        n_found=n_found,
        n_new=n_new,
        flag_value=flag_value,
    )

