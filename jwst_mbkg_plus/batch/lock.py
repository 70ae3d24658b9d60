"""One batch at a time on an output folder: an exclusive lock held while a batch runs.

Two batches writing one folder would both run every exposure (each sees the
other's exposures unfinished) and overwrite each other's products. The first
takes ``.jwst-mbkg-plus-batch.lock`` in the folder (``fcntl.flock``, released by
the kernel if the process dies, so no stale lock survives a crash); a second
refuses at once, or waits up to ``wait`` seconds, and says which batch holds
the folder.
"""

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

__all__ = ["LOCK_NAME", "BatchFolderInUse", "batch_lock"]

#: The lock file in the output folder.
LOCK_NAME = ".jwst-mbkg-plus-batch.lock"


class BatchFolderInUse(OSError):
    """Another batch is running on this output folder."""


def _holder(path):
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return "another batch"
    return (f"the batch of process {info.get('pid', '?')} on {info.get('host', '?')}, "
            f"started {info.get('started', '?')}")


@contextlib.contextmanager
def batch_lock(output_dir, wait=0.0, poll=2.0, say=None):
    """
    Hold the output folder's batch lock for the duration of the block.

    Parameters
    ----------
    output_dir : str or pathlib.Path
        The batch's output folder (exists).
    wait : float, optional
        Seconds to wait for another batch to finish (0: refuse at once).
    poll : float, optional
        Seconds between attempts while waiting.
    say : callable, optional
        Called once with a message if the batch has to wait.

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    BatchFolderInUse
        If another batch holds the folder (after ``wait`` seconds).
    """
    path = Path(output_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + max(0.0, wait)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BatchFolderInUse(
                        f"output folder {output_dir} is in use by {_holder(path)}: two "
                        "batches on one folder would both run every exposure. Wait for it "
                        "to finish (--wait SECONDS), or give another --output-dir."
                    ) from None
                if say is not None and not told:
                    say(f"output folder {output_dir} is in use by {_holder(path)}; waiting "
                        f"up to {wait:.0f} s")
                    told = True
                time.sleep(poll)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
