"""ali-oss (Node) against the emulator: runs tests/interop/node/interop.test.js.

Needs `node` and `npm` on PATH; installs the pinned ali-oss from package-lock.json
(`npm ci`) when node_modules is missing.
"""

import os
import pathlib
import shutil
import subprocess

import pytest

NODE_DIR = pathlib.Path(__file__).resolve().parent / "node"


def test_ali_oss_v1_v4_vhost_and_sld(emulator):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are needed for the ali-oss interop test")
    if not (NODE_DIR / "node_modules" / "ali-oss").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=600
        )
    env = dict(os.environ)
    env.update(
        OSSGATE_ENDPOINT=emulator.endpoint,
        OSSGATE_AK=emulator.access_key_id,
        OSSGATE_SK=emulator.access_key_secret,
        OSSGATE_BUCKET=emulator.bucket,
    )
    r = subprocess.run(
        [node, "--test", "interop.test.js"],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "# fail 0" in r.stdout and "# pass 12" in r.stdout, r.stdout
