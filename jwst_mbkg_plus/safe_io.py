"""Reading and writing files safely: one guard for every read, atomic writes.

Every file the package reads (user backgrounds, association members, the
tools' inputs) is read inside :func:`reading`, which turns whatever goes wrong
(a missing file, a folder, no permission, a truncated or corrupted file that
makes astropy or asdf raise a ``ValueError`` deep inside) into an
:class:`InputFileError` naming the file, what is wrong and the fix.

Every file the package writes goes to a temporary name in the destination
folder and is renamed over the final name only once complete
(:func:`atomic_output`), so an interrupted run leaves either the previous file
or none under the final name, never a half-written one.
"""

import contextlib
import errno
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path

__all__ = [
    "InputFileError",
    "OutputFolderError",
    "OutputWriteError",
    "PackageInputError",
    "atomic_output",
    "atomic_save_model",
    "atomic_write_text",
    "check_input_file",
    "check_output_folder",
    "describe_file",
    "read_failure",
    "reading",
]

log = logging.getLogger(__name__)

#: astropy's warnings for a file it could only partly read.
_TRUNCATION = re.compile(r"truncated|Header size is not multiple of 2880|corrupt", re.I)

#: Marks the temporary files of :func:`atomic_output` (hidden, same folder).
PARTIAL_TAG = ".partial-"


class PackageInputError(ValueError):
    """Base of this package's own input errors: the read guard passes them through."""


class InputFileError(PackageInputError):
    """
    A file the package had to read cannot be used.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file.
    problem : str
        What is wrong with it.
    fix : str
        What to do about it.
    what : str, optional
        What the file is for (``"user_background"``, ``"association member"``).
    """

    def __init__(self, path, problem, fix, what="input file"):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        self.what = what
        super().__init__(f"{what} {self.path}: {problem}. {fix}")

    @property
    def reason(self):
        """str: The problem and the fix, without the file name."""
        return f"{self.problem}. {self.fix}"


class OutputWriteError(OSError):
    """A file could not be written (disk full, quota, I/O error); names the file."""

    def __str__(self):
        return str(self.strerror)


def _write_failure(exc, path):
    """An `OutputWriteError` naming ``path`` for an OSError raised while writing it."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    code = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "Free space on that disk, or choose another output_dir"
    else:
        fix = "Check the disk and that the folder can be written to"
    return OutputWriteError(
        exc.errno, f"could not write {path}: {reason}{f' ({code})' if code else ''}. {fix}; "
        "nothing was written under that name."
    )


class OutputFolderError(OSError):
    """An output folder does not exist, is not a folder or cannot be written to."""


def read_failure(exc, path=None):
    """
    Describe why reading a file failed, and the fix.

    Parameters
    ----------
    exc : BaseException
        The exception reading raised.
    path : str or `~pathlib.Path`, optional
        The file, for messages that depend on where it is.

    Returns
    -------
    tuple of str
        ``(problem, fix)``.
    """
    if isinstance(exc, FileNotFoundError):
        where = f" (relative paths are relative to {Path.cwd()})" if path else ""
        return "does not exist", f"Check the path{where}."
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file", "Give the path of the file inside it."
    if isinstance(exc, PermissionError):
        return (
            "cannot be read: permission denied",
            "Make it readable (chmod u+r) or copy it somewhere you can read.",
        )
    if isinstance(exc, OSError) and exc.errno in (errno.EIO, errno.ESTALE, errno.ENXIO):
        return f"cannot be read ({exc.strerror})", "Check the disk or network mount."
    text = str(exc)
    kind = describe_file(path) if path is not None else ""
    if kind and kind != "a gzip archive" and (kind in dict(_MAGIC).values()
                                              or kind.startswith("a binary file")):
        return f"is {kind}, not a jwst product", "Give a jwst product (FITS or ASDF)."
    if kind.startswith("an ASDF file holding"):
        return f"is {kind}, not a jwst data product", "Give a jwst product (FITS or ASDF)."
    if "No SIMPLE card" in text or "not recognized" in text.lower():
        return ("is neither a FITS nor an ASDF file",
                "Give a jwst product (FITS or ASDF).")
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    detail = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return (
        f"cannot be read ({detail}); it is probably truncated or corrupted",
        "Re-create or re-download it.",
    )


_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89HDF", "an HDF5 file"),
)


def describe_file(path):
    """
    Say what kind of file a path is, from its first bytes, for messages.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file.

    Returns
    -------
    str
        E.g. ``'a folder'``, ``'a PNG image'``, ``'an ASDF file holding a
        master background QA record (*_mbkgqa.asdf)'``, ``'a FITS file (jwst
        ImageModel, EXP_TYPE NRS_MSASPEC, a rate file)'``, ``'a text file'``;
        '' if it cannot be told.
    """
    path = Path(path)
    try:
        if path.is_dir():
            return "a folder"
        with path.open("rb") as fh:
            head = fh.read(8192)
    except OSError:
        return ""
    if not head:
        return "an empty file"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"#ASDF"):
        if b"master_background_qa" in head:
            return ("an ASDF file holding a master background QA record (*_mbkgqa.asdf, "
                    "for 'jwst-mbkg-plus plot')")
        model = re.search(rb"_type: (\w+)|class: ([\w.]+)", head)
        return "an ASDF file" + (f" ({model.group(0).decode()})" if model else "")
    if head.startswith(b"SIMPLE  ="):
        return _describe_fits_header(head)
    if b"\x00" in head[:1024]:
        return "a binary file of an unknown, unsupported format"
    return "a text file"


def _describe_fits_header(head):
    """Describe a FITS file from the cards of its primary header."""
    cards = {}
    for k in range(0, len(head) - 79, 80):
        card = head[k:k + 80].decode("ascii", "replace")
        key, _, value = card.partition("=")
        cards.setdefault(key.strip(), value.split("/")[0].strip().strip("'").strip())
    details = [f"jwst {cards['DATAMODL']}" if cards.get("DATAMODL") else ""]
    if cards.get("EXP_TYPE"):
        details.append(f"EXP_TYPE {cards['EXP_TYPE']}")
    name = cards.get("FILENAME", "")
    for suffix in ("rate", "rateints", "cal", "x1d", "s2d", "c1d", "masterbg1d", "uncal",
                   "msa", "i2d", "crf"):
        if name.rsplit(".", 1)[0].endswith(f"_{suffix}"):
            details.append(f"a {suffix} file")
            break
    details = [d for d in details if d]
    return "a FITS file" + (f" ({', '.join(details)})" if details else "")


def check_input_file(path, what="input file"):
    """
    Check that a path is an existing, readable regular file.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file.
    what : str, optional
        What the file is for, for the message.

    Returns
    -------
    `~pathlib.Path`
        The path.

    Raises
    ------
    InputFileError
        If it does not exist, is a folder or another non-regular file, or
        cannot be opened for reading.
    """
    path = Path(path).expanduser()
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "No such file", str(path))
        if not path.is_file():
            raise InputFileError(path, "is not a regular file", "Give the path of a file.",
                                 what)
        with path.open("rb") as fh:
            fh.read(1)
    except InputFileError:
        raise
    except OSError as exc:
        raise InputFileError(path, *read_failure(exc, path), what) from exc
    return path


@contextlib.contextmanager
def reading(path, what="input file"):
    """
    Read a file inside a guard that names the file and the fix on any failure.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file read in the block.
    what : str, optional
        What the file is for, for the message.

    Yields
    ------
    `~pathlib.Path`
        The path, checked to be a readable regular file.

    Raises
    ------
    InputFileError
        Whatever the block raised (this package's own errors, subclasses of
        `PackageInputError`, pass through as they are), with the file named.
    """
    path = check_input_file(path, what)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield path
        except PackageInputError:
            raise
        except (Exception, RecursionError) as exc:  # noqa: BLE001 - the guard's purpose
            raise InputFileError(path, *read_failure(exc, path), what) from exc
    truncated = None
    for w in caught:
        if truncated is None and _TRUNCATION.search(str(w.message)):
            truncated = str(w.message).strip().splitlines()[0]
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if truncated:
        # astropy reads what it can of a cut file and only warns: refuse it.
        raise InputFileError(path, f"is truncated or corrupted (astropy: {truncated})",
                             "Re-create or re-download it.", what)


# --------------------------------------------------------------------------- writing


def check_output_folder(folder, what="output_dir"):
    """
    Check that a folder exists and a file can be created in it.

    Parameters
    ----------
    folder : str or `~pathlib.Path` or None
        The folder; None: the current directory.
    what : str, optional
        What the folder is (a parameter name), for the message.

    Returns
    -------
    `~pathlib.Path`
        The folder.

    Raises
    ------
    OutputFolderError
        If the folder does not exist, is not a folder, or cannot be written to.
    """
    folder = Path(folder).expanduser() if folder else Path.cwd()
    if not folder.exists():
        raise OutputFolderError(f"{what} {folder} does not exist: create it first.")
    if not folder.is_dir():
        raise OutputFolderError(f"{what} {folder} is not a folder: give a folder.")
    try:
        # Really create a file: permission bits do not tell (root, ACLs, read-only mounts).
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputFolderError(
            f"{what} {folder} cannot be written to ({exc.strerror}): choose a folder you can "
            "write to, or change its permissions."
        ) from exc
    return folder


@contextlib.contextmanager
def atomic_output(path):
    """
    Write a file under a temporary name in its folder; rename it when complete.

    The temporary name is hidden and keeps the final extension (writers that
    choose the format from it still work): ``.<name>.partial-XXXX<ext>``.
    If the block raises, the temporary file is removed and any existing file
    at ``path`` is left as it was.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Final file name.

    Yields
    ------
    `~pathlib.Path`
        The temporary path to write.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.stem}{PARTIAL_TAG}", suffix=path.suffix, dir=path.parent or "."
        )
    except OSError as exc:
        raise _write_failure(exc, path) from exc
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        if path.exists():
            # Keep the permissions a previous version had.
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OutputWriteError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OutputFolderError):
            raise
        raise _write_failure(exc, path) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text):
    """
    Write a text file atomically.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Final file name.
    text : str
        Its content.

    Returns
    -------
    `~pathlib.Path`
        The path written.
    """
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_save_model(model, path):
    """
    Save a datamodel atomically, as ``model.save(path)`` would.

    ``meta.filename`` is the final name (not the temporary one), as after
    ``model.save``. FITS or ASDF by the extension.

    Parameters
    ----------
    model : `~stdatamodels.DataModel`
        The model.
    path : str or `~pathlib.Path`
        Final file name, ``.fits`` or ``.asdf``.

    Returns
    -------
    str
        The path written.
    """
    path = Path(path)
    ext = path.suffix
    if ext not in (".fits", ".asdf"):
        raise ValueError(f"unknown filetype {ext} of {path}: use .fits or .asdf")
    model.meta.filename = path.name
    with atomic_output(path) as tmp:
        # A file object: stdatamodels then keeps meta.filename as set above.
        with tmp.open("wb") as fh:
            if ext == ".fits":
                model.to_fits(fh, overwrite=True)
            else:
                model.to_asdf(fh)
    return str(path)
