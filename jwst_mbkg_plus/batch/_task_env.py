"""What a batch task sets up in its process: the CRDS environment and log levels.

Worker processes do not inherit environment changes the client makes after
they start, so every task applies the environment it is given; a task run in
the calling process puts the previous one back afterwards.
"""

import contextlib
import logging

from jwst_mbkg_plus import offline
from jwst_mbkg_plus.offline import OFFLINE_ENV_KEYS, configure_offline_crds, saved_environment

__all__ = ["PIPELINE_LOGGERS", "log_level", "restore_environment", "set_environment"]


def set_environment(env):
    """
    Apply the CRDS/stpipe environment a task must run in, and forget crds' caches.

    Returns the previous values, for :func:`restore_environment`: a task run in
    the calling process (not in a worker) leaves its environment as it was.
    """
    saved = saved_environment()
    if env.get("_local_context_path"):
        configure_offline_crds(env["_local_context_path"], local_context=True,
                               context=env.get("CRDS_CONTEXT") or "jwst_0000.pmap")
        return saved
    offline.restore_environment({key: env.get(key) for key in OFFLINE_ENV_KEYS})
    return saved


def restore_environment(saved):
    """Put back the environment :func:`set_environment` returned (None: nothing)."""
    if saved is not None:
        offline.restore_environment(saved)


#: Loggers whose level a task sets to the batch's ``log_level`` while it runs.
PIPELINE_LOGGERS = ("jwst", "stpipe", "stcal", "stdatamodels", "crds", "jwst_mbkg_plus",
                    "py.warnings")


@contextlib.contextmanager
def log_level(level):
    """Set the pipeline loggers' level for a block (None: leave them), then restore it."""
    if level is None:
        yield
        return
    saved = {name: logging.getLogger(name).level for name in PIPELINE_LOGGERS}
    for name in PIPELINE_LOGGERS:
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, old in saved.items():
            logging.getLogger(name).setLevel(old)
