"""Test configuration: offline CRDS before anything imports crds, no network."""

import atexit
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from jwst_mbkg_plus.offline import OFFLINE_ENV_KEYS, configure_offline_crds

# crds memoizes its configuration on first use: configure before any test
# module imports jwst.
_CRDS_DIR = Path(tempfile.mkdtemp(prefix="mbkg_plus_crds_"))
atexit.register(shutil.rmtree, _CRDS_DIR, ignore_errors=True)
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


@pytest.fixture(autouse=True)
def _no_environment_leak():
    """Fail a test that leaves the CRDS / stpipe environment changed for the next one."""
    before = {key: os.environ.get(key) for key in OFFLINE_ENV_KEYS}
    yield
    after = {key: os.environ.get(key) for key in OFFLINE_ENV_KEYS}
    for key, value in before.items():  # repair it, so one leak fails one test only
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    assert not changed, f"the test changed the environment and left it so: {changed}"


#: Fixtures that build or run jwst's chain on the synthetic instrument.
_PIPELINE_FIXTURES = {"synthetic_instrument"}


def pytest_collection_modifyitems(items):
    """Mark the tests that run jwst's chain ``pipeline``; ``-m "not pipeline"``: the quick loop."""
    for item in items:
        if _PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.pipeline)


@pytest.fixture(scope="session")
def shared_data():
    """Folder of real NIRSpec data beside the project; skip if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


# ---------------------------------------------------------------------------
# Synthetic NIRSpec MOS instrument and exposures (jwst_mbkg_plus.synthetic).
# Session-scoped; the instrument's reference files are cached across sessions
# under $JWST_MBKG_PLUS_CACHE (default ~/.cache/jwst_mbkg_plus), one folder per
# generator version (synthetic_instrument/<hash>).
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def synthetic_instrument():
    """The synthetic instrument (G235M and G395M, NRS1 and NRS2), built once and cached."""
    from jwst_mbkg_plus.synthetic import build_instrument, default_instrument_path

    return build_instrument(default_instrument_path())


@pytest.fixture
def synthetic_crds(synthetic_instrument):
    """Run one test with the synthetic local CRDS context selected."""
    from jwst_mbkg_plus.synthetic import local_crds_context

    with local_crds_context(synthetic_instrument) as path:
        yield path


@pytest.fixture(scope="session")
def small_mos_exposure(synthetic_instrument, tmp_path_factory):
    """
    A noiseless 6-slitlet G235M exposure on NRS1 and NRS2 (4 background, 1 point, 1 extended).

    The background has a gradient across the MSA, quadrant offsets and a per-slit scatter.
    Returns the scene and the `~jwst_mbkg_plus.synthetic.ExposureResult`.
    """
    from jwst_mbkg_plus.synthetic import Scene, make_exposure

    scene = Scene(
        n_background=4,
        n_point=1,
        n_extended=1,
        detectors=("NRS1", "NRS2"),
        gradient_x=0.05,
        gradient_y=0.03,
        quadrant_offsets=(0.01, -0.01, 0.02, 0.0),
        slit_scatter=0.01,
        noise_fraction=0.0,
        seed=11,
    )
    folder = tmp_path_factory.mktemp("small_mos")
    return scene, make_exposure(scene, folder, instrument=synthetic_instrument)


@pytest.fixture(scope="session")
def noisy_mos_exposure(synthetic_instrument, tmp_path_factory):
    """
    A noisy 8-slitlet G235M exposure on NRS1 with defects.

    5% noise, 2 single hot pixels and 1 cluster per background slitlet, one
    background slitlet contaminated by an undeclared source.
    """
    from jwst_mbkg_plus.synthetic import Scene, make_exposure

    scene = Scene(
        n_background=6,
        n_point=1,
        n_extended=1,
        detectors=("NRS1",),
        noise_fraction=0.05,
        hot_pixels_per_slit=2,
        hot_clusters_per_slit=1,
        n_contaminated=1,
        seed=12,
    )
    folder = tmp_path_factory.mktemp("noisy_mos")
    return scene, make_exposure(scene, folder, instrument=synthetic_instrument)


