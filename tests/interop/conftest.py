"""Starts one `ossgate emulator` for the test session (in memory, loopback, port 0).

The binary is target/debug/ossgate (build it first with `cargo build`) or $OSSGATE_BIN.
On Linux the emulator gets SIGTERM if pytest dies (PR_SET_PDEATHSIG); otherwise it is
terminated at session teardown.
"""

import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ACCESS_KEY_ID = "interop-ak"
ACCESS_KEY_SECRET = "interop-secret"
REGION = "cn-hangzhou"
BUCKET = "interop-bucket"
VERSIONED_BUCKET = "interop-versioned"
LISTENING = "ossgate emulator listening on "


def _die_with_parent():
    """Runs in the child before exec: SIGTERM it when the parent (pytest) dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # not Linux: teardown still stops it
        pass


class Emulator:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.access_key_id = ACCESS_KEY_ID
        self.access_key_secret = ACCESS_KEY_SECRET
        self.region = REGION
        self.bucket = BUCKET
        self.versioned_bucket = VERSIONED_BUCKET


@pytest.fixture(scope="session")
def emulator():
    binary = os.environ.get("OSSGATE_BIN") or str(ROOT / "target" / "debug" / "ossgate")
    if not os.path.exists(binary):
        pytest.fail(f"{binary} does not exist: run `cargo build` first (or set OSSGATE_BIN)")
    env = dict(os.environ)
    env.pop("OSS_ACCESS_KEY_ID", None)
    env.pop("OSS_ACCESS_KEY_SECRET", None)
    env.pop("OSS_SESSION_TOKEN", None)
    env.setdefault("RUST_LOG", "warn")
    proc = subprocess.Popen(
        [
            binary,
            "emulator",
            "--listen", "127.0.0.1:0",
            "--in-memory",
            "--access-key-id", ACCESS_KEY_ID,
            "--access-key-secret", ACCESS_KEY_SECRET,
            "--region", REGION,
            "--bucket", BUCKET,
            "--bucket", f"{VERSIONED_BUCKET}:versioned",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        env=env,
        text=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    try:
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=30)
        except queue.Empty:
            pytest.fail("the emulator did not report its address within 30 s")
        if not line.startswith(LISTENING):
            pytest.fail(f"unexpected first line from the emulator: {line!r} (exit code {proc.poll()})")
        yield Emulator(line[len(LISTENING):].strip())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
