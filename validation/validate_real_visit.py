"""The real pid2736 MSA layout as a synthetic visit, through the batch with visit masters.

Paints the layout of a real MSA metadata file (program 2736 observation 7,
G395M, 3 nods) on the synthetic instrument with the ``synthetic-visit``
command's defaults (20% noise, sky levels 0.99 / 1.00 / 1.01 over the nods,
seed 1), runs ``jwst-mbkg-plus batch --visit-master`` on it (through
:func:`jwst_mbkg_plus.batch.run_batch`; finished products are reused), runs
jwst's stock calwebb_spec2 with its master background on each exposure (as Dask
tasks, 2 workers), and compares the 2-D background each subtracted
(``masterbg2d``) with the injected one, pixel by pixel: the median of
subtracted / true - 1 over the source slitlets' pixels (and, apart, the
background slitlets'), per exposure and pooled.

Command (about 25 minutes on 2 cores)::

    python validation/validate_real_visit.py MSA_FILE --work /tmp/mbkg_real_visit \
        --out validation/results_real_visit.json
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import _common
import numpy as np


def run_stock(rate, out, crds):
    """jwst's calwebb_spec2 with master_background_mos on (a Dask task)."""
    from jwst_mbkg_plus.offline import configure_offline_crds

    configure_offline_crds(crds, local_context=True)
    from jwst.pipeline import Spec2Pipeline

    stem = Path(rate).name.removesuffix("_rate.fits")
    if (Path(out) / f"{stem}_masterbg2d.fits").is_file():
        return {"file": Path(rate).name, "seconds": 0.0, "reused": True}
    t0 = time.perf_counter()
    Path(out).mkdir(parents=True, exist_ok=True)
    Spec2Pipeline.call(str(rate), output_dir=str(out), save_results=True, configure_log=False,
                       steps={"master_background_mos": {"skip": False,
                                                        "save_background": True}})
    return {"file": Path(rate).name, "seconds": time.perf_counter() - t0, "reused": False}


def _residuals(masterbg2d, truth):
    """Per slit: kind and the subtracted / true - 1 values over its valid pixels."""
    from stdatamodels.jwst import datamodels

    out = {}
    with datamodels.open(masterbg2d) as bkg:
        for slit in bkg.slits:
            if int(slit.name) not in truth.slits:
                continue
            true_rate = (truth.cutout(slit.name, "background", slit)
                         / truth.cutout(slit.name, "factor", slit))
            good = np.isfinite(true_rate) & (true_rate > 0) & np.isfinite(slit.data)
            good &= (slit.dq & 1) == 0
            if good.sum() == 0:
                continue
            out[slit.name] = (truth.slit(slit.name)["kind"],
                              (slit.data[good] / true_rate[good] - 1).astype(float))
    return out


def _figures(per_slit):
    src = [v for k, v in per_slit.values() if k != "background"]
    bkg = [v for k, v in per_slit.values() if k == "background"]

    def pooled(arrays):
        return float(np.median(np.concatenate(arrays))) if arrays else float("nan")

    return {
        "source_bias_pooled": pooled(src),
        "source_bias_median_of_slits": float(np.median([np.median(v) for v in src]))
        if src else float("nan"),
        "background_slit_bias_pooled": pooled(bkg),
        "n_source_slits": len(src),
        "n_background_slits": len(bkg),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("msa", help="real MSA metadata file (G395M, pid2736 o007)")
    parser.add_argument("--work", default="/tmp/mbkg_real_visit")
    parser.add_argument("--out", default=None)
    parser.add_argument("--no-stock", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    load_before = list(os.getloadavg())
    inst = _common.offline_instrument()
    from jwst_mbkg_plus.batch import run_batch
    from jwst_mbkg_plus.synthetic import Scene, load_truth
    from jwst_mbkg_plus.synthetic.visit import make_visit

    work = Path(args.work)
    scene = Scene(grating="G395M", n_background=6, n_point=2, n_extended=2,
                  detectors=("NRS1", "NRS2"), noise_fraction=0.2, seed=1)
    visit = make_visit(scene, work / "visit", instrument=inst, msa_file=args.msa)
    print(f"visit: {len(visit.rate_paths)} exposures, {len(visit.unplaced)} real slitlets "
          "not placed", flush=True)
    plus_dir = work / "plus_visit"
    batch = run_batch([visit.folder], plus_dir, workers=2, crds=inst.crds_path,
                      visit_master=True, progress=print)
    stock_dir = work / "stock"
    stock_runs = []
    if not args.no_stock:
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            futures = [client.submit(run_stock, str(p), str(stock_dir), str(inst.crds_path),
                                     pure=False) for p in visit.rate_paths.values()]
            for f in futures:
                stock_runs.append(f.result())
                print(f"stock: {stock_runs[-1]}", flush=True)
    rows = []
    for (nod, det), rate in sorted(visit.rate_paths.items()):
        stem = rate.name.removesuffix("_rate.fits")
        truth = load_truth(visit.truth_paths[(nod, det)])
        row = {"exposure": rate.name, "nod": nod, "detector": det}
        record = next(r for r in batch.records if r["file"] == rate.name)
        row["plus_status"] = record["status"]
        row["plus_master_level"] = record["master_level"]
        plus_file = plus_dir / f"{stem}_masterbg2d.fits"
        if plus_file.is_file():
            row["plus_visit"] = _figures(_residuals(plus_file, truth))
        stock_file = stock_dir / f"{stem}_masterbg2d.fits"
        if stock_file.is_file():
            row["stock"] = _figures(_residuals(stock_file, truth))
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {}
    for key in ("plus_visit", "stock"):
        vals = [r[key]["source_bias_pooled"] for r in rows if key in r]
        if vals:
            summary[f"{key}_source_bias_max_abs"] = float(np.max(np.abs(vals)))
            summary[f"{key}_source_bias_per_exposure"] = vals
    out = {
        "msa_file": Path(args.msa).name,
        "placed_slitlets": int(json.loads(visit.truth_json.read_text())["placed_slitlets"]),
        "unplaced": visit.unplaced,
        "levels": visit.levels,
        "summary": summary,
        "exposures": rows,
        "stock_runs": stock_runs,
        "batch_seconds": batch.seconds,
        "seconds": time.perf_counter() - t0,
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python validation/validate_real_visit.py " + " ".join(
            Path(a).name if a == args.msa else a for a in sys.argv[1:]),
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
