"""Run the plus steps and tools on bad inputs, degenerate scenes and faults; tabulate the answers.

Every case runs in its own Python process (so a crash is seen as a crash) on a
small synthetic NIRSpec MOS exposure (4 background, 2 point, 1 extended
slitlets, NRS1) and synthetic spec3 inputs. For each case the table gives the
status the step recorded (or the tool's exit code), the first error or warning
line the package logged, any exception that escaped, and whether every input
file is byte-identical afterwards (SHA-256 before and after).

Files that must be unreadable are made so with ``chmod 000``; as root, where
that has no effect, those cases run as user ``nobody`` (``setpriv``).

Usage::

    python validation/bad_inputs.py [--work /tmp/mbkg_bad_inputs] [--cases "case one;case two"]
        [--out validation/results_bad_inputs.json]
"""

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _common

CASES = {}


def case(name, *, kind="mos", unprivileged=False):
    """Register a case: a function(work) run in a child process."""

    def register(func):
        CASES[name] = {"func": func, "kind": kind, "unprivileged": unprivileged}
        return func

    return register


# --------------------------------------------------------------------------- data


def small_scene(**changes):
    """The small MOS scene of the cases (4 background, 2 point, 1 extended slitlets)."""
    from jwst_mbkg_plus.synthetic import Scene

    return Scene(**{"n_background": 4, "n_point": 2, "n_extended": 1, "detectors": ("NRS1",),
                    "noise_fraction": 0.02, "seed": 21, **changes})


def build_data(work):
    """The exposure, its extracted slits, a masterbg1d, a rate file and spec3 inputs."""
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / "data.done"
    if stamp.is_file():
        return
    inst = _common.offline_instrument(work / "crds")
    from jwst_mbkg_plus import MasterBackgroundMosPlusStep
    from jwst_mbkg_plus.synthetic.spec3_inputs import make_spec3_inputs, write_association

    with _common.painted_slits(small_scene(), work / "exposure", inst) as (slits, _):
        slits.save(work / "mos_slits.fits")
        prod = work / "products"
        prod.mkdir(exist_ok=True)
        result = MasterBackgroundMosPlusStep.call(slits, save_background=True,
                                                  output_dir=str(prod))
        result.save(work / "mos_cal.fits")
    for mode in ("NRS_FIXEDSLIT", "NRS_IFU", "MIR_LRS-FIXEDSLIT"):
        inputs = make_spec3_inputs(mode, n_science=1, n_background=3, seed=3)
        write_association(inputs, work / f"spec3_{mode}")
    stamp.write_text("ok")


def _inputs(work):
    """Every file a case may read (checksummed before and after)."""
    return sorted(p for p in work.rglob("*") if p.is_file() and "crds" not in p.parts
                  and "out" not in p.parts and p.name != "data.done")


def _sha(path):
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        # Unreadable to us: compare metadata instead.
        st = path.stat()
        return f"stat:{st.st_size}:{st.st_mtime_ns}"


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def synthetic_crds():
    """The synthetic instrument's CRDS context (offline CRDS is configured already)."""
    from jwst_mbkg_plus.synthetic import (
        build_instrument,
        default_instrument_path,
        local_crds_context,
    )

    with local_crds_context(build_instrument(default_instrument_path())):
        yield


def _mos(work, **kwargs):
    from jwst_mbkg_plus import MasterBackgroundMosPlusStep

    data = kwargs.pop("data", str(work / "mos_slits.fits"))
    with synthetic_crds():
        return MasterBackgroundMosPlusStep.call(data, **kwargs)


def _spec2(work, **kwargs):
    from jwst_mbkg_plus import Spec2PipelinePlus

    rate = next((work / "exposure").glob("*_rate.fits"))
    out = work / "out" / "spec2"
    out.mkdir(parents=True, exist_ok=True)
    with synthetic_crds():
        result = Spec2PipelinePlus.call(
            str(rate), steps={"master_background_mos": {"skip": False, **kwargs}},
            output_dir=str(out), save_results=True,
        )
    products = sorted(p.name for p in out.glob("*_cal.fits"))
    if isinstance(result, list | tuple):
        result = result[0]
    return result, products


def _truncated_copy(src, dst, fraction=0.5):
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return dst


def _status(model):
    try:
        return str(model.meta.cal_step.master_background)
    except AttributeError:
        return "?"


def _container_status(result):
    try:
        return ",".join(sorted({_status(m) for m in result}))
    except TypeError:
        return _status(result)


def _masterbg1d(work):
    return next((work / "products").glob("*_masterbg1d.fits"))


def _spec3_dir(work, mode="NRS_FIXEDSLIT"):
    return work / f"spec3_{mode}"


# --------------------------------------------------------------------------- MOS cases


@case("user_background truncated")
def _(work):
    bad = _truncated_copy(_masterbg1d(work), work / "out" / "half_masterbg1d.fits")
    return {"status": _status(_mos(work, user_background=str(bad)))}


@case("user_background truncated, calwebb_spec2_plus", kind="spec2")
def _(work):
    bad = _truncated_copy(_masterbg1d(work), work / "out" / "half_masterbg1d.fits")
    result, products = _spec2(work, user_background=str(bad))
    return {"status": _status(result), "products": products}


@case("input file truncated, calwebb_spec2_plus", kind="spec2")
def _(work):
    from jwst_mbkg_plus import Spec2PipelinePlus

    rate = next((work / "exposure").glob("*_rate.fits"))
    bad = _truncated_copy(rate, work / "out" / "half_rate.fits")
    return {"status": _status(Spec2PipelinePlus.call(str(bad), output_dir=str(work / "out")))}


@case("user_background unreadable", unprivileged=True)
def _(work):
    bad = work / "out" / "locked_masterbg1d.fits"
    return {"status": _status(_mos(work, user_background=str(bad)))}


@case("user_background is a directory")
def _(work):
    folder = work / "out" / "a_folder"
    folder.mkdir(exist_ok=True)
    return {"status": _status(_mos(work, user_background=str(folder)))}


def _other_exposure(work, mode):
    from stdatamodels.jwst import datamodels

    folder = _spec3_dir(work, mode)
    asn = json.loads(next(folder.glob("*_asn.json")).read_text())
    science = next(m["expname"] for m in asn["products"][0]["members"]
                   if m["exptype"] == "science")
    return datamodels.open(folder / science)


@case("NRS_FIXEDSLIT exposure")
def _(work):
    return {"status": _status(_mos(work, data=_other_exposure(work, "NRS_FIXEDSLIT")))}


@case("NRS_IFU exposure")
def _(work):
    return {"status": _status(_mos(work, data=_other_exposure(work, "NRS_IFU")))}


@case("MIR_LRS exposure")
def _(work):
    return {"status": _status(_mos(work, data=_other_exposure(work, "MIR_LRS-FIXEDSLIT")))}


@case("rate image")
def _(work):
    rate = next((work / "exposure").glob("*_rate.fits"))
    return {"status": _status(_mos(work, data=str(rate)))}


@case("masterbg1d as input")
def _(work):
    return {"status": _status(_mos(work, data=str(_masterbg1d(work))))}


@case("zero slits")
def _(work):
    from stdatamodels.jwst import datamodels

    with datamodels.open(work / "mos_slits.fits") as model:
        empty = model.copy()
    while len(empty.slits):
        del empty.slits[0]
    return {"status": _status(_mos(work, data=empty))}


@case("input file truncated")
def _(work):
    bad = _truncated_copy(work / "mos_slits.fits", work / "out" / "half_slits.fits")
    return {"status": _status(_mos(work, data=str(bad)))}


def _subtracted_fraction(work, result):
    """Median subtracted background of the MSA background slitlets / their median level."""
    import numpy as np
    from stdatamodels.jwst import datamodels

    with datamodels.open(work / "mos_slits.fits") as before:
        ratios = []
        for s_in, s_out in zip(before.slits, result.slits, strict=True):
            if "BKG" in str(s_in.source_name):
                sub = s_in.data - s_out.data
                ratios.append(np.nanmedian(sub) / np.nanmedian(s_in.data))
    return float(np.median(ratios))


@case("bkg_slits names source slitlets")
def _(work):
    result = _mos(work, bkg_slits=["5", "6", "7"])
    return {"status": _status(result),
            "subtracted/true (bkg slits)": round(_subtracted_fraction(work, result), 3)}


@case("bkg_slits mixes background and source slitlets")
def _(work):
    result = _mos(work, bkg_slits=["1", "2", "5"])
    return {"status": _status(result),
            "subtracted/true (bkg slits)": round(_subtracted_fraction(work, result), 3)}


@case("bkg_slits=[]")
def _(work):
    return {"status": _status(_mos(work, bkg_slits=[]))}


@case("median_kernel=2001")
def _(work):
    return {"status": _status(_mos(work, median_kernel=2001))}


@case("median_kernel=2001 with user_background")
def _(work):
    return {"status": _status(_mos(work, median_kernel=2001,
                                   user_background=str(_masterbg1d(work))))}


@case("pixel_sigma=0")
def _(work):
    return {"status": _status(_mos(work, pixel_sigma=0))}


@case("pixel_sigma=0, calwebb_spec2_plus", kind="spec2")
def _(work):
    result, products = _spec2(work, pixel_sigma=0)
    return {"status": _status(result), "products": products}


@case("sigma_clip=0")
def _(work):
    return {"status": _status(_mos(work, sigma_clip=0))}


@case("sigma_clip=-1")
def _(work):
    return {"status": _status(_mos(work, sigma_clip=-1))}


@case("vet_threshold=0")
def _(work):
    return {"status": _status(_mos(work, vet_threshold=0))}


@case("min_spectra=10 (4 spectra)")
def _(work):
    result = _mos(work, min_spectra=10)
    return {"status": _status(result)}


@case("combine_method=jwst with full_slitlet")
def _(work):
    return {"status": _status(_mos(work, combine_method="jwst"))}


@case("output_dir read-only", unprivileged=True)
def _(work):
    t0 = time.perf_counter()
    result = _mos(work, save_background=True, output_dir=str(work / "readonly_out"))
    return {"status": _status(result), "seconds": round(time.perf_counter() - t0, 1)}


# --------------------------------------------------------------------------- spec3 cases


def _spec3(work, container=None, **kwargs):
    from jwst_mbkg_plus import MasterBackgroundPlusStep

    if container is None:
        container = str(next(_spec3_dir(work).glob("*_asn.json")))
    return MasterBackgroundPlusStep.call(container, **kwargs)


def _asn_copy(work, name, edit_background, *, every=False):
    """
    A copy of the FS association whose first (or ``every``) background member(s) are edited.

    ``edit_background(path)`` edits one member's file in place, in the copy.
    """
    src = _spec3_dir(work)
    dst = work / "out" / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    asn = json.loads(next(dst.glob("*_asn.json")).read_text())
    members = [m["expname"] for m in asn["products"][0]["members"]
               if m["exptype"] == "background"]
    for member in members if every else members[:1]:
        edit_background(dst / member)
    return str(next(dst.glob("*_asn.json")))


def edit_spectra(edit_spec):
    """An ``edit_background`` for `_asn_copy`: ``edit_spec(spec)`` on every spectrum of a member."""
    from stdatamodels.jwst import datamodels

    def edit(path):
        with datamodels.open(path) as model:
            for spec in model.spec:
                edit_spec(spec)
            model.save(path)

    return edit


def _all_nan(spec):
    import numpy as np

    for col in ("SURF_BRIGHT", "BACKGROUND", "FLUX"):
        spec.spec_table[col] = np.nan


@case("spec3 all-NaN background member", kind="spec3")
def _(work):
    result = _spec3(work, _asn_copy(work, "spec3_nan", edit_spectra(_all_nan)))
    return {"status": _container_status(result)}


@case("spec3 all background members NaN", kind="spec3")
def _(work):
    asn = _asn_copy(work, "spec3_allnan", edit_spectra(_all_nan), every=True)
    return {"status": _container_status(_spec3(work, asn))}


@case("spec3 truncated member", kind="spec3")
def _(work):
    asn = _asn_copy(work, "spec3_trunc", lambda p: _truncated_copy(p, p))
    return {"status": _container_status(_spec3(work, asn))}


@case("spec3 user_background truncated", kind="spec3")
def _(work):
    bad = _truncated_copy(_masterbg1d(work), work / "out" / "half_masterbg1d.fits")
    return {"status": _container_status(_spec3(work, user_background=str(bad)))}


@case("spec3 user_background unreadable", kind="spec3", unprivileged=True)
def _(work):
    bad = work / "out" / "locked_masterbg1d.fits"
    return {"status": _container_status(_spec3(work, user_background=str(bad)))}


@case("spec3 given MOS data", kind="spec3")
def _(work):
    from jwst.datamodels import ModelContainer
    from stdatamodels.jwst import datamodels

    science = datamodels.open(work / "mos_slits.fits")
    science.meta.asn.exptype = "science"
    folder = _spec3_dir(work)
    asn = json.loads(next(folder.glob("*_asn.json")).read_text())
    models = [science]
    for m in asn["products"][0]["members"]:
        if m["exptype"] == "background":
            bkg = datamodels.open(folder / m["expname"])
            bkg.meta.asn.exptype = "background"
            models.append(bkg)
    container = ModelContainer(models)
    return {"status": _container_status(_spec3(work, container))}


@case("spec3 median_kernel=2001", kind="spec3")
def _(work):
    return {"status": _container_status(_spec3(work, median_kernel=2001))}


@case("spec3 min_spectra=10 (3 spectra)", kind="spec3")
def _(work):
    return {"status": _container_status(_spec3(work, min_spectra=10))}


@case("spec3 no wavelength overlap", kind="spec3")
def _(work):
    def shift(spec):
        spec.spec_table["WAVELENGTH"] = spec.spec_table["WAVELENGTH"] + 20.0

    asn = _asn_copy(work, "spec3_shift", edit_spectra(shift), every=True)
    return {"status": _container_status(_spec3(work, asn))}


# --------------------------------------------------------------------------- tools


def _cli(*argv):
    from jwst_mbkg_plus.cli import handle_args

    return {"exit": handle_args([str(a) for a in argv])}


@case("master on a subtracted _cal", kind="tool")
def _(work):
    return _cli("master", work / "mos_cal.fits", "-o", work / "out" / "master_from_cal.fits",
                "--overwrite")


@case("master on a truncated x1d", kind="tool")
def _(work):
    folder = _spec3_dir(work)
    x1d = sorted(folder.glob("*x1d*.fits"))
    bad = _truncated_copy(x1d[0], work / "out" / "half_x1d.fits")
    return _cli("master", bad, *x1d[1:], "-o", work / "out" / "master_trunc.fits", "--overwrite")


@case("master input unreadable", kind="tool", unprivileged=True)
def _(work):
    return _cli("master", work / "out" / "locked_masterbg1d.fits", "-o",
                work / "nobody_home" / "nobody_master.fits")


@case("flag-pixels on a truncated rate", kind="tool")
def _(work):
    rate = next((work / "exposure").glob("*_rate.fits"))
    bad = _truncated_copy(rate, work / "out" / "half_rate.fits")
    return _cli("flag-pixels", bad, "-o", work / "out" / "flagged.fits", "--pixel", "10,10",
                "--overwrite")


@case("flag-pixels input is a directory", kind="tool")
def _(work):
    folder = work / "out" / "a_folder"
    folder.mkdir(exist_ok=True)
    return _cli("flag-pixels", folder, "-o", work / "out" / "flagged.fits", "--pixel", "10,10",
                "--overwrite")


@case("msa-select on a truncated MSA file", kind="tool")
def _(work):
    msa = next((work / "exposure").glob("*_msa.fits"))
    bad = _truncated_copy(msa, work / "out" / "half_msa.fits", 0.3)
    return _cli("msa-select", bad, "-o", work / "out" / "msa_new.fits", "--background", "5",
                "--overwrite")


@case("msa-select input unreadable", kind="tool", unprivileged=True)
def _(work):
    return _cli("msa-select", work / "out" / "locked_masterbg1d.fits", "-o",
                work / "nobody_home" / "nobody_msa.fits", "--background", "5")


@case("plot on a truncated file", kind="tool")
def _(work):
    bad = _truncated_copy(work / "mos_cal.fits", work / "out" / "half_cal.fits", 0.3)
    return _cli("plot", bad, "--outdir", work / "out" / "plots")


@case("demo with a bad folder", kind="tool")
def _(work):
    blocker = work / "out" / "a_file"
    blocker.write_text("not a folder")
    return _cli("demo", "--workdir", blocker / "demo", "--no-stock")


# The cases of issue 27 (values inside files, malformed models, what users type, ...).
import bad_inputs_issue27  # noqa: E402

bad_inputs_issue27.register(sys.modules[__name__])


# --------------------------------------------------------------------------- runner


_LOG_LINE = re.compile(r" - (ERROR|WARNING|CRITICAL) - (.*)$")


def _child(name, work):
    from jwst_mbkg_plus.offline import configure_offline_crds

    configure_offline_crds(work / "crds")
    out = {}
    try:
        out.update(CASES[name]["func"](work))
    except BaseException as exc:  # noqa: BLE001 - the point is to see what escapes
        import traceback

        frames = len(traceback.extract_tb(exc.__traceback__))
        out["exception"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        out["frames"] = frames
    print("RESULT " + json.dumps(out), flush=True)  # noqa: T201


def _prepare_faults(work):
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    locked = out / "locked_masterbg1d.fits"
    if not locked.exists():
        shutil.copy(_masterbg1d(work), locked)
    os.chmod(locked, 0)
    readonly = work / "readonly_out"
    readonly.mkdir(exist_ok=True)
    os.chmod(readonly, 0o555)


def _run_case(name, work, python):
    spec = CASES[name]
    cmd = [python, __file__, "--child", name, "--work", str(work)]
    env = dict(os.environ)
    if spec["unprivileged"] and os.geteuid() == 0:
        home = work / "nobody_home"
        home.mkdir(exist_ok=True)
        os.chmod(home, 0o777)
        env["HOME"] = str(home)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    t0 = time.perf_counter()
    cwd = env["HOME"] if "setpriv" in cmd else work / "out"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    result = {}
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
    messages = []
    for line in text.splitlines():
        match = _LOG_LINE.search(line)
        if match and "jwst_mbkg_plus" in line:
            messages.append(f"{match.group(1)}: {match.group(2)}")
        elif line.startswith("error:"):
            messages.append(line)
    if not result:
        result["crash"] = f"exit {proc.returncode}: {text.strip().splitlines()[-1:]}"
    result["messages"] = messages[:3]
    result["wall_s"] = round(seconds, 1)
    return result


def main(argv=None):
    """Run the cases (each in its own process) and print one result each."""
    parser = _common.script_parser(__doc__, work="/tmp/mbkg_bad_inputs", out=None)
    parser.add_argument("--cases", default=None, help="case names separated by semicolons")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    # One synthetic instrument that every case (also those run as nobody) can read.
    os.environ.setdefault("JWST_MBKG_PLUS_CACHE", str(work / "cache"))
    if args.child:
        _child(args.child, work)
        return 0
    build_data(work)
    _prepare_faults(work)
    names = list(CASES) if not args.cases else [c.strip() for c in args.cases.split(";")]
    results = {}
    for name in names:
        before = {p: _sha(p) for p in _inputs(work)}
        result = _run_case(name, work, sys.executable)
        after = {p: _sha(p) for p in before}
        changed = [str(p.relative_to(work)) for p in before if after[p] != before[p]]
        result["inputs_unchanged"] = not changed
        if changed:
            result["changed"] = changed
        results[name] = result
        print(f"== {name}\n   " + json.dumps(result), flush=True)  # noqa: T201
    if args.out:
        _common.write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
