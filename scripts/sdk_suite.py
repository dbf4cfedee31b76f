#!/usr/bin/env python3
"""Runs the official Python SDK v2's own integration tests against `ossgate emulator`.

The suite is not in the SDK's package, so this needs a checkout of
github.com/aliyun/alibabacloud-oss-python-sdk-v2 (docs/emulator-fidelity.md says which
commit was measured and how to get it). The script starts the emulator on a free loopback
port with fresh keys, sets only the variables the suite reads (OSS_TEST_ACCESS_KEY_ID,
OSS_TEST_ACCESS_KEY_SECRET, OSS_TEST_ENDPOINT, OSS_TEST_REGION), runs the selection with
pytest and prints every test's outcome and the pass rate. Nothing in the checkout is patched.

    python3 scripts/sdk_suite.py --sdk ../alibabacloud-oss-python-sdk-v2 [--min-pass 0.95]

Exit status: 0 when the pass rate is at least --min-pass (default 0: report only).
"""

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Object-level operations, bucket basics, listing and versioning: the files of the suite
# that exercise what the emulator implements. Bucket configuration APIs (CORS, lifecycle,
# WORM, replication, ...), Select, access points, vectors and tables are out of scope; see
# docs/emulator-fidelity.md.
SELECTION = [
    "tests/integration/test_client.py",
    "tests/integration/test_object_basic.py",
    "tests/integration/test_paginator.py",
    "tests/integration/test_client_filelike.py",
    "tests/integration/test_presign.py",
    "tests/integration/test_encryption_client.py",
    "tests/integration/aio/test_bucket_basic_async.py",
    "tests/integration/aio/test_object_basic_async.py",
    "tests/integration/aio/test_multipart_upload_async.py",
    "tests/integration/aio/test_paginator_async.py",
    "tests/integration/aio/test_presign_async.py",
    "tests/integration/aio/test_client_extension_async.py",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the emulator exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"the emulator did not listen on {port} within {seconds} s")


def outcomes(junit: Path) -> list[tuple[str, str, str]]:
    """(test id, outcome, first line of the failure) for every test case in a JUnit file."""
    rows = []
    for case in ET.parse(junit).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        outcome, why = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                why = (el.get("message") or "").strip().splitlines()[0:1]
                why = why[0][:160] if why else ""
                break
        rows.append((name, outcome, why))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sdk", required=True, type=Path, help="checkout of alibabacloud-oss-python-sdk-v2")
    ap.add_argument("--binary", type=Path, default=ROOT / "target/release/ossgate",
                    help="the ossgate binary (default: target/release/ossgate)")
    ap.add_argument("--min-pass", type=float, default=0.0, help="fail below this pass rate (0..1)")
    ap.add_argument("-k", default=None, help="pytest -k expression, to run a subset")
    ap.add_argument("tests", nargs="*", help="test files or ids instead of the default selection")
    args = ap.parse_args()

    if not args.binary.exists():
        sys.exit(f"{args.binary} does not exist: build it first (cargo build --release)")
    if not (args.sdk / "tests/integration/__init__.py").exists():
        sys.exit(f"{args.sdk} is not a checkout of alibabacloud-oss-python-sdk-v2")

    port = free_port()
    key_id, secret = "LTAI" + secrets.token_hex(8), secrets.token_hex(16)
    emulator = subprocess.Popen(
        [str(args.binary), "emulator", "--listen", f"127.0.0.1:{port}",
         "--access-key-id", key_id, "--access-key-secret", secret],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port, emulator)
        env = dict(os.environ)
        env.update({
            "OSS_TEST_ACCESS_KEY_ID": key_id,
            "OSS_TEST_ACCESS_KEY_SECRET": secret,
            "OSS_TEST_ENDPOINT": f"http://127.0.0.1:{port}",
            "OSS_TEST_REGION": "cn-hangzhou",
        })
        with tempfile.TemporaryDirectory() as tmp:
            junit = Path(tmp) / "junit.xml"
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   f"--junitxml={junit}", *(args.tests or SELECTION)]
            if args.k:
                cmd += ["-k", args.k]
            subprocess.run(cmd, cwd=args.sdk, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=3600)
            rows = outcomes(junit)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)

    for name, outcome, why in rows:
        if outcome != "passed":
            print(f"{outcome:8} {name}  {why}")
    ran = [r for r in rows if r[1] != "skipped"]
    passed = sum(1 for r in ran if r[1] == "passed")
    rate = passed / len(ran) if ran else 0.0
    skipped = len(rows) - len(ran)
    print(f"\n{passed} of {len(ran)} passed ({rate:.1%}); {skipped} skipped by the suite itself")
    return 0 if rate >= args.min_pass else 1


if __name__ == "__main__":
    sys.exit(main())
