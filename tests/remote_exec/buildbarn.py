"""A real Buildbarn cluster on 127.0.0.1 for the remote-execution tests: bb_storage (CAS + action
cache on disk), bb_scheduler, and N workers, each a bb_worker with its own bb_runner. Built from the
Go module proxy by build-support/buildbarn/ensure-buildbarn (`buildbarn_bin()`).

    with running_cluster(tmp / "bb", buildbarn_bin(), workers=2) as c:
        c.store_address, c.execution_address  # grpc://127.0.0.1:PORT of bb_storage, bb_scheduler
        c.execution_counts()                  # {"w1": 3, "w2": 1}, from the workers' logs
        c.kill("w1"); c.restart("scheduler"); c.restart("storage")

Components: "storage", "scheduler", "w1".."wN" (bb_worker) and "w1-runner".."wN-runner"
(bb_runner). kill/stop/start/restart keep ports, configuration and what storage holds on disk.

Counting executions: bb_worker logs an "Action: <url> with timeout ..." line before, and an
"ExecuteResponse: {json}" line after, every action it executes; the JSON names the worker
(result.executionMetadata.worker, the runner's workerId). Logs are appended to, so counts survive
restarts. Results served from the action cache never reach a worker.

The configuration is JSON (Buildbarn reads Jsonnet, a superset). What matters for Pants 2.17:
- the scheduler takes the platform from the Command (`actionAndCommand`): Pants leaves the
  Action's platform empty;
- each runner gives actions a default PATH (`environmentVariables`): Pants' probes set none;
- a predeclared platform queue lets actions wait while no worker is up (fault tests), instead of
  failing at once;
- cleanProcessTable stays off: every runner runs as the test's user, so it would kill others' work.
Shutdown: SIGTERM to each process group, SIGKILL 3 s later (a bb_worker whose scheduler is gone
never exits on SIGTERM); every component also gets PR_SET_PDEATHSIG, so it dies with the test.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[2]
ENSURE = REPO / "build-support" / "buildbarn" / "ensure-buildbarn"


def buildbarn_bin() -> Path:
    """The folder of the four programs, built on first use (about 3 minutes)."""
    return Path(subprocess.run([str(ENSURE)], check=True, capture_output=True, text=True).stdout.strip())


DEFAULT_PLATFORM = {"OSFamily": "linux", "container-image": "occlum-double"}
MAX_MSG = 16 * 1024 * 1024
ALLOW: dict = {"allow": {}}

_EXEC_RE = re.compile(r"ExecuteResponse: (\{.*\})\s*$")
_ACTION_RE = re.compile(r"Action: (\S*)")
_DIGEST_RE = re.compile(r"/([0-9a-f]{64})[-/](\d+)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _unix_open(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(path)
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """preexec_fn: PR_SET_PDEATHSIG(SIGKILL), so components die if the Python
    process that started them dies without running the context manager exit."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def _server(addr: Optional[str] = None, path: Optional[str] = None) -> dict:
    d: dict = {"authenticationPolicy": ALLOW}
    if addr:
        d["listenAddresses"] = [addr]
    if path:
        d["listenPaths"] = [path]
    return d


def _global(diag_port: int) -> dict:
    return {
        "diagnosticsHttpServer": {
            "httpServers": [{"listenAddresses": ["127.0.0.1:%d" % diag_port], "authenticationPolicy": ALLOW}],
            "enablePrometheus": True,
            "enablePprof": False,
        }
    }


def _local_store(d: Path, blocks_bytes: int, klm_bytes: int, new_blocks: int) -> dict:
    """Persistent on-disk LocalBlobAccess (sparse files + state dir)."""
    (d / "state").mkdir(parents=True, exist_ok=True)
    return {
        "local": {
            "keyLocationMapOnBlockDevice": {"file": {"path": str(d / "key_location_map"), "sizeBytes": klm_bytes}},
            "keyLocationMapMaximumGetAttempts": 16,
            "keyLocationMapMaximumPutAttempts": 64,
            "oldBlocks": 8,
            "currentBlocks": 24,
            "newBlocks": new_blocks,
            "blocksOnBlockDevice": {
                "source": {"file": {"path": str(d / "blocks"), "sizeBytes": blocks_bytes}},
                "spareBlocks": 3,
            },
            "persistent": {"stateDirectoryPath": str(d / "state"), "minimumEpochInterval": "1s"},
        }
    }


class Component:
    def __init__(self, name: str, binary: Path, config: Path, log: Path, cwd: Path):
        self.name, self.binary, self.config, self.log, self.cwd = name, binary, config, log, cwd
        self.proc: Optional[subprocess.Popen] = None
        self.ready_check: Callable[[], bool] = lambda: True

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(
        self,
        workdir: Path,
        bin_dir: Path,
        workers: int,
        platform: dict[str, str],
        worker_env_path: str,
        cas_size_bytes: int,
        predeclare_platform_queue: bool,
        runner_concurrency: int,
    ):
        self.workdir = Path(workdir).resolve()
        self.bin_dir = Path(bin_dir).resolve()
        self.platform = dict(platform)
        self.worker_env_path = worker_env_path
        self.worker_names = ["w%d" % i for i in range(1, workers + 1)]
        self.ports = {
            k: _free_port()
            for k in ("storage_grpc", "storage_diag", "sched_client", "sched_worker", "sched_admin", "sched_diag")
        }
        for w in self.worker_names:
            self.ports[w + "_diag"] = _free_port()
        self.store_address = "grpc://127.0.0.1:%d" % self.ports["storage_grpc"]
        self.execution_address = "grpc://127.0.0.1:%d" % self.ports["sched_client"]
        self.scheduler_http = "http://127.0.0.1:%d" % self.ports["sched_admin"]
        self.instance_name = "main"
        # Unix socket paths are limited to ~107 bytes; fall back to /tmp.
        self._sockdir: Optional[str] = None
        probe = self.workdir / "w99" / "runner.sock"
        if len(str(probe)) > 100:
            self._sockdir = tempfile.mkdtemp(prefix="bbw-")
        self.components: dict[str, Component] = {}
        # NB: PDEATHSIG fires when the *thread* that spawned the child exits;
        # set False if you start/restart components from short-lived threads.
        self.die_with_parent = True
        self.worker_logs: dict[str, Path] = {}
        self.runner_logs: dict[str, Path] = {}
        self._write_configs(cas_size_bytes, predeclare_platform_queue, runner_concurrency)

    # ------------------------------------------------------------------ config
    def _platform_proto(self) -> dict:
        return {"properties": [{"name": k, "value": v} for k, v in sorted(self.platform.items())]}

    def _write(self, path: Path, cfg: dict) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cfg, indent=2) + "\n")
        return path

    def _add(self, name: str, binary: str, config: Path, log: Path, check) -> None:
        c = Component(name, self.bin_dir / binary, config, log, config.parent)
        c.ready_check = check
        self.components[name] = c

    def _write_configs(self, cas_size_bytes: int, predeclare: bool, runner_concurrency: int) -> None:
        wd, p = self.workdir, self.ports
        storage_client = {"grpc": {"address": "127.0.0.1:%d" % p["storage_grpc"]}}

        sdir = wd / "storage"
        storage = {
            "grpcServers": [_server("127.0.0.1:%d" % p["storage_grpc"])],
            "maximumMessageSizeBytes": MAX_MSG,
            "global": _global(p["storage_diag"]),
            "contentAddressableStorage": {
                "backend": _local_store(sdir / "cas", cas_size_bytes, 64 << 20, 3),
                "getAuthorizer": ALLOW,
                "putAuthorizer": ALLOW,
                "findMissingAuthorizer": ALLOW,
            },
            "actionCache": {
                "backend": {
                    "completenessChecking": {
                        "backend": _local_store(sdir / "ac", 64 << 20, 16 << 20, 1),
                        "maximumTotalTreeSizeBytes": 64 << 20,
                    }
                },
                "getAuthorizer": ALLOW,
                "putAuthorizer": ALLOW,
            },
        }
        self._add(
            "storage",
            "bb_storage",
            self._write(sdir / "storage.json", storage),
            sdir / "storage.log",
            lambda: _port_open(p["storage_grpc"]),
        )

        scheduler = {
            "clientGrpcServers": [_server("127.0.0.1:%d" % p["sched_client"])],
            "workerGrpcServers": [_server("127.0.0.1:%d" % p["sched_worker"])],
            "adminHttpServers": [
                {"listenAddresses": ["127.0.0.1:%d" % p["sched_admin"]], "authenticationPolicy": ALLOW}
            ],
            "browserUrl": "http://127.0.0.1/",
            "contentAddressableStorage": storage_client,
            "maximumMessageSizeBytes": MAX_MSG,
            "global": _global(p["sched_diag"]),
            "executeAuthorizer": ALLOW,
            "modifyDrainsAuthorizer": ALLOW,
            "killOperationsAuthorizer": ALLOW,
            "synchronizeAuthorizer": ALLOW,
            "platformQueueWithNoWorkersTimeout": "900s",
            "actionRouter": {
                "simple": {
                    # Platform from Action.platform, falling back to Command.platform.
                    "platformKeyExtractor": {"actionAndCommand": {}},
                    "invocationKeyExtractors": [{"correlatedInvocationsId": {}}, {"toolInvocationId": {}}],
                    "initialSizeClassAnalyzer": {
                        "defaultExecutionTimeout": "1800s",
                        "maximumExecutionTimeout": "7200s",
                    },
                }
            },
        }
        if predeclare:
            scheduler["predeclaredPlatformQueues"] = [
                {"instanceNamePrefix": "", "platform": self._platform_proto(), "sizeClasses": [0]}
            ]
        schd = wd / "scheduler"
        self._add(
            "scheduler",
            "bb_scheduler",
            self._write(schd / "scheduler.json", scheduler),
            schd / "scheduler.log",
            lambda: _port_open(p["sched_client"]) and _port_open(p["sched_worker"]),
        )

        for w in self.worker_names:
            d = wd / w
            build = d / "build"
            cache = d / "cache"
            for x in (build, cache):
                x.mkdir(parents=True, exist_ok=True)
            sock = str(Path(self._sockdir) / ("%s.sock" % w)) if self._sockdir else str(d / "runner.sock")
            runner = {
                "buildDirectoryPath": str(build),
                "grpcServers": [_server(path=sock)],
                "setTmpdirEnvironmentVariable": True,
                # NB: never enable cleanProcessTable here: every runner runs as
                # the same uid and it would kill unrelated processes.
            }
            worker = {
                "blobstore": {"contentAddressableStorage": storage_client, "actionCache": storage_client},
                "browserUrl": "http://127.0.0.1/",
                "maximumMessageSizeBytes": MAX_MSG,
                "scheduler": {"address": "127.0.0.1:%d" % p["sched_worker"]},
                "global": _global(p[w + "_diag"]),
                "filePool": {"blockDevice": {"file": {"path": str(d / "filepool"), "sizeBytes": 1 << 30}}},
                "inputDownloadConcurrency": 10,
                "outputUploadConcurrency": 10,
                "directoryCache": {
                    "maximumCount": 1000,
                    "maximumSizeBytes": 1000 * 1024,
                    "cacheReplacementPolicy": "LEAST_RECENTLY_USED",
                },
                "buildDirectories": [
                    {
                        "native": {
                            "buildDirectoryPath": str(build),
                            "cacheDirectoryPath": str(cache),
                            "maximumCacheFileCount": 10000,
                            "maximumCacheSizeBytes": 1 << 30,
                            "cacheReplacementPolicy": "LEAST_RECENTLY_USED",
                        },
                        "runners": [
                            {
                                "endpoint": {"address": "unix://" + sock},
                                "concurrency": runner_concurrency,
                                "instanceNamePrefix": "",
                                "platform": self._platform_proto(),
                                "workerId": {"worker": w},
                                # Defaults for the action's environment; variables set
                                # by the action (Command.environment_variables) win.
                                "environmentVariables": {"PATH": self.worker_env_path},
                                "inputRootCharacterDeviceNodes": ["null", "zero", "random", "urandom"],
                            }
                        ],
                    }
                ],
            }
            self._add(
                w + "-runner",
                "bb_runner",
                self._write(d / "runner.json", runner),
                d / "runner.log",
                (lambda s=sock: _unix_open(s)),
            )
            diag = p[w + "_diag"]
            self._add(
                w,
                "bb_worker",
                self._write(d / "worker.json", worker),
                d / "worker.log",
                (lambda port=diag: _port_open(port)),
            )
            self.worker_logs[w] = d / "worker.log"
            self.runner_logs[w] = d / "runner.log"

    # --------------------------------------------------------------- process
    def start(self, name: str, timeout: float = 30.0) -> None:
        c = self.components[name]
        if c.running():
            return
        if name.endswith("-runner"):
            sock = self._runner_socket(name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sock)  # stale socket from a killed runner
        logf = open(c.log, "ab")
        try:
            logf.write(("\n==== cluster.py: starting %s at %s ====\n" % (name, time.strftime("%H:%M:%S"))).encode())
            logf.flush()
            c.proc = subprocess.Popen(
                [str(c.binary), str(c.config)],
                cwd=str(c.cwd),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        finally:
            logf.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if c.proc.poll() is not None:
                raise RuntimeError(
                    "%s exited with %s during startup; see %s:\n%s"
                    % (name, c.proc.returncode, c.log, self._tail(c.log))
                )
            if c.ready_check():
                return
            time.sleep(0.1)
        raise TimeoutError("%s not ready after %ss; see %s:\n%s" % (name, timeout, c.log, self._tail(c.log)))

    def _runner_socket(self, name: str) -> str:
        cfg = json.loads(self.components[name].config.read_text())
        return cfg["grpcServers"][0]["listenPaths"][0]

    @staticmethod
    def _tail(path: Path, n: int = 20) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _signal_group(self, c: Component, sig: int) -> None:
        assert c.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(c.proc.pid, sig)

    def _group_alive(self, c: Component) -> bool:
        assert c.proc is not None
        if c.proc.poll() is None:
            return True
        try:
            os.killpg(c.proc.pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def stop(self, name: str, grace: float = 3.0) -> None:
        """SIGTERM the component's process group, SIGKILL after `grace` seconds."""
        c = self.components[name]
        if c.proc is None:
            return
        self._signal_group(c, signal.SIGTERM)
        deadline = time.time() + grace
        while time.time() < deadline and self._group_alive(c):
            time.sleep(0.05)
        self.kill(name)

    def stop_many(self, names: list[str], grace: float = 3.0) -> None:
        comps = [self.components[n] for n in names if self.components[n].proc is not None]
        for c in comps:
            self._signal_group(c, signal.SIGTERM)
        deadline = time.time() + grace
        while time.time() < deadline and any(self._group_alive(c) for c in comps):
            time.sleep(0.05)
        for c in comps:
            with contextlib.suppress(Exception):
                self.kill(c.name)

    def kill(self, name: str) -> None:
        """SIGKILL the component's whole process group (crash simulation)."""
        c = self.components[name]
        if c.proc is None:
            return
        for _ in range(100):
            self._signal_group(c, signal.SIGKILL)
            try:
                c.proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            if not self._group_alive(c):
                break
        c.proc = None

    def restart(self, name: str, hard: bool = False) -> None:
        if hard:
            self.kill(name)
        else:
            self.stop(name)
        self.start(name)

    # convenience wrappers for fault tests
    def kill_worker(self, w: str, with_runner: bool = False) -> None:
        self.kill(w)
        if with_runner:
            self.kill(w + "-runner")

    def start_worker(self, w: str) -> None:
        self.start(w + "-runner")
        self.start(w)

    def is_running(self, name: str) -> bool:
        return self.components[name].running()

    def pids(self) -> dict[str, Optional[int]]:
        return {n: (c.proc.pid if c.proc is not None and c.running() else None) for n, c in self.components.items()}

    def start_all(self, timeout: float = 60.0) -> None:
        self.start("storage")
        self.start("scheduler")
        for w in self.worker_names:
            self.start(w + "-runner")
            self.start(w)
        self.wait_workers_registered(timeout)

    def stop_all(self) -> None:
        order = list(self.worker_names) + [w + "-runner" for w in self.worker_names] + ["scheduler", "storage"]
        # Phase 1: workers + runners together; phase 2: scheduler + storage.
        self.stop_many(order[:-2])
        self.stop_many(order[-2:])
        if self._sockdir:
            shutil.rmtree(self._sockdir, ignore_errors=True)

    # ------------------------------------------------------------ observation
    def metrics(self, name: str) -> str:
        """Raw Prometheus text of a component ("storage", "scheduler", "wN")."""
        key = {"storage": "storage_diag", "scheduler": "sched_diag"}.get(name, name + "_diag")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.ports[key], timeout=5) as r:
            return r.read().decode()

    def wait_workers_registered(self, timeout: float = 60.0) -> None:
        """Wait until every worker thread has synchronized with the scheduler
        (sum of buildbarn_builder_in_memory_build_queue_workers_created_total)."""
        deadline = time.time() + timeout
        want = len(self.worker_names)
        n = 0.0
        while time.time() < deadline:
            try:
                n = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in self.metrics("scheduler").splitlines()
                    if line.startswith("buildbarn_builder_in_memory_build_queue_workers_created_total")
                )
                if n >= want:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError("only %s/%s workers registered with scheduler" % (n, want))

    def executions(self) -> list[dict]:
        """One dict per action executed by any worker (parsed from worker logs):
        {worker, action_hash, output_paths, exit_code, grpc_code, response}.
        Note: Pants also sends small probe actions (`env -0`, `/bin/bash --version`)
        with a random salt on every run; filter on output_paths to pick out
        the actions you care about."""
        out = []
        for w, log in self.worker_logs.items():
            if not log.exists():
                continue
            last_action = None
            for line in log.read_text(errors="replace").splitlines():
                m = _ACTION_RE.search(line)
                if m and " with timeout " in line:
                    dm = _DIGEST_RE.search(m.group(1))
                    last_action = dm.group(1) if dm else None
                    continue
                m = _EXEC_RE.search(line)
                if not m:
                    continue
                try:
                    resp = json.loads(m.group(1))
                except ValueError:
                    continue
                result = resp.get("result") or {}
                wid = (result.get("executionMetadata") or {}).get("worker")
                try:
                    wname = json.loads(wid).get("worker", w) if wid else w
                except ValueError:
                    wname = w
                outputs = [
                    f.get("path")
                    for k in (
                        "outputFiles",
                        "outputSymlinks",
                        "outputDirectories",
                        "outputFileSymlinks",
                        "outputDirectorySymlinks",
                    )
                    for f in result.get(k) or []
                ]
                out.append(
                    {
                        "worker": wname,
                        "action_hash": last_action,
                        "output_paths": outputs,
                        "exit_code": result.get("exitCode", 0),
                        "grpc_code": (resp.get("status") or {}).get("code", 0),
                        "response": resp,
                    }
                )
                last_action = None
        return out

    def execution_counts(self, successful_only: bool = False, with_output: Optional[str] = None) -> dict[str, int]:
        """{worker: number of actions executed}.  with_output="out.txt" only
        counts actions that produced that output path."""
        counts = {w: 0 for w in self.worker_names}
        for e in self.executions():
            if successful_only and (e["grpc_code"] or e["exit_code"]):
                continue
            if with_output is not None and with_output not in e["output_paths"]:
                continue
            counts[e["worker"]] = counts.get(e["worker"], 0) + 1
        return counts


@contextlib.contextmanager
def running_cluster(
    workdir: Path,
    bin_dir: Path,
    workers: int = 2,
    platform: Optional[dict[str, str]] = None,
    worker_env_path: str = "/usr/local/bin:/usr/bin:/bin",
    cas_size_bytes: int = 2 << 30,
    predeclare_platform_queue: bool = True,
    runner_concurrency: int = 1,
    startup_timeout: float = 60.0,
) -> Iterator[Cluster]:
    """Start a local Buildbarn cluster; yields a Cluster; tears everything down on exit."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(
        workdir,
        bin_dir,
        workers,
        DEFAULT_PLATFORM if platform is None else platform,
        worker_env_path,
        cas_size_bytes,
        predeclare_platform_queue,
        runner_concurrency,
    )
    try:
        cluster.start_all(startup_timeout)
        yield cluster
    finally:
        cluster.stop_all()


if __name__ == "__main__":  # by hand: python3 tests/remote_exec/buildbarn.py WORKDIR [seconds]
    import sys

    wd = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bbw-cluster")
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 3600

    def _raise(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, _raise)  # may be SIG_IGN when started with '&'
    with running_cluster(wd, buildbarn_bin()) as c:
        print("store:", c.store_address, "exec:", c.execution_address, "admin:", c.scheduler_http, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(secs)
        print("counts:", c.execution_counts(), flush=True)
