"""The backend's steps on a real remote-execution cluster (Buildbarn), with faults.

Buildbarn (bb_storage, bb_scheduler, two bb_workers with their bb_runners) runs on 127.0.0.1,
built from the Go module proxy (tests/remote_exec/buildbarn.py). Pants 2.17.1 runs the services'
`occlum_java_image` targets in a `remote_environment` whose platform properties name the workers'
pool; the Occlum toolchain (the test double) is installed under `worker-root/`, a path only the
environment's search path names. The JDK is served over HTTP on loopback, as a mirror would be.

What "ran on a worker" means here: the worker's own log records the execution (bb_worker logs
every action it runs, with its outputs and the worker's id), and Pants' counters show no local
execution at all. The backend's steps are told apart by their outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fake_jdk
from http_payload import ServedPayload
from integration.pants_repo import PANTS, copy_repo, pants_args, pants_env, run_pants
from integration.secrets_test import rsa_private_key_fields, search, secret_needles
from occlum_double.make_install import make_fake_occlum_install
from remote_exec.buildbarn import Cluster, buildbarn_bin, running_cluster
from signing_key import make_signing_key

SERVICES = ("svc-a", "svc-b", "svc-c")
TARGETS = tuple(f"{s}:enclave" for s in SERVICES)
PLATFORM = {"OSFamily": "linux", "container-image": "occlum-double"}
# A backend step, by an output only it writes.
STEP_OUTPUTS = {
    "Download": "archive/dragonwell-test_x64_alpine-linux.tar.gz",
    "Extract and validate": "jdk-info.json",
    "occlum new": "occlum_instance",
    "occlum build + package": "enclave.tar.gz",
}
# Pants' discovery probes: uncacheable by design, so every new Pants session runs them again.
PROBES = re.compile(r"Remote execution: (Searching for|Test binary|Extract environment variables|Identify the Occlum)")

CAS_BYTES = 512 << 20  # the storage's blocks file (sparse); the tests write ~50 MB

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="Buildbarn is built with the Go toolchain")


@pytest.fixture(scope="module")
def bb_bin() -> Path:
    return buildbarn_bin()


@pytest.fixture
def jdk(tmp_path: Path) -> Iterator[ServedPayload]:
    served = ServedPayload(fake_jdk.make_fake_jdk_archive(tmp_path / "jdk.tar.gz").read_bytes())
    yield served
    served.shutdown()


def write_repo(tmp_path: Path, jdk: ServedPayload, name: str = "repo", remote: bool = True) -> Path:
    """Three services sharing one JDK pin; with `remote`, every occlum_java_image runs in the
    `buildbarn` remote_environment (one `__defaults__` line, as a team would write it)."""
    (tmp_path / name).mkdir()
    root = copy_repo(tmp_path / name)
    sha = hashlib.sha256(jdk.payload).hexdigest()
    if remote:
        platform = [f"{k}={v}" for k, v in sorted(PLATFORM.items())]
        env_target = (
            f'remote_environment(name="buildbarn", platform="linux_x86_64", extra_platform_properties={platform!r})'
        )
        (root / "BUILD").write_text((root / "BUILD").read_text() + f"\n{env_target}\n")
    (root / "jdk").mkdir()
    (root / "jdk/BUILD").write_text(f'dragonwell_jdk(name="dragonwell", url="{jdk.url}", sha256="{sha}")\n')
    for svc_name in SERVICES:
        svc = root / svc_name
        svc.mkdir()
        fake_jdk.make_jar(svc / "app.jar", extra_entries=((f"{svc_name}.txt", svc_name.encode()),))
        (svc / "BUILD").write_text(
            ('__defaults__({occlum_java_image: dict(environment="buildbarn")})\n' if remote else "")
            + 'file(name="app", source="app.jar")\n'
            + 'occlum_java_image(name="enclave", jdk="//jdk:dragonwell", jar=":app")\n'
        )
    return root


def args_for(root: Path, tmp_path: Path, toolchain: Path, store: str, cluster: Cluster | None = None) -> list[str]:
    remote = (
        [
            "--remote-execution",
            f"--remote-store-address={cluster.store_address}",
            f"--remote-execution-address={cluster.execution_address}",
            "--remote-instance-name=main",
            "--remote-cache-read",
            "--remote-cache-write",
            "--environments-preview-names={'buildbarn': '//:buildbarn'}",
        ]
        if cluster
        else []
    )
    args = pants_args(
        root,
        tmp_path,
        *remote,
        "--occlum-stage-only=no",
        f"--occlum-executable-search-paths=['{toolchain / 'build' / 'bin'}']",
        # The client's sandboxes under the test's folder, so steps left running there can be found.
        f"--local-execution-root-dir={tmp_path / 'sandboxes'}",
        "--stats-log",
        "-ldebug",
    )
    return [a if not a.startswith("--local-store-dir=") else f"--local-store-dir={tmp_path / store}" for a in args]


def counters(stderr: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^\s+(\w+): (\d+)$", stderr, re.M)}


def executions_since(cluster: Cluster, before: dict[str, int]) -> list[dict]:
    """The executions each worker logged after it had logged `before[worker]` of them."""
    per_worker: dict[str, list[dict]] = {}
    for e in cluster.executions():
        per_worker.setdefault(e["worker"], []).append(e)
    return [e for w, runs in per_worker.items() for e in runs[before.get(w, 0) :]]


def backend_steps_per_worker(executions: list[dict]) -> dict[str, dict[str, int]]:
    """{step: {worker: executions}}, the backend's steps told apart by their outputs."""
    out: dict[str, dict[str, int]] = {step: {} for step in STEP_OUTPUTS}
    for e in executions:
        for step, output in STEP_OUTPUTS.items():
            if output in e["output_paths"]:
                out[step][e["worker"]] = out[step].get(e["worker"], 0) + 1
    return out


def dist_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root / "dist")): p.read_bytes() for p in sorted((root / "dist").rglob("*")) if p.is_file()
    }


def local_reference(tmp_path: Path, jdk: ServedPayload) -> tuple[Path, dict[str, str], dict[str, bytes]]:
    """The workers' toolchain, the Pants env, and what the same repo builds locally, with no cluster:
    the bytes every remote build must match."""
    toolchain = make_fake_occlum_install(tmp_path / "worker-root" / "opt" / "occlum", "0.31.0")
    env = pants_env(tmp_path)
    local_root = write_repo(tmp_path, jdk, "local", remote=False)
    local = run_pants(local_root, args_for(local_root, tmp_path, toolchain, "store-local"), env, "package", *TARGETS)
    assert local.returncode == 0, local.stderr[-4000:]
    return toolchain, env, dist_bytes(local_root)


def test_three_services_package_on_the_workers_byte_for_byte_and_a_second_client_runs_nothing(
    tmp_path: Path, bb_bin: Path, jdk: ServedPayload
) -> None:
    toolchain, env, reference = local_reference(tmp_path, jdk)

    root = write_repo(tmp_path, jdk)
    with running_cluster(tmp_path / "bb", bb_bin, workers=2, platform=PLATFORM, cas_size_bytes=CAS_BYTES) as cluster:
        first = run_pants(root, args_for(root, tmp_path, toolchain, "store-a", cluster), env, "package", *TARGETS)
        assert first.returncode == 0, first.stderr[-6000:]
        time.sleep(0.5)  # the workers log each execution as they report it
        c1 = counters(first.stderr)
        per_step = backend_steps_per_worker(cluster.executions())
        print("\nfirst client, backend steps per worker:", per_step)
        print("first client, all executions per worker (with Pants' probes):", cluster.execution_counts())
        print("first client counters:", {k: v for k, v in c1.items() if k.startswith(("remote_exec", "local_exec"))})
        # Nothing ran on the client; each backend step ran once, on a worker (the JDK once for all).
        assert c1["local_execution_requests"] == 0, c1
        assert {step: sum(w.values()) for step, w in per_step.items()} == {
            "Download": 1,
            "Extract and validate": 1,
            "occlum new": 1,
            "occlum build + package": 3,
        }
        assert sum(1 for w, n in cluster.execution_counts().items() if n) == 2, "both workers took work"
        # The packages and their records are the bytes a local build writes.
        remote_dist = dist_bytes(root)
        assert remote_dist.keys() == reference.keys() and len(remote_dist) == 3 * 4
        assert remote_dist == reference

        # A second client: a new, empty local store; everything comes from the cluster's cache.
        shutil.rmtree(root / "dist")
        seen = cluster.execution_counts()
        second = run_pants(root, args_for(root, tmp_path, toolchain, "store-b", cluster), env, "package", *TARGETS)
        assert second.returncode == 0, second.stderr[-6000:]
        time.sleep(0.5)
        c2 = counters(second.stderr)
        ran = executions_since(cluster, seen)
        probes = len(PROBES.findall(second.stderr))
        print("second client: executions", len(ran), "of which Pants' discovery probes at most", probes)
        print("second client counters:", {k: v for k, v in c2.items() if k.startswith(("remote_", "local_exec"))})
        assert c2["local_execution_requests"] == 0, c2
        assert backend_steps_per_worker(ran) == {step: {} for step in STEP_OUTPUTS}
        # Every execution this time was one of Pants' own uncacheable probes, none a backend step.
        assert len(ran) <= probes, [e["output_paths"] for e in ran]
        assert c2["remote_cache_requests_cached"] >= 6, c2  # download, extraction, `occlum new`, 3 builds
        assert dist_bytes(root) == remote_dist


def _processes_in(under: Path) -> Iterator[tuple[bytes, str]]:
    """(command line, cwd) of each process whose cwd lies under `under`; other tests' processes,
    running beside this one, do not count."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(under)):
            yield cmdline, cwd


def _build_running_on(bb_dir: Path) -> str | None:
    """The worker whose build folder holds a running build-and-package step, if one does."""
    for cmdline, cwd in _processes_in(bb_dir):
        if b"build_and_package.py" in cmdline:
            return Path(cwd).relative_to(bb_dir).parts[0]
    return None


def _leftover_steps(under: Path) -> list[str]:
    """Backend step processes still alive that run in a folder under `under` (this test's workers'
    build folders and its Pants sandboxes)."""
    return [
        cmdline.replace(b"\0", b" ").decode(errors="replace")
        for cmdline, _ in _processes_in(under)
        if b"build_and_package.py" in cmdline or b"__occlum_tools/" in cmdline
    ]


def test_faults_a_worker_dies_mid_build_then_the_scheduler_and_the_storage_restart(
    tmp_path: Path, bb_bin: Path, jdk: ServedPayload
) -> None:
    toolchain, env, reference = local_reference(tmp_path, jdk)

    root = write_repo(tmp_path, jdk)
    bb = tmp_path / "bb"
    with running_cluster(bb, bb_bin, workers=2, platform=PLATFORM, cas_size_bytes=CAS_BYTES) as cluster:
        # 1. A worker (and its runner, with the step) is killed while `occlum build` runs on it.
        # The double's build sleeps 6 s first: the step is surely running when the worker dies.
        slow = [
            *args_for(root, tmp_path, toolchain, "store-a", cluster),
            "--occlum-env-vars=['OCCLUM_DOUBLE_BUILD_SECONDS=6']",
        ]
        log = tmp_path / "pants-killed-worker.log"  # a file, not a pipe: -ldebug would fill a pipe and stall Pants
        with open(log, "w") as out:
            pants = subprocess.Popen(
                [*PANTS, *slow, "package", TARGETS[0]],
                cwd=root,
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        deadline = time.time() + 120
        victim = None
        while victim is None and time.time() < deadline and pants.poll() is None:
            victim = _build_running_on(bb)
            time.sleep(0.1)
        if victim is None:
            pants.kill()
        assert victim is not None, "no worker ran the build step: " + log.read_text()[-3000:]
        cluster.kill_worker(victim, with_runner=True)
        assert _build_running_on(bb) != victim  # the step died with the worker
        cluster.start_worker(victim)  # the same worker id back: the scheduler hands the step out again
        assert pants.wait(timeout=600) == 0, log.read_text()[-5000:]
        print(f"\nworker {victim} killed mid-build; the step ran again and the build completed")
        assert dist_bytes(root) == {k: v for k, v in reference.items() if k.startswith("svc-a/")}
        assert not _leftover_steps(tmp_path), _leftover_steps(tmp_path)
        with pytest.raises(ProcessLookupError):  # nothing of Pants' process group is left on the client
            os.killpg(pants.pid, 0)

        # 2. The scheduler restarts between runs; the workers register again; the next run builds.
        cluster.restart("scheduler")
        cluster.wait_workers_registered()
        before = cluster.execution_counts()
        result = run_pants(root, args_for(root, tmp_path, toolchain, "store-a", cluster), env, "package", TARGETS[1])
        assert result.returncode == 0, result.stderr[-5000:]
        time.sleep(0.5)
        assert sum(backend_steps_per_worker(executions_since(cluster, before))["occlum build + package"].values()) == 1
        print(
            "scheduler restarted: the next run's build ran on",
            backend_steps_per_worker(executions_since(cluster, before)),
        )

        # 3. The storage restarts between runs: what it held on disk is still there for a new client.
        cluster.restart("storage")
        shutil.rmtree(root / "dist")
        before = cluster.execution_counts()
        result = run_pants(root, args_for(root, tmp_path, toolchain, "store-b", cluster), env, "package", *TARGETS)
        assert result.returncode == 0, result.stderr[-5000:]
        time.sleep(0.5)
        ran = backend_steps_per_worker(executions_since(cluster, before))
        print("storage restarted: backend steps run again by a new client:", ran)
        assert dist_bytes(root) == reference
        for name in dist_bytes(root):  # no partial package: each tarball reads to its end
            if name.endswith(".tar.gz"):
                with tarfile.open(root / "dist" / name) as tf:
                    assert tf.getmembers()
    assert not _leftover_steps(tmp_path), _leftover_steps(tmp_path)


def test_the_signing_key_reaches_no_worker_and_no_cache(tmp_path: Path, bb_bin: Path, jdk: ServedPayload) -> None:
    # With `[occlum].sign_key`, the build step (it signs) and the probe that reads the key's MRSIGNER
    # run on this machine; every other step runs on the workers.
    key = make_signing_key(tmp_path / "keys" / "enclave.pem")
    needles = secret_needles(key)
    toolchain = make_fake_occlum_install(tmp_path / "worker-root" / "opt" / "occlum", "0.31.0")
    env = pants_env(tmp_path)
    root = write_repo(tmp_path, jdk)
    bb = tmp_path / "bb"
    with running_cluster(bb, bb_bin, workers=2, platform=PLATFORM, cas_size_bytes=CAS_BYTES) as cluster:
        args = [*args_for(root, tmp_path, toolchain, "store-a", cluster), f"--occlum-sign-key={key}"]
        result = run_pants(root, args, env, "package", TARGETS[0])
        assert result.returncode == 0, result.stderr[-5000:]
        time.sleep(0.5)
        c = counters(result.stderr)
        steps = backend_steps_per_worker(cluster.executions())
        print("\nsigned build: backend steps per worker:", steps, "local executions:", c["local_execution_requests"])
        assert steps["occlum build + package"] == {}, steps  # not on a worker
        assert sum(steps["Download"].values()) == sum(steps["occlum new"].values()) == 1, steps
        assert re.search(r"Completed: occlum build svc-a:enclave .*, then its package", result.stderr)
        # Local: the build, the MRSIGNER probe, and the local environment's own discovery probes.
        assert c["local_execution_requests"] >= 2, c
        assert "Remote execution: occlum build" not in result.stderr
        assert "Remote execution: occlum new" in result.stderr
        # The measurements are read in the build step, here: nothing of the signed enclave runs remotely.
        assert "Remote execution: occlum print" not in result.stderr
        meas = json.loads((root / "dist/svc-a/enclave.measurements.json").read_text())
        der = subprocess.run(["openssl", "rsa", "-in", str(key), "-outform", "DER"], check=True, capture_output=True)
        n = rsa_private_key_fields(der.stdout)["n"].lstrip(b"\0")
        assert meas["mrsigner"] == hashlib.sha256(n[::-1]).hexdigest(), meas  # signed with this key
        # The signed enclave is in the package; the key must not be in the cluster with it.
        signed = (root / "dist/svc-a/enclave.tar.gz").read_bytes()
        control = {"JDK archive slice": jdk.payload[len(jdk.payload) // 2 : len(jdk.payload) // 2 + 64]}
    found, files, size = search(bb, {**needles, **control})
    print(
        f"searched {files} files, {size >> 10} KiB of data in the cluster (storage, workers' build and cache folders)"
    )
    assert set(found) == {"JDK archive slice"}, found  # the positive control only
    assert signed and search(tmp_path / "store-a", needles)[0] == {}
