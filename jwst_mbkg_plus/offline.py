"""Run the jwst stack with no network: a local CRDS cache and no CRDS server.

stpipe asks crds for the context name whenever it records reference files, even
when every reference file is overridden; crds then needs a ``server_config`` in
its cache or it exits. With ``CRDS_SERVER_URL`` unset crds is serverless and
sends no traffic. CRDS parameter (``pars-*``) look-ups are disabled, as
``strun --disable-crds-steppars`` does.

crds memoizes its configuration, so :func:`configure_offline_crds` clears crds'
function caches after changing the environment.

Examples
--------
>>> from jwst_mbkg_plus.offline import offline_crds
>>> with offline_crds(tmp_path) as crds_path:  # doctest: +SKIP
...     Spec2PipelinePlus.call("rate.fits")
"""

import contextlib
import logging
import os
import pprint
from pathlib import Path

from jwst_mbkg_plus.safe_io import atomic_write_text

__all__ = [
    "OFFLINE_ENV_KEYS",
    "configure_offline_crds",
    "default_crds_path",
    "offline_crds",
    "restore_environment",
    "saved_environment",
    "write_server_config",
]

log = logging.getLogger(__name__)

#: Every environment variable :func:`configure_offline_crds` may set or unset.
OFFLINE_ENV_KEYS = (
    "CRDS_PATH",
    "CRDS_SERVER_URL",
    "CRDS_MODE",
    "CRDS_CONTEXT",
    "CRDS_OBSERVATORY",
    "CRDS_IGNORE_MAPPING_CHECKSUM",
    "STPIPE_DISABLE_CRDS_STEPPARS",
)


#: Per-instrument reference folders crds makes on first use ('instrument' subdir mode).
CRDS_INSTRUMENT_DIRS = tuple(
    f"references/jwst/{name}" for name in ("fgs", "miri", "nircam", "niriss", "nirspec",
                                           "system")
)


def default_crds_path():
    """
    Return the default offline CRDS cache folder.

    ``$JWST_MBKG_PLUS_CACHE/crds`` if that variable is set, otherwise
    ``~/.cache/jwst_mbkg_plus/crds``.

    Returns
    -------
    pathlib.Path
        The folder (not created).
    """
    root = os.environ.get("JWST_MBKG_PLUS_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "jwst_mbkg_plus"
    return base / "crds"


def write_server_config(crds_path, context="jwst_0000.pmap"):
    """
    Write the ``server_config`` crds needs in a cache folder, if it is missing.

    Parameters
    ----------
    crds_path : str or pathlib.Path
        The CRDS cache folder (``CRDS_PATH``).
    context : str, optional
        The operational context name crds reports.

    Returns
    -------
    pathlib.Path
        Path of the ``server_config`` file.
    """
    config_dir = Path(crds_path) / "config" / "jwst"
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "server_config"
    info = {
        "observatory": "jwst",
        "operational_context": context,
        "bad_files_list": [],
        "last_synced": "never",
        # crds' ConfigInfo.effective_mode reads this in CRDS_MODE=local.
        "force_remote_mode": False,
    }
    text = pprint.pformat(info)
    if not path.exists() or path.read_text() != text:
        # Atomic: another process may be reading it (concurrent first use).
        atomic_write_text(path, text)
    # Every folder crds creates on first use, created here with exist_ok: crds'
    # own creation is not safe against another process doing the same.
    for sub in ("mappings/jwst", "references/jwst", *CRDS_INSTRUMENT_DIRS):
        (Path(crds_path) / sub).mkdir(parents=True, exist_ok=True)
    return path


def configure_offline_crds(crds_path=None, *, context="jwst_0000.pmap", local_context=False):
    """
    Configure this process's environment so the jwst stack runs offline.

    Parameters
    ----------
    crds_path : str or pathlib.Path, optional
        CRDS cache folder; created with its ``server_config`` if needed.
        Defaults to :func:`default_crds_path`.
    context : str, optional
        Context name written to ``server_config`` and, with ``local_context``,
        selected through ``CRDS_CONTEXT``.
    local_context : bool, optional
        If True, select ``context`` from the cache folder in CRDS local mode
        (``CRDS_MODE=local``), as the synthetic instrument's hand-made context
        needs, so that steps find reference files with no ``override_*``.

    Returns
    -------
    pathlib.Path
        The CRDS cache folder in use.
    """
    crds_path = Path(crds_path) if crds_path is not None else default_crds_path()
    crds_path = crds_path.expanduser().resolve()
    write_server_config(crds_path, context)

    os.environ["CRDS_PATH"] = str(crds_path)
    os.environ["CRDS_OBSERVATORY"] = "jwst"
    os.environ.pop("CRDS_SERVER_URL", None)
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "true"
    if local_context:
        os.environ["CRDS_MODE"] = "local"
        os.environ["CRDS_CONTEXT"] = context
        # Hand-written mappings carry no valid sha1sum.
        os.environ["CRDS_IGNORE_MAPPING_CHECKSUM"] = "1"
    else:
        for key in ("CRDS_MODE", "CRDS_CONTEXT", "CRDS_IGNORE_MAPPING_CHECKSUM"):
            os.environ.pop(key, None)
    clear_crds_caches()
    log.debug("Offline CRDS configured at %s (local context: %s)", crds_path, local_context)
    return crds_path


def clear_crds_caches():
    """Forget crds' memoized configuration and loaded mappings."""
    # Here, not at the top: crds reads its environment when first imported, and
    # this module sets that environment.
    try:
        from crds.core import utils as crds_utils
    except ImportError:  # pragma: no cover - crds is a dependency
        return
    crds_utils.clear_function_caches()


@contextlib.contextmanager
def offline_crds(crds_path=None, **kwargs):
    """
    Run a block offline, restoring the previous environment afterwards.

    Parameters
    ----------
    crds_path : str or pathlib.Path, optional
        CRDS cache folder, as for :func:`configure_offline_crds`.
    **kwargs
        Passed to :func:`configure_offline_crds`.

    Yields
    ------
    pathlib.Path
        The CRDS cache folder in use.
    """
    saved = saved_environment()
    try:
        yield configure_offline_crds(crds_path, **kwargs)
    finally:
        restore_environment(saved)


def saved_environment():
    """
    The current values of the environment variables the offline set-up touches.

    Returns
    -------
    dict
        `OFFLINE_ENV_KEYS` -> value, or None where unset.
    """
    return {key: os.environ.get(key) for key in OFFLINE_ENV_KEYS}


def restore_environment(saved):
    """
    Set (or unset, for None) each variable of ``saved``; forget crds' memoized set-up.

    Parameters
    ----------
    saved : dict
        Variable -> value or None, as from `saved_environment`.
    """
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    clear_crds_caches()
