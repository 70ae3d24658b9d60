"""Vetting with 1-3 background spectra, side by side with jwst's stock steps.

MOS (``MasterBackgroundMosPlusStep`` against jwst's ``MasterBackgroundMosStep``,
same extracted slits, one process): synthetic G235M NRS1 exposures with 1-3
background slitlets, one of them optionally holding an undeclared source (30 %
of the sky at its peak, Gaussian along the slit), 2 point and 1 extended
source slitlets. Reported: the median over source slitlets of the median
noise-free residual (subtracted / true background - 1) and its largest
absolute value, the slitlets the plus step rejected or flagged, and whether it
warned.

spec3 (``MasterBackgroundPlusStep`` against jwst's ``MasterBackgroundStep``):
every mode of `jwst_mbkg_plus.synthetic.spec3_inputs` with 2 background
members, one contaminated by +30 % of the continuum. Reported: the median
over background-dominated science pixels of (subtracted - injected) /
injected, the members rejected and the pair verdict.

Usage::

    python validation/validate_vetting.py [--mos 2:1:0.05,2:1:0.2,1:1:0.05,2:0:0.05]
        [--seeds 7] [--spec3-noise 0.003] [--out validation/results_vetting.json]
        [--work /tmp/mbkg_vetting]

``--mos`` takes ``background:contaminated:noise`` triples; ``--spec3-noise``
the per-point noise of the background spectra (comma-separated).
"""

import json
import logging
from pathlib import Path

import _common
import numpy as np


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _capture():
    handler = _Warnings()
    logging.getLogger("jwst_mbkg_plus").addHandler(handler)
    return handler


def _release(handler):
    logging.getLogger("jwst_mbkg_plus").removeHandler(handler)


def run_mos(n_background, n_contaminated, noise, work, instrument, seed=7):
    """One MOS scene through both steps; metrics per step."""
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

    scene = Scene(n_background=n_background, n_point=2, n_extended=1, detectors=("NRS1",),
                  noise_fraction=noise, n_contaminated=n_contaminated, seed=seed)
    folder = Path(work) / f"mos_{n_background}_{n_contaminated}_{noise:g}_s{seed}"
    exposure = make_exposure(scene, folder, instrument=instrument)
    truth = load_truth(exposure.truth_path)
    out = {"truth_contaminated": list(truth.contaminated)}
    with local_crds_context(instrument):
        slits = extract_slits(exposure.rate_path)
        for name, cls in (("stock", MasterBackgroundMosStep),
                          ("plus", MasterBackgroundMosPlusStep)):
            out_dir = folder / name
            out_dir.mkdir(parents=True, exist_ok=True)
            handler = _capture()
            try:
                result = cls.call(slits, save_background=True, output_dir=str(out_dir))
            finally:
                _release(handler)
            residuals = []
            for before, after in zip(slits.slits, result.slits, strict=True):
                if truth.slit(before.name)["kind"] == "background":
                    continue
                true_rate = truth.cutout(before.name, "background", before) / truth.cutout(
                    before.name, "factor", before)
                subtracted = before.data - after.data
                ok = np.isfinite(subtracted) & np.isfinite(true_rate) & (true_rate > 0)
                residuals.append(float(np.median(subtracted[ok] / true_rate[ok] - 1)))
            metrics = {
                "source_residual_median": float(np.median(residuals)),
                "source_residual_max_abs": float(np.max(np.abs(residuals))),
                "status": result.meta.cal_step.master_background,
            }
            if name == "plus":
                with asdf.open(next(out_dir.glob("*_mbkgqa.asdf"))) as af:
                    vetting = dict(af["master_background_qa"]["vetting"])
                metrics["rejected"] = sorted(vetting.get("rejected", {}))
                metrics["flagged"] = sorted(vetting.get("flagged", {}))
                metrics["pair"] = (dict(vetting["pair"]) if "pair" in vetting else None)
                metrics["warnings"] = [m for m in handler.messages
                                       if "slitlet" in m and "vet_spectra" not in m]
            out[name] = metrics
            result.close()
    return out


def _spec3_bias(inputs, result):
    from stdatamodels.jwst import datamodels

    rel = []
    for k, (before, after) in enumerate(zip(inputs.science, result, strict=True)):
        tb, mask = inputs.true_background[k], inputs.background_mask[k]
        tbs, masks = (tb, mask) if isinstance(tb, list) else ([tb], [mask])
        split = (lambda m: list(m.slits)) if isinstance(before, datamodels.MultiSlitModel) \
            else (lambda m: [m])
        for a_in, a_out, t, m in zip(split(before), split(after), tbs, masks, strict=True):
            rel.append(((np.asarray(a_in.data, float) - a_out.data - t) / t)[m])
    return float(np.median(np.concatenate(rel)))


def run_spec3(mode, spectrum_noise, work, seed=11):
    """Two members, the second contaminated by +30 %, through both steps."""
    from jwst.master_background import MasterBackgroundStep

    from jwst_mbkg_plus import MasterBackgroundPlusStep
    from jwst_mbkg_plus.synthetic.spec3_inputs import make_container, make_spec3_inputs

    inputs = make_spec3_inputs(mode, n_background=2, contaminate=1, seed=seed,
                               spectrum_noise=spectrum_noise)
    out_dir = Path(work) / f"spec3_{mode}_{spectrum_noise:g}"
    out_dir.mkdir(parents=True, exist_ok=True)
    stock = MasterBackgroundStep.call(make_container(inputs))
    handler = _capture()
    try:
        plus = MasterBackgroundPlusStep.call(make_container(inputs), save_qa=True,
                                             output_dir=str(out_dir))
    finally:
        _release(handler)
    from jwst_mbkg_plus.io.products import read_qa

    # The spec3 QA record is ASDF since issue 17 (it was JSON when this script was written).
    qa = json.loads(json.dumps(read_qa(next(out_dir.glob("*mbkgqa.asdf"))), default=str))
    return {
        "contaminated_member": inputs.backgrounds[1].meta.filename,
        "stock": {"bias": _spec3_bias(inputs, stock)},
        "plus": {
            "bias": _spec3_bias(inputs, plus),
            "status": plus[0].meta.cal_step.master_background,
            "rejected": [e["name"] for e in qa["inputs"] if not e["accepted"]],
            "pair": qa.get("pair"),
            "warnings": handler.messages,
        },
    }


def main(argv=None):
    """Run the scenes and print a table."""
    parser = _common.script_parser(__doc__, seeds="7", work="/tmp/mbkg_vetting",
                                   out="validation/results_vetting.json")
    parser.add_argument("--mos", default="2:1:0.05,2:1:0.2,1:1:0.05,2:0:0.05")
    parser.add_argument("--spec3-noise", default="0.003")
    args = parser.parse_args(argv)
    _common.quiet_loggers(names=(*_common.STACK_LOGGERS, "CRDS"))
    instrument = _common.offline_instrument(Path(args.work) / "crds_base")
    from jwst_mbkg_plus.synthetic.spec3_inputs import MODES

    table = {"mos": {}, "spec3": {}}
    scenes = [(t, seed) for t in filter(None, args.mos.split(","))
              for seed in _common.parse_seeds(args.seeds)]
    for triple, seed in scenes:
        n_bkg, n_con, noise = triple.split(":")
        key = f"{n_bkg} bkg, {n_con} contaminated, noise {noise}, seed {seed}"
        m = run_mos(int(n_bkg), int(n_con), float(noise), args.work, instrument, seed=seed)
        table["mos"][key] = m
        print(f"MOS {key:45s} stock {100 * m['stock']['source_residual_median']:+7.3f}% "
              f"(max {100 * m['stock']['source_residual_max_abs']:.3f}%)  plus "
              f"{100 * m['plus']['source_residual_median']:+7.3f}% "
              f"(max {100 * m['plus']['source_residual_max_abs']:.3f}%)  "
              f"rejected {m['plus']['rejected']} flagged {m['plus']['flagged']} "
              f"truth {m['truth_contaminated']} warnings {len(m['plus']['warnings'])} "
              f"{m['plus']['status']}", flush=True)
    for noise in (float(n) for n in filter(None, args.spec3_noise.split(","))):
        for mode in MODES:
            key = f"{mode}, 2 members, noise {noise:g}"
            s = run_spec3(mode, noise, args.work)
            table["spec3"][key] = s
            pair = s["plus"]["pair"] or {}
            print(f"spec3 {key:40s} stock {100 * s['stock']['bias']:+7.3f}%  plus "
                  f"{100 * s['plus']['bias']:+7.3f}%  rejected {s['plus']['rejected']} "
                  f"verdict {pair.get('verdict')} (truth {s['contaminated_member']}) "
                  f"{s['plus']['status']}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    _common.write_json(args.out, table, newline=False)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
