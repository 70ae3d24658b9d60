"""A master background per visit: the background slitlets of every nod.

The exposures of one visit and detector (typically 3 nods) see the same sky
through the same background slitlets, so a master built from all of them has
about sqrt(N) less noise than one exposure's. This module wraps the MOS
engine (:func:`jwst_mbkg_plus.mos.master.master_from_slits`) without
changing it:

1. each companion exposure is calibrated as extended once
   (:func:`calibrate_companion`, which keeps only its background slitlets);
2. a level factor per exposure is fitted on the pixels its background
   slitlets share with the other exposures (:func:`fit_levels`): ratios of
   sums over the same detector pixels, so the spectrum, the flat and the
   slit's position cancel and only a sky drift between nods is left; the
   levels are normalised to a mean of 1;
3. the companions' background slitlets, rescaled to this exposure's level,
   are appended to this exposure's calibrated slits, each named
   ``<source name>@<exposure>``, and the engine builds the master from all of
   them, with its vetting, pixel rejection, spatial model and robust
   combination; each of this exposure's background slitlets is subtracted with
   a master made without its own spectrum (the engine's leave-one-out over this
   exposure's slits), the same slitlet in the other nods staying in;
4. the QA record gets a ``visit`` entry naming every exposure, its level and
   the slitlets used.

The companions are files given to the step's ``visit_companions``, or the
science members of a spec2 association of the same visit and detector
(:mod:`jwst_mbkg_plus.mos.companions`).
"""

import copy
import logging

import numpy as np
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.io.slits import DO_NOT_USE, select_background_slits, slit_variance
from jwst_mbkg_plus.mos.master import master_from_slits
from jwst_mbkg_plus.mos.options import MasterOptions

__all__ = [
    "COMPANION_SUFFIX",
    "VisitLevels",
    "calibrate_companion",
    "exposure_name",
    "fit_levels",
    "load_companions",
    "prepare_companion",
    "visit_master",
]

log = logging.getLogger(__name__)

#: Suffix of the file :func:`prepare_companion` writes (background slitlets
#: calibrated as extended).
COMPANION_SUFFIX = "_bkgcal"
#: Pixels further than this many sigma from the median over exposures are left
#: out of the level fit (hot pixels, cosmic rays).
LEVEL_CLIP_SIGMA = 5.0


def exposure_name(filename):
    """
    Return an exposure's name: its file name without the product suffix.

    Parameters
    ----------
    filename : str or pathlib.Path
        A rate, cal or ``*_bkgcal.fits`` file name.

    Returns
    -------
    str
        E.g. ``jw02736007001_03103_00001_nrs1``.
    """
    name = str(filename).replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (f"{COMPANION_SUFFIX}.fits", "_rate.fits", "_rateints.fits", "_cal.fits",
                   ".fits"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _background_slits(model, options):
    selection = select_background_slits(model.slits, include=options.bkg_slits or None,
                                        exclude=options.exclude_slits or None)
    return [model.slits[i] for i in selection.indices]


def calibrate_companion(step, model, options=None):
    """
    Calibrate one exposure's background slitlets as extended, once.

    Parameters
    ----------
    step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
        A step whose nested flat_field, pathloss, barshadow and photom run.
    model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The exposure's extracted slits (count rate, as after extract_2d and
        srctype). Not modified.
    options : `~jwst_mbkg_plus.mos.options.MasterOptions`, optional
        Which slits are background (``bkg_slits``, ``exclude_slits``); default
        the MSA designation.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.MultiSlitModel`
        The exposure's background slitlets only, calibrated (MJy/sr).
    """
    from jwst_mbkg_plus.mos.calibration import calibrate_as_extended

    options = options or MasterOptions()
    selection = select_background_slits(model.slits, include=options.bkg_slits or None,
                                        exclude=options.exclude_slits or None)
    subset = datamodels.MultiSlitModel()
    subset.update(model)
    for i in selection.indices:
        subset.slits.append(model.slits[i])
    forward = calibrate_as_extended(step, subset)
    out = forward.model
    out.meta.filename = model.meta.filename
    return out


class VisitLevels:
    """
    Sky level of each exposure of a visit, relative to their mean.

    Attributes
    ----------
    labels : list of str
        Exposure names, in the order given.
    levels : ndarray
        Fitted level per exposure (mean 1).
    errors : ndarray
        Their 1-sigma errors.
    per_slit : dict
        Slitlet key -> array of that slitlet's level estimates per exposure.
    n_pixels : dict
        Slitlet key -> pixels used.
    excluded : list of str
        Slitlets left out of the fit: their levels disagree with the others'.
    """

    def __init__(self, labels, levels, errors, per_slit, n_pixels, excluded=()):
        self.excluded = list(excluded)
        self.labels = list(labels)
        self.levels = np.asarray(levels, dtype=float)
        self.errors = np.asarray(errors, dtype=float)
        self.per_slit = per_slit
        self.n_pixels = n_pixels

    def to_record(self):
        """
        Return the levels as a plain record.

        Returns
        -------
        dict
            ``{exposure: {"level", "error"}}`` plus the slitlets used.
        """
        return {
            "levels": {lab: {"level": float(v), "error": float(e)}
                       for lab, v, e in zip(self.labels, self.levels, self.errors, strict=True)},
            "level_slits": {k: {"levels": [float(x) for x in v], "n_pixels": int(self.n_pixels[k]),
                                "used": k not in self.excluded}
                            for k, v in self.per_slit.items()},
            "level_excluded": list(self.excluded),
        }


def _slit_key(slit):
    return str(slit.slitlet_id if slit.slitlet_id is not None else slit.name)


def _on_frame(slit):
    """(sb, var, valid, y0, x0) of a calibrated slit, with its full-frame origin."""
    sb = np.asarray(slit.data, dtype=float)
    var = slit_variance(slit)
    valid = np.isfinite(sb) & np.isfinite(var) & (var > 0) & ((slit.dq & DO_NOT_USE) == 0)
    return sb, var, valid, int(slit.ystart), int(slit.xstart)


def _common_window(frames):
    """The full-frame window all slits of one slitlet cover, in each slit's indices."""
    y0 = max(f[3] for f in frames)
    x0 = max(f[4] for f in frames)
    y1 = min(f[3] + f[0].shape[0] for f in frames)
    x1 = min(f[4] + f[0].shape[1] for f in frames)
    if y1 <= y0 or x1 <= x0:
        return None
    return [np.s_[y0 - f[3]: y1 - f[3], x0 - f[4]: x1 - f[4]] for f in frames]


def fit_levels(labels, exposures):
    """
    Fit the sky level of each exposure on the background slitlets they share.

    For each slitlet seen by every exposure, on the detector pixels valid in
    all of them (less the pixels more than :data:`LEVEL_CLIP_SIGMA` sigma from
    the median over exposures), the level of exposure ``j`` is
    ``sum(sb_j) / mean_k(sum(sb_k))``: a ratio of sums, free of the bias a mean
    of per-pixel ratios has at low signal-to-noise. Slitlets whose levels
    disagree with the others' (an undeclared source that moves between nods)
    are left out; the rest are averaged with inverse-variance weights and the
    levels scaled to a mean of 1.

    Parameters
    ----------
    labels : list of str
        Exposure names.
    exposures : list of list of `~stdatamodels.jwst.datamodels.SlitModel`
        Each exposure's calibrated background slitlets (MJy/sr).

    Returns
    -------
    VisitLevels
        The levels.

    Raises
    ------
    ValueError
        If no slitlet is shared by all exposures.
    """
    n = len(exposures)
    if n == 1:
        return VisitLevels(labels, [1.0], [0.0], {}, {})
    by_key = [{_slit_key(s): s for s in slits} for slits in exposures]
    shared = sorted(set.intersection(*(set(d) for d in by_key)), key=str)
    estimates, variances, per_slit, n_pixels = [], [], {}, {}
    for key in shared:
        frames = [_on_frame(d[key]) for d in by_key]
        windows = _common_window(frames)
        if windows is None:
            continue
        sb = np.array([f[0][w] for f, w in zip(frames, windows, strict=True)])
        var = np.array([f[1][w] for f, w in zip(frames, windows, strict=True)])
        valid = np.all([f[2][w] for f, w in zip(frames, windows, strict=True)], axis=0)
        with np.errstate(invalid="ignore"):
            median = np.median(sb, axis=0)
            far = np.abs(sb - median) > LEVEL_CLIP_SIGMA * np.sqrt(var)
        use = valid & ~far.any(axis=0)
        if use.sum() < 10:
            continue
        sums = np.array([s[use].sum() for s in sb])
        sum_var = np.array([v[use].sum() for v in var])
        mean = sums.mean()
        if not mean > 0:
            continue
        ratio = sums / mean
        estimates.append(ratio)
        variances.append(sum_var / mean**2)
        per_slit[key] = ratio
        n_pixels[key] = int(use.sum())
    if not estimates:
        raise ValueError("no background slitlet is shared by all exposures of the visit "
                         "(same slitlet id, overlapping pixels)")
    keys = list(per_slit)
    est = np.array(estimates)
    var = np.array(variances)
    keep = _consistent_slitlets(est, var)
    excluded = [k for k, kept in zip(keys, keep, strict=True) if not kept]
    for k in excluded:
        log.warning("Visit master: background slitlet %s left out of the level fit: its "
                    "levels per exposure %s disagree with the others'", k,
                    ", ".join(f"{v:.4f}" for v in per_slit[k]))
    est, w = est[keep], 1.0 / var[keep]
    levels = (est * w).sum(axis=0) / w.sum(axis=0)
    errors = 1.0 / np.sqrt(w.sum(axis=0))
    if est.shape[0] > 1:
        # Inflate by the scatter between slitlets where it exceeds the noise.
        chi2 = (((est - levels) ** 2) * w).sum(axis=0) / (est.shape[0] - 1)
        errors = errors * np.sqrt(np.maximum(chi2, 1.0))
    scale = levels.mean()
    return VisitLevels(labels, levels / scale, errors / scale, per_slit, n_pixels,
                       excluded=excluded)


def _consistent_slitlets(est, var):
    """
    Slitlets whose levels agree with the others' in every exposure.

    A slitlet is left out where, in any exposure, its level is further than
    :data:`LEVEL_CLIP_SIGMA` robust sigmas from the median over slitlets (the
    robust sigma: 1.4826 MAD over slitlets, at least the slitlet's own error),
    as an undeclared or moving source in it makes it. With fewer than 3
    slitlets every one is kept.
    """
    n = est.shape[0]
    keep = np.ones(n, dtype=bool)
    if n < 3:
        return keep
    median = np.median(est, axis=0)
    mad = 1.4826 * np.median(np.abs(est - median), axis=0)
    sigma = np.maximum(mad[np.newaxis, :], np.sqrt(var))
    keep = np.all(np.abs(est - median) <= LEVEL_CLIP_SIGMA * sigma, axis=1)
    if keep.sum() < 2:
        return np.ones(n, dtype=bool)
    return keep


def _scaled_copy(slit, factor, suffix):
    """A deep copy of a slit, times ``factor``, its source name tagged ``@suffix``."""
    wcs = slit.meta.wcs
    memo = {id(wcs): wcs} if wcs is not None else {}
    new = datamodels.SlitModel(copy.deepcopy(slit.instance, memo))
    new.data = (np.asarray(slit.data, dtype=np.float32) * np.float32(factor))
    if new.err is not None and np.shape(new.err) == np.shape(new.data):
        new.err = np.asarray(slit.err, dtype=np.float32) * np.float32(abs(factor))
    for name in ("var_poisson", "var_rnoise", "var_flat"):
        arr = getattr(slit, name, None)
        if arr is not None and np.shape(arr) == np.shape(slit.data):
            setattr(new, name, np.asarray(arr, dtype=np.float32) * np.float32(factor**2))
    new.source_name = f"{slit.source_name}@{suffix}"
    return new


def _master_of(step, template, own_slits, extra_slits, options):
    """The engine's master from some slits of this exposure plus rescaled companion slits."""
    combined = datamodels.MultiSlitModel()
    combined.update(template)
    combined.meta.exposure.type = template.meta.exposure.type
    for slit in (*own_slits, *extra_slits):
        combined.slits.append(slit)
    try:
        return master_from_slits(step, combined, options)
    finally:
        combined.close()


def visit_master(step, cal_model, companions, options, *, label=None, leave_out="exposure"):
    """
    Build the master background of one exposure from its whole visit.

    Parameters
    ----------
    step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
        The step (its nested steps, for ``bkg_method='extract_1d'``).
    cal_model : `~stdatamodels.jwst.datamodels.MultiSlitModel`
        This exposure's slits calibrated as extended. Not modified.
    companions : list of (str, `~stdatamodels.jwst.datamodels.MultiSlitModel`)
        The other exposures of the same visit and detector: a name and their
        background slitlets calibrated as extended (:func:`calibrate_companion`).
        Not modified.
    options : `~jwst_mbkg_plus.mos.options.MasterOptions`
        The step's options.
    label : str, optional
        This exposure's name (default :func:`exposure_name` of its file name).
    leave_out : {"exposure", "slitlet"}, optional
        What the master subtracted from each of this exposure's background
        slitlets is made without: its own spectrum only ("exposure", the
        engine's leave-one-out over the combined slits), or that slitlet in
        every exposure ("slitlet": one more master per background slitlet).

    Returns
    -------
    `~jwst_mbkg_plus.mos.options.MasterBackground`
        The master at this exposure's sky level; its ``leave_one_out``,
        ``rejected_masks`` and ``flag_masks`` refer to this exposure's slits
        only, and its QA record has a ``visit`` entry.
    """
    label = label or exposure_name(cal_model.meta.filename)
    own_bkg = _background_slits(cal_model, options)
    comp_bkg = [_background_slits(model, options) for _, model in companions]
    names = [label, *[name for name, _ in companions]]
    levels = fit_levels(names, [own_bkg, *comp_bkg])
    for name, lev, err in zip(names, levels.levels, levels.errors, strict=True):
        log.info("Visit master: exposure %s sky level %.5f +/- %.5f", name, lev, err)
    n_own = len(cal_model.slits)
    used = {label: [f"{_slit_key(s)}:{s.source_name}" for s in own_bkg]}
    copies = []  # (slitlet key, rescaled companion slit)
    for (name, _), slits, lev in zip(companions, comp_bkg, levels.levels[1:], strict=True):
        factor = levels.levels[0] / lev
        used[name] = []
        for slit in slits:
            copies.append((_slit_key(slit), _scaled_copy(slit, factor, name)))
            used[name].append(f"{_slit_key(slit)}:{slit.source_name}@{name}")
    master = _master_of(step, cal_model, list(cal_model.slits), [c for _, c in copies], options)
    # Only this exposure's slits are subtracted or flagged.
    for attr in ("leave_one_out", "rejected_masks", "flag_masks"):
        setattr(master, attr, {k: v for k, v in getattr(master, attr).items() if k < n_own})
    if leave_out == "slitlet":
        # Each background slitlet of this exposure: a master without it in any exposure.
        for k in sorted(master.leave_one_out):
            key = _slit_key(cal_model.slits[k])
            own = [s for i, s in enumerate(cal_model.slits) if i != k]
            others = [c for ckey, c in copies if ckey != key]
            loo = _master_of(step, cal_model, own, others, options)
            loo.leave_one_out, loo.rejected_masks, loo.flag_masks = {}, {}, {}
            master.leave_one_out[k] = loo
    elif leave_out != "exposure":
        raise ValueError(f"leave_out must be 'exposure' or 'slitlet', got {leave_out!r}")
    record = {
        "exposure": label,
        "n_exposures": len(names),
        "exposures": names,
        "level": float(levels.levels[0]),
        "level_error": float(levels.errors[0]),
        "slits_used": used,
        "leave_one_out": ("each background slitlet of this exposure is subtracted with a "
                          "master made without its own spectrum (the same slitlet in the "
                          "other exposures kept)") if leave_out == "exposure" else
                         ("each background slitlet of this exposure is subtracted with a "
                          "master made without that slitlet in any exposure"),
    }
    record.update(levels.to_record())
    master.qa["visit"] = record
    log.info("Visit master from %d exposures, %d background spectra", len(names),
             sum(len(v) for v in used.values()))
    return master


def prepare_companion(rate_path, output_path, *, step, options=None):
    """
    Write one exposure's background slitlets calibrated as extended, for its companions.

    Runs jwst's steps before the master background (assign_wcs, msaflagopen,
    extract_2d, srctype) and the plus step's calibration pass on the
    background slitlets only, once; the file is then given to the other
    exposures of the visit through the step's ``visit_companions``.

    Parameters
    ----------
    rate_path : str or pathlib.Path
        The exposure's rate file.
    output_path : str or pathlib.Path
        The file to write (``*_bkgcal.fits``), atomically.
    step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
        Step whose nested calibration steps run (e.g. a new one).
    options : `~jwst_mbkg_plus.mos.options.MasterOptions`, optional
        Background slitlet selection.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from pathlib import Path

    from jwst_mbkg_plus.safe_io import atomic_save_model
    from jwst_mbkg_plus.synthetic.front_end import extract_slits

    slits = extract_slits(rate_path)
    try:
        calibrated = calibrate_companion(step, slits, options)
    finally:
        slits.close()
    calibrated.meta.filename = Path(output_path).name
    atomic_save_model(calibrated, output_path)
    calibrated.close()
    return Path(output_path)


def load_companions(step, paths, options):
    """
    Open the companion exposures given to the step, calibrating any that is not.

    Parameters
    ----------
    step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
        The step (its nested calibration steps, for uncalibrated companions).
    paths : list of str
        ``*_bkgcal.fits`` files (:func:`prepare_companion`), or rate files, which
        are then run through jwst's front end and calibrated here.
    options : `~jwst_mbkg_plus.mos.options.MasterOptions`
        Background slitlet selection.

    Returns
    -------
    list of (str, `~stdatamodels.jwst.datamodels.MultiSlitModel`)
        Exposure name (the file name without suffix) and its calibrated
        background slitlets.
    """

    from jwst_mbkg_plus.synthetic.front_end import extract_slits

    out = []
    for path in paths:
        name = exposure_name(path)
        model = datamodels.open(path)
        if isinstance(model, datamodels.MultiSlitModel) and \
                model.meta.cal_step.photom == "COMPLETE":
            out.append((name, model))
            continue
        model.close()
        log.info("Visit master: calibrating companion %s as extended", path)
        slits = extract_slits(path)
        try:
            out.append((name, calibrate_companion(step, slits, options)))
        finally:
            slits.close()
    return out
