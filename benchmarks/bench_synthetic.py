"""Time building the synthetic instrument and exposures of 14 and 150 slitlets.

Usage::

    python benchmarks/bench_synthetic.py [--work /tmp/mbkg_bench_synth]
"""

import argparse
import tempfile
import time
from pathlib import Path

from jwst_mbkg_plus.offline import configure_offline_crds


def main(argv=None):
    """Build a fresh instrument and two exposures; print their build times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None)
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="mbkg_bench_synth_"))
    configure_offline_crds(work / "crds_base")
    from jwst_mbkg_plus.synthetic import Scene, build_instrument, make_exposure

    t0 = time.perf_counter()
    instrument = build_instrument(work / "instrument")
    print(f"instrument (2 modes x 2 detectors), fresh: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    build_instrument(work / "instrument")
    print(f"instrument, cached: {time.perf_counter() - t0:.3f} s")
    scenes = {
        "14 slitlets (test size)": Scene(
            n_background=8, n_point=3, n_extended=3, noise_fraction=0.02, seed=21
        ),
        "150 slitlets, NRS1+NRS2": Scene(
            n_background=100, n_point=25, n_extended=25, detectors=("NRS1", "NRS2"),
            noise_fraction=0.02, seed=5,
        ),
    }
    for label, scene in scenes.items():
        result = make_exposure(scene, work / label.split()[0], instrument=instrument)
        print(f"exposure {label}: {result.seconds:.1f} s")


if __name__ == "__main__":
    main()
