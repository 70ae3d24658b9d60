"""Class-level behaviour shared by every plus step and pipeline."""

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from stdatamodels.jwst import datamodels
from stpipe.library import AbstractModelLibrary

from jwst_mbkg_plus.jwst_internals import jwst_loggers, prepare_output
from jwst_mbkg_plus.safe_io import (
    InputFileError,
    OutputFolderError,
    atomic_save_model,
    check_output_folder,
    reading,
)

__all__ = ["PLUGIN_LOGGERS", "PlusMixin"]

log = logging.getLogger(__name__)

#: Loggers stpipe configures for the plus classes: jwst's own plus this package's.
PLUGIN_LOGGERS = ("jwst_mbkg_plus",)


class PlusMixin:
    """
    Keep a plus class native to jwst's CRDS and logging set-up.

    Put first among the bases, before the jwst class it extends.
    """

    @classmethod
    def get_config_reftype(cls):
        """
        Use the CRDS parameter reftype of the jwst class this one extends.

        CRDS ``pars-*`` defaults delivered for jwst's step then apply to the plus
        step too, rather than a reftype CRDS has never heard of.

        Returns
        -------
        str
            The ``pars-<jwstclass>`` reftype.
        """
        for base in cls.__mro__[1:]:
            if base.__module__.startswith("jwst.") and hasattr(base, "get_config_reftype"):
                return base.get_config_reftype()
        return super().get_config_reftype()  # pragma: no cover - always a jwst base

    @staticmethod
    def get_stpipe_loggers():
        """
        Name the loggers stpipe configures, so this package's lines show under strun.

        Returns
        -------
        tuple of str
            jwst's logger names and this package's.
        """
        return jwst_loggers() + PLUGIN_LOGGERS

    # Overrides a private stpipe hook (jwst/stpipe/core.py, JwstStep._get_crds_parameters);
    # jwst_internals.MIRRORED_SOURCES records that source, and a test its digest.
    @classmethod
    def _get_crds_parameters(cls, dataset):
        """
        Read a file input's CRDS parameters behind the read guard.

        stpipe reads them before ``process``; a truncated file would raise
        there (e.g. ``KeyError: Extension 'ASDF' not found``). The guard's
        error is a ``ValueError``, which stpipe tolerates here, so ``process``
        reports the file properly.

        Parameters
        ----------
        dataset : str, datamodel or container
            The input.

        Returns
        -------
        tuple
            As for ``JwstStep._get_crds_parameters``.
        """
        if not isinstance(dataset, str | os.PathLike):
            return super()._get_crds_parameters(dataset)
        with reading(dataset, "input"):
            return super()._get_crds_parameters(dataset)

    def open_input(self, data, what="input"):
        """
        Open the step's input as ``prepare_output`` does, behind the read guard.

        Parameters
        ----------
        data : str, `~pathlib.Path`, datamodel or container
            The input.
        what : str, optional
            What the input is, for the message.

        Returns
        -------
        datamodel or container
            The model to work on (a copy when the step runs standalone).

        Raises
        ------
        InputFileError
            If a file cannot be read, naming it (for an association, the member
            that cannot be read) and the fix.
        """
        if not isinstance(data, str | os.PathLike):
            return prepare_output(self, data)
        try:
            with reading(data, what):
                return prepare_output(self, str(data))
        except InputFileError as err:
            if str(data).endswith(".json"):
                _find_bad_member(data, err)
            raise

    def output_problem(self):
        """
        Say why this step's products cannot be written, before any work; or ''.

        Returns
        -------
        str
            The problem and the fix, or '' (also when the step saves nothing).
        """
        saves = self.save_results or any(
            getattr(self, name, False) for name in ("save_background", "save_qa")
        )
        if not saves:
            return ""
        try:
            check_output_folder(self.search_attr("output_dir") or None)
        except OutputFolderError as err:
            return str(err)
        return ""

    def check_before_run(self, args):
        """
        Raise before any work if the input cannot be read or the products written.

        Parameters
        ----------
        args : tuple
            The arguments of ``run``; the first is the input.

        Raises
        ------
        InputFileError
            If the input file (or a member of an input association) cannot be read.
        OutputFolderError
            If ``output_dir`` cannot be written to.
        """
        problem = self.output_problem()
        if problem:
            raise OutputFolderError(f"{type(self).__name__}: {problem}")
        data = args[0] if args else None
        if isinstance(data, str | os.PathLike):

            with reading(data, "input"):
                if not str(data).endswith(".json"):
                    datamodels.open(data).close()
            if str(data).endswith(".json"):
                _find_bad_member(data, None)

    def save_model(self, model, suffix=None, idx=None, output_file=None, force=False,
                   **components):
        """
        Save a model as stpipe does, but atomically (temporary name, then rename).

        Parameters
        ----------
        model : datamodel or container
            The model to save.
        suffix, idx, output_file, force, **components
            As for `stpipe.Step.save_model`.

        Returns
        -------
        str or list of str or None
            The path(s) written.
        """
        if isinstance(model, AbstractModelLibrary | Sequence):
            # Containers save each member through this method.
            return super().save_model(model, suffix=suffix, idx=idx, output_file=output_file,
                                      force=force, **components)
        if output_file is None or output_file == "":
            output_file = self.output_file
        if not force and not self.save_results and not output_file:
            return None
        if self.output_use_model or (output_file is None and not self.search_output_file):
            output_file = model.meta.filename
            idx = None
        path = self.make_output_path(basepath=output_file, suffix=suffix, idx=idx,
                                     **components)
        output_path = atomic_save_model(model, path)
        log.info("Saved model in %s", output_path)
        return output_path


class PipelinePlusMixin(PlusMixin):
    """`PlusMixin` for pipelines: check input and output folder before any work."""

    def run(self, *args):
        """
        Run the jwst pipeline, after checking its input and that its products can be written.

        Parameters
        ----------
        *args
            As for the jwst pipeline's ``run``.

        Returns
        -------
        object
            As jwst's.

        Raises
        ------
        OutputFolderError
            If ``output_dir`` cannot be written to: before any work (and before
            reference files are fetched), not after it.
        InputFileError
            If the input file, or a member of the input association, cannot be read.
        """
        self.check_before_run(args)
        return super().run(*args)


def _find_bad_member(asn_path, err):
    """Re-raise an association's read failure naming the member that cannot be read."""
    try:
        asn = json.loads(Path(asn_path).read_text())
        members = [m["expname"] for p in asn["products"] for m in p["members"]]
    except (OSError, ValueError, KeyError, TypeError):
        return  # the association itself is bad: err says so
    folder = Path(asn_path).parent
    for member in members:
        path = folder / member
        try:
            with reading(path, f"member of association {Path(asn_path).name}"):
                datamodels.open(path).close()
        except InputFileError as member_err:
            raise member_err from err
    return
