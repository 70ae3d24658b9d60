"""The companions of a visit master: given files, or a spec2 association's members.

The step's ``visit_companions`` names the other exposures of this exposure's
visit and detector (:func:`resolve_companions`):

* files (``*_bkgcal.fits`` of :func:`~jwst_mbkg_plus.mos.visit.prepare_companion`,
  or rate files), used as given;
* spec2 association files (``*.json``): their science members of this
  exposure's visit and detector (:func:`companions_in_visit`, grouping by the
  same keys as the batch, `~jwst_mbkg_plus.batch.inputs.header_key`); the other
  members are logged with the reason they were left out;
* the keyword ``association`` alone: inside `~jwst_mbkg_plus.Spec2PipelinePlus`,
  the other science members of the association the pipeline runs on.

A pipeline run keeps each companion calibrated once for all its exposures
(:class:`CompanionCache`) instead of once per exposure that uses it.
"""

import logging
from pathlib import Path

from jwst_mbkg_plus.batch.inputs import (
    association_members,
    header_key,
    key_from_header,
    model_key,
)
from jwst_mbkg_plus.input_checks import unique_files
from jwst_mbkg_plus.mos.options import MasterBackgroundError
from jwst_mbkg_plus.mos.visit import load_companions

__all__ = [
    "ASSOCIATION",
    "CompanionCache",
    "companions_in_visit",
    "is_association_keyword",
    "resolve_companions",
]

log = logging.getLogger(__name__)

#: ``visit_companions`` keyword: inside calwebb_spec2_plus, the other science
#: members of the association the pipeline runs on.
ASSOCIATION = "association"


def is_association_keyword(entries):
    """
    Whether ``visit_companions`` is the keyword :data:`ASSOCIATION` alone.

    Parameters
    ----------
    entries : list of str or None
        The step's ``visit_companions``.

    Returns
    -------
    bool
        True for ``["association"]`` (any case).
    """
    return bool(entries) and [str(e).strip().lower() for e in entries] == [ASSOCIATION]


_IDENTITY_KEYWORDS = ("VISITGRP", "SEQ_ID", "ACT_ID", "EXPOSURE")


def _header_identity(path):
    """
    A member's (visit, detector) and its full identity, from one read of its header.

    The identity is (visit, detector, visit group, sequence, activity, exposure),
    or None where the header lacks one of them; (visit, detector) is
    `~jwst_mbkg_plus.batch.inputs.header_key`'s.
    """
    from astropy.io import fits

    try:
        header = fits.getheader(path)
        key = key_from_header(header)
    except Exception:  # noqa: BLE001 - any unreadable header, as header_key
        return ("unknown", "unknown"), None
    try:
        rest = tuple(str(header[k]).strip() for k in _IDENTITY_KEYWORDS)
    except KeyError:  # incomplete: identity unknown
        return key, None
    return key, (*key, *rest)


def _model_identity(model):
    """The full identity of :func:`_header_identity` from a datamodel's metadata, or None."""
    obs = model.meta.observation
    rest = (obs.visit_group, obs.sequence_id, obs.activity_id, obs.exposure_number)
    key = model_key(model)
    if "unknown" in key or any(v is None for v in rest):
        return None
    return (*key, *(str(v).strip() for v in rest))


def companions_in_visit(members, model, *, this_path=None):
    """
    Pick one exposure's companions among the science members of an association.

    A member is a companion if its primary header gives the same visit and
    detector as this exposure (the keys of the batch's groups,
    `~jwst_mbkg_plus.batch.inputs.header_key`) and it is not this exposure
    itself (``this_path``, or the same visit group, sequence, activity and
    exposure number).

    Parameters
    ----------
    members : sequence of str or pathlib.Path
        The association's science members.
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        This exposure (its metadata gives its visit and detector).
    this_path : str or pathlib.Path, optional
        This exposure's member file, when known (inside the pipeline).

    Returns
    -------
    companions : list of pathlib.Path
        The companions, in the association's order.
    ignored : list of (pathlib.Path, str)
        The other members (this exposure excepted) and why each is left out.

    Raises
    ------
    MasterBackgroundError
        If this exposure's metadata does not give its visit and detector.
    """
    this_key = model_key(model)
    if "unknown" in this_key:
        raise MasterBackgroundError(
            "Visit master: this exposure's metadata gives no visit or detector "
            f"({this_key[0]}, {this_key[1]}), so its association companions cannot be chosen.")
    this_id = _model_identity(model)
    this_resolved = Path(this_path).resolve() if this_path is not None else None
    companions, ignored, seen = [], [], set()
    for member in members:
        if not isinstance(member, str | Path):
            ignored.append((member, "not a file"))
            continue
        path = Path(member)
        resolved = path.resolve()
        if resolved in seen or resolved == this_resolved:
            continue
        seen.add(resolved)
        key, identity = _header_identity(path)
        if this_id is not None and identity == this_id:
            continue  # this exposure under another name
        if "unknown" in key:
            ignored.append((path, "its header gives no visit or detector (unreadable file?)"))
        elif key[0] != this_key[0]:
            ignored.append((path, f"visit {key[0]}, not this exposure's {this_key[0]}"))
        elif key[1] != this_key[1]:
            ignored.append((path, f"detector {key[1]}, not this exposure's {this_key[1]}"))
        else:
            companions.append(path)
    return companions, ignored


def resolve_companions(entries, model, *, association=None, this_path=None):
    """
    Expand the step's ``visit_companions`` into companion files.

    Parameters
    ----------
    entries : list of str
        ``visit_companions``: the keyword :data:`ASSOCIATION` alone, or files:
        ``*.json`` spec2 associations (their science members of this
        exposure's visit and detector, :func:`companions_in_visit`), other
        files as they are (``*_bkgcal.fits`` or rate files).
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        This exposure.
    association : sequence of pathlib.Path, optional
        The science members of the association the pipeline runs on (needed by
        the keyword).
    this_path : str or pathlib.Path, optional
        This exposure's member file, when known.

    Returns
    -------
    companions : list of pathlib.Path
        The companion files; one given twice (same file or identical content)
        is kept once, with a warning.
    ignored : list of (pathlib.Path, str)
        Association members left out, and why.

    Raises
    ------
    ValueError
        If the keyword is given without an association, or with other entries.
    """
    if is_association_keyword(entries):
        if association is None:
            raise ValueError(f"visit_companions={ASSOCIATION!r} needs the association "
                             "calwebb_spec2_plus runs on")
        return companions_in_visit(association, model, this_path=this_path)
    paths, ignored = [], []
    for entry in entries:
        text = str(entry).strip()
        if text.lower() == ASSOCIATION:
            raise ValueError(f"visit_companions: {ASSOCIATION!r} must be its only entry")
        if text.endswith(".json"):
            found, left = companions_in_visit(association_members(text), model,
                                              this_path=this_path)
            log.info("Visit master: association %s gives %d companion(s) of this exposure",
                     Path(text).name, len(found))
            paths.extend(found)
            ignored.extend(left)
        else:
            paths.append(Path(text))
    # The same exposure named twice (as a file and through an association, or by
    # two paths) would join the visit master twice: kept once, with a warning.
    return unique_files(paths, what="visit companion"), ignored


class CompanionCache:
    """
    Companion exposures calibrated once for every exposure of a pipeline run.

    Holds each companion's background slitlets calibrated as extended
    (:func:`load_companions`), keyed by its resolved file and the background
    selection, with its visit and detector so a finished group can be released.
    """

    def __init__(self):
        self._entries = {}  # key -> (group, (name, model))

    def __len__(self):
        return len(self._entries)

    def get(self, step, paths, options):
        """
        Return the companions, calibrating those not seen before.

        Parameters
        ----------
        step : `~jwst_mbkg_plus.MasterBackgroundMosPlusStep`
            The step (its nested calibration steps).
        paths : list of pathlib.Path
            Companion files.
        options : `~jwst_mbkg_plus.mos.options.MasterOptions`
            Background slitlet selection.

        Returns
        -------
        list of (str, `~stdatamodels.jwst.datamodels.MultiSlitModel`)
            As :func:`load_companions`; the models stay owned by the cache.
        """
        selection = (tuple(map(str, options.bkg_slits or ())),
                     tuple(map(str, options.exclude_slits or ())))
        out = []
        for path in paths:
            key = (str(Path(path).resolve()), selection)
            if key in self._entries:
                log.info("Visit master: companion %s already calibrated in this run",
                         Path(path).name)
            else:
                self._entries[key] = (header_key(path), load_companions(step, [path],
                                                                        options)[0])
            out.append(self._entries[key][1])
        return out

    def release(self, keep_groups):
        """
        Close the companions of groups no exposure still to run belongs to.

        Parameters
        ----------
        keep_groups : set of tuple
            ``(visit, detector)`` of the exposures still to run.
        """
        for key in [k for k, (group, _) in self._entries.items() if group not in keep_groups]:
            _, (_, model) = self._entries.pop(key)
            model.close()

    def close(self):
        """Close every companion held."""
        self.release(set())
