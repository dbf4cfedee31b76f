#!/usr/bin/env python3
"""Upload benchmark: the gateway's WriteObject against direct uploads to the emulator.

One run measures, against one `ossgate emulator` (loopback, objects on disk in a temp dir):

  * throughput of a 1 GiB upload through the gateway (`ossgate serve` + the
    `bench_write` example, 1 MiB messages, one WriteObject stream);
  * the same bytes uploaded straight to the emulator by alibabacloud-oss-v2
    (`put_object` with a file body, and its multipart `Uploader`) and by curl
    (`PUT -T file` of a presigned URL);
  * the gateway's peak RSS (VmHWM) with 1 and with 16 concurrent 1 GiB uploads,
    default settings, a fresh gateway process per scenario (the budget admits 12 at once:
    bench_write retries the others' refusals as their RetryInfo says);
  * CRC-64 throughput (the `bench_crc` example).

It builds nothing. Build first, then run (from the crate root):

    cargo build --release --examples --bin ossgate
    python3 -m pip install -r bench/requirements.txt
    python3 bench/upload_bench.py

The table goes to stdout and everything measured to bench/results.json. Servers listen
on 127.0.0.1 only and are stopped at the end; the temp dir is removed.

What each contender does (all against the same emulator process, objects on disk, the
same 1 GiB of random bytes, each stored object's size and CRC-64 checked by HEAD after):

  gateway         bench_write reads the file into memory (before its clock starts) and
                  sends it as one WriteObject stream of 1 MiB messages over one HTTP/2
                  connection; the gateway (default settings: 8 MiB parts, 4 in flight)
                  checks offsets and the stream's CRC-64, sends parts as UploadPart over
                  HTTP/1.1, checks each part's CRC-64 and the completed object's against
                  the stream's. Time: bench_write's, first message to response.
  curl            one PutObject (`curl -T file`, presigned URL, HTTP/1.1, no Expect).
                  Time: the curl process.
  sdk_put_object  alibabacloud-oss-v2 put_object with the open file as body (one
                  PutObject; the SDK computes the CRC-64 and compares it with the reply).
  sdk_uploader    alibabacloud-oss-v2 Uploader.upload_file: multipart, the SDK's default
                  part size and parallelism (recorded), CRC-64 checked.

The three servers and the clients share the machine's cores: cpu_s in the results is each
party's user+system CPU time during the upload (client includes bench_write reading the
file). On a machine with few cores the gateway path, which does the emulator's work plus
its own, is bound by CPU, not by the network.

With --load it measures uploads under load instead (issue 11) and writes
bench/load_upload_results.json: --load-streams uploads (256) of --load-size bytes (16 MiB)
start at once on one HTTP/2 connection, default gateway settings, a fresh gateway process,
the emulator in memory. bench_write retries the refusals that carry RetryInfo (at least that
delay, exponential backoff to 2 s, jitter), deletes each verified object, and probes
HeadObject and health on the same connection every 100 ms, for 1 s before the uploads (idle)
and while they run. Reported: completed uploads, refusals by pool, throughput, the gateway's
peak RSS (VmHWM), probe latencies. The baseline, in the same run: the same uploads 12 at a
time, what the default upload memory budget admits at once (192 MiB / 2 parts of 8 MiB).
"""

import argparse
import json
import os
import pathlib
import platform
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import alibabacloud_oss_v2 as ossv2
import oss2

ROOT = pathlib.Path(__file__).resolve().parents[1]
RELEASE = ROOT / "target" / "release"
OSSGATE = RELEASE / "ossgate"
BENCH_WRITE = RELEASE / "examples" / "bench_write"
BENCH_CRC = RELEASE / "examples" / "bench_crc"

ACCESS_KEY_ID = "bench-ak"
ACCESS_KEY_SECRET = "bench-secret-not-for-production"
REGION = "cn-hangzhou"
BUCKET = "ossgate-bench"
MIB = 1024 * 1024
GIB = 1024 * MIB
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Uploads the default upload memory budget admits at once: 192 MiB / (2 parts of 8 MiB).
LOAD_BASELINE_AT_ONCE = 12


def _die_with_parent():
    """In the child before exec: SIGTERM it if this script dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Server:
    """A child process that prints one line (`prefix` + address) once it is listening."""

    def __init__(self, name, argv, env, prefix, log_path):
        self.name = name
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            env=env,
            text=True,
            preexec_fn=_die_with_parent,
        )
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=30)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"{name} did not start within 30 s (log: {log_path})")
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"{name} printed {line!r} instead of {prefix!r}... (log: {log_path})")
        self.address = line[len(prefix):].strip()

    @property
    def pid(self):
        return self.proc.pid

    def status(self, field):
        """A /proc/PID/status field in bytes (VmHWM, VmRSS)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    value, unit = line.split()[1:3]
                    assert unit == "kB"
                    return int(value) * 1024
        raise KeyError(field)

    def cpu_seconds(self):
        """User + system CPU time so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


class Bench:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.emulator = None
        self.gateway = None
        self.results = {}
        self.written = []

    # ------------------------------------------------------------------ servers

    def start_emulator(self):
        data_dir = self.tmp / "emulator-data"
        data_dir.mkdir()
        storage = ["--in-memory"] if self.args.emulator_in_memory else ["--data-dir", str(data_dir)]
        env = dict(os.environ)
        for name in ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN"):
            env.pop(name, None)
        env["RUST_LOG"] = "warn"
        self.emulator = Server(
            "emulator",
            [
                str(OSSGATE), "emulator",
                "--listen", "127.0.0.1:0",
                *storage,
                "--access-key-id", ACCESS_KEY_ID,
                "--access-key-secret", ACCESS_KEY_SECRET,
                "--region", REGION,
                "--bucket", BUCKET,
            ],
            env,
            "ossgate emulator listening on ",
            self.tmp / "emulator.log",
        )
        self.endpoint = self.emulator.address
        where = "in memory" if self.args.emulator_in_memory else f"data in {data_dir}"
        log(f"emulator on {self.endpoint} ({where})")

    def start_gateway(self):
        if self.gateway is not None:
            self.gateway.stop()
        env = {
            k: v for k, v in os.environ.items()
            if not k.startswith("OSSGATE_") and not k.startswith("OSS_")
        }
        env.update({
            "OSSGATE_OSS__ENDPOINT": self.endpoint,
            "OSSGATE_OSS__REGION": REGION,
            "OSSGATE_OSS__ACCESS_KEY_ID": ACCESS_KEY_ID,
            "OSSGATE_OSS__ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        })
        for setting in self.args.gateway_env:
            name, _, value = setting.partition("=")
            env[name] = value
        self.gateway = Server(
            "gateway",
            [str(OSSGATE), "serve", "--listen", "127.0.0.1:0"],
            env,
            "ossgate serving gRPC on ",
            self.tmp / "gateway.log",
        )
        log(f"gateway on {self.gateway.address} (pid {self.gateway.pid})")

    def stop_all(self):
        for server in (self.gateway, self.emulator):
            if server is not None:
                server.stop()

    # ------------------------------------------------------------------ clients

    def sdk_client(self):
        cfg = ossv2.config.load_default()
        cfg.credentials_provider = ossv2.credentials.StaticCredentialsProvider(
            ACCESS_KEY_ID, ACCESS_KEY_SECRET
        )
        cfg.region = REGION
        cfg.endpoint = self.endpoint
        cfg.retry_max_attempts = 1
        return ossv2.Client(cfg)

    def oss2_bucket(self):
        return oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), self.endpoint, BUCKET)

    def clean(self):
        """Deletes every object written so far and any open multipart upload.

        (The emulator has no ListObjects, so the keys come from what was written.)"""
        bucket = self.oss2_bucket()
        for upload in oss2.MultipartUploadIterator(bucket):
            log(f"  WARNING: open multipart upload {upload.key} {upload.upload_id}; aborting it")
            bucket.abort_multipart_upload(upload.key, upload.upload_id)
        keys, self.written = self.written, []
        for key in keys:
            bucket.delete_object(key)
        return len(keys)

    def check_object(self, key, size):
        self.written.append(key)
        head = self.oss2_bucket().head_object(key)
        if head.content_length != size:
            raise RuntimeError(f"{key}: {head.content_length} bytes stored, {size} sent")
        if int(head.server_crc) != self.expected_crc:
            raise RuntimeError(f"{key}: CRC-64 {head.server_crc}, expected {self.expected_crc}")

    def _measure(self, fn):
        """Runs fn(); returns its result plus wall time and the CPU seconds of every party."""
        servers = {"gateway": self.gateway, "emulator": self.emulator}
        before = {name: s.cpu_seconds() for name, s in servers.items() if s}
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        kids_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - started
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        kids_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {name: round(s.cpu_seconds() - before[name], 2) for name, s in servers.items() if s}
        client_cpu = (
            self_after.ru_utime - self_before.ru_utime + self_after.ru_stime - self_before.ru_stime
            + kids_after.ru_utime - kids_before.ru_utime + kids_after.ru_stime - kids_before.ru_stime
        )
        cpu["client"] = round(client_cpu, 2)
        return out, seconds, cpu

    def gateway_upload(self, concurrency, tag):
        argv = [
            str(BENCH_WRITE),
            "--endpoint", f"http://{self.gateway.address}",
            "--bucket", BUCKET,
            "--key-prefix", f"gw-{tag}",
            "--size", str(self.args.size),
            "--concurrency", str(concurrency),
            "--data-file", str(self.data_file),
            # The budget admits 12 such streams at once; the rest are refused with RetryInfo
            # and retried, as a good client does.
            "--retry-refused",
        ]
        def run():
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"bench_write failed: {done.stderr.strip()}")
            return json.loads(done.stdout.strip().splitlines()[-1])
        line, seconds, cpu = self._measure(run)
        for i in range(concurrency):
            self.check_object(f"gw-{tag}-{i}", self.args.size)
        # bench_write reads the data file before its clock starts: use its own timing.
        return {"seconds": line["elapsed_s"], "mib_s": line["mib_s"], "cpu_s": cpu, "client": line,
                "refusals": line["refusals"]}

    def curl_upload(self, tag):
        key = f"curl-{tag}"
        url = self.oss2_bucket().sign_url("PUT", key, 3600)
        argv = [
            "curl", "-sS", "--fail", "-X", "PUT", "-T", str(self.data_file),
            "-H", "Expect:", "-o", "/dev/null",
            "-w", "%{http_code} %{time_total} %{speed_upload}", url,
        ]
        def run():
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"curl failed ({done.returncode}): {done.stderr.strip()}")
            return done.stdout.split()
        (code, total, _speed), seconds, cpu = self._measure(run)
        self.check_object(key, self.args.size)
        return {"seconds": seconds, "mib_s": self.args.size / MIB / seconds, "cpu_s": cpu,
                "curl_time_total": float(total), "http_code": int(code)}

    def sdk_put(self, tag):
        key = f"sdkput-{tag}"
        client = self.sdk_client()
        def run():
            with open(self.data_file, "rb") as body:
                client.put_object(ossv2.PutObjectRequest(bucket=BUCKET, key=key, body=body))
        _, seconds, cpu = self._measure(run)
        self.check_object(key, self.args.size)
        return {"seconds": seconds, "mib_s": self.args.size / MIB / seconds, "cpu_s": cpu}

    def sdk_uploader(self, tag):
        key = f"sdkmp-{tag}"
        uploader = self.sdk_client().uploader()
        def run():
            uploader.upload_file(ossv2.PutObjectRequest(bucket=BUCKET, key=key),
                                 filepath=str(self.data_file))
        _, seconds, cpu = self._measure(run)
        self.check_object(key, self.args.size)
        return {"seconds": seconds, "mib_s": self.args.size / MIB / seconds, "cpu_s": cpu,
                "part_size": ossv2.defaults.DEFAULT_UPLOAD_PART_SIZE,
                "parallel": ossv2.defaults.DEFAULT_UPLOAD_PARALLEL}

    # ------------------------------------------------------------------ the run

    def make_data(self):
        self.data_file = self.tmp / "data.bin"
        log(f"writing {self.args.size} random bytes to {self.data_file}")
        with open(self.data_file, "wb") as f:
            left = self.args.size
            while left:
                n = min(left, 64 * MIB)
                f.write(os.urandom(n))
                left -= n
        # The CRC every stored copy must have (the emulator reports it on HEAD).
        done = subprocess.run([str(BENCH_CRC), "--file", str(self.data_file)],
                              capture_output=True, text=True, check=True)
        self.expected_crc = json.loads(done.stdout)["crc64"]

    def throughput(self):
        methods = {
            "gateway": lambda tag: self.gateway_upload(1, tag),
            "curl": self.curl_upload,
            "sdk_put_object": self.sdk_put,
            "sdk_uploader": self.sdk_uploader,
        }
        if self.args.skip_sdk_uploader:
            del methods["sdk_uploader"]
        runs = {name: [] for name in methods}
        self.start_gateway()
        # Interleaved rounds, so slow drifts in the machine's load hit every method alike.
        for rep in range(self.args.reps):
            for name, fn in methods.items():
                self.clean()
                out = fn(f"r{rep}")
                runs[name].append(out)
                log(f"  round {rep + 1}/{self.args.reps} {name:15s} {out['seconds']:7.2f} s "
                    f"{out['mib_s']:8.1f} MiB/s  cpu {out['cpu_s']}")
        self.clean()
        summary = {}
        for name, outs in runs.items():
            summary[name] = {
                "median_mib_s": statistics.median(o["mib_s"] for o in outs),
                "median_seconds": statistics.median(o["seconds"] for o in outs),
                "runs": outs,
            }
        self.results["throughput"] = summary

    def peak_rss(self):
        rss = {}
        for streams in (1, self.args.concurrency):
            self.clean()
            self.start_gateway()  # fresh process: VmHWM is this scenario's peak
            idle = self.gateway.status("VmHWM")
            out = self.gateway_upload(streams, f"rss{streams}")
            rss[str(streams)] = {
                "streams": streams,
                "vmhwm_bytes": self.gateway.status("VmHWM"),
                "vmhwm_idle_bytes": idle,
                "seconds": out["seconds"],
                "mib_s": out["mib_s"],
                "cpu_s": out["cpu_s"],
                "refusals": out["refusals"],
            }
            log(f"  {streams:2d} stream(s): VmHWM {rss[str(streams)]['vmhwm_bytes'] / MIB:.0f} MiB, "
                f"{out['mib_s']:.1f} MiB/s total, refusals retried {out['refusals']}")
        self.clean()
        self.results["peak_rss"] = rss

    def load(self):
        streams, size = self.args.load_streams, self.args.load_size
        runs = {}
        for name, at_once in (("baseline", LOAD_BASELINE_AT_ONCE), ("load", streams)):
            self.start_gateway()  # fresh process: VmHWM is this scenario's peak
            argv = [
                str(BENCH_WRITE),
                "--endpoint", f"http://{self.gateway.address}",
                "--bucket", BUCKET,
                "--key-prefix", f"load-{name}",
                "--size", str(size),
                "--concurrency", str(streams),
                "--at-once", str(at_once),
                "--retry-refused",
                "--delete-after",
                "--probe-ms", "100",
            ]
            def run():
                done = subprocess.run(argv, capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"bench_write failed: {done.stderr.strip()}")
                return json.loads(done.stdout.strip().splitlines()[-1])
            line, _, cpu = self._measure(run)
            runs[name] = {**line, "vmhwm_bytes": self.gateway.status("VmHWM"), "cpu_s": cpu}
            log(f"  {name}: {line['completed']}/{streams} uploads, {at_once} at a time, "
                f"{line['mib_s']:.1f} MiB/s, refusals {line['refusals']}, "
                f"VmHWM {runs[name]['vmhwm_bytes'] / MIB:.0f} MiB, "
                f"probe p99 {line['probe_loaded']['p99_ms']:.1f} ms")
        base, loaded = runs["baseline"], runs["load"]
        self.results["load"] = {
            "runs": runs,
            "throughput_load_over_baseline": loaded["mib_s"] / base["mib_s"],
            # Against the baseline's probes under load, not the idle ones: 20 idle samples
            # of a few ms make a ratio that swings by 100x from run to run.
            "probe_p99_load_over_baseline": (loaded["probe_loaded"]["p99_ms"]
                                             / base["probe_loaded"]["p99_ms"]),
        }

    def run_load(self):
        self.results["load_average_at_start"] = os.getloadavg()
        self.start_emulator()
        log(f"load: {self.args.load_streams} uploads of {self.args.load_size} bytes")
        self.load()
        self.results["load_average_at_end"] = os.getloadavg()

    def crc(self):
        done = subprocess.run([str(BENCH_CRC), "--size", str(GIB)], capture_output=True,
                              text=True, check=True)
        self.results["crc64"] = json.loads(done.stdout.strip().splitlines()[-1])

    def run(self):
        self.results["load_average_at_start"] = os.getloadavg()
        self.start_emulator()
        self.make_data()
        log("throughput")
        self.throughput()
        if not self.args.skip_rss:
            log("peak RSS")
            self.peak_rss()
        log("CRC-64")
        self.crc()
        self.results["load_average_at_end"] = os.getloadavg()


def table(results, size):
    t = results["throughput"]
    gw = t["gateway"]["median_mib_s"]
    lines = []
    add = lines.append
    add(f"Upload of {size / GIB:g} GiB, median of {results['settings']['reps']} runs "
        f"(emulator on loopback, objects "
        f"{'in memory' if results['settings']['emulator_in_memory'] else 'on disk'}):")
    if results["settings"]["gateway_env"]:
        add(f"  gateway settings changed: {' '.join(results['settings']['gateway_env'])}")
    add(f"  {'method':38s} {'MiB/s':>8s} {'seconds':>8s}  gateway/this  "
        f"CPU s: client gateway emulator")
    names = {
        "gateway": "gateway WriteObject (bench_write)",
        "curl": "curl PUT -T (presigned URL)",
        "sdk_put_object": "alibabacloud-oss-v2 put_object",
        "sdk_uploader": "alibabacloud-oss-v2 Uploader (multipart)",
    }
    for name, row in t.items():
        ratio = "" if name == "gateway" else f"{gw / row['median_mib_s']:.2f}x"
        cpu = {party: statistics.median(r["cpu_s"].get(party, 0.0) for r in row["runs"])
               for party in ("client", "gateway", "emulator")}
        add(f"  {names[name]:38s} {row['median_mib_s']:8.1f} {row['median_seconds']:8.2f}  "
            f"{ratio:>12s}  {cpu['client']:6.2f} {cpu['gateway']:7.2f} {cpu['emulator']:8.2f}")
    if "peak_rss" in results:
        add("Gateway peak RSS (VmHWM), default settings:")
    for row in results.get("peak_rss", {}).values():
        add(f"  {row['streams']:2d} concurrent {size / GIB:g} GiB upload(s): "
            f"{row['vmhwm_bytes'] / MIB:7.1f} MiB  ({row['mib_s']:.1f} MiB/s in total)")
    crc = results["crc64"]
    add(f"CRC-64/XZ (ossgate::model::crc64) over 1 GiB: {crc['gib_s']:.2f} GiB/s "
        f"(1 MiB incremental updates: {crc.get('chunked_gib_s', float('nan')):.2f} GiB/s)")
    add("Load average (1, 5, 15 min) at start: "
        + ", ".join(f"{x:.2f}" for x in results["load_average_at_start"])
        + "; at end: " + ", ".join(f"{x:.2f}" for x in results["load_average_at_end"]))
    add("Targets:")
    for target in results["targets"]:
        add(f"  [{'met' if target['met'] else 'MISSED'}] {target['name']}: {target['value']}")
    return "\n".join(lines)


def load_table(results):
    lines = []
    add = lines.append
    load = results["load"]
    add(f"{results['settings']['load_streams']} uploads of "
        f"{results['settings']['load_size_bytes'] / MIB:g} MiB on one connection, default "
        f"settings (emulator in memory):")
    add(f"  {'run':28s} {'done':>5s} {'MiB/s':>7s} {'refused (slots/memory)':>23s} "
        f"{'VmHWM MiB':>9s} {'probe p50/p99/max ms (idle p99)':>32s}")
    for name, row in load["runs"].items():
        probe, idle = row["probe_loaded"], row["probe_idle"]
        refused = f"{row['refusals']['call_slots']}/{row['refusals']['upload_memory']}"
        add(f"  {name + ' (' + str(row['at_once']) + ' at a time)':28s} {row['completed']:5d} "
            f"{row['mib_s']:7.1f} {refused:>23s} {row['vmhwm_bytes'] / MIB:9.0f} "
            f"{probe['p50_ms']:10.1f}/{probe['p99_ms']:.1f}/{probe['max_ms']:.1f} "
            f"({idle['p99_ms']:.1f})")
    add(f"  throughput, all at once / baseline: {load['throughput_load_over_baseline']:.2f}x; "
        f"probe p99 all at once / baseline: {load['probe_p99_load_over_baseline']:.2f}x")
    add("Targets:")
    for target in results["targets"]:
        add(f"  [{'met' if target['met'] else 'MISSED'}] {target['name']}: {target['value']}")
    return "\n".join(lines)


def load_targets(results):
    loaded = results["load"]["runs"]["load"]
    streams = results["settings"]["load_streams"]
    return [
        {"name": f"all {streams} uploads complete", "value": loaded["completed"],
         "met": loaded["completed"] == streams},
        {"name": "gateway peak RSS < 512 MiB", "value": f"{loaded['vmhwm_bytes'] / MIB:.1f} MiB",
         "met": loaded["vmhwm_bytes"] < 512 * MIB},
        {"name": "unary probes on the same connection all answer, slowest < 2 s",
         "value": f"{loaded['probe_loaded']['failures']} failures, "
                  f"slowest {loaded['probe_loaded']['max_ms']:.1f} ms",
         "met": loaded["probe_loaded"]["failures"] == 0
                and loaded["probe_loaded"]["max_ms"] < 2000},
    ]


def targets(results, concurrency):
    t = results["throughput"]
    gw = t["gateway"]["median_mib_s"]
    out = [{
        "name": "gateway >= 0.9x direct curl upload",
        "value": f"{gw / t['curl']['median_mib_s']:.2f}x",
        "met": gw >= 0.9 * t["curl"]["median_mib_s"],
    }]
    for name in ("sdk_put_object", "sdk_uploader"):
        if name in t:
            out.append({
                "name": f"gateway faster than alibabacloud-oss-v2 {name.removeprefix('sdk_')}",
                "value": f"{gw / t[name]['median_mib_s']:.2f}x",
                "met": gw > t[name]["median_mib_s"],
            })
    if "peak_rss" not in results:
        return out
    rss = results["peak_rss"][str(concurrency)]["vmhwm_bytes"]
    out.append({
        "name": f"peak RSS with {concurrency} concurrent uploads < 512 MiB",
        "value": f"{rss / MIB:.1f} MiB",
        "met": rss < 512 * MIB,
    })
    return out


def main():
    global OSSGATE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=GIB, help="bytes per upload (1 GiB)")
    parser.add_argument("--reps", type=int, default=3, help="runs per method (median)")
    parser.add_argument("--concurrency", type=int, default=16, help="streams in the RSS run")
    parser.add_argument("--tmp-dir", default=None,
                        help="where the temp dir goes (default: the system's; needs "
                             "about concurrency x size x 2 free)")
    parser.add_argument("--skip-sdk-uploader", action="store_true")
    parser.add_argument("--skip-rss", action="store_true", help="no peak-RSS runs (diagnostics)")
    parser.add_argument("--emulator-in-memory", action="store_true",
                        help="diagnostics: keep objects in the emulator's memory, not on disk")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="diagnostics: extra gateway setting, e.g. "
                             "OSSGATE_UPLOAD__PART_SIZE_BYTES=33554432 (repeatable)")
    parser.add_argument("--ossgate-binary", default=str(OSSGATE),
                        help="diagnostics: the ossgate binary to run (gateway and emulator)")
    parser.add_argument("--load", action="store_true",
                        help="measure uploads under load instead (bench/load_upload_results.json)")
    parser.add_argument("--load-streams", type=int, default=256, help="uploads in the load run")
    parser.add_argument("--load-size", type=int, default=16 * MIB,
                        help="bytes per upload in the load run (16 MiB)")
    parser.add_argument("--output", default=None,
                        help="results file (default bench/results.json, or "
                             "bench/load_upload_results.json with --load)")
    args = parser.parse_args()
    if args.output is None:
        name = "load_upload_results.json" if args.load else "results.json"
        args.output = str(ROOT / "bench" / name)
    if args.load:
        args.emulator_in_memory = True
    OSSGATE = pathlib.Path(args.ossgate_binary)

    needed = (OSSGATE, BENCH_WRITE) if args.load else (OSSGATE, BENCH_WRITE, BENCH_CRC)
    missing = [p for p in needed if not p.exists()]
    if missing:
        sys.exit("missing " + ", ".join(map(str, missing))
                 + ": run `cargo build --release --examples --bin ossgate` first")

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ossgate-bench-", dir=args.tmp_dir))
    bench = Bench(args, tmp)
    try:
        bench.run_load() if args.load else bench.run()
    except BaseException:
        for name in ("emulator.log", "gateway.log"):
            path = tmp / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-20:]
                log(f"last lines of {name}:\n" + "\n".join(tail))
        raise
    finally:
        bench.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    results = bench.results
    results["settings"] = {
        "size_bytes": args.size,
        "reps": args.reps,
        "concurrency": args.concurrency,
        "gateway_settings": "defaults ([upload] part 8 MiB, 4 parts in flight, 192 MiB budget)",
        "client_chunk_bytes": MIB,
        "emulator_in_memory": args.emulator_in_memory,
        "gateway_env": args.gateway_env,
    }
    results["machine"] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "alibabacloud_oss_v2": ossv2.__version__ if hasattr(ossv2, "__version__") else None,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.load:
        results["settings"].update({
            "load_streams": args.load_streams,
            "load_size_bytes": args.load_size,
            "load_baseline_at_once": LOAD_BASELINE_AT_ONCE,
        })
        for name in ("size_bytes", "reps", "concurrency"):
            del results["settings"][name]
    results["targets"] = load_targets(results) if args.load else targets(results, args.concurrency)
    pathlib.Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(load_table(results) if args.load else table(results, args.size))
    print(f"(details in {args.output})")


if __name__ == "__main__":
    main()
