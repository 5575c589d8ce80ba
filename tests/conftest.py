"""Shared test setup: quiet, offline defaults, the real-data mirror fixture and a local S3 server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("WANDB_MODE", "offline")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module's tests, restored after them."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real-data mirror folder (MMRAY_DATA_MIRROR); CI must have it, elsewhere the test is skipped."""
    value = os.environ.get("MMRAY_DATA_MIRROR")
    if not value:
        if os.environ.get("CI") == "true":
            pytest.fail("MMRAY_DATA_MIRROR is not set on CI: .ci/run points it at ../shared/datasets")
        pytest.skip("MMRAY_DATA_MIRROR is not set: point it at ../shared/datasets to run real-data tests")
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        pytest.fail(f"MMRAY_DATA_MIRROR={value} is not a folder")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A local S3 server (moto, from the test extra) on a free port, and this process's environment pointing
    pyarrow at it, so mmray.storage, Ray Tune/Train and Ray Data (whose processes inherit the environment of
    a Ray instance started afterwards) all use it. Stopped, and the environment restored, at the end."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("moto[server] is not installed on CI: it is in the test extra of pyproject.toml")
        pytest.skip("moto[server] is not installed: pip install -e '.[test]'")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail(f"moto's S3 server did not start on port {port} (exit code {server.poll()})")
                time.sleep(0.2)
        endpoint = f"http://127.0.0.1:{port}"
        with pytest.MonkeyPatch.context() as patch:
            environment = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
            for key, value in environment.items():
                patch.setenv(key, value)
            yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="session")
def new_bucket(s3_endpoint):
    """Makes a fresh bucket on the test server: new_bucket() -> its s3:// URI."""
    import itertools

    from pyarrow import fs

    s3 = fs.S3FileSystem(endpoint_override=s3_endpoint, allow_bucket_creation=True)
    numbers = itertools.count()

    def make() -> str:
        name = f"mmray-test-{next(numbers)}"
        s3.create_dir(name)
        return f"s3://{name}"

    return make
