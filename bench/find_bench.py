#!/usr/bin/env python3
"""FindObjects benchmark (issue 13): the gateway's two engines against what a user of the
Python SDK (alibabacloud-oss-v2) would write by hand, in one run, against one in-memory
`ossgate emulator`.

    cargo build --release --bin ossgate
    python3 bench/find_bench.py [--objects 100000] [--parallelism 16]

Setup: --objects objects (1 byte each) under `data/`, each with 5-6 realistic tags (team,
env, owner, cost-center, retention; every 100th object carries `project=apollo`, a few
others `legal-hold`), written with the SDK in parallel; then the bucket's MetaQuery index is
opened and waited for (Running). The query finds 1% of the objects:

    "project" = 'apollo' AND NOT EXISTS "legal-hold"

(the index filters `project`; `NOT EXISTS` is checked afterwards, by the gateway or by the
hand-written loop: no apollo object carries `legal-hold`, so 1% match.)

Measured (wall clock, each contender runs once, the same matches are checked):

  metaquery  FindObjects engine=METAQUERY through the gateway (grpcio, batch 100): time to the
             first match and to the last; vs the SDK paging DoMetaQuery itself (MaxResults
             100, NextToken) and post-filtering in Python.
  scan       FindObjects engine=SCAN (gateway: find.scan_parallelism = --parallelism,
             find.scan_ops_per_second raised to 1,000,000 so the ceiling does not bind):
             objects scanned per second; vs the SDK: list_objects_v2 pages (1000 keys) and
             get_object_tagging for each key on a thread pool of --parallelism threads,
             query checked in Python.

Everything shares the machine's cores (the emulator, the gateway, the Python clients): the
results name the CPU count. Results go to stdout and bench/find_results.json.
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

import alibabacloud_oss_v2 as ossv2
import grpc

ROOT = pathlib.Path(__file__).resolve().parents[1]
OSSGATE = ROOT / "target" / "release" / "ossgate"
ACCESS_KEY_ID = "bench-ak"
ACCESS_KEY_SECRET = "bench-secret-not-for-production"
REGION = "cn-hangzhou"
BUCKET = "ossgate-find-bench"
PREFIX = "data/"
QUERY = "\"project\" = 'apollo' AND NOT EXISTS \"legal-hold\""
# What the SDK user sends to DoMetaQuery for the part the index can filter.
INDEX_QUERY = json.dumps({"Field": "OSSTagging.project", "Value": "apollo", "Operation": "eq"})
TEAMS = ["storage", "compute", "network", "data", "ml", "web", "mobile", "security", "billing",
         "search"]
ENVS = ["prod", "prod-eu", "staging", "dev", "test"]
DEADLINE_S = 3600


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _die_with_parent():
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Server:
    """A child process that prints one line (`prefix` + address) once it is listening."""

    def __init__(self, name, argv, env, prefix, log_path):
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log_file, env=env, text=True,
                                     preexec_fn=_die_with_parent)
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()),
                         daemon=True).start()
        try:
            line = lines.get(timeout=30)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"{name} did not start (log: {log_path})")
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"{name} printed {line!r} (log: {log_path})")
        self.address = line[len(prefix):].strip()

    def rss_peak(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def stubs(tmp):
    """The generated ossgate.v1 modules."""
    import grpc_tools
    from grpc_tools import protoc

    proto_dir = ROOT / "proto"
    code = protoc.main([
        "grpc_tools.protoc", f"-I{proto_dir}",
        f"-I{pathlib.Path(grpc_tools.__file__).parent / '_proto'}",
        f"--python_out={tmp}", f"--grpc_python_out={tmp}",
        str(proto_dir / "ossgate" / "v1" / "ossgate.proto"),
    ])
    assert code == 0, "protoc failed"
    sys.path.insert(0, str(tmp))
    from ossgate.v1 import ossgate_pb2, ossgate_pb2_grpc

    return ossgate_pb2, ossgate_pb2_grpc


def sdk_client(endpoint):
    cfg = ossv2.config.load_default()
    cfg.credentials_provider = ossv2.credentials.StaticCredentialsProvider(
        ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    cfg.region = REGION
    cfg.endpoint = endpoint
    return ossv2.Client(cfg)


def tags_of(i):
    """Realistic tags of object i: 1 in 100 is project apollo (never on legal hold)."""
    tags = {
        "team": TEAMS[i % len(TEAMS)],
        "env": ENVS[(i // 7) % len(ENVS)],
        "owner": f"user{i % 997:03d}",
        "cost-center": f"cc-{i % 53:02d}",
        "retention": ["30d", "90d", "1y", "7y"][i % 4],
    }
    if i % 100 == 0:
        tags["project"] = "apollo"
    elif i % 100 == 50:
        tags["legal-hold"] = "true"
        tags["project"] = "apollo"  # on hold: excluded by NOT EXISTS
    return tags


def key_of(i):
    return f"{PREFIX}{TEAMS[i % len(TEAMS)]}/{i:07d}.log"


def expected_keys(n):
    return sorted(key_of(i) for i in range(n) if i % 100 == 0)


def populate(client, n, threads):
    def put(i):
        tagging = "&".join(f"{k}={v}" for k, v in tags_of(i).items())
        client.put_object(ossv2.models.PutObjectRequest(
            bucket=BUCKET, key=key_of(i), body=b"x", tagging=tagging))

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for done, _ in enumerate(pool.map(put, range(n)), 1):
            if done % 20000 == 0:
                log(f"  {done} objects written")
    log(f"wrote {n} objects in {time.monotonic() - started:.1f} s")


def open_index(client):
    client.open_meta_query(ossv2.models.OpenMetaQueryRequest(bucket=BUCKET, mode="basic"))
    while True:
        st = client.get_meta_query_status(ossv2.models.GetMetaQueryStatusRequest(bucket=BUCKET))
        if st.meta_query_status.state == "Running":
            return
        time.sleep(0.1)


# ---------------------------------------------------------------- contenders

def gateway_find(pb2, stub, engine):
    """FindObjects: (time to first match, total time, keys, scanned)."""
    request = pb2.FindObjectsRequest(bucket=BUCKET, prefix=PREFIX, query=QUERY,
                                     engine=engine, batch_size=100)
    started = time.monotonic()
    first = None
    keys = []
    scanned = 0
    for message in stub.FindObjects(request, timeout=DEADLINE_S):
        if message.matches and first is None:
            first = time.monotonic() - started
        keys.extend(m.key for m in message.matches)
        scanned = message.progress.scanned
    return first, time.monotonic() - started, sorted(keys), scanned


def sdk_metaquery(client):
    """The SDK paging DoMetaQuery by hand, the NOT EXISTS checked on each file's tags."""
    started = time.monotonic()
    first = None
    keys = []
    token = None
    while True:
        r = client.do_meta_query(ossv2.models.DoMetaQueryRequest(
            bucket=BUCKET, mode="basic",
            meta_query=ossv2.models.MetaQuery(query=INDEX_QUERY, max_results=100,
                                              next_token=token)))
        for f in (r.files.file or []) if r.files else []:
            tags = {t.key: t.value for t in (f.oss_tagging.taggings or [])} if f.oss_tagging else {}
            if f.filename.startswith(PREFIX) and "legal-hold" not in tags:
                keys.append(f.filename)
                if first is None:
                    first = time.monotonic() - started
        token = r.next_token
        if not token:
            break
    return first, time.monotonic() - started, sorted(keys)


def sdk_scan(client, threads):
    """list_objects_v2 pages + get_object_tagging per key on `threads` threads."""
    def check(key):
        r = client.get_object_tagging(ossv2.models.GetObjectTaggingRequest(bucket=BUCKET, key=key))
        tags = {t.key: t.value for t in (r.tag_set.tags or [])} if r.tag_set else {}
        return key if tags.get("project") == "apollo" and "legal-hold" not in tags else None

    started = time.monotonic()
    keys, scanned = [], 0
    paginator = client.list_objects_v2_paginator()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for page in paginator.iter_page(ossv2.models.ListObjectsV2Request(
                bucket=BUCKET, prefix=PREFIX, max_keys=1000)):
            page_keys = [o.key for o in (page.contents or [])]
            scanned += len(page_keys)
            keys.extend(k for k in pool.map(check, page_keys) if k)
    return time.monotonic() - started, sorted(keys), scanned


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--writers", type=int, default=32, help="threads that populate")
    parser.add_argument("--out", default=str(ROOT / "bench" / "find_results.json"))
    args = parser.parse_args()
    if not OSSGATE.exists():
        sys.exit(f"{OSSGATE} is missing: cargo build --release --bin ossgate")

    with tempfile.TemporaryDirectory(prefix="find-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        pb2, pb2_grpc = stubs(tmp)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("OSSGATE_") and not k.startswith("OSS_")}
        env["RUST_LOG"] = "warn"
        emulator = Server("emulator", [
            str(OSSGATE), "emulator", "--listen", "127.0.0.1:0", "--in-memory",
            "--access-key-id", ACCESS_KEY_ID, "--access-key-secret", ACCESS_KEY_SECRET,
            "--region", REGION, "--bucket", BUCKET,
        ], env, "ossgate emulator listening on ", tmp / "emulator.log")
        gateway = None
        try:
            endpoint = emulator.address
            genv = dict(env)
            genv.update({
                "OSSGATE_OSS__ENDPOINT": endpoint,
                "OSSGATE_OSS__REGION": REGION,
                "OSSGATE_OSS__ACCESS_KEY_ID": ACCESS_KEY_ID,
                "OSSGATE_OSS__ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
                "OSSGATE_FIND__SCAN_PARALLELISM": str(args.parallelism),
                "OSSGATE_FIND__SCAN_OPS_PER_SECOND": "1000000",
            })
            gateway = Server("gateway", [str(OSSGATE), "serve", "--listen", "127.0.0.1:0"],
                             genv, "ossgate serving gRPC on ", tmp / "gateway.log")
            log(f"emulator {endpoint}, gateway {gateway.address}")
            client = sdk_client(endpoint)
            populate(client, args.objects, args.writers)
            open_index(client)
            expected = expected_keys(args.objects)
            channel = grpc.insecure_channel(gateway.address, options=[
                ("grpc.max_receive_message_length", 64 << 20)])
            stub = pb2_grpc.ObjectServiceStub(channel)

            results = {"objects": args.objects, "matches": len(expected),
                       "parallelism": args.parallelism, "cpus": os.cpu_count(),
                       "machine": platform.platform(), "query": QUERY}

            log("metaquery: gateway")
            first, total, keys, _ = gateway_find(pb2, stub, pb2.FIND_ENGINE_METAQUERY)
            assert keys == expected, f"gateway metaquery found {len(keys)}, not {len(expected)}"
            results["metaquery_gateway"] = {"first_match_s": first, "total_s": total}
            log("metaquery: SDK paging DoMetaQuery")
            first, total, keys = sdk_metaquery(client)
            assert keys == expected, f"SDK metaquery found {len(keys)}"
            results["metaquery_sdk"] = {"first_match_s": first, "total_s": total}

            log("scan: gateway")
            _, total, keys, scanned = gateway_find(pb2, stub, pb2.FIND_ENGINE_SCAN)
            assert keys == expected, f"gateway scan found {len(keys)}"
            assert scanned == args.objects, scanned
            results["scan_gateway"] = {"total_s": total, "objects_per_s": scanned / total}
            log("scan: SDK list + GetObjectTagging loop")
            total, keys, scanned = sdk_scan(client, args.parallelism)
            assert keys == expected, f"SDK scan found {len(keys)}"
            results["scan_sdk"] = {"total_s": total, "objects_per_s": scanned / total}
            results["gateway_peak_rss_bytes"] = gateway.rss_peak()
            channel.close()
        finally:
            if gateway is not None:
                gateway.stop()
            emulator.stop()

    mg, ms = results["metaquery_gateway"], results["metaquery_sdk"]
    sg, ss = results["scan_gateway"], results["scan_sdk"]
    results["ratios"] = {
        "metaquery_total_sdk_over_gateway": ms["total_s"] / mg["total_s"],
        "metaquery_first_match_sdk_over_gateway": ms["first_match_s"] / mg["first_match_s"],
        "scan_gateway_over_sdk_objects_per_s": sg["objects_per_s"] / ss["objects_per_s"],
    }
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"{args.objects} objects, {results['matches']} matches (1%), "
          f"parallelism {args.parallelism}, {results['cpus']} CPUs")
    print(f"metaquery  gateway: first match {mg['first_match_s'] * 1000:.1f} ms, "
          f"all {mg['total_s']:.2f} s | SDK DoMetaQuery loop: first "
          f"{ms['first_match_s'] * 1000:.1f} ms, all {ms['total_s']:.2f} s | "
          f"SDK/gateway total {results['ratios']['metaquery_total_sdk_over_gateway']:.2f}x")
    print(f"scan       gateway: {sg['objects_per_s']:.0f} objects/s ({sg['total_s']:.1f} s) | "
          f"SDK list+GetObjectTagging: {ss['objects_per_s']:.0f} objects/s "
          f"({ss['total_s']:.1f} s) | gateway/SDK "
          f"{results['ratios']['scan_gateway_over_sdk_objects_per_s']:.2f}x")
    print(f"gateway peak RSS {results['gateway_peak_rss_bytes'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
