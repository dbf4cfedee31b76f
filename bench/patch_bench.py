#!/usr/bin/env python3
"""PatchObjectTagging against PutObjectTagging: throughput and p50/p99 latency, in one run.

Scenarios, each for `--seconds` after a one-second warm-up, each call with a 10 s deadline:

  * uncontended: one client, closed loop, on its own object;
  * contended:   16 clients (`--writers`), closed loop, all on ONE object (each patch adds or
                 overwrites one of 8 keys, client i key w{i % 8}, since OSS allows 10 tags; each
                 put replaces the whole set with the client's own key).

for each RPC, with the in-process lock and, when `redis-server` is installed, with the Redis
lock (`lock.redis_url` pointing at a redis-server this script starts on a free loopback port).
A PatchObjectTagging is a GetObjectTagging, a PutObjectTagging and a read-back
GetObjectTagging under the object's lock; a PutObjectTagging is one OSS request under it.

The gateway is the release binary with its embedded emulator (in memory), one process per
lock kind; the clients are Python grpcio threads sharing one channel. Build first:

    cargo build --release --bin ossgate
    python3 bench/patch_bench.py            # writes bench/patch_results.json

Everything listens on 127.0.0.1 and is stopped at the end.
"""

import argparse
import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import grpc

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUCKET = "ossgate-dev"
DEADLINE = 10.0


def stubs(out):
    import grpc_tools
    from grpc_tools import protoc

    code = protoc.main([
        "grpc_tools.protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{pathlib.Path(grpc_tools.__file__).parent / '_proto'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(ROOT / "proto" / "ossgate" / "v1" / "ossgate.proto"),
    ])
    assert code == 0, "protoc failed"
    sys.path.insert(0, str(out))
    from ossgate.v1 import ossgate_pb2, ossgate_pb2_grpc

    return ossgate_pb2, ossgate_pb2_grpc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process, stopped by its own pid."""

    def __init__(self, argv, env=None, ready_prefix=None):
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, text=True,
        )
        self.address = None
        if ready_prefix:
            started = time.time()
            for line in self.proc.stdout:
                if line.startswith(ready_prefix):
                    self.address = line[len(ready_prefix):].strip()
                    break
                if time.time() - started > 30:
                    break
            if self.address is None:
                self.stop()
                raise RuntimeError(f"{argv[0]} did not start")
            threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def percentile(sorted_ms, q):
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def run_scenario(pb, stub, rpc, key_of, writers, seconds):
    """Closed loop: `writers` threads call `rpc` until the clock runs out."""
    latencies = [[] for _ in range(writers)]
    errors = {}
    lock = threading.Lock()
    warmup_end = time.perf_counter() + 1.0
    end = warmup_end + seconds

    def client(i):
        n = 0
        while True:
            now = time.perf_counter()
            if now >= end:
                return
            key = key_of(i)
            n += 1
            if rpc == "patch":
                # OSS allows 10 tags: writers share 8 keys, so every patch is valid.
                request = pb.PatchObjectTaggingRequest(bucket=BUCKET, key=key, set={f"w{i % 8}": str(n)})
                call = stub.PatchObjectTagging
            else:
                request = pb.PutObjectTaggingRequest(
                    bucket=BUCKET, key=key, tagging=pb.Tagging(tags={f"w{i}": str(n)}))
                call = stub.PutObjectTagging
            started = time.perf_counter()
            try:
                call(request, timeout=DEADLINE)
            except grpc.RpcError as err:
                with lock:
                    errors[err.code().name] = errors.get(err.code().name, 0) + 1
                continue
            done = time.perf_counter()
            if started >= warmup_end and done <= end:
                latencies[i].append((done - started) * 1000.0)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ms = sorted(x for per in latencies for x in per)
    return {
        "calls": len(all_ms),
        "per_second": round(len(all_ms) / seconds, 1),
        "p50_ms": round(percentile(all_ms, 0.50), 2),
        "p99_ms": round(percentile(all_ms, 0.99), 2),
        "errors": errors,
    }


def bench_gateway(pb, pbg, binary, lock_name, env, args):
    gateway = Process([str(binary), "serve", "--listen", "127.0.0.1:0"], env=env,
                      ready_prefix="ossgate serving gRPC on ")
    results = []
    try:
        channel = grpc.insecure_channel(gateway.address)
        stub = pbg.ObjectServiceStub(channel)
        keys = [f"bench/{lock_name}/own-{i}" for i in range(args.writers)] + [f"bench/{lock_name}/shared"]
        for key in keys:
            stub.WriteObject(iter([pb.WriteObjectRequest(
                spec=pb.WriteObjectSpec(bucket=BUCKET, key=key), data=b"x", finish_write=True)]),
                timeout=DEADLINE)
        for scenario, writers, key_of in (
            ("uncontended", 1, lambda i: keys[i]),
            ("contended", args.writers, lambda i: keys[-1]),
        ):
            for rpc in ("put", "patch"):
                row = run_scenario(pb, stub, rpc, key_of, writers, args.seconds)
                row.update({"lock": lock_name, "scenario": scenario, "writers": writers,
                            "rpc": "PatchObjectTagging" if rpc == "patch" else "PutObjectTagging"})
                print(f"{lock_name:10} {scenario:12} {writers:3} {row['rpc']:20} "
                      f"{row['per_second']:9.1f}/s  p50 {row['p50_ms']:7.2f} ms  "
                      f"p99 {row['p99_ms']:7.2f} ms  errors {row['errors']}", flush=True)
                results.append(row)
        channel.close()
    finally:
        gateway.stop()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "ossgate"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "patch_results.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        pb, pbg = stubs(tmp)
        base = {"PATH": "/usr/bin:/bin", "OSSGATE_LOG__LEVEL": "warn"}
        results = bench_gateway(pb, pbg, args.binary, "in_process", dict(base), args)
        if shutil.which("redis-server"):
            port = free_port()
            redis = Process(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                             "--save", "", "--appendonly", "no"])
            time.sleep(0.5)
            try:
                env = dict(base, OSSGATE_LOCK__REDIS_URL=f"redis://127.0.0.1:{port}/0")
                results += bench_gateway(pb, pbg, args.binary, "redis", env, args)
            finally:
                redis.stop()
        else:
            print("redis-server is not installed: the Redis lock is not measured", file=sys.stderr)
    pathlib.Path(args.out).write_text(json.dumps({
        "seconds": args.seconds, "writers": args.writers, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
