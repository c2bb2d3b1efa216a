"""Start a real REAPI server (BuildGrid) on 127.0.0.1 for a test or the benchmark, and stop it after.

Cache-only: a CAS on disk and an in-memory action cache, instance name "main" (as pants.ci.toml
expects). `grpc.so_reuseport: 0` makes a second server fail to bind instead of silently sharing
the port (a stale server from an earlier run would otherwise answer for it).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENSURE = REPO / "build-support" / "buildgrid" / "ensure-buildgrid"

CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
grpc-server-options:
  grpc.so_reuseport: 0
# Pants sends up to 128 store RPCs at once (`remote_store_rpc_concurrency`); with lazy fetch a
# fresh runner reads a whole JDK tree in parallel. The default (5 threads per CPU, as many RPCs)
# answers ResourceExhausted on small machines; queue instead.
thread-pool-size: 32
maximum-concurrent-rpcs: 512
authorization:
  method: none
storages:
  - !disk-storage &cas-storage
    path: {cas}
caches:
  - !lru-action-cache &ac
    storage: *cas-storage
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: main
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas-storage
      - !bytestream
        storage: *cas-storage
monitoring:
  enabled: false
"""


def bgd_path() -> str:
    return subprocess.run([str(ENSURE)], check=True, capture_output=True, text=True).stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_buildgrid(workdir: Path) -> Iterator[tuple[str, Path]]:
    """Yield (grpc address, CAS directory) of a BuildGrid server that lives for the block."""
    bgd = bgd_path()
    workdir.mkdir(parents=True, exist_ok=True)
    cas = workdir / "cas"
    cas.mkdir(exist_ok=True)
    port = _free_port()
    cfg = workdir / "buildgrid.yml"
    cfg.write_text(CONFIG.format(port=port, cas=cas))
    log = open(workdir / "bgd.log", "w")
    proc = subprocess.Popen(
        [bgd, "server", "start", str(cfg)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bgd exited with {proc.returncode}: {(workdir / 'bgd.log').read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("bgd did not start listening within 60 s")
            time.sleep(0.2)
        yield f"grpc://127.0.0.1:{port}", cas
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()
