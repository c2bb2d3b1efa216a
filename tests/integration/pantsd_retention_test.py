"""Repeated no-op runs in one pantsd keep none of this backend's objects, heap or graph nodes.

Real Pants 2.17.1 with pantsd, the Occlum test double, and two services on one JDK pin, built
once and signed with a key of the user's (`[occlum].sign_key`: its identity is re-read on every
run, the one backend step that runs again on a no-op). Then `package` of both, unchanged, several
times between two heap probes, and `pants list` (none of this backend's rules) the same way.

A rule whose inputs differed from run to run (a time, a session value) would run again on every
no-op and keep what it made: its requests and results (this backend's types), the heap its code
allocated, and new graph nodes. None may grow; the graph may grow per run only as much as for
`pants list`. Pants' own per-run retention (every run's options, through its memo cache) is shown
beside it; the bench measures the bytes with 20 services.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.version import Version
from pants.version import PANTS_SEMVER

import fake_jdk
from integration import pantsd_retention
from integration.pants_repo import copy_repo, pants_args, pants_env, run_pants, stop_pantsd, write_jar_service
from occlum_double.make_install import make_fake_occlum_install
from signing_key import make_signing_key

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for the signing key")

RUNS = 4
SERVICES = ("svc0", "svc1")
TARGETS = tuple(f"{name}:enclave" for name in SERVICES)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pantsd_retention.Run]:
    tmp = tmp_path_factory.mktemp("retention")
    root = copy_repo(tmp)
    pantsd_retention.install_probe(root)
    archive = fake_jdk.make_fake_jdk_archive(tmp / "jdk.tar.gz")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    for name in SERVICES:
        write_jar_service(root, name, f"file://{archive}", sha)
    install = make_fake_occlum_install(tmp / "opt", "0.31.0")
    key = tmp / "keys/signing.pem"
    make_signing_key(key)
    args = pants_args(
        root,
        tmp,
        f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']",
        "--occlum-stage-only=no",
        f"--occlum-sign-key={key}",
        pantsd_retention.GRAPH_LOG,
        pantsd=True,
    )
    env = pants_env(tmp)

    def pants(*goal: str) -> str:
        r = run_pants(root, args, env, *goal)
        assert r.returncode == 0, r.stderr[-4000:]
        return r.stderr

    pants("package", *TARGETS)
    assert (root / "dist/svc1/enclave.tar.gz").is_file()
    pantsd_retention.start(pants)
    yield pants
    stop_pantsd(root)


def test_no_op_packages_keep_none_of_the_backends_objects_heap_or_nodes(
    run: pantsd_retention.Run, tmp_path: Path
) -> None:
    package = pantsd_retention.measure(run, ("package", *TARGETS), RUNS, tmp_path / "package.json")
    listed = pantsd_retention.measure(run, ("list", *TARGETS), RUNS, tmp_path / "list.json")
    print(f"\n{package.line()}\n{listed.line()}")
    assert package.backend_objects_grown == {}, package
    # A value kept per target and run (a MRSIGNER that changed with the time, tried by hand) failed
    # all three: 16 objects kept, 3,767 bytes per run, 7 graph nodes per run against 3 for `list`.
    assert package.backend_bytes_per_run == 0, package
    # What the backend's own code adds to each run's options, which Pants keeps (a help callable
    # made a new string on every run: 1,240 bytes per run, until it became a plain string). Once in a
    # whole-suite CI run a window showed 456 bytes there and the next alone 0: something made once,
    # lazily, fell into that window. A per-run leak grows in every window, so a second window decides.
    if package.backend_setup_bytes_per_run != 0:
        again = pantsd_retention.measure(run, ("package", *TARGETS), RUNS, tmp_path / "package-again.json")
        print(f"{package.backend_setup_bytes_per_run:.1f} setup bytes per run in one window; the next: {again.line()}")
        assert again.backend_setup_bytes_per_run == 0, (package, again)
    assert package.graph_nodes_per_run == listed.graph_nodes_per_run, (package, listed)
    # Pants keeps run sessions of its own, and the backend may keep none beyond them: `package`
    # keeps exactly as many as `list`. How many is Pants' business, and differs by release: 2.17.1 to
    # 2.31.0 keep every run's options (a `memoized_method` cache holds each OptionsBootstrapper), the
    # probe's report included, RUNS + 1; 2.33.0 kept 10 for 4 runs, for `list` as for `package`.
    assert package.sessions_grown == listed.sessions_grown
    if PANTS_SEMVER < Version("2.32.0.dev0"):
        assert listed.sessions_grown == RUNS + 1


def test_the_probe_sees_what_is_kept_on_purpose(run: pantsd_retention.Run, tmp_path: Path) -> None:
    # The control: a backend object, and a dict the backend's code made, kept between mark and report.
    run("heap-probe", "--heap-probe-mode=mark")
    run("heap-probe", "--heap-probe-mode=keep-control")
    found = pantsd_retention.report(run, tmp_path / "control.json")
    assert found["backend_objects_grown"] == {"occlum.records.MemoryRecord": 1}
    assert found["backend_bytes_grown"] > 0, found["traced_bytes_by_origin"]
