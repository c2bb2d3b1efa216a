"""The mission's own story: the examples monorepo's Spring Boot 2.7 service, its fat jar built by
Maven inside Pants from Maven Central, packaged as an enclave and answering HTTP inside `occlum run`.

The Occlum toolchain is the test double (its `occlum run` runs the image's `java` on the host), so
the JDK is the host's, packed in Dragonwell's layout and served from file://; both example services
share that one pin. Maven's repository (~/.m2) is the cache a CI machine keeps between runs.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pytest

from host_jdk import host_java_home, make_host_jdk_archive
from integration.pants_repo import copy_repo, pants_args, pants_env, pin_example_jdk, run_and_get, run_pants
from occlum_double.make_install import make_fake_occlum_install

STEPS = r"Starting: (Download|Extract and validate|Running the `shell_command`|occlum new|occlum build)"
SPRING = "examples/spring-service:enclave"
HELLO = "examples/hello-service:enclave"

pytestmark = pytest.mark.skipif(
    shutil.which("mvn") is None or shutil.which("javac") is None or host_java_home() is None,
    reason="needs Maven and a host JDK (mvn, javac, java)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, list[str], dict]:
    tmp = tmp_path_factory.mktemp("spring")
    root = copy_repo(tmp)
    archive, sha = make_host_jdk_archive(tmp / "mirror" / "host-jdk.tar.gz")
    install = make_fake_occlum_install(tmp / "opt" / "occlum", "0.31.0")
    pin_example_jdk(root, archive, sha, libc="glibc")
    args = pants_args(
        root, tmp, f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']", "--occlum-stage-only=no"
    )
    env = pants_env(tmp)
    env["HOME"] = str(Path.home())  # Maven's repository: the cache kept between CI runs
    return root, args, env


def test_the_spring_boot_service_is_packaged_and_answers_inside_occlum_run(repo) -> None:
    root, args, env = repo
    first = run_pants(root, args, env, "package", SPRING, HELLO)
    assert first.returncode == 0, first.stderr[-6000:]
    dist = root / "dist" / "examples.spring-service"
    meas = json.loads((dist / "enclave.measurements.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{64}", meas["mrenclave"])
    sbom = json.loads((dist / "enclave.cdx.json").read_text())
    jar = next(c for c in sbom["components"] if c["bom-ref"] == "jar")
    nested = {c["name"]: c for c in jar["components"]}
    assert len(nested) == 33 and all("version" in c for c in nested.values())
    assert nested["spring-core"]["version"] == "5.3.31"  # no pom.properties: named from its manifest
    # Both services share one JDK pin: it was downloaded and extracted once.
    assert len(re.findall(r"Starting: Download", first.stderr)) == 1, first.stderr
    assert len(re.findall(r"Starting: Extract and validate", first.stderr)) == 1, first.stderr

    port = _free_port()
    build = root / "examples/spring-service/BUILD"
    build.write_text(
        build.read_text().replace('main_args=["--server.port=8080"]', f'main_args=["--server.port={port}"]')
    )
    body, out, err = run_and_get(
        root,
        args,
        env,
        SPRING,
        port,
        f"spring-service.jar --server.port={port}",
        paths=("/actuator/health", "/greeting"),
    )
    assert body is not None, (out[-2000:], err[-6000:])
    health, greeting = body.split("\n---\n")
    assert json.loads(health)["status"] == "UP", health
    assert greeting == "Hello from Spring Boot in an Occlum enclave!\n", greeting
    print(f"\n--- GET /actuator/health -> {health}; GET /greeting -> {greeting!r}")


def test_editing_one_service_reruns_only_that_service_s_steps(repo) -> None:
    root, args, env = repo
    warm = run_pants(root, args, env, "package", SPRING, HELLO)
    assert warm.returncode == 0, warm.stderr[-4000:]
    src = root / "examples/spring-service/src/main/java/com/example/greeting/GreetingApplication.java"
    src.write_text(src.read_text().replace("in an Occlum enclave!", "in an Occlum enclave, edited!"))
    edited = run_pants(root, args, env, "package", SPRING, HELLO)
    assert edited.returncode == 0, edited.stderr[-4000:]
    reran = [(m.group(1), m.group(0)) for m in re.finditer(STEPS + r".*", edited.stderr)]
    print("--- after a Spring source edit, re-ran:\n  " + "\n  ".join(line for _, line in reran))
    assert {step for step, _ in reran} == {"Running the `shell_command`", "occlum build"}
    # Each of those steps ran once, for the Spring service: the hello service's came from the cache.
    # The build step writes the package too (in its own sandbox).
    assert len(reran) == 2 and all("spring-service" in line for _, line in reran), reran
    assert any(line.endswith(", then its package") for step, line in reran if step == "occlum build"), reran


def test_a_dependency_that_is_not_the_locked_one_fails_the_package(repo) -> None:
    root, args, env = repo
    lock = root / "examples/spring-service/maven.lock"
    before = lock.read_text()
    try:
        # The same jar name, another sha256: as if the repository served other bytes.
        lock.write_text(before.replace(before.split()[0], "0" * 64, 1))
        tarball = root / "dist/examples.spring-service/enclave.tar.gz"
        tarball.unlink(missing_ok=True)
        failed = run_pants(root, args, env, "package", SPRING)
        assert failed.returncode != 0
        said = (
            f"The jar of {SPRING} (examples/spring-service:jar (spring-service.jar)) does "
            "not hold the nested jars its `dependency_lock` (examples/spring-service/maven.lock) pins:"
        )
        assert said in failed.stderr, failed.stderr[-3000:]
        assert (
            f"  - BOOT-INF/lib/{before.split()[1]}: sha256 {before.split()[0]} in the jar, {'0' * 64} in the lock"
            in (failed.stderr)
        )
        assert "Traceback" not in failed.stderr
        assert not tarball.exists()
    finally:
        lock.write_text(before)
