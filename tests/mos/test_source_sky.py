"""use_source_sky: the source slitlets' sky rows added to the master, on pure numpy arrays.

A master of 12 background spectra, and 18 source slitlets' sky spectra of half
their depth (twice the variance): the master of both has the variance of an
inverse-variance mean, 12 / (12 + 18 / 2) = 0.571 of the background slitlets'
alone, and its scatter about the truth agrees with that variance. A source
slitlet whose sky rows hold a second source (an additive excess with a spectral
shape of its own) is left out and does not move the master.

On the step: a master that gained source sky is expanded and its factors fitted
again; a master left unchanged (no calibration scatter, nothing rescaled) is
expanded and fitted once, and the step's result is then bit for bit that of
``use_source_sky=False``.
"""

import contextlib
import logging

import numpy as np
import pytest

from jwst_mbkg_plus.mos.combine import combine_master
from jwst_mbkg_plus.mos.options import MasterOptions
from jwst_mbkg_plus.mos.source_sky import (
    master_with_source_sky,
    relative_weights,
    source_sky_arrays,
)

N_BKG, N_SKY, N_WAVE = 12, 18, 2000
NOISE = 0.05  # per background spectrum and wavelength, relative


def _sky(wave):
    return 1.0 + 0.5 * np.exp(-0.5 * ((wave - 3.0) / 0.6) ** 2)


def _spectra(rng, wave, n, rel_var):
    truth = _sky(wave)
    var = np.broadcast_to(rel_var * truth**2, (n, wave.size)).copy()
    return truth + rng.normal(size=(n, wave.size)) * np.sqrt(var), var


@pytest.fixture
def first_master(seed):
    """The master of the background spectra, and the source slitlets' sky spectra of a seed."""
    rng = np.random.default_rng(seed)
    wave = np.linspace(1.0, 5.0, N_WAVE)
    options = MasterOptions(master_smoothing="none")
    flux, var = _spectra(rng, wave, N_BKG, NOISE**2)
    master = combine_master(wave, flux, var, options)
    master.spectra = (wave, flux, var)
    sky, sky_var = _spectra(rng, wave, N_SKY, 2 * NOISE**2)
    labels = [f"src{k}" for k in range(N_SKY)]
    return wave, options, master, sky, sky_var, labels


@pytest.mark.parametrize("seed", [1, 2])
def test_master_variance_drops_by_the_added_depth(first_master):
    wave, options, master, sky, sky_var, labels = first_master
    new, record = master_with_source_sky(master, sky, sky_var, labels, options)

    expected = N_BKG / (N_BKG + N_SKY / 2)
    assert record["applied"]
    assert record["n_source_slits"] == N_SKY
    assert record["rejected"] == {}
    assert record["median_variance_ratio"] == pytest.approx(expected, rel=0.06)
    # The old master's error, and the new one's, against the truth: the variance
    # really drops, and the propagated variance says by how much.
    truth = _sky(new.wavelength)
    old_err = np.std(master.surf_bright / _sky(master.wavelength) - 1)
    new_pull = (new.surf_bright - truth) / np.sqrt(new.var)
    assert np.std(new_pull) == pytest.approx(1.0, abs=0.06)
    assert np.mean(new_pull) == pytest.approx(0.0, abs=0.1)
    new_err = np.std(new.surf_bright / truth - 1)
    assert (new_err / old_err) ** 2 == pytest.approx(expected, rel=0.12)
    # Everything else is the first master's; the first master is not modified.
    assert new.leave_one_out is master.leave_one_out
    assert master.qa.get("source_sky") is None
    assert new.n_used.max() == N_BKG + N_SKY


@pytest.mark.parametrize("seed", [5])
def test_contaminated_sky_rows_do_not_move_the_master(first_master):
    wave, options, master, sky, sky_var, labels = first_master
    clean, _ = master_with_source_sky(master, sky, sky_var, labels, options)
    # A second source in one slitlet's sky rows: its own continuum, rising to the
    # red, +15 % of the sky at 5 micron (2 sigma of one spectrum per wavelength: the
    # clip alone does not catch it), and an emission line.
    bad = sky.copy()
    excess = 0.15 * _sky(wave) * (wave - 1.0) / 4.0
    excess += 0.3 * np.exp(-0.5 * ((wave - 2.0) / 0.01) ** 2)
    bad[7] = bad[7] + excess
    new, record = master_with_source_sky(master, bad, sky_var, labels, options)
    assert "src7" in record["rejected"]
    assert record["n_source_slits"] == N_SKY - 1
    # Unvetted, the excess would move the master by about its weight's share,
    # 0.5 / 21 of +14 % = +0.33 % at the red end (less what the clip takes out).
    # Vetted: the master without that slitlet, within the noise of one sky
    # spectrum's share (1 / 41 of 7 % per wavelength, averaged over 250).
    red = wave > 4.5
    shift = np.mean(new.surf_bright[red] / clean.surf_bright[red] - 1)
    assert abs(shift) < 0.0005
    # Without vetting (vet_spectra=False) it does move: the test can fail.
    unvetted, _ = master_with_source_sky(master, bad, sky_var, labels,
                                         MasterOptions(master_smoothing="none",
                                                       vet_spectra=False))
    moved = np.mean(unvetted.surf_bright[red] / clean.surf_bright[red] - 1)
    assert moved > 0.002


def test_relative_weights_follow_depth():
    wave = np.linspace(1.0, 5.0, 100)
    ref = _sky(wave)
    flux = np.vstack([ref, ref, ref])
    var = np.vstack([0.01 * ref**2, 0.02 * ref**2, 0.04 * ref**2])
    w = relative_weights(flux, var, ref)
    assert w == pytest.approx([1.0, 0.5, 0.25])
    # No usable variance: weight 1.
    var[2] = np.nan
    assert relative_weights(flux, var, ref)[2] == 1.0


def test_source_sky_arrays_divide_by_factor_and_reject_hot_pixels():
    rng = np.random.default_rng(3)
    ny, nx = 20, 300
    wave = np.tile(np.linspace(1.0, 5.0, nx), (ny, 1))
    model = _sky(wave)
    factor = 1.04 + 0.02 * (wave - 3.0)  # the slit's sky factor times its spatial factor
    var = (0.1 * model * factor) ** 2
    data = model * factor + rng.normal(size=(ny, nx)) * np.sqrt(var)
    data[3, 100] += 50 * np.sqrt(var[3, 100])  # a hot pixel in a sky row
    free = np.ones((ny, nx), dtype=bool)
    free[8:13] = False  # the source's rows
    w, sb, sb_var, use, n_bad = source_sky_arrays(wave, data, var, free, factor, model,
                                                  pixel_sigma=5.0)
    assert not use[8:13].any()
    assert n_bad >= 1
    assert not use[3, 100]
    assert np.median(sb[use] / model[use]) == pytest.approx(1.0, abs=0.005)
    assert np.allclose(sb_var[use], (0.1 * model[use]) ** 2)
    # Without the factor, the pixels would sit at the slit's level, not the master's.
    *_, n_none = source_sky_arrays(wave, data, var, free, factor, model, pixel_sigma=None)
    assert n_none == 0


@pytest.fixture(scope="module")
def calibration_scatter_runs(synthetic_instrument, tmp_path_factory):
    """One scene with per-slitlet calibration errors: the step with and without source sky."""
    from stdatamodels.jwst import datamodels

    from jwst_mbkg_plus import MasterBackgroundMosPlusStep
    from jwst_mbkg_plus.synthetic import (
        Scene,
        extract_slits,
        load_truth,
        local_crds_context,
        make_exposure,
    )

    scene = Scene(n_background=8, n_point=10, n_extended=0, shutters_per_slitlet=3,
                  detectors=("NRS1",), noise_fraction=0.2, calibration_error=(0.03, 0.02, 0, 0),
                  seed=11)
    folder = tmp_path_factory.mktemp("source_sky")
    exposure = make_exposure(scene, folder, instrument=synthetic_instrument)
    truth = load_truth(exposure.truth_path)
    masters = {}
    with local_crds_context(synthetic_instrument):
        slits = extract_slits(exposure.rate_path)
        runs, calls = {}, {}
        for name, pars in (("without", {"use_source_sky": False}), ("with", {})):
            out = folder / name
            out.mkdir()
            with _counted() as calls[name]:
                runs[name] = MasterBackgroundMosPlusStep.call(
                    slits, save_background=True, output_dir=str(out), **pars)
            with datamodels.open(next(out.glob("*_masterbg1d.fits"))) as m1d:
                table = m1d.spec[0].spec_table
                masters[name] = (np.array(table["WAVELENGTH"]), np.array(table["SURF_BRIGHT"]))
    return truth, slits, runs["without"], runs["with"], masters, calls


@contextlib.contextmanager
def _counted():
    """The masters the step expands (``expanded_backgrounds``) and fits factors against."""
    from jwst_mbkg_plus.mos import slit_factors, subtract

    calls = {"expanded": [], "corrections": []}
    expanded, corrections = subtract.expanded_backgrounds, slit_factors.slit_corrections

    def count_expanded(cal_model, master):
        calls["expanded"].append(master)
        return expanded(cal_model, master)

    def count_corrections(cal_slits, waves, bkg, master, mode, **kwargs):
        calls["corrections"].append(master)
        return corrections(cal_slits, waves, bkg, master, mode, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subtract, "expanded_backgrounds", count_expanded)
        mp.setattr(slit_factors, "slit_corrections", count_corrections)
        yield calls


def _source_figures(truth, slits_in, slits_out):
    """Per source slit: 95th percentile of |noise-free residual|; pulls of its columns."""
    p95, column_pulls = [], []
    for slit_in, slit_out in zip(slits_in.slits, slits_out.slits, strict=True):
        if truth.slit(slit_in.name)["kind"] == "background":
            continue
        factor = truth.cutout(slit_in.name, "factor", slit_in)
        true_bkg = truth.cutout(slit_in.name, "background", slit_in) / factor
        source = truth.cutout(slit_in.name, "source", slit_in) / factor
        ok = (np.isfinite(slit_out.data) & np.isfinite(true_bkg) & (true_bkg > 0)
              & ((slit_out.dq & 1) == 0))
        rel = (slit_in.data - slit_out.data)[ok] / true_bkg[ok] - 1
        p95.append(np.percentile(np.abs(rel), 95))
        resid = np.where(ok, slit_out.data - source, 0.0)
        var = np.where(ok, slit_out.err.astype(float) ** 2, 0.0)
        has = ok.sum(axis=0) >= 3
        column_pulls.append(resid.sum(axis=0)[has] / np.sqrt(var.sum(axis=0)[has]))
    return np.array(p95), np.concatenate(column_pulls)


def _master_error(master, truth):
    """Robust scatter of a master about the true sky, its smooth offset taken out.

    The master's level and tilt carry the background slitlets' mean calibration
    error (which every slitlet's own factor takes out); what is left is its noise.
    """
    wave, sb = master
    true_wave, true_sb = truth.background_1d()
    rel = sb / np.interp(wave, true_wave, true_sb) - 1
    ok = np.isfinite(rel)
    trend = np.polyval(np.polyfit(wave[ok], rel[ok], 3), wave[ok])
    return 1.4826 * np.median(np.abs(rel[ok] - trend))


def test_step_adds_source_sky_and_keeps_errors_honest(calibration_scatter_runs):
    truth, slits, without, with_sky, masters, _ = calibration_scatter_runs
    qa = with_sky.meta.master_background_qa.instance
    record = qa["source_sky"]
    assert record["applied"]
    # Every point-source slitlet the step rescaled gave its sky rows.
    rescaled = set(qa["calibration_scatter"]["rescaled_slits"])
    assert record["n_source_slits"] >= 8
    assert set(record["source_slits"]) <= rescaled
    assert min(record["pixels"].values()) > 1000
    # 8 background slitlets, ~10 source slitlets of ~1/3 the depth: variance ~0.5-0.8x.
    assert record["median_variance_ratio"] < 0.85
    assert qa["master_variance"]["n_spectra"] == 8 + record["n_source_slits"]
    old = without.meta.master_background_qa.instance
    assert "source_sky" not in old
    assert old["master_variance"]["n_spectra"] == 8
    # The master is nearer the true sky: its noise drops with its variance.
    before, after = (_master_error(masters[k], truth) for k in ("without", "with"))
    assert after < 0.92 * before
    # The source slitlets' ERR, with the smaller master variance, still holds for columns.
    _, pulls = _source_figures(truth, slits, with_sky)
    assert np.std(pulls) == pytest.approx(1.0, abs=0.1)


def test_new_master_is_expanded_and_fitted_again(calibration_scatter_runs):
    """Source sky added: the second pass expands the new master, not the first one."""
    *_, with_sky, _, calls = calibration_scatter_runs
    assert with_sky.meta.master_background_qa.instance["source_sky"]["applied"]
    for kind in ("expanded", "corrections"):
        first, second = calls["with"][kind]
        assert second is not first
        assert second.n_used.max() > first.n_used.max()  # the master with the sky rows
        assert len(calls["without"][kind]) == 1


@pytest.fixture(scope="module")
def well_calibrated_runs(synthetic_instrument, tmp_path_factory):
    """A scene without calibration errors: the step with and without source sky."""
    from jwst_mbkg_plus import MasterBackgroundMosPlusStep
    from jwst_mbkg_plus.synthetic import Scene, extract_slits, local_crds_context, make_exposure

    scene = Scene(n_background=8, n_point=6, n_extended=0, shutters_per_slitlet=3,
                  detectors=("NRS1",), noise_fraction=0.2, seed=11)
    folder = tmp_path_factory.mktemp("source_sky_calibrated")
    exposure = make_exposure(scene, folder, instrument=synthetic_instrument)
    runs, calls, lines = {}, {}, {}
    logger = logging.getLogger("jwst_mbkg_plus")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with local_crds_context(synthetic_instrument):
            slits = extract_slits(exposure.rate_path)
            for name, pars in (("without", {"use_source_sky": False}), ("with", {})):
                handler = _Lines()
                logger.addHandler(handler)
                try:
                    with _counted() as calls[name]:
                        runs[name] = MasterBackgroundMosPlusStep.call(slits, **pars)
                finally:
                    logger.removeHandler(handler)
                lines[name] = handler.lines
    finally:
        logger.setLevel(old_level)
    return runs, calls, lines


class _Lines(logging.Handler):
    """The INFO and higher lines of the step's own loggers."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append((record.name, record.levelno, record.getMessage()))


def test_unchanged_master_is_expanded_once_and_subtracts_as_without(well_calibrated_runs):
    """No scatter: the first pass is the subtraction's; the result is use_source_sky=False's."""
    runs, calls, lines = well_calibrated_runs
    qa = runs["with"].meta.master_background_qa.instance
    assert not qa["source_sky"]["applied"]
    assert not qa["calibration_scatter"]["detected"]
    # One expansion and one set of factors, against the master that is subtracted.
    assert len(calls["with"]["expanded"]) == 1
    assert len(calls["with"]["corrections"]) == 1
    assert calls["with"]["expanded"][0] is calls["with"]["corrections"][0]
    # The same background subtracted, bit for bit, and the same errors and flags.
    for a, b in zip(runs["with"].slits, runs["without"].slits, strict=True):
        for name in ("data", "err", "dq", "var_rnoise"):
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    old = runs["without"].meta.master_background_qa.instance
    assert qa["calibration_scatter"] == old["calibration_scatter"]
    # The factors' lines, held back by the quiet first pass, are logged once at INFO.
    factor_lines = {name: [m for logger, level, m in got
                           if logger.endswith("slit_factors") and level == logging.INFO]
                    for name, got in lines.items()}
    assert factor_lines["with"] == factor_lines["without"]
    assert sum("Calibration scatter between background slitlets not detected" in m
               for m in factor_lines["with"]) == 1
