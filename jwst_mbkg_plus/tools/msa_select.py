"""Make slitlets background or source in a copy of an MSA metadata file.

jwst's ``master_background_mos`` uses the slitlets whose ``source_name``
contains "BKG" or "BACKGROUND" (``nirspec_utils.is_background_msa_slit``).
``assign_wcs`` (``jwst.assign_wcs.nirspec.get_open_msa_slits``) names a
slitlet ``<program>_BKG<slitlet_id>`` when none of its shutters (for the
exposure's ``msa_metadata_id`` and dither point) has ``primary_source = "Y"``;
a slitlet with one primary shutter takes the source name of that shutter's
``source_id`` from ``SOURCE_INFO``.  The STScI notebook edits the file by hand
to change this; :func:`select_msa_slitlets` does it on a copy:

- made background: every shutter row of the slitlet gets
  ``primary_source = "N"``, ``background = "Y"``, ``source_id = 0`` and NaN
  estimated source positions, as in real empty-sky slitlets;
- made source: in each (``msa_metadata_id``, ``dither_point_index``) group of
  the slitlet without a primary shutter, the middle open shutter becomes the
  primary one (``primary_source = "N"`` -> ``"Y"``, ``background = "N"``,
  source position 0.5, 0.5), with the slitlet's own non-zero ``source_id`` if a
  row has one, else a new negative (virtual) ``source_id`` that gets a
  ``SOURCE_INFO`` row named ``<program>_<source_id>``.

The plus step (``master_background_mos_plus``) chooses its background slitlets
with its ``bkg_slits`` and ``exclude_slits`` parameters and needs no edited file.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from jwst_mbkg_plus.safe_io import atomic_output
from jwst_mbkg_plus.tools import ToolInputError, check_output_path, tool_reading

__all__ = ["MsaSelection", "msa_designations", "select_msa_slitlets"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MsaSelection:
    """
    Result of `select_msa_slitlets`.

    Attributes
    ----------
    output : `~pathlib.Path`
        The file written.
    before : dict of int to str
        Designation (``"background"``, ``"source"`` or ``"mixed"``, see
        `msa_designations`) of every slitlet in the input.
    after : dict of int to str
        Designation of every slitlet in the output.
    changed : list of int
        Slitlet ids whose designation changed.
    unchanged : list of int
        Requested slitlet ids that already had the requested designation.
    new_source_ids : dict of int to int
        Virtual source ids given to slitlets made source.
    """

    output: Path
    before: dict
    after: dict
    changed: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    new_source_ids: dict = field(default_factory=dict)


def _text(value):
    if isinstance(value, bytes):
        value = value.decode()
    return str(value).strip().upper()


def _is_fixed_slit(row, names):
    return "fixed_slit" in names and _text(row["fixed_slit"]) not in ("", "NONE")


def msa_designations(shutter_info):
    """
    Return how jwst designates each slitlet of a ``SHUTTER_INFO`` table.

    In each (``msa_metadata_id``, ``dither_point_index``) group, a slitlet with
    no ``primary_source = "Y"`` shutter is background for jwst.

    Parameters
    ----------
    shutter_info : `~astropy.io.fits.FITS_rec`
        The ``SHUTTER_INFO`` table.

    Returns
    -------
    dict of int to str
        Slitlet id -> ``"background"`` (in every group), ``"source"`` (in
        none) or ``"mixed"`` (background at some dither points only, as when
        a nod moves the source out of the slitlet). Fixed slits are left out.
    """
    names = shutter_info.columns.names
    groups = {}
    for row in shutter_info:
        if _is_fixed_slit(row, names):
            continue
        key = (int(row["msa_metadata_id"]), int(row["dither_point_index"]))
        per_slit = groups.setdefault(int(row["slitlet_id"]), {})
        per_slit[key] = per_slit.get(key, False) or _text(row["primary_source"]) == "Y"
    out = {}
    for sid, per_group in groups.items():
        n_primary = sum(per_group.values())
        if n_primary == 0:
            out[sid] = "background"
        elif n_primary == len(per_group):
            out[sid] = "source"
        else:
            out[sid] = "mixed"
    return out


def _parse_ids(values, path, kind, known):
    ids = []
    for value in values:
        try:
            ids.append(int(str(value).strip()))
        except ValueError:
            raise ToolInputError(
                path, f"--{kind} {value!r} is not a slitlet id (an integer)"
            ) from None
    missing = sorted(set(ids) - set(known))
    if missing:
        shown = ", ".join(str(k) for k in sorted(known)[:12])
        more = " ..." if len(known) > 12 else ""
        raise ToolInputError(
            path,
            f"no slitlet {', '.join(map(str, missing))} in SHUTTER_INFO; "
            f"slitlet ids in the file: {shown}{more}",
        )
    return ids


def _make_background(table, rows):
    table["primary_source"][rows] = "N"
    table["background"][rows] = "Y"
    table["source_id"][rows] = 0
    table["estimated_source_in_shutter_x"][rows] = np.nan
    table["estimated_source_in_shutter_y"][rows] = np.nan


def _make_source(table, rows, source_id):
    groups = {}
    for i in rows:
        key = (int(table["msa_metadata_id"][i]), int(table["dither_point_index"][i]))
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        if any(_text(table["primary_source"][i]) == "Y" for i in members):
            continue
        members = sorted(members, key=lambda i: int(table["shutter_column"][i]))
        main = members[len(members) // 2]
        table["primary_source"][main] = "Y"
        table["background"][main] = "N"
        table["estimated_source_in_shutter_x"][main] = 0.5
        table["estimated_source_in_shutter_y"][main] = 0.5
        for i in members:
            table["source_id"][i] = source_id


def _add_source_rows(hdu, new_ids, program):
    """Return a SOURCE_INFO HDU with one row per new virtual source."""
    old = hdu.data
    n_old = 0 if old is None else len(old)
    new = fits.BinTableHDU.from_columns(hdu.columns, nrows=n_old + len(new_ids), header=hdu.header)
    names = new.columns.names
    for k, source_id in enumerate(new_ids):
        row = new.data[n_old + k]
        values = {
            "program": program,
            "source_id": source_id,
            "source_name": f"{program}_{source_id}",
            "alias": "jwst-mbkg-plus msa-select",
            "ra": 0.0,
            "dec": 0.0,
            "preimage_id": "None",
            "stellarity": 0.0,
        }
        for name, value in values.items():
            if name in names:
                row[name] = value
    return new


def select_msa_slitlets(msa_file, output, *, background=(), source=(), overwrite=False):
    """
    Write a copy of an MSA metadata file with slitlets made background or source.

    Parameters
    ----------
    msa_file : str or `~pathlib.Path`
        The input ``_msa.fits`` file (not modified).
    output : str or `~pathlib.Path`
        The file to write. Rate files find their MSA file by the ``MSAMETFL``
        keyword: point it at this file, or give the copy the original name in
        another folder.
    background : sequence of int or str, optional
        Slitlet ids to make background (no primary shutter).
    source : sequence of int or str, optional
        Slitlet ids to make source (one primary shutter per dither point).
    overwrite : bool, optional
        Replace an existing output file (never the input).

    Returns
    -------
    MsaSelection
        Designations before and after, and what changed.

    Raises
    ------
    ToolInputError
        If the input is missing or not an MSA metadata file, an id is unknown,
        in both lists or a fixed slit, or the output is not writable.
    """
    msa_file = Path(msa_file).expanduser()
    if not msa_file.exists():
        raise ToolInputError(msa_file, "no such file; give the path of an _msa.fits file")
    with tool_reading(msa_file, "MSA metadata file"):
        pass  # the input first: a folder or an unreadable file is named before the output
    output = check_output_path(output, [msa_file], overwrite=overwrite)
    with tool_reading(msa_file, "MSA metadata file"), fits.open(msa_file, memmap=False) as hdul:
        hdus = fits.HDUList([hdu.copy() for hdu in hdul])
        for hdu in hdus:
            _ = hdu.data  # a truncated table fails here, inside the guard
    names = [hdu.name for hdu in hdus]
    if "SHUTTER_INFO" not in names or "SOURCE_INFO" not in names:
        raise ToolInputError(
            msa_file,
            "has no SHUTTER_INFO and SOURCE_INFO extensions; is it an MSA metadata "
            "(_msa.fits) file?",
        )
    table = hdus["SHUTTER_INFO"].data
    needed = {"slitlet_id", "primary_source", "background", "source_id", "shutter_column",
              "msa_metadata_id", "dither_point_index",
              "estimated_source_in_shutter_x", "estimated_source_in_shutter_y"}
    lacking = needed - {n.lower() for n in table.columns.names}
    if lacking:
        raise ToolInputError(msa_file, f"SHUTTER_INFO lacks columns {sorted(lacking)}")

    before = msa_designations(table)
    bkg_ids = _parse_ids(background, msa_file, "background", before)
    src_ids = _parse_ids(source, msa_file, "source", before)
    both = sorted(set(bkg_ids) & set(src_ids))
    if both:
        raise ToolInputError(
            msa_file, f"slitlet {', '.join(map(str, both))} given as both background and source"
        )
    slitlet = np.asarray(table["slitlet_id"]).astype(int)
    fixed = np.array([_is_fixed_slit(row, table.columns.names) for row in table])

    existing_ids = [int(v) for v in np.asarray(table["source_id"])]
    src_table = hdus["SOURCE_INFO"].data
    if src_table is not None and len(src_table):
        existing_ids += [int(v) for v in np.asarray(src_table["source_id"])]
    next_virtual = min([0, *existing_ids]) - 1
    new_ids = {}
    for sid in bkg_ids:
        _make_background(table, np.flatnonzero((slitlet == sid) & ~fixed))
    for sid in src_ids:
        rows = np.flatnonzero((slitlet == sid) & ~fixed)
        own = [int(v) for v in table["source_id"][rows] if int(v) != 0]
        if own:
            source_id = Counter(own).most_common(1)[0][0]
        else:
            source_id = next_virtual
            next_virtual -= 1
            new_ids[sid] = source_id
        _make_source(table, rows, source_id)
    if new_ids:
        program = int(str(hdus[0].header.get("PROGRAM", "0")).strip() or 0)
        index = names.index("SOURCE_INFO")
        hdus[index] = _add_source_rows(hdus["SOURCE_INFO"], list(new_ids.values()), program)

    after = msa_designations(table)
    requested = bkg_ids + src_ids
    changed = [sid for sid in requested if before[sid] != after[sid]]
    unchanged = [sid for sid in requested if before[sid] == after[sid]]
    hdus[0].header.add_history(
        f"jwst-mbkg-plus msa-select from {msa_file.name}: background {bkg_ids}, source {src_ids}"
    )
    with atomic_output(output) as tmp:
        hdus.writeto(tmp, overwrite=True)
    log.info("wrote %s: %d slitlets changed", output, len(changed))
    return MsaSelection(output=output, before=before, after=after, changed=changed,
                        unchanged=unchanged, new_source_ids=new_ids)
