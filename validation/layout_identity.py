"""Fingerprint the plus steps' outputs on the validation scenes: a move must change none.

Runs the MOS plus step (several parameter sets, on G235M and PRISM scenes with a
uniform, a halves and a chromatic sky, 2 to 9 background slitlets, Gaussian and
photon noise), a user background, the spec3 plus step on the four spec3 modes
and the ``master`` command, and writes one SHA-256 per output: the slits' SCI,
ERR, DQ and variance arrays, the 1-D master table and the QA record (floats as
their exact ``repr``). Two runs of the same code give the same file; a refactor
that claims to move code without changing it must give the same file too.

Usage::

    python validation/layout_identity.py --out /tmp/identity_after.json [--work /tmp/ident]
    python validation/layout_identity.py --compare before.json after.json

``--compare`` prints every fingerprint that differs and exits 1 if any does.
"""

import hashlib
import json
import logging
import sys
from pathlib import Path

import _common
import numpy as np

MOS_SCENES = {
    "g235m_uniform_8": {"n_background": 8, "noise_fraction": 0.05},
    "g235m_halves_4": {
        "n_background": 4, "noise_fraction": 0.05,
        "quadrant_offsets": (0.04, -0.04, 0.04, -0.04),
    },
    "g235m_chromatic_4": {
        "n_background": 4, "noise_fraction": 0.05,
        "chromatic_quadrants": ((0.0, 0.0), (0.0, 0.0), (-0.08, -0.02), (0.01, 0.0)),
        "chromatic_gradient_y": (0.02, -0.01),
    },
    "g235m_photon_3": {"n_background": 3, "sky_electrons": 3.0, "read_noise_electrons": 6.0},
    "g235m_pair_2": {"n_background": 2, "noise_fraction": 0.05},
    "prism_3": {
        "n_background": 3, "noise_fraction": 0.05, "grating": "PRISM", "background": "prism_sky",
    },
}

MOS_SETTINGS = {
    "default": {},
    "jwst": "JWST_EQUIVALENT_SETTINGS",
    "median_kern": {"combine_method": "median", "median_kernel": 7},
    "mean_none": {"combine_method": "weighted_mean", "spatial_model": "none"},
    "plane_slit": {"spatial_model": "plane", "slit_scale": True},
}


def _hash(*arrays):
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:  # an absent array (e.g. no VAR_FLAT): its bytes would be an address
            digest.update(b"None")
            continue
        a = np.ascontiguousarray(np.asarray(array))
        digest.update(str((a.dtype, a.shape)).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:20]


def _plain(value):
    """The QA record with exact float text, for hashing."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _hash(value)
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, np.integer | np.bool_):
        return repr(value.item())
    return value if isinstance(value, str | int | bool | type(None)) else str(value)


def _qa_hash(folder, pattern="*_mbkgqa.asdf"):
    import asdf

    files = sorted(Path(folder).glob(pattern))
    if not files:
        return None
    with asdf.open(files[0], lazy_load=False) as af:
        tree = _plain(af.tree.get("master_background_qa"))
    # One digest per top-level key, so that a comparison names the entry that changed.
    return {key: hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]
            for key, value in tree.items()}


def _slits_hash(model):
    slits = list(model.slits) if hasattr(model, "slits") else [model]
    return _hash(*[a for s in slits for a in (s.data, s.err, s.dq, s.var_poisson, s.var_rnoise,
                                             s.var_flat)])


def _master_hash(folder):
    from stdatamodels.jwst import datamodels

    files = sorted(Path(folder).glob("*_masterbg1d.fits"))
    if not files:
        return None
    with datamodels.open(files[0]) as model:
        table = model.spec[0].spec_table
        return _hash(*[np.asarray(table[name]) for name in table.dtype.names])


def run_mos(work, fingerprints):
    """MOS plus step on every scene and setting, plus one user background."""
    from astropy.table import Table

    import jwst_mbkg_plus
    from jwst_mbkg_plus import MasterBackgroundMosPlusStep
    from jwst_mbkg_plus.synthetic import Scene, build_instrument, default_instrument_path

    instrument = build_instrument(default_instrument_path())
    for label, params in MOS_SCENES.items():
        scene = Scene(n_point=4, n_extended=2, detectors=("NRS1",), seed=7, **params)
        folder = Path(work) / label
        with _common.painted_slits(scene, folder, instrument) as (slits, truth):
            settings = dict(MOS_SETTINGS)
            if label == "g235m_uniform_8":
                wave, sb = truth.background_1d()
                csv = folder / "user_bkg.ecsv"
                Table({"wavelength": wave, "surf_bright": sb},
                      ).write(csv, overwrite=True)
                settings["user"] = {"user_background": str(csv)}
            for name, pars in settings.items():
                if isinstance(pars, str):
                    pars = dict(getattr(jwst_mbkg_plus, pars))
                out = folder / name
                out.mkdir(exist_ok=True)
                result = MasterBackgroundMosPlusStep.call(
                    slits, save_background=True, output_dir=str(out), **pars
                )
                key = f"mos/{label}/{name}"
                fingerprints[key] = {
                    "slits": _slits_hash(result),
                    "master": _master_hash(out),
                    "qa": _qa_hash(out),
                    "status": str(result.meta.cal_step.master_background),
                }
                print(key, fingerprints[key], flush=True)
                result.close()


def run_spec3(work, fingerprints):
    """Spec3 plus step on the four modes, and the ``master`` command on their x1d."""
    from jwst_mbkg_plus import MasterBackgroundPlusStep
    from jwst_mbkg_plus.synthetic.spec3_inputs import MODES, make_container, make_spec3_inputs

    for mode in MODES:
        for name, pars in {"default": {}, "contaminated": {}}.items():
            inputs = make_spec3_inputs(mode, seed=3, contaminate=1 if name != "default" else None)
            out = Path(work) / "spec3" / mode / name
            out.mkdir(parents=True, exist_ok=True)
            result = MasterBackgroundPlusStep.call(
                make_container(inputs), save_background=True, output_dir=str(out), **pars
            )
            models = list(result) if hasattr(result, "__iter__") else [result]
            fingerprints[f"spec3/{mode}/{name}"] = {
                "science": _hash(*[h for m in models for h in
                                   ([s.data for s in m.slits] if hasattr(m, "slits")
                                    else [m.data])]),
                "qa": _qa_hash(out, "*mbkgqa*"),
                "master": _master_hash_fits(out),
            }
            print(f"spec3/{mode}/{name}", fingerprints[f"spec3/{mode}/{name}"], flush=True)


def _master_hash_fits(folder):
    from astropy.io import fits

    arrays = []
    for path in sorted(Path(folder).glob("*masterbg*.fits")):
        with fits.open(path) as hdul:
            for hdu in hdul[1:]:
                # Not the ASDF extension: it holds the file's creation date.
                if hdu.data is not None and hdu.name != "ASDF":
                    data = hdu.data
                    arrays += ([np.asarray(data[n]) for n in data.dtype.names]
                               if data.dtype.names else [np.asarray(data)])
    return _hash(*arrays)


def compare(before, after):
    """Print differing fingerprints; return the number of differences."""
    a, b = json.loads(Path(before).read_text()), json.loads(Path(after).read_text())
    bad = 0
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key) or {}, b.get(key) or {}
        if old != new:
            bad += 1
            for part in sorted(set(old) | set(new)):
                was, now = old.get(part), new.get(part)
                if was == now:
                    continue
                if isinstance(was, dict) and isinstance(now, dict):
                    keys = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
                    print(f"DIFFERS {key} {part}: {', '.join(keys)}")
                else:
                    print(f"DIFFERS {key} {part}: {was} -> {now}")
    print(f"{len(set(a) | set(b))} outputs, {bad} differ")
    return bad


def main(argv=None):
    """Fingerprint every output into ``--out``, or compare two such files."""
    parser = _common.script_parser(__doc__, out="identity.json", work="/tmp/mbkg_identity")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        return 1 if compare(*args.compare) else 0
    from jwst_mbkg_plus.offline import configure_offline_crds

    configure_offline_crds()
    _common.quiet_loggers(logging.ERROR, names=("stpipe", "jwst"))
    fingerprints = {}
    run_mos(args.work, fingerprints)
    run_spec3(args.work, fingerprints)
    _common.write_json(args.out, fingerprints, newline=False, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
