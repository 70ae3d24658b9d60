"""Regression table: today's figures of the validation scenes against a re-run, stock beside plus.

Reads a results file of ``validate_conditions.py`` / ``validate_spatial.py`` /
``validate_mos.py`` as committed (``--before``) and the same scenes re-run on
newer code (``--after``), and prints, per scene key present in both, the plus
step's figures before and after and jwst's stock step's (from ``--after`` where
it was re-run, else from ``--before``: stock does not depend on this package and
the exposures are the same). Figures (in %): the rms over slitlets of the median
noise-free residual, all slitlets and source slitlets (conditions, spatial), or
the source residual over all source pixels and the worst band (mos), and the
pixel / column pulls of the background slitlets. With ``--noise-from`` the
seed-to-seed standard deviation of the plus figure over the keys of the same
scene with other seeds (in ``--before``) is printed as the noise of a single seed.

Usage::

    python validation/regression_table.py --kind conditions \\
        --before validation/results_conditions.json --after NEW.json [--noise-from]
"""

import argparse
import json
from pathlib import Path

import numpy as np

FIGURES = {
    "conditions": (("rms_residual_all", 100), ("rms_residual_sources", 100),
                   ("pull_std", 1), ("column_pull_std", 1)),
    "spatial": (("rms_residual_all", 100), ("rms_residual_sources", 100),
                ("pull_std", 1), ("column_pull_std", 1)),
    "mos": (("source_residual_all_pixels", 100), ("worst_band", 100),
            ("pull_std", 1), ("column_pull_std", 1)),
}


def _value(entry, name, scale):
    if entry is None:
        return None
    if name == "worst_band":
        bands = [b for b in entry.get("source_residual_bands", []) if b is not None]
        return scale * max(bands, key=abs) if bands else None
    value = entry.get(name)
    return None if value is None else scale * float(value)


def _scene_of(key, kind):
    """The key without its seed (conditions: scene/n_background)."""
    if kind == "conditions":
        return "/".join(key.split("/")[:2])
    return key.split("@seed")[0]


def seed_noise(results, kind, name, scale):
    """Per scene, the standard deviation over seeds of the plus figure (None for one seed)."""
    per_scene = {}
    for key, entry in results.items():
        if not isinstance(entry, dict) or "plus" not in entry or "seedmean" in key:
            continue
        value = _value(entry["plus"], name, scale)
        if value is not None:
            per_scene.setdefault(_scene_of(key, kind), []).append(value)
    return {s: float(np.std(v, ddof=1)) if len(v) > 2 else None for s, v in per_scene.items()}


def rows(before, after, kind, noise_from=False):
    """Table rows: key, then per figure (stock, plus before, plus after, seed noise)."""
    out = []
    noise = {name: seed_noise(before, kind, name, scale) if noise_from else {}
             for name, scale in FIGURES[kind]}
    for key in after:
        old = before.get(key)
        new = after[key]
        if not isinstance(new, dict) or not isinstance(old, dict) or "plus" not in new:
            continue
        stock = new.get("stock") or old.get("stock")
        cells = []
        for name, scale in FIGURES[kind]:
            cells.append((_value(stock, name, scale), _value(old.get("plus"), name, scale),
                          _value(new["plus"], name, scale),
                          noise[name].get(_scene_of(key, kind))))
        out.append((key, cells, "stock" in new))
    return out


def _fmt(value, digits=3):
    return "--" if value is None else f"{value:.{digits}f}"


def main(argv=None):
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=sorted(FIGURES), required=True)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--noise-from", action="store_true",
                        help="seed-to-seed std of the plus figures in --before")
    args = parser.parse_args(argv)
    before = json.loads(args.before.read_text())
    after = json.loads(args.after.read_text())
    names = [n for n, _ in FIGURES[args.kind]]
    print("key | " + " | ".join(f"{n}: stock, plus before, plus now (seed sd)" for n in names)
          + " | stock re-run")
    for key, cells, rerun in rows(before, after, args.kind, args.noise_from):
        text = " | ".join(f"{_fmt(s)}, {_fmt(b)}, {_fmt(a)}"
                          + (f" ({_fmt(n)})" if n is not None else "") for s, b, a, n in cells)
        print(f"{key} | {text} | {'yes' if rerun else 'no'}")


if __name__ == "__main__":
    main()
