"""Run-time cost of the spatial background options, side by side with jwst's step.

Builds one synthetic NIRSpec MOS exposure (14 slitlets on NRS1: 8 background,
4 point, 2 extended; G235M; 5% noise; no spatial variation by default), runs
jwst's front end once, then times in one process, interleaved (order rotated) ``--repeats``
times on the same slits: jwst's ``MasterBackgroundMosStep`` (stock, once), and
``MasterBackgroundMosPlusStep`` with its defaults (off), with
``spatial_model='auto'`` (spatial) and with ``slit_scale=True`` as well
(spatial+slit). Prints the median wall time of each and its ratio to "off"
and to stock.

Usage::

    python benchmarks/bench_spatial.py [--repeats 5] [--work /tmp/mbkg_bench_spatial]
        [--scene flat|gradient_y] [--out benchmarks/results_spatial.json]
"""

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

SETTINGS = {
    "off": {},
    "spatial": {"spatial_model": "auto"},
    "spatial+slit": {"spatial_model": "auto", "slit_scale": True},
}
SCENES = {"flat": {}, "gradient_y": {"gradient_y": 0.05}}


def main(argv=None):
    """Time the settings and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scene", default="flat", choices=sorted(SCENES))
    parser.add_argument("--work", default="/tmp/mbkg_bench_spatial")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from jwst.master_background import MasterBackgroundMosStep

    from jwst_mbkg_plus import MasterBackgroundMosPlusStep
    from jwst_mbkg_plus.offline import configure_offline_crds
    from jwst_mbkg_plus.synthetic import (
        Scene,
        build_instrument,
        default_instrument_path,
        extract_slits,
        local_crds_context,
        make_exposure,
    )

    configure_offline_crds()
    instrument = build_instrument(default_instrument_path())
    scene = Scene(n_background=8, n_point=4, n_extended=2, detectors=("NRS1",),
                  noise_fraction=0.05, seed=7, **SCENES[args.scene])
    exposure = make_exposure(scene, Path(args.work) / args.scene, instrument=instrument)
    times = {name: [] for name in ["stock", *SETTINGS]}
    with local_crds_context(instrument):
        slits = extract_slits(exposure.rate_path)
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.WARNING)
        t0 = time.perf_counter()
        MasterBackgroundMosStep.call(slits).close()
        times["stock"].append(time.perf_counter() - t0)
        names = list(SETTINGS)
        for repeat in range(args.repeats):
            # Rotate the order: whichever runs first after another setting pays
            # for what that one left behind (garbage, caches).
            for name in names[repeat % len(names):] + names[: repeat % len(names)]:
                pars = SETTINGS[name]
                t0 = time.perf_counter()
                MasterBackgroundMosPlusStep.call(slits, **pars).close()
                times[name].append(time.perf_counter() - t0)
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "scene": args.scene,
        "repeats": args.repeats,
        "seconds_median": median,
        "seconds_all": times,
        "ratio_to_off": {name: median[name] / median["off"] for name in SETTINGS},
        "ratio_to_stock": {name: median[name] / median["stock"] for name in SETTINGS},
    }
    for name in times:
        print(
            f"{name:13s} {median[name]:7.2f} s"
            + (
                f"   / off {result['ratio_to_off'][name]:.3f}   / stock "
                f"{result['ratio_to_stock'][name]:.3f}"
                if name in SETTINGS
                else ""
            ),
            flush=True,
        )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
