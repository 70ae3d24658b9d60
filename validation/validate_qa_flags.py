"""Check the demo's QA record and DQ flags against the truth of its synthetic exposure.

Run after ``jwst-mbkg-plus demo --workdir DIR`` (which writes ``DIR/exposure``
with the truth, and ``DIR/plus`` with the ``_cal``, ``_x1d`` and
``_mbkgqa.asdf`` products of calwebb_spec2_plus). Prints, per background
slitlet:

* the QA record's pull spread (1.4826 MAD of residual / ERR over the pixels
  the step did not reject), fraction of ``|pull| > 5``, rejected and flagged
  pixel counts;
* in ``_cal``: the same spread and the plain std over every unflagged pixel;
* the injected hot pixels with data, how many carry OUTLIER + DO_NOT_USE, and
  the fraction of clean pixels flagged.

With ``--compare-off`` it also runs calwebb_spec2_plus on the same exposure
with ``flag_rejected=False`` and compares the ``_x1d`` spectra: source
slitlets (should be identical) and the background slitlets' points beyond 5
sigma.

Usage::

    jwst-mbkg-plus demo --workdir /tmp/demo
    python validation/validate_qa_flags.py /tmp/demo [--compare-off]
"""

import argparse
from pathlib import Path

import numpy as np


def _x1d_spikes(x1d, truth, skip):
    """Background-slitlet x1d points with |SURF_BRIGHT / SB_ERROR| > 5."""
    n = 0
    for spec in x1d.spec:
        if truth.slit(spec.name)["kind"] != "background" or int(spec.name) in skip:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = np.asarray(spec.spec_table["SURF_BRIGHT"]) / np.asarray(
                spec.spec_table["SB_ERROR"])
        n += int((np.abs(pull[np.isfinite(pull)]) > 5).sum())
    return n


def _run_off(workdir, rate):
    from jwst_mbkg_plus import Spec2PipelinePlus
    from jwst_mbkg_plus.synthetic import (
        build_instrument,
        default_instrument_path,
        local_crds_context,
    )

    out = workdir / "plus_flag_off"
    out.mkdir(exist_ok=True)
    with local_crds_context(build_instrument(default_instrument_path())):
        Spec2PipelinePlus.call(
            str(rate),
            steps={"master_background_mos": {"skip": False, "flag_rejected": False}},
            output_dir=str(out), save_results=True, configure_log=False,
        )
    return out


def main(argv=None):
    """Print the checks for one demo folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--compare-off", action="store_true",
                        help="also run flag_rejected=False and compare the x1d spectra")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()

    from jwst_mbkg_plus.offline import configure_offline_crds

    configure_offline_crds(workdir / "crds_base")
    from astropy.stats import mad_std
    from stdatamodels.jwst import datamodels

    from jwst_mbkg_plus.io.products import read_qa
    from jwst_mbkg_plus.mos.options import REJECTED_DQ
    from jwst_mbkg_plus.synthetic import load_truth

    truth = load_truth(next((workdir / "exposure").glob("*truth*")))
    plus = workdir / "plus"
    qa = read_qa(next(plus.glob("*_mbkgqa.asdf")))
    vetted_out = {int(k.split(":")[0]) for k in qa["vetting"]["rejected"]}
    flagged = qa["flagged_pixels"]["slits"]
    print(f"{'slit':>4s} {'QA spread':>9s} {'QA >5':>7s} {'rej':>4s} {'flag':>4s} "
          f"{'cal spread':>10s} {'cal std':>8s} {'hot':>4s} {'hot flagged':>11s} "
          f"{'clean flagged':>14s}")
    n_hot = n_hot_flagged = n_clean = n_clean_flagged = 0
    with datamodels.open(next(plus.glob("*_cal.fits"))) as cal:
        slits = sorted(cal.slits, key=lambda s: int(s.name))
        for slit in slits:
            if truth.slit(slit.name)["kind"] != "background":
                continue
            label = next(k for k in qa["residuals"] if k.split(":")[0] == slit.name)
            record = qa["residuals"][label]
            with np.errstate(divide="ignore", invalid="ignore"):
                pull = slit.data / slit.err
            unflagged = np.isfinite(pull) & ((slit.dq & 1) == 0)
            is_flag = (slit.dq & REJECTED_DQ) == REJECTED_DQ
            # jwst sets DO_NOT_USE pixels to NaN in _cal: the flagged ones count as data.
            valid = (np.isfinite(slit.data) & ((slit.dq & 1) == 0)) | is_flag
            hot = truth.hot_pixel_mask(slit) & valid
            clean = valid & ~hot
            mark = "*" if int(slit.name) in vetted_out else " "
            print(f"{slit.name:>3s}{mark} {record['pull_spread']:9.3f} "
                  f"{record['pull_outlier_fraction']:7.1e} {record['rejected_pixels']:4d} "
                  f"{flagged.get(label, 0):4d} {mad_std(pull[unflagged]):10.3f} "
                  f"{np.std(pull[unflagged]):8.3f} {hot.sum():4d} "
                  f"{(hot & is_flag).sum():11d} {(clean & is_flag).sum():8d}/{clean.sum()}")
            if int(slit.name) not in vetted_out:
                n_hot += int(hot.sum())
                n_hot_flagged += int((hot & is_flag).sum())
                n_clean += int(clean.sum())
                n_clean_flagged += int((clean & is_flag).sum())
    summary = qa["pull_summary"]
    print(f"pooled QA pull spread {summary['pull_spread']:.3f} over {summary['n_pixels']} "
          f"pixels of {summary['n_groups']} slitlets; |pull|>5 fraction "
          f"{summary['pull_outlier_fraction']:.1e}")
    print(f"slitlets in the master: {n_hot_flagged}/{n_hot} hot pixels flagged, "
          f"{n_clean_flagged}/{n_clean} = {n_clean_flagged / max(n_clean, 1):.1e} clean "
          "pixels flagged (* vetted out: not flagged)")
    if args.compare_off:
        off = _run_off(workdir, next((workdir / "exposure").glob("*_rate.fits")))
        with (datamodels.open(next(plus.glob("*_x1d.fits"))) as x_on,
              datamodels.open(next(off.glob("*_x1d.fits"))) as x_off):
            same = all(
                np.array_equal(a.spec_table["FLUX"], b.spec_table["FLUX"], equal_nan=True)
                for a, b in zip(x_on.spec, x_off.spec, strict=True)
                if truth.slit(a.name)["kind"] != "background"
            )
            print(f"source-slitlet x1d identical with flag_rejected on and off: {same}")
            print(f"background-slitlet x1d points beyond 5 sigma: on "
                  f"{_x1d_spikes(x_on, truth, vetted_out)}, off "
                  f"{_x1d_spikes(x_off, truth, vetted_out)}")


if __name__ == "__main__":
    main()
