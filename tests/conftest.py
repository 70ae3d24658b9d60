"""Test configuration: offline CRDS before anything imports crds, no network."""

import socket
import tempfile
from pathlib import Path

import pytest

from jwst_mbkg_plus.offline import configure_offline_crds

# crds memoizes its configuration on first use: configure before any test
# module imports jwst.
_CRDS_DIR = Path(tempfile.mkdtemp(prefix="mbkg_plus_crds_"))
configure_offline_crds(_CRDS_DIR)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


class NetworkAccessError(RuntimeError):
    """Raised when a test tries to reach the network."""


_real_connect = socket.socket.connect


def _guarded_connect(sock, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")):
        return _real_connect(sock, address)
    if sock.family == getattr(socket, "AF_UNIX", None):
        return _real_connect(sock, address)
    raise NetworkAccessError(f"test tried to open a network connection to {address!r}")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail any test that opens a non-loopback connection."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(scope="session")
def shared_data():
    """Folder of real NIRSpec data beside the project; skip if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA
