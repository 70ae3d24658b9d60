"""A hand-made local CRDS context for the synthetic NIRSpec instrument.

Layout written under a CRDS cache folder (``CRDS_PATH``)::

    config/jwst/server_config               (see jwst_mbkg_plus.offline)
    config/jwst/ref_cache_subdir_mode       "instrument"
    mappings/jwst/jwst_0000.pmap            NIRSPEC -> jwst_nirspec_0000.imap
    mappings/jwst/jwst_nirspec_0000.imap    reftype -> rmap, or 'N/A'
    mappings/jwst/jwst_nirspec_<reftype>_0000.rmap
    references/jwst/nirspec/<reference files>

Each rmap is ``Match`` on a few dataset keywords (DETECTOR, FILTER, GRATING,
EXP_TYPE) then ``UseAfter``. Every other reftype a Spec2Pipeline step asks for
is ``'N/A'`` in the imap. Select the context with
``jwst_mbkg_plus.offline.configure_offline_crds(path, local_context=True)``.
"""

import logging
import pprint
from pathlib import Path

from jwst_mbkg_plus.offline import write_server_config

__all__ = [
    "CONTEXT_NAME",
    "NA_REFTYPES",
    "RefRule",
    "references_dir",
    "write_crds_context",
]

log = logging.getLogger(__name__)

#: Name of the pipeline mapping written.
CONTEXT_NAME = "jwst_0000.pmap"

#: Reftypes the Spec2Pipeline steps (and MasterBackgroundMos) declare that a
#: NIRSpec MOS exposure does not use: 'N/A' in the context.
NA_REFTYPES = (
    "bkg",
    "chromcorr",
    "cubepar",
    "distortion",
    "filteroffset",
    "flat",
    "fringe",
    "fringefreq",
    "ifufore",
    "ifupost",
    "ifuslicer",
    "mrsxartcorr",
    "pastasoss",
    "psf",
    "regions",
    "speckernel",
    "specprofile",
    "specwcs",
)

#: Dataset keyword of each match key.
_PARKEYS = {
    "DETECTOR": "META.INSTRUMENT.DETECTOR",
    "FILTER": "META.INSTRUMENT.FILTER",
    "GRATING": "META.INSTRUMENT.GRATING",
    "EXP_TYPE": "META.EXPOSURE.TYPE",
}

_USEAFTER = "2000-01-01 00:00:00"


class RefRule:
    """
    One reference file and the dataset keyword values that select it.

    Parameters
    ----------
    path : str or pathlib.Path
        Reference file (already under the cache's ``references/jwst/nirspec``).
    **match
        Keyword values, keys among DETECTOR, FILTER, GRATING, EXP_TYPE
        (e.g. ``FILTER="F170LP", GRATING="G235M"``).
    """

    def __init__(self, path, **match):
        unknown = set(match) - set(_PARKEYS)
        if unknown:
            raise ValueError(f"unsupported match keys {sorted(unknown)}; use {sorted(_PARKEYS)}")
        self.path = Path(path)
        self.match = {k.upper(): str(v) for k, v in match.items()}

    def __repr__(self):
        return f"RefRule({self.path.name!r}, **{self.match!r})"


def references_dir(crds_path):
    """
    Return (and create) the folder reference files must be written to.

    Parameters
    ----------
    crds_path : str or pathlib.Path
        CRDS cache folder.

    Returns
    -------
    pathlib.Path
        ``<crds_path>/references/jwst/nirspec``.
    """
    path = Path(crds_path) / "references" / "jwst" / "nirspec"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _format_mapping(header, selector_text):
    lines = ["header = {"]
    for key in sorted(header):
        lines.append(f"    {key!r} : {header[key]!r},")
    lines.append("}")
    lines.append("")
    lines.append(f"selector = {selector_text}")
    return "\n".join(lines) + "\n"


def _rmap_text(reftype, rules, name):
    keys = [k for k in _PARKEYS if any(k in r.match for r in rules)]
    if not keys:
        keys = ["EXP_TYPE"]
    header = {
        "classes": ("Match", "UseAfter"),
        "derived_from": "jwst_mbkg_plus synthetic instrument",
        "file_ext": rules[0].path.suffix,
        "filekind": reftype.upper(),
        "filetype": reftype.upper(),
        "instrument": "NIRSPEC",
        "mapping": "REFERENCE",
        "name": name,
        "observatory": "JWST",
        "parkey": (
            tuple(_PARKEYS[k] for k in keys),
            ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME"),
        ),
        "sha1sum": "0" * 40,
        "suffix": reftype,
        "text_descr": f"synthetic {reftype}",
    }
    entries = []
    seen = set()
    for rule in rules:
        values = tuple(rule.match.get(k, "*") for k in keys)
        if values in seen:
            raise ValueError(f"{reftype}: two rules match {dict(zip(keys, values, strict=True))}")
        seen.add(values)
        key = values[0] if len(values) == 1 else values
        entries.append(
            f"    {key!r} : UseAfter({{\n        {_USEAFTER!r} : {rule.path.name!r},\n    }}),"
        )
    selector = "Match({\n" + "\n".join(entries) + "\n})"
    return _format_mapping(header, selector)


def write_crds_context(crds_path, rules, *, na_reftypes=NA_REFTYPES, context=CONTEXT_NAME):
    """
    Write a local CRDS context selecting the given reference files.

    Parameters
    ----------
    crds_path : str or pathlib.Path
        CRDS cache folder; reference files must already be in
        :func:`references_dir`.
    rules : dict[str, list[RefRule]]
        Reftype -> the files that serve it and the keyword values selecting each.
    na_reftypes : sequence of str, optional
        Reftypes mapped to 'N/A'.
    context : str, optional
        Pipeline mapping name (``jwst_NNNN.pmap``).

    Returns
    -------
    pathlib.Path
        Path of the pipeline mapping.
    """
    crds_path = Path(crds_path)
    write_server_config(crds_path, context)
    cfg = crds_path / "config" / "jwst" / "ref_cache_subdir_mode"
    cfg.write_text("instrument")
    mapdir = crds_path / "mappings" / "jwst"
    mapdir.mkdir(parents=True, exist_ok=True)
    refdir = references_dir(crds_path)
    serial = context.split("_")[-1].split(".")[0]
    imap_name = f"jwst_nirspec_{serial}.imap"

    imap_selector = {}
    for reftype, reftype_rules in sorted(rules.items()):
        if not reftype_rules:
            raise ValueError(f"no reference file for reftype {reftype!r}")
        for rule in reftype_rules:
            if rule.path.parent.resolve() != refdir.resolve():
                raise ValueError(f"{rule.path} is not in {refdir}")
        name = f"jwst_nirspec_{reftype}_{serial}.rmap"
        (mapdir / name).write_text(_rmap_text(reftype, reftype_rules, name))
        imap_selector[reftype] = name
    for reftype in na_reftypes:
        if reftype not in imap_selector:
            imap_selector[reftype] = "N/A"

    imap_header = {
        "derived_from": "jwst_mbkg_plus synthetic instrument",
        "instrument": "NIRSPEC",
        "mapping": "INSTRUMENT",
        "name": imap_name,
        "observatory": "JWST",
        "parkey": ("META.EXPOSURE.TYPE",),
        "sha1sum": "0" * 40,
    }
    (mapdir / imap_name).write_text(
        _format_mapping(imap_header, pprint.pformat(imap_selector, width=100))
    )
    pmap_header = {
        "derived_from": "jwst_mbkg_plus synthetic instrument",
        "mapping": "PIPELINE",
        "name": context,
        "observatory": "JWST",
        "parkey": ("META.INSTRUMENT.NAME",),
        "sha1sum": "0" * 40,
    }
    pmap = mapdir / context
    pmap.write_text(_format_mapping(pmap_header, pprint.pformat({"NIRSPEC": imap_name})))
    log.info("Wrote local CRDS context %s (%d reftypes)", pmap, len(imap_selector))
    return pmap
