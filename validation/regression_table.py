"""Regression table: today's figures of the validation scenes against a re-run, stock beside plus.

Reads results files of ``validate_conditions.py`` / ``validate_spatial.py`` /
``validate_mos.py`` / ``validate_source_flux.py`` as committed (``--before``,
one or more: each is a column, the first is the reference of the verdict) and
the same scenes re-run on newer code (``--after``), and prints, per scene key
of ``--after`` present in a ``--before``, jwst's stock step's figure, the plus
step's figures before and after, the seed-to-seed noise of one seed's figure
and a verdict. Stock comes from ``--after`` where it was re-run, else from the
first ``--before`` that has it: stock does not depend on this package and the
exposures of the same scene and seed are identical.

Figures (in %): the rms over slitlets of the median noise-free residual, all
slitlets and source slitlets (conditions, spatial); the source residual over
all source pixels and the worst band (mos, compared in absolute value); the
largest and the rms over source slitlets of the x1d flux difference
(source_flux); and the pixel / column pulls of the background slitlets
(conditions, spatial, mos; printed, not judged).

Noise: with ``--noise-from`` the standard deviation over seeds of the plus
figure, over the keys of the same scene with other seeds in the first
``--before`` file (today's figures), else in ``--after`` and any
``--noise-file``. A scene without three seeds takes the noise of
``--noise-scene`` if given, else (conditions) of the uniform sky with the same
number of background slitlets, else (mos, spatial) of the same scene at another
noise level scaled by the ratio of the levels, else ``--noise-value``.

Verdict of a judged figure: ``worse`` if plus now is above the first
``--before`` by more than ``--sigmas`` (default 2) times the noise (``ok?``
where no noise is known and it is above by more than 10 %); ``worse than
stock`` if plus now is above stock (``, within noise`` when by less than
``--sigmas`` times the noise); else ``ok``. Scenes with five or more seeds get
a pooled row (a standard error from fewer is too rough for a verdict): the rms
over the seeds of each column, and the paired mean difference of plus now
against the first ``--before`` with its standard error.

Usage::

    python validation/regression_table.py --kind conditions \\
        --before validation/results_conditions.json --after NEW.json [--noise-from]
    python validation/regression_table.py --kind conditions \\
        --before before=validation/results_conditions.json \\
        --before s9=validation/results_conditions_issue24_regression.json \\
        --after NEW.json --noise-from [--rst]
"""

import argparse
import json
from pathlib import Path

import numpy as np

#: Per kind: (name, scale to %, judged) of each figure.
FIGURES = {
    "conditions": (("rms_residual_all", 100, True), ("rms_residual_sources", 100, True),
                   ("pull_std", 1, False), ("column_pull_std", 1, False)),
    "spatial": (("rms_residual_all", 100, True), ("rms_residual_sources", 100, True),
                ("pull_std", 1, False), ("column_pull_std", 1, False)),
    "mos": (("source_residual_all_pixels", 100, True), ("worst_band", 100, True),
            ("pull_std", 1, False), ("column_pull_std", 1, False)),
    "source_flux": (("max_abs_x1d_flux_rel_diff", 100, True),
                    ("rms_x1d_flux_rel_diff", 100, True)),
}


def _value(entry, name, scale):
    if not isinstance(entry, dict):
        return None
    if name == "worst_band":
        bands = [b for b in entry.get("source_residual_bands", []) if b is not None]
        return scale * max(bands, key=abs) if bands else None
    value = entry.get(name)
    return None if value is None else scale * float(value)


def _scene_of(key, kind):
    """The key without its seed."""
    if kind == "conditions":
        return "/".join(key.split("/")[:2])
    if kind == "source_flux":
        grating, noise, _seed, weight = key.split("@")
        return f"{grating}@{noise}@{weight}"
    return key.split("@seed")[0]


def _is_entry(key, entry, setting="plus"):
    return isinstance(entry, dict) and setting in entry and "seedmean" not in key


def seed_noise(files, kind, name, scale, setting="plus"):
    """
    Per scene, the standard deviation over seeds of one seed's plus figure.

    Parameters
    ----------
    files : list of dict
        Results files; a scene's seeds are pooled over them (a key seen in several
        files counts once, from the first).
    kind, name, scale : str, str, float
        As in `FIGURES`.
    setting : str, optional
        The step's entry.

    Returns
    -------
    dict
        Scene -> standard deviation (ddof=1), or None with fewer than 3 seeds.
    """
    per_scene, seen = {}, set()
    for results in files:
        for key, entry in results.items():
            if key in seen or not _is_entry(key, entry, setting):
                continue
            value = _value(entry[setting], name, scale)
            if value is None:
                continue
            if kind == "mos":
                value = abs(value)
            seen.add(key)
            per_scene.setdefault(_scene_of(key, kind), []).append(value)
    return {s: float(np.std(v, ddof=1)) if len(v) > 2 else None for s, v in per_scene.items()}


def verdict(stock, reference, now, noise, sigmas=2.0):
    """
    ``ok``, ``ok?``, ``worse`` (beyond ``sigmas`` times the noise) and/or ``worse than stock``.

    All figures are "smaller is better" (absolute values). Against stock, ``worse
    than stock, within noise`` where plus is above stock by less than ``sigmas``
    times the noise.
    """
    if now is None:
        return "--"
    words = []
    if reference is not None:
        if noise is not None:
            if now - reference > sigmas * noise:
                words.append("worse")
        elif now - reference > 0.1 * abs(reference):
            words.append("ok?")
    if stock is not None and now > stock:
        within = noise is not None and now - stock <= sigmas * noise
        words.append("worse than stock" + (", within noise" if within else ""))
    return "; ".join(words) or "ok"


def rows(befores, after, kind, noise_from=False, noise_files=(), noise_scene=None,
         sigmas=2.0, setting="plus", before_settings=None, noise_values=None):
    """
    Table rows of the keys of ``after`` found in a ``before`` file.

    Returns
    -------
    list of tuple
        ``(key, cells, stock_rerun)``; a cell per figure: ``(stock, [plus before
        of each before file], plus now, noise, verdict or None)``.
    """
    before_settings = before_settings or [setting] * len(befores)
    out = []
    noise = {}
    for name, scale, _ in FIGURES[kind]:
        if not noise_from:
            noise[name] = {}
            continue
        # Today's figures' own seeds (the first before file) first; the re-run's where
        # they have too few.
        noise[name] = {s: v for s, v in seed_noise(befores[:1], kind, name, scale,
                                                   setting).items() if v is not None}
        for scene, value in seed_noise([after, *noise_files], kind, name, scale,
                                       setting).items():
            if noise[name].get(scene) is None:
                noise[name][scene] = value
    judged_i = 0
    for key, new in after.items():
        if not _is_entry(key, new, setting):
            continue
        olds = [b.get(key) if isinstance(b.get(key), dict) else {} for b in befores]
        if not any(olds):
            continue
        stock = new.get("stock") or next((o["stock"] for o in olds if o.get("stock")), None)
        cells = []
        for name, scale, judged in FIGURES[kind]:
            fix = abs if kind == "mos" and judged else (lambda v: v)

            def get(entry, name=name, scale=scale, fix=fix):
                value = _value(entry, name, scale)
                return None if value is None else fix(value)

            plus_before = [get(o.get(s)) for o, s in zip(olds, before_settings, strict=True)]
            now = get(new[setting])
            sd = _noise_of(noise[name], key, kind, noise_scene)
            if sd is None and judged and noise_values:
                sd = noise_values[min(judged_i, len(noise_values) - 1)]
            judged_i += judged
            ref = next((v for v in plus_before if v is not None), None)
            cells.append((get(stock), plus_before, now, sd,
                          verdict(get(stock), ref, now, sd, sigmas) if judged else None))
        judged_i = 0
        out.append((key, cells, "stock" in new))
    return out


def _noise_of(noise, key, kind, noise_scene=None):
    """
    The noise of one seed's figure of ``key``'s scene, else of a stand-in scene.

    Stand-ins: ``noise_scene`` if given; for conditions, the uniform sky with the
    same number of background slitlets; for ``scene@noise`` keys (mos, spatial),
    the same scene at another noise level, scaled by the ratio of the noise levels
    (the residual of a master scales with the per-pixel noise).
    """
    scene = _scene_of(key, kind)
    if noise.get(scene) is not None:
        return noise[scene]
    if noise_scene is not None and noise.get(noise_scene) is not None:
        return noise[noise_scene]
    if kind == "conditions":
        return noise.get(f"uniform/{scene.split('/')[1]}")
    if kind in ("mos", "spatial") and "@" in scene:
        label, level = scene.split("@")[:2]
        for other, value in noise.items():
            parts = other.split("@")
            if value is not None and parts[0] == label and parts[1] != level:
                return value * float(level) / float(parts[1])
    return None


def _fmt(value, digits=3):
    return "--" if value is None else f"{value:.{digits}f}"


def worst_verdict(cells):
    """The row's verdict: every word any of its judged figures got."""
    words = []
    for cell in cells:
        for word in (cell[4] or "").split("; "):
            if word and word not in ("ok", "--") and word not in words:
                words.append(word)
    if "worse than stock" in words and "worse than stock, within noise" in words:
        words.remove("worse than stock, within noise")
    if words:
        return "; ".join(words)
    return "ok" if any(c[4] == "ok" for c in cells) else "--"


def format_rows(table, kind, labels, rst=False):
    """Text (or reStructuredText) lines of the table."""
    judged = [(n, i) for i, (n, _, j) in enumerate(FIGURES[kind]) if j]
    pulls = [i for i, (_, _, j) in enumerate(FIGURES[kind]) if not j]
    header = (["scene", "stock"] + [f"plus {lab}" for lab in labels]
              + ["plus now", "seed sd", "verdict"] + (["pulls now"] if pulls else []))
    body = []
    for key, cells, rerun in table:
        pair = [cells[i] for _, i in judged]
        line = [key, " / ".join(_fmt(c[0]) for c in pair) + ("" if rerun else "*")]
        for b in range(len(labels)):
            line.append(" / ".join(_fmt(c[1][b]) for c in pair))
        line.append(" / ".join(_fmt(c[2]) for c in pair))
        line.append(" / ".join(_fmt(c[3]) for c in pair))
        line.append(worst_verdict(cells))
        if pulls:
            line.append(" / ".join(_fmt(cells[i][2]) for i in pulls))
        body.append(line)
    if not rst:
        return [" | ".join(header)] + [" | ".join(r) for r in body]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return [rule, fmt(header), rule, *(fmt(r) for r in body), rule]


def pooled(table, kind, sigmas=2.0, min_seeds=5):
    """
    Per scene with ``min_seeds`` or more seeds in the table, the figures pooled over seeds.

    Returns
    -------
    list of tuple
        ``(scene, n, cells)``; a cell per judged figure: ``(stock rms, [plus before
        rms of each before column], plus now rms, mean of now - first before, its
        standard error, verdict)``. Rms over the seeds that have every value; the
        verdict is ``worse`` when the mean paired difference exceeds ``sigmas``
        standard errors, ``worse than stock`` when plus now's rms exceeds stock's. A
        before column without every seed gets None.
    """
    judged = [i for i, (_, _, j) in enumerate(FIGURES[kind]) if j]
    scenes = {}
    for key, cells, _ in table:
        scenes.setdefault(_scene_of(key, kind), []).append(cells)
    out = []
    for scene, seeds in scenes.items():
        if len(seeds) < min_seeds:
            continue
        cells = []
        for i in judged:
            full = [c[i] for c in seeds if c[i][0] is not None and c[i][2] is not None]
            if len(full) < min_seeds:
                cells.append(None)
                continue

            def rms(values):
                # Only over every seed: a column missing seeds is not comparable.
                if any(v is None for v in values):
                    return None
                return float(np.sqrt(np.mean(np.square(values))))

            stock = rms([c[0] for c in full])
            befores = [rms([c[1][b] for c in full]) for b in range(len(full[0][1]))]
            now = rms([c[2] for c in full])
            diff = [c[2] - c[1][0] for c in full if c[1][0] is not None]
            mean = float(np.mean(diff)) if len(diff) > 1 else None
            sem = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None
            words = []
            if mean is not None and mean > sigmas * sem:
                words.append("worse")
            if now > stock:
                words.append("worse than stock")
            cells.append((stock, befores, now, mean, sem, "; ".join(words) or "ok",
                          len(full), len(diff)))
        out.append((scene, len(seeds), cells))
    return out


def format_pooled(rows_pooled, labels):
    """Text lines of `pooled`."""
    lines = [f"scene (seeds) | stock rms | {' | '.join(f'plus {b} rms' for b in labels)} | "
             f"plus now rms | now - {labels[0]} (s.e.) | verdict"]
    for scene, n, cells in rows_pooled:
        good = [c for c in cells if c is not None]
        if not good:
            continue
        text = [f"{scene} ({n})", " / ".join(_fmt(c[0]) for c in good)]
        text += [" / ".join(_fmt(c[1][b]) for c in good) for b in range(len(labels))]
        text.append(" / ".join(_fmt(c[2]) for c in good))
        text.append(" / ".join(f"{c[3]:+.3f} ({c[4]:.3f})" if c[3] is not None else "--"
                               for c in good))
        words = []
        for c in good:
            words += [w for w in c[5].split("; ") if w != "ok" and w not in words]
        text.append("; ".join(words) or "ok")
        lines.append(" | ".join(text))
    return lines


def _before_arg(text):
    """``[label=]path[+path...][:setting]`` -> (label, [paths], setting)."""
    label, _, rest = text.rpartition("=")
    setting = ""
    if ":" in rest and not Path(rest).is_file():
        rest, _, setting = rest.rpartition(":")
    paths = [Path(p) for p in rest.split("+")]
    return label or paths[0].stem, paths, setting or "plus"


def load_merged(paths):
    """Results files merged; a key in several keeps the first file's entry."""
    merged = {}
    for path in paths:
        for key, entry in json.loads(Path(path).read_text()).items():
            merged.setdefault(key, entry)
    return merged


def main(argv=None):
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=sorted(FIGURES), required=True)
    parser.add_argument("--before", action="append", required=True,
                        help="[label=]results.json[:setting]; repeat for several columns, "
                             "the first is the verdict's reference")
    parser.add_argument("--after", required=True,
                        help="results.json of the re-run (path+path... merges several)")
    parser.add_argument("--noise-from", action="store_true",
                        help="seed-to-seed std of the plus figures (first --before, else --after, "
                             "--noise-file)")
    parser.add_argument("--noise-file", action="append", type=Path, default=[],
                        help="more results files with other seeds of the same scenes")
    parser.add_argument("--noise-scene", default=None,
                        help="scene whose seed noise stands in where a scene has < 3 seeds")
    parser.add_argument("--noise-value", default=None,
                        help="comma-separated noise (%%) of each judged figure, where no seed "
                             "noise is known")
    parser.add_argument("--sigmas", type=float, default=2.0)
    parser.add_argument("--rst", action="store_true", help="a reStructuredText table")
    args = parser.parse_args(argv)
    befores = [_before_arg(t) for t in args.before]
    noise_values = ([float(v) for v in args.noise_value.split(",")]
                    if args.noise_value else None)
    table = rows([load_merged(p) for _, p, _ in befores],
                 load_merged(args.after.split("+")), args.kind, args.noise_from,
                 [json.loads(p.read_text()) for p in args.noise_file], args.noise_scene,
                 args.sigmas, before_settings=[s for _, _, s in befores],
                 noise_values=noise_values)
    names = [n for n, _, j in FIGURES[args.kind] if j]
    print(f"# {args.kind}: figures {' / '.join(names)} (%), '*' stock from the committed "
          f"results; verdict against {befores[0][0]} and stock ({args.sigmas:g} sigma)")
    labels = [lab for lab, _, _ in befores]
    for line in format_rows(table, args.kind, labels, args.rst):
        print(line)
    multi = pooled(table, args.kind, args.sigmas)
    if multi:
        print(f"# pooled over seeds (rms over the seeds of each figure; paired mean difference "
              f"against {labels[0]} and its standard error)")
        for line in format_pooled(multi, labels):
            print(line)
    return table


if __name__ == "__main__":
    main()
