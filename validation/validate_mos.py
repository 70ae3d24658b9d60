"""Validate MasterBackgroundMosPlusStep against the truth, side by side with jwst's step.

Builds synthetic NIRSpec MOS exposures (9 background slitlets on one detector,
NRS1 by default or ``--detector NRS2``; G235M by default, any disperser with
``--grating``, any sky with ``--sky``; seed 7 by default, several with
``--seeds``) with the project's generator, runs jwst's stock ``MasterBackgroundMosStep`` and
``MasterBackgroundMosPlusStep`` on the same extracted slits in one process, and
prints, for each scene and noise level:

* bias: median over wavelength of (master / truth - 1);
* source residual: median over source-slitlet pixels of the noise-free residual
  (subtracted background / true background - 1), per slitlet and over all
  source pixels, and in ten equal wavelength bands spanning the part of the
  disperser's range the source slitlets cover on the detector
  (``band_coverage_um``: the range of the source slits' wavelengths, clipped to
  the disperser's; all of it for the modes whose spectra fit on one detector,
  a part of it for G395H, which differs between layouts); a band with no
  source pixel is NaN (``null`` in the JSON file);
* pulls of the background slitlets after subtraction: std of residual / ERR
  per pixel and of column sums / their propagated error;
* science pixels turned NaN by the step;
* in scenes with hot pixels, the largest over-subtraction in the source
  slitlets, (true - subtracted background) / ERR, minimum over their pixels;
* the slitlets the plus step's QA record names as rejected.

Usage::

    python validation/validate_mos.py [--scenes clean,contaminated,hot] [--noise 0.02,0.2]
        [--grating G235M] [--detector NRS1|NRS2] [--sky default|prism_sky|FILE.csv]
        [--seeds 7[,8,...]] [--out validation/results_mos.json] [--work /tmp/mbkg_validation]
    python validation/validate_mos.py --floor-check validation/results_mos_g395h_nrs1_seeds.json

``--grating PRISM`` injects the built-in real PRISM sky unless ``--sky`` says otherwise.

Results are keyed ``scene@noise`` for seed 7 (as before ``--seeds`` existed, so
older results files stay comparable) and ``scene@noise@seedN`` for any other
seed. With more than one seed, ``scene@noise@seedmean`` holds, per step, the
mean over seeds of the overall and per-band figures and their standard error
(std / sqrt(n_seeds), the seed-to-seed noise floor of the mean).
"""

import argparse
import json
import time
from pathlib import Path

import _common
import numpy as np

SCENES = {
    "clean": {},
    "contaminated": {"n_contaminated": 2, "contaminant_fraction": 0.3},
    "hot": {"hot_pixels_per_slit": 18, "hot_clusters_per_slit": 4, "hot_pixel_level": 30.0},
}


def _read_master(folder):
    from stdatamodels.jwst import datamodels

    path = next(Path(folder).glob("*_masterbg1d.fits"))
    with datamodels.open(path) as model:
        table = model.spec[0].spec_table
        return tuple(
            np.asarray(table[c], float) for c in ("WAVELENGTH", "SURF_BRIGHT", "SB_ERROR")
        )


def band_noise_floor(wave_m, sb_m, err_m, oversample, src_waves, edges):
    """
    The photon-noise floor of each band's residual: 1-sigma of the master's mean there.

    A band's median residual averages the master's error over the band's samples,
    so no smoothing lowers it: it is set by the background slitlets' counts in the
    band. Over the master samples within the band's source-pixel wavelengths,
    sqrt(mean relative variance / independent samples), with ``oversample`` grid
    samples per detector pixel sharing pixels.

    Returns
    -------
    list of float
        Per band, the floor (relative); NaN where the band has no source pixel.
    """
    floor = []
    which = np.digitize(src_waves, edges) - 1
    good = np.isfinite(sb_m) & np.isfinite(err_m) & (sb_m != 0)
    for k in range(len(edges) - 1):
        w = src_waves[which == k]
        use = good & (wave_m >= w.min()) & (wave_m <= w.max()) if w.size else np.zeros_like(good)
        n_independent = use.sum() / oversample
        if n_independent < 1:
            floor.append(float("nan"))
            continue
        rel_var = np.mean((err_m[use] / sb_m[use]) ** 2)
        floor.append(float(np.sqrt(rel_var / n_independent)))
    return floor


#: Number of equal wavelength bands of the per-band source residual.
N_BANDS = 10


#: Seed of the single-seed runs (the key without a ``@seed`` suffix).
DEFAULT_SEED = 7

#: ``--settings`` names beside ``stock`` and ``plus`` (the defaults): plus step parameters.
PLUS_SETTINGS = {"plus_unsmoothed": {"master_smoothing": "none"},
                 "plus_noscale": {"slit_scale": False}}

#: Figures averaged over seeds by ``--seeds``.
_MEAN_KEYS = (
    "bias",
    "source_residual_median",
    "source_residual_all_pixels",
    "source_residual_bands",
    "pull_std",
    "column_pull_std",
    "source_pixels_bands",
    "source_residual_bands_floor",
    "qa_pull_spread",
    "qa_column_pull_spread",
)


def band_coverage(slits, wrange_um):
    """
    Wavelength range the slits' finite pixels cover, clipped to the disperser's range.

    Parameters
    ----------
    slits : sequence of SlitModel
        Extracted slits of one detector (the source slitlets).
    wrange_um : tuple of float
        The disperser's wavelength range [micron].

    Returns
    -------
    tuple of float
        (low, high) in micron.
    """
    lo, hi = np.inf, -np.inf
    for slit in slits:
        wave = np.asarray(slit.wavelength, float)
        use = np.isfinite(wave) & np.isfinite(slit.data)
        if use.any():
            lo, hi = min(lo, float(wave[use].min())), max(hi, float(wave[use].max()))
    # Bounding boxes pad 10 px, so full-band spectra reach past the range ends:
    # clipping gives exactly the disperser's range for them.
    return max(lo, wrange_um[0]), min(hi, wrange_um[1])


def _metrics(name, slits_in, slits_out, master, truth, qa=None, band=None):
    wave_t, sb_t = truth.background_1d()
    wave_m, sb_m, err_m = master
    good = np.isfinite(sb_m) & (sb_m != 0)
    ratio = sb_m[good] / np.interp(wave_m[good], wave_t, sb_t) - 1
    has_hot = any(truth.hot_pixel_positions(n) for n in truth.background_names())
    out = {"bias": float(np.median(ratio))}
    src_res, pulls, col_pulls, n_nan, worst_hot = [], [], [], 0, np.inf
    n_unsubtracted = 0
    src_pixels, src_waves = [], []
    for slit_in, slit_out in zip(slits_in, slits_out, strict=True):
        t = truth.slit(slit_in.name)
        true_rate = truth.cutout(slit_in.name, "background", slit_in) / truth.cutout(
            slit_in.name, "factor", slit_in
        )
        subtracted = slit_in.data - slit_out.data
        finite_in = np.isfinite(slit_in.data)
        n_nan += int((finite_in & ~np.isfinite(slit_out.data)).sum())
        ok = finite_in & np.isfinite(slit_out.data) & np.isfinite(true_rate) & (true_rate > 0)
        # Pixels the step flags DO_NOT_USE instead of subtracting (beyond the master).
        unsubtracted = ok & ((slit_out.dq & 1) != 0) & ((slit_in.dq & 1) == 0)
        n_unsubtracted += int(unsubtracted.sum())
        ok &= ~unsubtracted
        if t["kind"] == "background":
            with np.errstate(divide="ignore", invalid="ignore"):
                pull = slit_out.data / slit_out.err
            use = ok & np.isfinite(pull) & ~truth.hot_pixel_mask(slit_in)
            if int(slit_in.name) in truth.contaminated:
                continue
            pulls.append(pull[use])
            column = np.where(use, slit_out.data, 0.0).sum(axis=0)
            column_var = np.where(use, slit_out.err.astype(float) ** 2, 0.0).sum(axis=0)
            has = use.sum(axis=0) >= 3
            col_pulls.append(column[has] / np.sqrt(column_var[has]))
        else:
            src_res.append(np.median(subtracted[ok] / true_rate[ok] - 1))
            src_pixels.append(subtracted[ok] / true_rate[ok] - 1)
            src_waves.append(truth.cutout(slit_in.name, "wavelength", slit_in)[ok])
            with np.errstate(divide="ignore", invalid="ignore"):
                sigma = (true_rate - subtracted) / slit_out.err
            if has_hot:
                worst_hot = min(worst_hot, float(np.nanmin(np.where(ok, sigma, np.inf))))
    out["source_residual_median"] = float(np.median(src_res))
    out["source_residual_max_abs"] = float(np.max(np.abs(src_res)))
    src_pixels = np.concatenate(src_pixels)
    src_waves = np.concatenate(src_waves)
    out["source_residual_all_pixels"] = float(np.median(src_pixels))
    if band is not None:
        edges = np.linspace(band[0], band[1], N_BANDS + 1)
        which = np.digitize(src_waves, edges) - 1
        out["band_edges_um"] = edges.tolist()
        out["source_residual_bands"] = [
            float(np.median(src_pixels[which == k])) if np.any(which == k) else float("nan")
            for k in range(N_BANDS)
        ]
        # A band at the end of a detector's range may hold few source pixels.
        out["source_pixels_bands"] = [int(np.sum(which == k)) for k in range(N_BANDS)]
        if qa is not None:
            # A smoothed master's SB_ERROR is per sample, its samples correlated: a
            # band's mean keeps the noise of the samples as combined, about
            # median_noise_reduction times larger (master_smoothing='adaptive').
            smoothing = qa.get("master_smoothing") or {}
            unsmoothed = float(smoothing.get("median_noise_reduction", 1.0) or 1.0)
            out["source_residual_bands_floor"] = band_noise_floor(
                wave_m, sb_m, err_m * unsmoothed, qa.get("grid", {}).get("oversample", 1),
                src_waves, edges,
            )
    pulls = np.concatenate(pulls)
    col_pulls = np.concatenate(col_pulls)
    out["pull_std"] = float(np.std(pulls))
    out["column_pull_std"] = float(np.std(col_pulls))
    out["science_pixels_turned_nan"] = n_nan
    out["pixels_flagged_not_subtracted"] = n_unsubtracted
    if np.isfinite(worst_hot):
        out["min_science_sigma"] = worst_hot
    if qa is not None:
        out["rejected"] = sorted(qa.get("vetting", {}).get("rejected", {}))
        # The QA record's error-model pulls (1.4826 MAD; the column variance from the
        # master's samples), beside the ERR-based ones above.
        out["qa_pull_spread"] = (qa.get("pull_summary") or {}).get("pull_spread")
        out["qa_column_pull_spread"] = (qa.get("column_pull_summary") or {}).get("pull_spread")
    out["truth_contaminated"] = list(truth.contaminated)
    return out


def run_scene(
    label, noise, work, instrument, *, grating="G235M", sky="default", detector="NRS1", seed=7,
    steps=("stock", "plus"),
):
    """
    Build one scene, run both steps, return their metrics.

    Parameters
    ----------
    label : str
        A key of `SCENES`.
    noise : float
        Per-pixel noise fraction.
    work : str or pathlib.Path
        Work folder; the exposure goes to a sub-folder named after the grating,
        detector, sky, scene, noise and (other than 7) seed.
    instrument : Instrument
        The synthetic instrument.
    grating : str, optional
        Disperser.
    sky : str, optional
        Background spectrum (see `Scene`).
    detector : str, optional
        "NRS1" or "NRS2": the detector all slitlets go to.
    seed : int, optional
        Scene seed.
    steps : sequence of str, optional
        Which of ``"stock"``, ``"plus"`` and the names of `PLUS_SETTINGS` to run.

    Returns
    -------
    dict
        ``{"stock": metrics, "plus": metrics}`` (the steps run).
    """
    import asdf
    from jwst.master_background import MasterBackgroundMosStep

    from jwst_mbkg_plus import MasterBackgroundMosPlusStep
    from jwst_mbkg_plus.synthetic import (
        Scene,
        extract_slits,
        load_truth,
        local_crds_context,
        make_exposure,
    )
    from jwst_mbkg_plus.synthetic import instrument as instrument_module

    scene = Scene(
        n_background=9,
        n_point=3,
        n_extended=2,
        detectors=(detector,),
        grating=grating,
        background=sky,
        noise_fraction=noise,
        seed=seed,
        **SCENES[label],
    )
    seed_tag = "" if seed == DEFAULT_SEED else f"_seed{seed}"
    folder = Path(work) / f"{grating}_{detector}_{Path(str(sky)).stem}_{label}_{noise}{seed_tag}"
    exposure = make_exposure(scene, folder, instrument=instrument)
    truth = load_truth(exposure.truth_path)
    results = {}
    with local_crds_context(instrument):
        slits = extract_slits(exposure.rate_path)
        wrange = tuple(w * 1e6 for w in instrument_module.GRATINGS[grating]["wrange"])
        # The bands span the source slitlets, where the residual is measured.
        sources = [s for s in slits.slits if truth.slit(s.name)["kind"] != "background"]
        band = band_coverage(sources, wrange)
        for name in steps:
            cls = MasterBackgroundMosStep if name == "stock" else MasterBackgroundMosPlusStep
            out_dir = folder / name
            out_dir.mkdir(exist_ok=True)
            t0 = time.perf_counter()
            result = cls.call(slits, save_background=True, output_dir=str(out_dir),
                              **PLUS_SETTINGS.get(name, {}))
            seconds = time.perf_counter() - t0
            qa = None
            if name != "stock":
                with asdf.open(next(out_dir.glob("*_mbkgqa.asdf"))) as af:
                    qa = dict(af["master_background_qa"])
            metrics = _metrics(
                name, slits.slits, result.slits, _read_master(out_dir), truth, qa, band=band
            )
            metrics["seconds"] = seconds
            metrics["detector"] = detector
            metrics["seed"] = seed
            metrics["wrange_um"] = list(wrange)
            metrics["band_coverage_um"] = list(band)
            results[name] = metrics
            result.close()
    return results


def seed_mean(per_seed):
    """
    Mean over seeds of the overall and per-band figures of each step.

    Parameters
    ----------
    per_seed : list of dict
        ``{"stock": metrics, "plus": metrics}`` of each seed.

    Returns
    -------
    dict
        Per step, the mean of each of `_MEAN_KEYS` (NaN-aware per band),
        ``<key>_sem`` its standard error over seeds and ``n_seeds``.
    """
    out = {}
    for step in per_seed[0]:
        mean = {"n_seeds": len(per_seed)}
        for key in _MEAN_KEYS:
            if not all(key in r[step] for r in per_seed):
                continue  # the noise floor: the plus step's master only
            values = np.array([r[step][key] for r in per_seed], dtype=float)
            count = np.sum(np.isfinite(values), axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                avg = np.nansum(values, axis=0) / count
                sem = np.sqrt(np.nansum((values - avg) ** 2, axis=0) / (count - 1) / count)
            avg = np.where(count > 0, avg, np.nan)
            sem = np.where(count > 1, sem, np.nan)
            mean[key] = avg.tolist() if values.ndim > 1 else float(avg)
            mean[f"{key}_sem"] = sem.tolist() if values.ndim > 1 else float(sem)
        mean["rejected_per_seed"] = [r[step].get("rejected") for r in per_seed]
        out[step] = mean
    return out


def _json_safe(obj):
    """NaN -> None, so the results file is plain JSON (an empty band is ``null``)."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _bands_text(values):
    return " ".join("   nan" if not np.isfinite(v) else f"{100 * v:+.3f}" for v in values)


def _print_row(key, name, m):
    print(
        f"{key:18s} {name:5s} bias {100 * m['bias']:+7.3f}%  "
        f"src {100 * m['source_residual_median']:+7.3f}% "
        f"(max {100 * m['source_residual_max_abs']:.3f}%)  "
        f"pull {m['pull_std']:.3f} col {m['column_pull_std']:.3f}  "
        + (f"QA pull {m['qa_pull_spread']:.3f} col {m['qa_column_pull_spread']:.3f}  "
           if m.get("qa_column_pull_spread") is not None else "")
        + f"NaN {m['science_pixels_turned_nan']:5d}  "
        f"hot {m.get('min_science_sigma', float('nan')):+6.1f}  "
        f"rej {m.get('rejected', '-')} truth {m['truth_contaminated']}  "
        f"{m['seconds']:.0f}s",
        flush=True,
    )
    if "source_residual_bands" in m:
        overall = 100 * m["source_residual_all_pixels"]
        lo, hi = m["band_coverage_um"]
        print(
            f"{'':18s} {name:5s} all src px {overall:+.3f}%  "
            f"bands {lo:.3f}-{hi:.3f} um [%] {_bands_text(m['source_residual_bands'])}",
            flush=True,
        )
        if "source_residual_bands_floor" in m:
            print(f"{'':18s} {name:5s} noise floor of the bands [%] "
                  f"{_bands_text(m['source_residual_bands_floor'])}", flush=True)


def floor_check(results, scene, limit=0.003):
    """
    How the plus step's single-seed band values compare with their noise floor.

    Parameters
    ----------
    results : dict
        A ``--seeds`` results file.
    scene : str
        ``scene@noise``, e.g. ``"clean@0.2"``.
    limit : float, optional
        Band value (relative) to count the bands beyond.

    Returns
    -------
    dict
        ``n_seeds``, ``rms_value_over_floor`` (over seeds and bands; 1 when the
        floor is the whole scatter and the bias is nil), ``floor_range`` and
        ``n_bands_beyond_limit`` of ``n_bands``.
    """
    keys = [k for k in results if (k == scene or k.startswith(scene + "@seed"))
            and not k.endswith("seedmean")]
    def values(k, field):
        return [np.nan if v is None else v for v in results[k]["plus"][field]]
    value = np.array([values(k, "source_residual_bands") for k in keys], dtype=float)
    floor = np.array([values(k, "source_residual_bands_floor") for k in keys], dtype=float)
    return {
        "n_seeds": len(keys),
        "rms_value_over_floor": float(np.sqrt(np.nanmean((value / floor) ** 2))),
        "floor_range": [float(np.nanmin(floor)), float(np.nanmax(floor))],
        "n_bands_beyond_limit": int(np.sum(np.abs(value) > limit)),
        "n_bands": int(np.sum(np.isfinite(value))),
    }


def main(argv=None):
    """Run the validation and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--floor-check",
        default=None,
        metavar="RESULTS",
        help="only print floor_check of an existing --seeds results file, for each scene",
    )
    parser.add_argument("--scenes", default="clean,contaminated,hot")
    parser.add_argument("--noise", default="0.02,0.2")
    parser.add_argument("--grating", default="G235M", help="G235M, G395M, G395H, PRISM, ...")
    parser.add_argument(
        "--detector",
        default="NRS1",
        choices=("NRS1", "NRS2"),
        help="detector all slitlets go to (default NRS1)",
    )
    parser.add_argument(
        "--seeds",
        default=str(DEFAULT_SEED),
        help="comma-separated scene seeds (default 7); with several, the seed-mean is added",
    )
    parser.add_argument(
        "--sky",
        default=None,
        help="'default' (analytic), 'prism_sky' (built-in real PRISM sky) or a CSV file "
        "(wave [micron], flux [MJy/sr]); default prism_sky for PRISM, else 'default'",
    )
    parser.add_argument(
        "--settings",
        default="stock,plus",
        help="steps to run: 'stock,plus' (default) or 'plus' (stock's figures of the same "
        "scenes and seeds are identical: jwst's step does not depend on this package); "
        "also plus_unsmoothed (master_smoothing='none'), plus_noscale (slit_scale=False)",
    )
    parser.add_argument("--work", default="/tmp/mbkg_validation")
    parser.add_argument("--out", default="validation/results_mos.json")
    args = parser.parse_args(argv)
    if args.floor_check:
        results = json.loads(Path(args.floor_check).read_text())
        for scene in sorted({k.split("@seed")[0] for k in results}):
            print(scene, json.dumps(floor_check(results, scene)))
        return
    seeds = _common.parse_seeds(args.seeds)

    from jwst_mbkg_plus.offline import configure_offline_crds

    configure_offline_crds(Path(args.work) / "crds_base")
    _common.quiet_loggers(names=("jwst", "stpipe"))
    from jwst_mbkg_plus.synthetic import build_instrument

    instrument = build_instrument(Path(args.work) / "synthetic_crds")
    sky = args.sky or ("prism_sky" if args.grating == "PRISM" else "default")
    if sky not in ("default", "prism_sky"):
        sky = str(Path(sky).resolve())
    table = {}
    for label in args.scenes.split(","):
        for noise in (float(n) for n in args.noise.split(",")):
            base = f"{label}@{noise:g}"
            per_seed = []
            for seed in seeds:
                key = base if seed == DEFAULT_SEED else f"{base}@seed{seed}"
                table[key] = run_scene(
                    label,
                    noise,
                    args.work,
                    instrument,
                    grating=args.grating,
                    sky=sky,
                    detector=args.detector,
                    seed=seed,
                    steps=[n for n in args.settings.split(",") if n],
                )
                per_seed.append(table[key])
                for name, m in table[key].items():
                    _print_row(key, name, m)
            if len(seeds) > 1:
                table[f"{base}@seedmean"] = mean = seed_mean(per_seed)
                for name, m in mean.items():
                    print(
                        f"{base + '@seedmean':18s} {name:5s} all src px "
                        f"{100 * m['source_residual_all_pixels']:+.3f}% "
                        f"(+- {100 * m['source_residual_all_pixels_sem']:.3f})  bands [%] "
                        f"{_bands_text(m['source_residual_bands'])}  "
                        f"(+- {_bands_text(m['source_residual_bands_sem'])})",
                        flush=True,
                    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(_json_safe(table), indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
