"""Command-line tools that replace the manual steps of the STScI notebook workflow.

Each tool is a function that tests and scripts can call directly; the
``jwst-mbkg-plus`` command (:mod:`jwst_mbkg_plus.cli`) is a thin argparse layer
over them.

- :func:`jwst_mbkg_plus.tools.master.make_master_background` (``master``):
  vet background spectra, combine them, write a ``user_background`` file.
- :func:`jwst_mbkg_plus.tools.hot_pixels.flag_pixels` (``flag-pixels``): set DQ
  flags at given or automatically found hot pixels of a rate file.
- :func:`jwst_mbkg_plus.tools.msa_select.select_msa_slitlets` (``msa-select``):
  make slitlets background or source in a copy of an MSA metadata file.
- :func:`jwst_mbkg_plus.tools.plot.plot_files` (``plot``): PNG plots of products.

No tool modifies its input files: every one writes a new file and refuses to
write over one of its inputs. Every input is read behind
:func:`tool_reading` (a file that cannot be read is named, with the fix) and
every output is written under a temporary name and renamed when complete
(:func:`jwst_mbkg_plus.safe_io.atomic_output`).
"""

import contextlib
import logging
from pathlib import Path

from jwst_mbkg_plus.safe_io import (
    InputFileError,
    OutputFolderError,
    PackageInputError,
    check_output_folder,
    reading,
)

__all__ = ["ToolInputError", "check_output_path", "tool_reading"]

log = logging.getLogger(__name__)


class ToolInputError(PackageInputError):
    """
    An input or output file of a tool is unusable.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file concerned.
    reason : str
        What is wrong and how to fix it.
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def check_output_path(output, inputs, *, overwrite=False):
    """
    Refuse an output path that is one of the inputs, or exists without ``overwrite``.

    Parameters
    ----------
    output : str or `~pathlib.Path`
        The file to write.
    inputs : sequence of str or `~pathlib.Path`
        The input files, never to be written over.
    overwrite : bool, optional
        Allow replacing an existing output file that is not an input.

    Returns
    -------
    `~pathlib.Path`
        The output path.

    Raises
    ------
    ToolInputError
        If the output is an input, exists and ``overwrite`` is False, or its
        folder does not exist.
    """
    output = Path(output).expanduser()
    for item in inputs:
        item = Path(item).expanduser()
        same = output.resolve() == item.resolve()
        if not same and output.exists() and item.exists():
            same = output.samefile(item)
        if same:
            raise ToolInputError(
                output, "is an input file; inputs are never modified: choose another output name"
            )
    if output.exists() and not overwrite:
        raise ToolInputError(output, "exists; choose another name or pass --overwrite")
    if not output.parent.is_dir():
        raise ToolInputError(output, f"folder {output.parent} does not exist; create it first")
    try:
        check_output_folder(output.parent, "output folder")
    except OutputFolderError as err:
        raise ToolInputError(output, str(err)) from None
    return output


@contextlib.contextmanager
def tool_reading(path, what="input file"):
    """
    Read a tool's input file; any failure becomes a `ToolInputError` naming it.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file.
    what : str, optional
        What it is, for the message.

    Yields
    ------
    `~pathlib.Path`
        The path, checked to be a readable regular file.

    Raises
    ------
    ToolInputError
        If the file is missing, a folder, unreadable, truncated or corrupted.
    """
    try:
        with reading(path, what) as checked:
            yield checked
    except InputFileError as err:
        raise ToolInputError(path, err.reason) from None
