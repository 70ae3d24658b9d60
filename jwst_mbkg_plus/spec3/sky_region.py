"""A science exposure's own sky: its source-free lines, found from the data.

The master background of calwebb_spec3 comes from other exposures; the sky of
a science exposure is read from its own pixels away from the source: the rows
of a fixed slit or the columns of the MIRI LRS slit beyond the trace, the IFU
slices (detector lines) away from the source. Metadata (source position,
source type) are not trusted for this: the source is found in the data.

Every detector line across the dispersion (a row when the wavelength runs
along x, a column when it runs along y) is one spatial element. Its profile
value is the median over wavelength of ``data / model - 1``
(`jwst_mbkg_plus.algorithms.profiles.row_profile`), with the model the master
expanded to the exposure's pixels. The sky is flat in that profile (the master
has the sky's spectrum; a drift in level or colour moves every line alike), a
source adds light to its lines only. So:

1. the sky level is the floor of the profile: starting from the median of
   all lines, the mean of the lines below ``level + threshold * sigma`` is
   taken until the set no longer changes (sources only add light, so the
   floor is approached from above and a source filling most of the field
   does not pull it up);
2. lines above ``level + threshold * sigma`` are a source's core. A block of
   such lines is a source only if its light is connected: the excess of the
   block and of the ``wing_window`` lines on each side of it, summed, is at
   least ``source_threshold`` (3) times its noise. A line that noise lifted
   above the threshold (about 0.13 % of sky lines at 3 sigma) has neighbours at
   the floor; it is left out of the sky alone, and no wings are grown from it
   (they were: one exposure in 20 of the fixed slit kept 18 or fewer of its 27
   free rows, ``validation/spec3_sky_rows.py``);
3. a source's wings: walking outward from its block, the next line is added
   while the next ``wing_window`` lines' mean excess is above
   ``wing_threshold`` times its noise (faint wings are found together, where
   each line alone is within its noise), then ``margin`` more lines.
   With the default 3 lines at 1 sigma a flat sky costs about one line per
   source edge; a Moffat (beta 2.5) source of 5 times the sky at its peak in
   a 32-row slit leaves +0.05 % (5 % noise per pixel) and +0.11 % (20 %) of
   wing light in the factor, about 0.5 and 0.3 of its noise;
4. the level is measured again without them, and 2-3 repeated once. The repeat
   grows the first pass's mask (not its core) again, so the walk starts twice
   and the margin is taken twice: two lines beyond the wings on each side.
   That is deliberate: a single margin (the core grown once) left more wing
   light in the sky and doubled the winged source's extracted-flux bias in the
   fixed slit at 20 % noise (-0.07 % -> -0.15 % with the +3 % drift, -0.10 %
   -> -0.22 % with the red one; ``validation/spec3_drift.py --parts wings``),
   and so did a rule stopping the walk where the light stops fading (-0.20 %);
5. lines far below the floor (``-low_threshold`` sigma: bad lines) are left
   out of the sky without being called a source.

What remains is the sky. Fewer than ``min_sky_lines`` lines or
``min_sky_fraction`` of the exposure's pixels: no usable sky, and the reason
is returned. So too for an extended source filling the field: a source whose
lines at or above half its peak excess are more than ``max_extended_fraction``
(half) of the lines. An extended source has no profile that predicts its
outskirts (a point source's wings follow its PSF,
`jwst_mbkg_plus.spec3.wing_sky`), and when it covers most of the field the
few lines at the floor may be its faint edge: their freedom from it cannot be
shown (on the synthetic IFU with 80 % of the slices filled, the factor's error
was the noise of the 6 free slices, 0.25 % per exposure at 20 % noise, and
could not be told from light of the source).
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from jwst_mbkg_plus.algorithms.profiles import row_profile

__all__ = ["SkyRegion", "dispersion_axis", "find_sky_region"]


@dataclass(frozen=True)
class SkyRegion:
    """
    The source-free pixels of one science exposure (or slit).

    Attributes
    ----------
    sky : ndarray of bool
        Pixels of the source-free lines (valid pixels only), the array's shape.
    source_lines : ndarray of int
        Line indices (across the dispersion) that hold a source or its wings.
    n_lines, n_sky_lines : int
        Lines with a profile value, and of them the source-free ones.
    level : float
        The sky lines' median of ``data / model - 1`` (the profile's floor).
    axis : int
        Axis along which the wavelength runs (1: rows are lines).
    status : str
        ``"ok"``, or why the exposure has no usable sky.
    """

    sky: np.ndarray
    source_lines: np.ndarray
    n_lines: int
    n_sky_lines: int
    level: float
    axis: int
    status: str
    line_ok: np.ndarray = None
    half_max_lines: int = 0

    @property
    def usable(self):
        """Whether the sky pixels can be used."""
        return self.status == "ok"

    def to_record(self):
        """Plain-type summary for the QA record."""
        return {
            "sky_status": self.status,
            "n_lines": int(self.n_lines),
            "n_sky_lines": int(self.n_sky_lines),
            "n_sky_pixels": int(self.sky.sum()),
            "source_lines": [int(i) for i in self.source_lines],
            "profile_floor": float(self.level),
            "half_max_lines": int(self.half_max_lines),
            "dispersion_axis": "x" if self.axis == 1 else "y",
        }


def dispersion_axis(wavelength):
    """
    Axis of a 2-D wavelength array along which the wavelength changes most.

    Parameters
    ----------
    wavelength : ndarray, shape (ny, nx)
        Pixel wavelengths (NaN where undefined).

    Returns
    -------
    int
        1 if the wavelength runs along x (rows are spatial lines), else 0.
    """
    wl = np.asarray(wavelength, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        gx = np.nanmedian(np.abs(np.diff(wl, axis=1))) if wl.shape[1] > 1 else 0.0
        gy = np.nanmedian(np.abs(np.diff(wl, axis=0))) if wl.shape[0] > 1 else 0.0
    gx = 0.0 if not np.isfinite(gx) else gx
    gy = 0.0 if not np.isfinite(gy) else gy
    return 1 if gx >= gy else 0


def _floor(dev, sig, use, threshold, maxiters=100):
    """Mean of the lines below ``level + threshold * sigma``, iterated from the median."""
    level = float(np.median(dev[use]))
    below = use
    for _ in range(maxiters):
        new = use & (dev < level + threshold * sig)
        if not new.any():
            break
        w = 1.0 / sig[new] ** 2
        level = float(np.sum(w * dev[new]) / np.sum(w))
        if np.array_equal(new, below):
            break
        below = new
    return level


def _blocks(flags, order):
    """Runs of consecutive flagged lines (in ``order``), as lists of line indices."""
    order = np.asarray(order)
    labels, n_runs = ndimage.label(np.asarray(flags)[order])
    return [order[labels == run].tolist() for run in range(1, n_runs + 1)]


def _grow(source, excess, sig, order, window, threshold, margin, source_threshold):
    """Extend real source blocks outward over their faint wings, then by ``margin`` lines.

    A block of lines above the core threshold is a source, with wings, only if the
    light of the block and of the ``window`` lines on each side of it, summed, is at
    least ``source_threshold`` times its noise: a source's light is connected, while
    a single line that noise lifted above the core threshold (about 0.13 % of the
    sky lines at 3 sigma) has neighbours at the floor. Such a line is left out of
    the sky alone, with no wings grown from it.
    """
    pos = {line: k for k, line in enumerate(order)}
    flagged = source.copy()
    n = len(order)
    for block in _blocks(source, order):
        k0, k1 = pos[block[0]], pos[block[-1]]
        near = [order[j] for j in range(max(k0 - window, 0), min(k1 + window + 1, n))]
        if np.sum(excess[near]) < source_threshold * np.sqrt(np.sum(sig[near] ** 2)):
            continue
        for step, edge in ((-1, block[0]), (1, block[-1])):
            k = pos[edge] + step
            while 0 <= k < n and not flagged[order[k]]:
                ahead = [order[j] for j in range(k, k + step * window, step) if 0 <= j < n]
                mean = np.mean(excess[ahead])
                noise = np.sqrt(np.sum(sig[ahead] ** 2)) / len(ahead)
                if mean <= threshold * noise:
                    break
                flagged[order[k]] = True
                k += step
            for j in range(1, margin + 1):
                kk = k + step * (j - 1)
                if 0 <= kk < n:
                    flagged[order[kk]] = True
    return flagged


def find_sky_region(data, var, model, wavelength, valid=None, *, threshold=3.0,
                    low_threshold=5.0, wing_window=3, wing_threshold=1.0, margin=1,
                    source_threshold=3.0, min_sky_lines=3, min_sky_fraction=0.1,
                    min_pixels=20, max_extended_fraction=0.5):
    """
    Find the source-free pixels of a science exposure from its own data.

    Parameters
    ----------
    data, var : ndarray, shape (ny, nx)
        Science surface brightness and its variance.
    model : ndarray, shape (ny, nx)
        The background expected there (the master expanded to the pixels).
    wavelength : ndarray, shape (ny, nx)
        Pixel wavelengths, for the dispersion direction.
    valid : ndarray of bool, optional
        Pixels that may be used (e.g. not DO_NOT_USE); finite ones otherwise.
    threshold : float, optional
        A line more than this many sigma above the sky floor holds a source.
    low_threshold : float, optional
        A line more than this many sigma below the floor is left out (a bad line).
    wing_window, wing_threshold : int, float, optional
        Faint wings: the next ``wing_window`` lines outward are source while
        their mean excess is above ``wing_threshold`` times its noise.
    margin : int, optional
        Lines added beyond each source's wings.
    source_threshold : float, optional
        A block of lines above ``threshold`` is a source whose wings are grown
        only if its excess summed with that of the ``wing_window`` lines on each
        side is at least this many sigma; otherwise (a line that fluctuated above
        ``threshold``) it is left out alone.
    min_sky_lines : int, optional
        Fewest source-free lines for a usable sky.
    min_sky_fraction : float, optional
        Smallest fraction of the valid pixels the sky must hold.
    min_pixels : int, optional
        Fewest valid pixels for a line to count.
    max_extended_fraction : float, optional
        A source whose lines at or above half its peak excess are more than
        this fraction of the lines is extended and fills the field: no usable
        sky (its faint outskirts, which no profile predicts, may be all the
        lines at the floor hold).

    Returns
    -------
    SkyRegion
        The sky pixels, the source lines and the status.
    """
    data, var, model, wavelength = (np.asarray(a, dtype=np.float64)
                                    for a in (data, var, model, wavelength))
    axis = dispersion_axis(wavelength)
    use = np.isfinite(data) & np.isfinite(var) & (var > 0) & np.isfinite(model) & (model > 0)
    if valid is not None:
        use &= np.asarray(valid, dtype=bool)
    t = (lambda a: a) if axis == 1 else (lambda a: a.T)
    prof = row_profile(t(data), t(var), t(model), t(use), min_pixels=min_pixels)
    dev, sig = prof.deviation, prof.sigma
    lines = np.isfinite(dev) & np.isfinite(sig) & (sig > 0)
    empty = np.zeros(data.shape, dtype=bool)
    n_lines = int(lines.sum())
    if n_lines < min_sky_lines:
        return SkyRegion(empty, np.array([], dtype=int), n_lines, 0, np.nan, axis,
                         f"no usable sky: {n_lines} spatial lines with data")
    order = np.flatnonzero(lines)
    source = np.zeros(dev.shape, dtype=bool)
    level = np.nan
    for _ in range(2):
        free = lines & ~source
        if not free.any():
            break
        level = _floor(dev, sig, free, threshold)
        excess = np.where(lines, dev - level, 0.0)
        with np.errstate(invalid="ignore"):
            source = lines & (source | (excess > threshold * sig))
        source = _grow(source, excess, sig, order, wing_window, wing_threshold, margin,
                       source_threshold)
    with np.errstate(invalid="ignore"):
        bad = lines & ~source & (dev < level - low_threshold * sig)
    sky_lines = lines & ~source & ~bad
    sky = empty.copy()
    t(sky)[sky_lines, :] = True
    sky &= use
    n_sky = int(sky_lines.sum())
    half_max = 0
    if source.any():
        half_max = int(np.sum(source & (excess >= 0.5 * np.max(excess[source]))))
    status = "ok"
    if half_max > max_extended_fraction * n_lines:
        status = (f"no usable sky: an extended source, {half_max} of the {n_lines} spatial "
                  f"lines at or above half its peak (more than {max_extended_fraction:.0%}); "
                  "the lines beside it may hold its faint outskirts, which no profile "
                  "predicts")
    elif n_sky < min_sky_lines:
        status = (f"no usable sky: {n_sky} of {n_lines} spatial lines are free of source "
                  f"(fewer than {min_sky_lines})")
    elif sky.sum() < min_sky_fraction * use.sum():
        status = (f"no usable sky: the source-free lines hold {sky.sum() / use.sum():.1%} "
                  f"of the pixels (less than {min_sky_fraction:.0%})")
    if np.any(sky_lines):
        level = float(np.median(dev[sky_lines]))
    return SkyRegion(sky, np.flatnonzero(source), n_lines, n_sky, level, axis, status,
                     lines & ~bad, half_max)
