"""Source flux with winged profiles: calwebb_spec2_plus's x1d against subtracting the true sky.

Builds a synthetic NIRSpec MOS exposure whose point sources have a Moffat
profile along the slit (``Scene(point_profile='moffat')``: wings that reach the
neighbouring shutters) and whose slitlets each carry their own calibration
error (``Scene(calibration_error=(level, tilt))``), some point-source slitlets
holding a second, undeclared source in a shutter next to the primary one
(``Scene(n_two_source=...)``). Then it runs, from the same rate file:

* ``calwebb_spec2_plus`` with the MOS master background on (plus defaults);
* ``calwebb_spec2_plus`` with the master background off, on a copy of the rate
  file from which the true background (the truth file's calibrated sky over its
  calibration factor, per pixel) has been subtracted: the reference, what a
  perfect background subtraction gives through the same calibration,
  resampling and extraction;
* optionally (``--stock``) jwst's ``calwebb_spec2`` with its master background on.

Both runs carry the same noise, so their difference is the background
subtraction's error alone, provided resample_spec weights the pixels alike in
both: with its default ``ivm`` weights (inverse variance) the plus step's
larger ERR (the background model's variance joins it) changes the weights of a
point source's core against its wings and so the resampled flux. Every run
therefore resamples with ``weight_type='exptime'`` unless ``--weight-type``
says otherwise (``''``: jwst's default). Reported per point-source slitlet:

* ``x1d``: the relative difference of the extracted 1-D flux (``FLUX`` of the
  ``_x1d`` product, jwst's extract_1d with the synthetic instrument's 5-pixel
  box at the declared source) summed over wavelength, run / reference - 1, and
  the largest absolute median of that difference over ten equal wavelength bands;
* ``box``: per source (the declared one and a companion) the same for a box of
  half a shutter (+-0.5 slit-frame units) about the source's true position in
  the ``_cal`` product, summed over its pixels.

Usage::

    python validation/validate_source_flux.py [--noise 0.0,0.05,0.2] [--seeds 1,2,3]
        [--grating G235M] [--n-background 12] [--n-point 8] [--n-two 4]
        [--calibration 0.03,0.02] [--profile moffat] [--beta 2.5] [--stock]
        [--weight-type exptime|ivm|''] [--sky-electrons 100]
        [--work /tmp/mbkg_source_flux] [--out validation/results_source_flux.json]

Results are merged into ``--out`` under ``<grating>@<noise>@<seed>@<weight type>`` keys.
"""

import logging
import shutil
import time
from pathlib import Path

import numpy as np

#: Half width of the per-source box in the ``_cal`` product (slit-frame units).
BOX_HALF = 0.5


def subtract_true_background(rate_path, truth, out_path):
    """
    Write a copy of a rate file with its true background subtracted.

    Parameters
    ----------
    rate_path : pathlib.Path
        The synthetic rate file.
    truth : `~jwst_mbkg_plus.synthetic.truth.Truth`
        Its truth.
    out_path : pathlib.Path
        The copy (the MSA file is copied beside it).

    Returns
    -------
    int
        Pixels of point-source slits whose background the truth does not define
        (painted by two slits), left as they are.
    """
    from stdatamodels.jwst import datamodels

    undefined = 0
    with datamodels.open(rate_path) as model:
        out = model.copy()
    data = out.data.astype(np.float64)
    for s in truth.slits.values():
        bkg = np.asarray(s["background"], dtype=float) / np.asarray(s["factor"], dtype=float)
        ny, nx = bkg.shape
        window = np.s_[s["ystart"] - 1: s["ystart"] - 1 + ny, s["xstart"] - 1: s["xstart"] - 1 + nx]
        ok = np.isfinite(bkg)
        data[window][ok] -= bkg[ok]
        if s["kind"] == "point":
            painted = np.isfinite(np.asarray(s["wavelength"], dtype=float))
            undefined += int((painted & ~ok).sum())
    out.data = data.astype(np.float32)
    out.meta.filename = Path(out_path).name
    out.save(out_path)
    out.close()
    msa = Path(rate_path).parent / Path(out.meta.instrument.msa_metadata_file).name
    shutil.copy(msa, Path(out_path).parent / msa.name)
    return undefined


def _spectra(x1d_path):
    from stdatamodels.jwst import datamodels

    out = {}
    with datamodels.open(x1d_path) as x1d:
        for spec in x1d.spec:
            table = spec.spec_table
            out[str(spec.name)] = (np.asarray(table["WAVELENGTH"], dtype=float),
                                   np.asarray(table["FLUX"], dtype=float))
    return out


def compare_x1d(run, reference, names, n_bands=10):
    """
    Relative differences of extracted 1-D fluxes, run against reference.

    Parameters
    ----------
    run, reference : dict
        Slit name -> (wavelength, flux) (`_spectra`).
    names : list of str
        The slits to compare.
    n_bands : int, optional
        Equal wavelength bands for the band medians.

    Returns
    -------
    dict
        Slit name -> ``flux_rel_diff`` (sum over the points finite in both,
        run / reference - 1), ``worst_band_rel_diff`` (the band median of the
        per-point relative difference largest in absolute value), ``n_points``.
    """
    out = {}
    for name in names:
        if name not in run or name not in reference:
            continue
        wave, flux = run[name]
        wave_ref, flux_ref = reference[name]
        if wave.shape != wave_ref.shape:
            flux = np.interp(wave_ref, wave, flux, left=np.nan, right=np.nan)
        ok = np.isfinite(flux) & np.isfinite(flux_ref) & (flux_ref != 0)
        if ok.sum() < n_bands:
            continue
        rel = flux[ok] / flux_ref[ok] - 1
        edges = np.linspace(wave_ref[ok].min(), wave_ref[ok].max(), n_bands + 1)
        band = np.clip(np.searchsorted(edges, wave_ref[ok], side="right") - 1, 0, n_bands - 1)
        medians = [np.median(rel[band == b]) for b in range(n_bands) if (band == b).any()]
        out[name] = {
            "flux_rel_diff": float(flux[ok].sum() / flux_ref[ok].sum() - 1),
            "worst_band_rel_diff": float(max(medians, key=abs)),
            "n_points": int(ok.sum()),
        }
    return out


def box_fluxes(cal_path, truth, half=BOX_HALF):
    """
    Per point source, the ``_cal`` data summed in a box about its true position.

    Parameters
    ----------
    cal_path : pathlib.Path
        A ``_cal`` product.
    truth : `~jwst_mbkg_plus.synthetic.truth.Truth`
        The exposure's truth (``point_sources``, ``slit_y``).
    half : float, optional
        Half height of the box (slit-frame units).

    Returns
    -------
    dict
        ``"<slit>/<k>"`` (k = 0 for the declared source, 1 for a companion) ->
        (sum, mask) with mask the pixels summed.
    """
    from stdatamodels.jwst import datamodels

    out = {}
    with datamodels.open(cal_path) as cal:
        for slit in cal.slits:
            entry = truth.slit(slit.name)
            if "point_sources" not in entry:
                continue
            slit_y = truth.cutout(slit.name, "slit_y", slit)
            data = np.asarray(slit.data, dtype=float)
            for k, src in enumerate(entry["point_sources"]):
                box = np.isfinite(slit_y) & (np.abs(slit_y - src["slit_y"]) < half)
                out[f"{slit.name}/{k}"] = (data, box)
    return out


def compare_boxes(run, reference):
    """
    Relative difference of each source's box sum, over pixels finite in both runs.

    Parameters
    ----------
    run, reference : dict
        Outputs of `box_fluxes` for the run and the reference.

    Returns
    -------
    dict
        ``"<slit>/<k>"`` -> run / reference - 1.
    """
    out = {}
    for key, (data_ref, box) in reference.items():
        if key not in run:
            continue
        data, _ = run[key]
        ok = box & np.isfinite(data) & np.isfinite(data_ref)
        total = data_ref[ok].sum()
        if ok.sum() and total:
            out[key] = float(data[ok].sum() / total - 1)
    return out


def _run_pipeline(cls, rate, out, master_background, weight_type):
    from jwst_mbkg_plus.jwst_internals import quiet_call_options

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    steps = {"master_background_mos": {"skip": not master_background}}
    if weight_type:
        steps["resample_spec"] = {"weight_type": weight_type}
    cls.call(str(rate), steps=steps, output_dir=str(out), save_results=True,
             **quiet_call_options())
    return time.perf_counter() - t0


def run_scene(args, noise, seed, instrument):
    """Build one exposure, run the pipelines, compare; return the results entry."""
    from jwst.pipeline import Spec2Pipeline

    from jwst_mbkg_plus.pipelines import Spec2PipelinePlus
    from jwst_mbkg_plus.synthetic import Scene, load_truth, local_crds_context, make_exposure

    scene = Scene(
        grating=args.grating, background="prism_sky" if args.grating == "PRISM" else "default",
        n_background=args.n_background, n_point=args.n_point, n_extended=0,
        n_two_source=args.n_two, point_profile=args.profile, moffat_beta=args.beta,
        calibration_error=tuple(args.calibration), noise_fraction=noise,
        sky_electrons=getattr(args, "sky_electrons", 0.0), detectors=("NRS1",), seed=seed,
    )
    electrons = getattr(args, "sky_electrons", 0.0)
    photons = f"_e{electrons:g}" if electrons else ""
    folder = Path(args.work) / (f"{args.grating}_{args.profile}_{noise}{photons}_{seed}_"
                                f"{args.weight_type or 'default'}")
    exposure = make_exposure(scene, folder / "exposure", instrument=instrument)
    rate = exposure.rate_paths["NRS1"]
    truth = load_truth(exposure.truth_paths["NRS1"])
    truth_rate = folder / "truth_rate" / rate.name
    truth_rate.parent.mkdir(parents=True, exist_ok=True)
    undefined = subtract_true_background(rate, truth, truth_rate)
    runs = {"reference": (Spec2PipelinePlus, truth_rate, False),
            "plus": (Spec2PipelinePlus, rate, True)}
    if args.stock:
        runs["stock"] = (Spec2Pipeline, rate, True)
    seconds = {}
    with local_crds_context(instrument):
        for label, (cls, path, mbkg) in runs.items():
            seconds[label] = _run_pipeline(cls, path, folder / label, mbkg,
                                           args.weight_type)
    points = sorted((str(n) for n, s in truth.slits.items() if s["kind"] == "point"), key=int)
    two = [str(n) for n, s in truth.slits.items() if len(s.get("point_sources", [])) > 1]
    reference = _spectra(next((folder / "reference").glob("*_x1d.fits")))
    boxes_ref = box_fluxes(next((folder / "reference").glob("*_cal.fits")), truth)
    entry = {"scene": scene.to_dict(), "weight_type": args.weight_type or "default",
             "two_source_slits": sorted(two, key=int),
             "undefined_truth_pixels": undefined, "seconds": seconds}
    for label in runs:
        if label == "reference":
            continue
        x1d = compare_x1d(_spectra(next((folder / label).glob("*_x1d.fits"))), reference,
                          points)
        boxes = compare_boxes(box_fluxes(next((folder / label).glob("*_cal.fits")), truth),
                              boxes_ref)
        flux = np.array([v["flux_rel_diff"] for v in x1d.values()])
        box = np.array(list(boxes.values()))
        entry[label] = {
            "x1d": x1d, "box": boxes,
            "max_abs_x1d_flux_rel_diff": float(np.abs(flux).max()) if flux.size else None,
            "rms_x1d_flux_rel_diff": float(np.sqrt(np.mean(flux**2))) if flux.size else None,
            "max_abs_box_rel_diff": float(np.abs(box).max()) if box.size else None,
            "max_abs_companion_box_rel_diff": float(max(
                (abs(v) for k, v in boxes.items() if k.endswith("/1")), default=np.nan)),
        }
        qa = next((folder / label).glob("*_mbkgqa.asdf"), None)
        if qa is not None:
            from jwst_mbkg_plus.io.products import read_qa

            record = read_qa(qa).get("calibration_scatter") or {}
            entry[label]["rescaled_slits"] = list(record.get("rescaled_slits", []))
            entry[label]["scatter_detected"] = record.get("detected")
    return entry


def main(argv=None):
    """Run the scenes and merge the results into ``--out``."""
    # Here, not at the top: tests/test_source_flux.py loads this file by its path, with
    # validation/ not on sys.path, and uses run_scene alone.
    import _common

    parser = _common.script_parser(__doc__, seeds="1", work="/tmp/mbkg_source_flux",
                                   out="validation/results_source_flux.json")
    parser.add_argument("--noise", default="0.0,0.05,0.2")
    parser.add_argument("--grating", default="G235M")
    parser.add_argument("--n-background", type=int, default=12)
    parser.add_argument("--n-point", type=int, default=8)
    parser.add_argument("--n-two", type=int, default=4)
    parser.add_argument("--calibration", default="0.03,0.02",
                        help="level, tilt[, curvature] rms of the calibration errors")
    parser.add_argument("--profile", default="moffat", choices=("moffat", "gaussian"))
    parser.add_argument("--beta", type=float, default=2.5)
    parser.add_argument("--stock", action="store_true", help="also run jwst's calwebb_spec2")
    parser.add_argument("--sky-electrons", type=float, default=0.0,
                        help="photon-counting noise (Scene.sky_electrons: the background "
                             "slitlets' median sky in electrons; VAR_RNOISE is then the read "
                             "noise alone, as in real data) instead of --noise")
    parser.add_argument("--weight-type", default="exptime",
                        help="resample_spec weight_type of every run ('' for jwst's default, "
                             "'ivm')")
    args = parser.parse_args(argv)
    args.calibration = [float(v) for v in args.calibration.split(",") if v]
    if 0 < len(args.calibration) < 3:
        args.calibration += [0.0] * (3 - len(args.calibration))
    logging.basicConfig(level=logging.WARNING)

    instrument = _common.offline_instrument()
    results = _common.read_json(args.out)
    for noise in (float(v) for v in args.noise.split(",")):
        for seed in _common.parse_seeds(args.seeds):
            entry = run_scene(args, noise, seed, instrument)
            noise_key = f"e{args.sky_electrons:g}" if args.sky_electrons else f"{noise}"
            key = f"{args.grating}@{noise_key}@{seed}@{args.weight_type or 'default'}"
            results = _common.merge_json(args.out, {key: entry})
            for label in ("plus", "stock"):
                if label in entry:
                    e = entry[label]
                    print(f"{args.grating} noise {noise} seed {seed} {label}: x1d flux "
                          f"max |diff| {100 * e['max_abs_x1d_flux_rel_diff']:.3f}% "
                          f"(rms {100 * e['rms_x1d_flux_rel_diff']:.3f}%), box max "
                          f"{100 * e['max_abs_box_rel_diff']:.3f}%, companions "
                          f"{100 * e['max_abs_companion_box_rel_diff']:.3f}%")
    return results


if __name__ == "__main__":
    main()
