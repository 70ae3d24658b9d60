"""Seeded synthetic inputs for the calwebb_spec3 master background step.

For each mode the plus step supports (``NRS_FIXEDSLIT``, ``NRS_IFU``,
``MIR_LRS-FIXEDSLIT``, ``MIR_MRS``) :func:`make_spec3_inputs` builds:

* ``cal``-like science models of the datamodel type jwst's
  ``master_background`` step handles for that mode (`MultiSlitModel` with a
  2-D ``wavelength`` array; `ImageModel` with a simple detector -> world gwcs;
  `IFUImageModel` with either a plain MIRI-like gwcs or a coordinate-based
  NIRSpec IFU gwcs of 30 slices that `jwst.assign_wcs.nirspec.nrs_ifu_wcs`
  understands), carrying a known background ``B(lambda)`` (smooth continuum
  plus an emission line) times the NIRSpec point-source correction factor
  where jwst applies one, a point source confined to a band of pixels, and
  per-pixel Gaussian noise whose variance is split over ``VAR_POISSON``,
  ``VAR_RNOISE`` and ``VAR_FLAT`` (``ERR`` = their quadrature sum);
* ``x1d``-like background members (`MultiSpecModel`) whose background column
  (``BACKGROUND`` for nodded data, ``SURF_BRIGHT`` for dedicated background
  exposures, as jwst's step decides) holds ``B`` sampled on a slightly
  shifted wavelength grid per member, with Gaussian noise and a consistent
  ``BKGD_ERROR`` / ``SB_ERROR``; optionally one member contaminated by
  ``+contamination x`` the continuum;
* an in-memory `~jwst.datamodels.ModelContainer` or an association on disk.

Everything is seeded (`numpy.random.default_rng`) and small (runs in well
under a second per mode). Noise in the background spectra is independent of
the science pixels' noise (for nodded data the background spectrum is the
mean over many pixels, so the correlation is negligible).
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jwst.datamodels import ModelContainer
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus.jwst_internals import table_dtype
from jwst_mbkg_plus.synthetic.spec3_modes import (
    MODE_SETUP,
    MODES,
    continuum_shape,
    injected_background,
    miri_lrs_science,
    miri_mrs_science,
    nrs_fs_science,
    nrs_ifu_science,
    set_common_meta,
)
from jwst_mbkg_plus.synthetic.spec3_scenes import drift_factor, exposure_drift

__all__ = [
    "MODES",
    "Spec3Inputs",
    "injected_background",
    "make_container",
    "make_spec3_inputs",
    "write_association",
]

log = logging.getLogger(__name__)

@dataclass
class Spec3Inputs:
    """
    Synthetic spec3 inputs and their truth.

    Attributes
    ----------
    mode : str
        Exposure type.
    science : list of `~stdatamodels.jwst.datamodels.JwstDataModel`
        ``cal``-like science models.
    backgrounds : list of `~stdatamodels.jwst.datamodels.MultiSpecModel`
        ``x1d``-like background members.
    true_background : list of ndarray
        Per science model, the injected 2-D background in the model's
        calibrated units (for `MultiSlitModel`, one entry per model holding a
        list with one array per slit). NaN where there is no data.
    background_mask : list of ndarray of bool
        Per science model (list per slit for `MultiSlitModel`), True in
        background-dominated pixels (no source flux, valid data).
    contaminated : int or None
        Index in ``backgrounds`` of the contaminated member.
    column : str
        The x1d column that holds the background (``"BACKGROUND"`` or
        ``"SURF_BRIGHT"``).
    params : dict
        The options used.
    """

    mode: str
    science: list
    backgrounds: list
    true_background: list
    background_mask: list
    contaminated: int | None
    column: str
    params: dict = field(default_factory=dict)


def make_spec3_inputs(
    mode,
    *,
    n_science=2,
    n_background=4,
    contaminate=None,
    contamination=0.3,
    nodded=None,
    point_source=None,
    pixel_noise=0.02,
    spectrum_noise=0.003,
    source_level=5.0,
    seed=0,
    drift=0.0,
    drift_red=0.0,
    source_wings=False,
    extended_fraction=None,
    extended_level=0.8,
):
    """
    Build seeded synthetic science and background inputs for one mode.

    Parameters
    ----------
    mode : str
        One of `MODES`.
    n_science : int, optional
        Number of science exposures.
    n_background : int, optional
        Number of background ``x1d`` members.
    contaminate : int or None, optional
        Index of the background member to contaminate.
    contamination : float, optional
        Contamination as a fraction of the background continuum.
    nodded : bool or None, optional
        Nodded data (background in the ``BACKGROUND`` column,
        ``bkgdtarg = False``) or dedicated background exposures
        (``SURF_BRIGHT``, ``bkgdtarg = True``). Default: True except for
        MIRI MRS. jwst always reads ``BACKGROUND`` for MIRI MRS, so both
        columns hold the background there when ``nodded`` is False.
    point_source : bool or None, optional
        Science target is a point source (NIRSpec FS / IFU get jwst's
        point-source correction factors). Default: True except MIRI MRS.
    pixel_noise : float, optional
        Per-pixel noise sigma of the science data, as a fraction of ``B``.
    spectrum_noise : float, optional
        Noise sigma of each background spectrum, as a fraction of ``B``.
    source_level : float, optional
        Peak source brightness in units of the mean background.
    seed : int, optional
        Seed for `numpy.random.default_rng`.
    drift, drift_red : float or sequence of float, optional
        Sky drift of the science exposures (one value for all, or one per
        exposure): the sky during a science exposure is
        ``1 + drift + drift_red * t`` times that of the background exposures
        (``t`` from 0 at the blue end to 1 at the red end; see
        `jwst_mbkg_plus.synthetic.spec3_scenes.drift_factor`). Nodded
        background members (the other nods) carry the drift of their own
        exposure; dedicated background exposures carry none.
    source_wings : bool, optional
        Compact sources with Moffat wings reaching every row of the slit
        instead of a profile that is exactly zero beyond its half width.
    extended_fraction : float or None, optional
        NIRSpec IFU only: an extended source filling this fraction of the
        field (instead of the point source), ``extended_level`` times the mean
        background at its peak, with a spectrum of its own.
    extended_level : float, optional
        Peak brightness of the extended source, in units of the mean background.

    Returns
    -------
    Spec3Inputs
        Models and truth.
    """
    if mode not in MODE_SETUP:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if contaminate is not None and not 0 <= contaminate < n_background:
        raise ValueError(f"contaminate must index one of {n_background} background members")
    if nodded is None:
        nodded = mode != "MIR_MRS"
    if point_source is None:
        point_source = mode != "MIR_MRS"
    rng = np.random.default_rng(seed)
    params = {
        "n_science": n_science,
        "n_background": n_background,
        "contaminate": contaminate,
        "contamination": contamination,
        "nodded": nodded,
        "point_source": point_source,
        "pixel_noise": pixel_noise,
        "spectrum_noise": spectrum_noise,
        "source_level": source_level,
        "seed": seed,
        "drift": drift if np.ndim(drift) == 0 else list(drift),
        "drift_red": drift_red if np.ndim(drift_red) == 0 else list(drift_red),
        "source_wings": source_wings,
        "extended_fraction": extended_fraction,
        "extended_level": extended_level,
    }
    if extended_fraction is not None and mode != "NRS_IFU":
        raise ValueError("extended_fraction is for NRS_IFU scenes")
    builder = {
        "NRS_FIXEDSLIT": nrs_fs_science,
        "NRS_IFU": nrs_ifu_science,
        "MIR_LRS-FIXEDSLIT": miri_lrs_science,
        "MIR_MRS": miri_mrs_science,
    }[mode]
    science, truth, masks = [], [], []
    for i in range(n_science):
        model, bkg, mask = builder(i, rng, params)
        science.append(model)
        truth.append(bkg)
        masks.append(mask)
    column = "BACKGROUND" if (nodded or mode == "MIR_MRS") else "SURF_BRIGHT"
    backgrounds = [
        _background_x1d(mode, j, rng, params, contaminated=(j == contaminate))
        for j in range(n_background)
    ]
    return Spec3Inputs(mode, science, backgrounds, truth, masks, contaminate, column, params)


# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- NIRSpec FS


# --------------------------------------------------------------------------- NIRSpec IFU


# --------------------------------------------------------------------------- MIRI LRS


# --------------------------------------------------------------------------- MIRI MRS


# --------------------------------------------------------------------------- x1d members


def _background_x1d(mode, index, rng, params, *, contaminated):
    setup = MODE_SETUP[mode]
    w0, w1 = setup["wave"]
    n = setup["n_spec"]
    step = (w1 - w0) / (n - 1)
    # Each member samples a slightly shifted grid, a little wider than the band.
    shift = rng.uniform(-0.5, 0.5) * step
    wave = w0 - 3 * step + shift + step * np.arange(n + 6)
    truth = injected_background(wave, mode=mode)
    if params["nodded"]:
        # The other nods: the background carries its own exposure's drift.
        level, red = exposure_drift(params, index % params["n_science"])
        truth = truth * drift_factor((wave - w0) / (w1 - w0), level, red)
    if contaminated:
        w_t = (wave - w0) / (w1 - w0)
        truth = truth + params["contamination"] * continuum_shape(w_t)
    sigma = params["spectrum_noise"] * injected_background(wave, mode=mode)
    bkg = truth + rng.normal(size=wave.shape) * sigma

    table = np.zeros(wave.size, dtype=table_dtype(datamodels.SpecModel(), "spec_table"))
    table["WAVELENGTH"] = wave
    table["NPIXELS"] = 20.0
    nodded = params["nodded"]
    if nodded:
        # SURF_BRIGHT holds the (background-subtracted) source, not the background.
        src = params["source_level"] * 0.3 * np.ones_like(wave)
        table["SURF_BRIGHT"] = src + rng.normal(size=wave.shape) * sigma
        table["SB_ERROR"] = sigma
        table["BACKGROUND"] = bkg
        table["BKGD_ERROR"] = sigma
        table["BKGD_VAR_POISSON"] = sigma**2
    else:
        table["SURF_BRIGHT"] = bkg
        table["SB_ERROR"] = sigma
        table["SB_VAR_POISSON"] = sigma**2
        if mode == "MIR_MRS" or (mode == "NRS_IFU" and not params["point_source"]):
            # jwst reads BACKGROUND for MIRI MRS and NIRSpec IFU extended sources.
            table["BACKGROUND"] = bkg
            table["BKGD_ERROR"] = sigma
            table["BKGD_VAR_POISSON"] = sigma**2
    table["FLUX"] = table["SURF_BRIGHT"] * 1.0e-3
    table["FLUX_ERROR"] = sigma * 1.0e-3
    model = datamodels.MultiSpecModel()
    set_common_meta(model, mode, index, bkgdtarg=not nodded)
    model.meta.filename = f"synth_{mode.lower().replace('-', '')}_bkg{index + 1:02d}_x1d.fits"
    spec = datamodels.SpecModel(spec_table=table)
    spec.source_type = (
        "EXTENDED" if mode == "MIR_MRS" else ("POINT" if params["point_source"] else "EXTENDED")
    )
    spec.name = "S200A1" if mode == "NRS_FIXEDSLIT" else None
    for col, unit in (
        ("wavelength", "um"),
        ("surf_bright", "MJy/sr"),
        ("sb_error", "MJy/sr"),
        ("background", "MJy/sr"),
        ("bkgd_error", "MJy/sr"),
        ("flux", "Jy"),
        ("flux_error", "Jy"),
    ):
        spec.spec_table.columns[col].unit = unit
    model.spec.append(spec)
    return model


# --------------------------------------------------------------------------- containers


def _asn_table(inputs, *, asn_id="c1000", product="synth_spec3"):
    members = [{"expname": m.meta.filename, "exptype": "science"} for m in inputs.science]
    members += [{"expname": m.meta.filename, "exptype": "background"} for m in inputs.backgrounds]
    return {
        "asn_type": "spec3",
        "asn_rule": "candidate_Asn_Lv3SpecAux",
        "asn_id": asn_id,
        "asn_pool": "synthetic_pool",
        "program": "01234",
        "target": "t001",
        "products": [{"name": product, "members": members}],
    }


def make_container(inputs, *, asn_id="c1000"):
    """
    Return an in-memory `~jwst.datamodels.ModelContainer` of copies of the inputs.

    Science members first, then background members; each model's
    ``meta.asn.exptype`` set as ``datamodels.open(asn)`` would set it.

    Parameters
    ----------
    inputs : Spec3Inputs
        From `make_spec3_inputs`.
    asn_id : str, optional
        Association id.

    Returns
    -------
    `~jwst.datamodels.ModelContainer`
        The container (the models are copies).
    """
    models = []
    for model in inputs.science:
        m = model.copy()
        m.meta.asn.exptype = "science"
        models.append(m)
    for model in inputs.backgrounds:
        m = model.copy()
        m.meta.asn.exptype = "background"
        models.append(m)
    container = ModelContainer(models)
    container.asn_table = _asn_table(inputs, asn_id=asn_id)
    container.asn_table_name = f"synth_{asn_id}_asn.json"
    container.asn_pool_name = "synthetic_pool"
    return container


def write_association(inputs, folder, *, asn_id="c1000", product="synth_spec3"):
    """
    Save the inputs and a spec3 association to ``folder``.

    Parameters
    ----------
    inputs : Spec3Inputs
        From `make_spec3_inputs`.
    folder : str or `~pathlib.Path`
        Output folder (created if needed).
    asn_id : str, optional
        Association id.
    product : str, optional
        Product name.

    Returns
    -------
    `~pathlib.Path`
        The association file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for model in [*inputs.science, *inputs.backgrounds]:
        model.save(folder / model.meta.filename)
    asn = _asn_table(inputs, asn_id=asn_id, product=product)
    path = folder / f"synth_{asn_id}_asn.json"
    path.write_text(json.dumps(asn, indent=2))
    return path
