"""The ``jwst-mbkg-plus`` command.

Sub-commands:

``demo``
    Build a synthetic NIRSpec MOS exposure with a known background, run
    calwebb_spec2 on it with jwst's stock master background step and with the
    plus step, and print per-slit background residuals against the truth, the
    run times and where the products are.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["handle_args", "main", "run_demo"]

log = logging.getLogger(__name__)


def _say(message):
    print(message, flush=True)  # noqa: T201 - a command's progress report


def _slit_residuals(background_2d, truth):
    """Median relative error of the subtracted background per slit, in percent."""
    rows = {}
    for bkg in background_2d.slits:
        slit = bkg
        true_rate = truth.cutout(slit.name, "background", slit) / truth.cutout(
            slit.name, "factor", slit
        )
        good = np.isfinite(true_rate) & (true_rate > 0) & np.isfinite(bkg.data)
        good &= (bkg.dq & 1) == 0
        if good.sum() == 0:
            rows[slit.name] = (truth.slit(slit.name)["kind"], float("nan"))
            continue
        rel = np.median(bkg.data[good] / true_rate[good] - 1)
        rows[slit.name] = (truth.slit(slit.name)["kind"], 100 * float(rel))
    return rows


def run_demo(workdir, *, n_background=6, noise=0.2, n_contaminated=1, stock=True, seed=1):
    """
    Run the demo: synthetic exposure, calwebb_spec2 stock and plus, residuals.

    Parameters
    ----------
    workdir : str or pathlib.Path
        Folder for the exposure and all products (created).
    n_background : int, optional
        Background slitlets in the scene.
    noise : float, optional
        Per-pixel noise as a fraction of the background.
    n_contaminated : int, optional
        Background slitlets carrying an undeclared source (30% of the background).
    stock : bool, optional
        Also run jwst's stock pipeline, for comparison.
    seed : int, optional
        Random seed of the scene.

    Returns
    -------
    dict
        Per pipeline: run time in seconds and per-slit residuals in percent.
    """
    from jwst_mbkg_plus.offline import configure_offline_crds

    workdir = Path(workdir).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    configure_offline_crds(workdir / "crds_base")

    from stdatamodels.jwst import datamodels

    from jwst_mbkg_plus.synthetic import (
        Scene,
        build_instrument,
        default_instrument_path,
        load_truth,
        local_crds_context,
        make_exposure,
    )

    _say("[1/4] Building the synthetic NIRSpec instrument (cached after the first run) ...")
    t0 = time.perf_counter()
    instrument = build_instrument(default_instrument_path())
    _say(f"      reference files and local CRDS context in {instrument.crds_path}"
         f" ({time.perf_counter() - t0:.1f} s)")

    _say("[2/4] Painting a G235M exposure on NRS1 with a known background ...")
    scene = Scene(
        n_background=n_background,
        n_point=2,
        n_extended=1,
        detectors=("NRS1",),
        noise_fraction=noise,
        n_contaminated=n_contaminated,
        hot_pixels_per_slit=5,
        hot_clusters_per_slit=1,
        hot_pixel_level=30.0,
        seed=seed,
    )
    exposure = make_exposure(scene, workdir / "exposure", instrument=instrument)
    truth = load_truth(exposure.truth_path)
    _say(f"      {exposure.rate_path.name}: {n_background} background slitlets "
         f"({n_contaminated} with an undeclared source), 3 source slitlets, "
         f"{100 * noise:.0f}% noise per pixel")

    from jwst.pipeline import Spec2Pipeline

    from jwst_mbkg_plus import Spec2PipelinePlus

    runs = [("plus", Spec2PipelinePlus)]
    if stock:
        runs.insert(0, ("stock", Spec2Pipeline))
    results = {}
    for step_no, (label, cls) in enumerate(runs, start=3):
        out = workdir / label
        out.mkdir(exist_ok=True)
        _say(f"[{step_no}/4] Running {cls.__name__} with master background on ...")
        t0 = time.perf_counter()
        with local_crds_context(instrument):
            cls.call(
                str(exposure.rate_path),
                steps={"master_background_mos": {"skip": False, "save_background": True}},
                output_dir=str(out),
                save_results=True,
                # Keep the terminal to the demo's own progress lines; the
                # pipeline's warnings still show through Python's last resort.
                configure_log=False,
            )
        seconds = time.perf_counter() - t0
        masterbg2d = next(out.glob("*_masterbg2d.fits"))
        with datamodels.open(masterbg2d) as bkg:
            residuals = _slit_residuals(bkg, truth)
        results[label] = {"seconds": seconds, "residuals": residuals, "folder": out}
        _say(f"      done in {seconds:.0f} s; products in {out}")

    _say("[4/4] Subtracted background minus true background, median per slit (% of truth):")
    names = list(results["plus"]["residuals"])
    header = f"      {'slit':>5s} {'kind':<11s}" + "".join(f"{k:>10s}" for k in results)
    _say(header)
    for name in names:
        kind = results["plus"]["residuals"][name][0]
        if int(name) in truth.contaminated:
            kind += "*"
        cells = "".join(f"{results[k]['residuals'][name][1]:+9.2f}%" for k in results)
        _say(f"      {name:>5s} {kind:<11s}{cells}")
    _say("      * background slitlet with an undeclared source")
    times = ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in results.items())
    _say(f"      calwebb_spec2 run times: {times}")
    _say(f"      products: {workdir}")
    return results


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="jwst-mbkg-plus", description="jwst_mbkg_plus command-line tools."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="run calwebb_spec2, stock and plus, on a synthetic NIRSpec MOS exposure",
        description=run_demo.__doc__.splitlines()[1].strip(),
    )
    demo.add_argument("--workdir", default="mbkg_plus_demo", help="output folder")
    demo.add_argument("--background-slitlets", type=int, default=6)
    demo.add_argument("--noise", type=float, default=0.2, help="per-pixel noise / background")
    demo.add_argument("--contaminated", type=int, default=1)
    demo.add_argument("--no-stock", action="store_true", help="skip jwst's stock pipeline")
    demo.add_argument("--seed", type=int, default=1)
    return parser


def handle_args(argv):
    """
    Run the command for a list of arguments.

    Parameters
    ----------
    argv : list of str
        Arguments, without the program name.

    Returns
    -------
    int
        Exit status.
    """
    args = _build_parser().parse_args(argv)
    if args.command == "demo":
        run_demo(
            args.workdir,
            n_background=args.background_slitlets,
            noise=args.noise,
            n_contaminated=args.contaminated,
            stock=not args.no_stock,
            seed=args.seed,
        )
    return 0


def main():
    """Entry point of the ``jwst-mbkg-plus`` console script."""
    sys.exit(handle_args(sys.argv[1:]))
