"""Repeated no-op runs in one pantsd keep none of this backend's objects or engine nodes.

Real Pants 2.17.1 with pantsd, the Occlum test double, and two services on one JDK pin, built
once, signed with a key of the user's (`[occlum].sign_key`, whose identity is re-read on every run:
the one backend step that runs again on a no-op); then `package` of both, unchanged, several times
between two heap probes. Everything this
backend's rules return is of an `occlum.*` type and every node they add is named `occlum.*`: a
rule whose inputs differed from run to run (a time, a session value) would add both on every run.
Neither may grow. Pants' own per-run retention (one options session per run, through its memo
cache) is shown beside it; the bench measures the bytes with 20 services.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import fake_jdk
from integration import pantsd_retention
from integration.pants_repo import copy_repo, pants_env, run_pants
from occlum_double.make_install import make_fake_occlum_install

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for the signing key")

RUNS = 4
TARGETS = ("svc0:enclave", "svc1:enclave")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pantsd_retention.Run]:
    tmp = tmp_path_factory.mktemp("retention")
    root = copy_repo(tmp)
    pantsd_retention.install_probe(root)
    archive = fake_jdk.make_fake_jdk_archive(tmp / "jdk.tar.gz")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    for i in range(2):
        (root / f"svc{i}").mkdir()
        fake_jdk.make_jar(root / f"svc{i}/app.jar")
        (root / f"svc{i}/BUILD").write_text(
            f'dragonwell_jdk(name="jdk", url="file://{archive}", sha256="{sha}")\n'
            'file(name="app", source="app.jar")\n'
            'occlum_java_image(name="enclave", jdk=":jdk", jar=":app")\n'
        )
    install = make_fake_occlum_install(tmp / "opt", "0.31.0")
    key = tmp / "keys/signing.pem"
    key.parent.mkdir()
    subprocess.run(
        ["openssl", "genrsa", "-3", "-traditional", "-out", str(key), "3072"], check=True, capture_output=True
    )
    args = [
        "--pantsd",
        "--no-pantsrc",
        f"--local-store-dir={tmp / 'store'}",
        f"--named-caches-dir={tmp / 'named'}",
        f"--pants-workdir={root / '.pants.d'}",
        f"--pythonpath=['{root / 'pants-plugins'}']",
        f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']",
        "--occlum-stage-only=no",
        f"--occlum-sign-key={key}",
    ]
    env = pants_env(tmp)

    def pants(*goal: str) -> str:
        r = run_pants(root, args, env, *goal)
        assert r.returncode == 0, r.stderr[-4000:]
        return r.stderr

    pants("package", *TARGETS)
    assert (root / "dist/svc1/enclave.tar.gz").is_file()
    pantsd_retention.start(pants)
    yield pants
    for pid_file in (root / ".pids").rglob("pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def test_no_op_packages_keep_none_of_the_backends_objects_or_nodes(run: pantsd_retention.Run, tmp_path: Path) -> None:
    package = pantsd_retention.measure(run, ("package", *TARGETS), RUNS, tmp_path / "package.json")
    listed = pantsd_retention.measure(run, ("list", *TARGETS), RUNS, tmp_path / "list.json")
    print(f"\n{package.line()}\n{listed.line()}")
    assert package.backend_objects_grown == {}, package
    assert package.backend_nodes > 0, "the memory summary names none of the backend's rules"
    assert package.backend_nodes_grown == {}, package
    # Heap allocated with the backend's code on the stack and still alive: 0 here; a value kept per
    # target and run (a time-varying MRSIGNER, tried by hand) showed as ~1,500 bytes per target.
    assert package.backend_bytes_per_run < 512, package
    # Pants 2.17.1 keeps every run's options (its `memoized_method` cache holds each
    # OptionsBootstrapper), the probe's report included: `list`, with none of this backend's rules,
    # keeps exactly as many.
    assert package.sessions_grown == listed.sessions_grown == RUNS + 1


def test_the_probe_sees_a_kept_backend_object(run: pantsd_retention.Run, tmp_path: Path) -> None:
    # The control: an object of a backend type kept alive on purpose between mark and report.
    run("heap-probe", "--heap-probe-mode=mark")
    run("heap-probe", "--heap-probe-mode=keep-control")
    found = pantsd_retention.report(run, tmp_path / "control.json")
    assert found["backend_objects_grown"] == {"occlum.records.MemoryRecord": 1}
