"""The conformance matrix through Node @grpc/grpc-js: runs node/conformance.test.js once
(node --test) against this session's world, then each node cell reports its own result.

Needs `node` and `npm` on PATH; installs the pinned packages from package-lock.json
(`npm ci`) when node_modules is missing.
"""

import json
import os
import shutil
import subprocess

import pytest

import matrix

NODE_DIR = matrix.HERE / "node"


@pytest.fixture(scope="module")
def node_results(world, tmp_path_factory):
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed for the Node conformance cells"
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=600)
    results = tmp_path_factory.mktemp("node") / "results.json"
    env = dict(os.environ)
    env.update(
        CONFORMANCE_GATEWAYS=json.dumps(world.gateways),
        CONFORMANCE_BUCKET=world.bucket,
        CONFORMANCE_UPLOADS=world.inspector,
        CONFORMANCE_RESULTS=str(results),
    )
    run = subprocess.run([node, "--test", "conformance.test.js"], cwd=NODE_DIR, env=env,
                         capture_output=True, text=True, timeout=600)
    assert results.exists(), f"node wrote no results (exit {run.returncode}):\n{run.stdout}\n{run.stderr}"
    return json.loads(results.read_text())


@pytest.mark.parametrize("cell", matrix.cells("node"), ids=lambda c: c.id)
def test_node(cell, node_results):
    assert cell.id in node_results, f"node/conformance.test.js did not run {cell.id}"
    result = node_results[cell.id]
    assert result["ok"], result["error"]
