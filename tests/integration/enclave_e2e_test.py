"""End to end: the README's example is built into an enclave and served, with the real Pants 2.17.1.

The Occlum toolchain is the test double in tests/occlum_double/ (there is no Occlum or SGX here);
the JDK is the host's, packed in Dragonwell's layout and served from file://, because the double's
`occlum run` runs the image's `java` on the host.
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

REPO = Path(__file__).resolve().parents[2]

STEPS = r"Starting: (Download|Extract and validate|Running the `shell_command`|occlum new|occlum build)"

pytestmark = pytest.mark.skipif(
    shutil.which("javac") is None or host_java_home() is None, reason="needs a host JDK (javac, java)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(tmp: Path) -> tuple[Path, list[str], dict]:
    root = copy_repo(tmp)
    archive, sha = make_host_jdk_archive(tmp / "mirror" / "host-jdk.tar.gz")
    install = make_fake_occlum_install(tmp / "opt" / "occlum", "0.31.0")
    # The only change to the example: its JDK pin, since the double runs the image's java here.
    pin_example_jdk(root, archive, sha, libc="glibc")
    args = pants_args(
        root, tmp, f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']", "--occlum-stage-only=no"
    )
    return root, args, pants_env(tmp)


_pants = run_pants


def test_package_run_and_serve_then_java_edit_reruns_only_what_depends_on_the_jar(tmp_path: Path) -> None:
    root, args, env = _setup(tmp_path)
    first = _pants(root, args, env, "package", "examples/hello-service:enclave")
    assert first.returncode == 0, first.stderr
    assert set(re.findall(STEPS, first.stderr)) == {
        "Download",
        "Extract and validate",
        "Running the `shell_command`",
        "occlum new",
        "occlum build",
    }
    # The package is written in the build's own sandbox: one step, whose output is only the tarball.
    assert re.search(r"Completed: occlum build examples/hello-service:enclave .*, then its package", first.stderr)
    dist = root / "dist" / "examples.hello-service"
    meas = json.loads((dist / "enclave.measurements.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{64}", meas["mrenclave"]) and re.fullmatch(r"[0-9a-f]{64}", meas["mrsigner"])
    assert (dist / "enclave.tar.gz").stat().st_size > 0
    print("\n--- first package ---\n" + "\n".join(re.findall(r"(?:Starting|Wrote|MRENCLAVE|MRSIGNER).*", first.stderr)))

    # Serve it: `pants run` -> `occlum run <jre>/bin/java ... -jar /usr/lib/spring/hello-service.jar <port>`.
    port = _free_port()
    build = root / "examples/hello-service/BUILD"
    build.write_text(build.read_text().replace('main_args=["8080"]', f'main_args=["{port}"]'))
    body, out, err = run_and_get(root, args, env, "examples/hello-service:enclave", port, f"hello-service.jar {port}")
    assert body == "Hello from an Occlum enclave!\n", (body, out[-2000:], err[-4000:])
    print(f"--- GET http://127.0.0.1:{port}/ -> {body!r}")

    # Only the Java source changes: the JDK and `occlum new` come from the cache.
    src = root / "examples/hello-service/src/hello/HelloService.java"
    src.write_text(src.read_text().replace("Hello from an Occlum enclave!", "Hello again!"))
    second = _pants(root, args, env, "package", "examples/hello-service:enclave")
    assert second.returncode == 0, second.stderr
    reran = set(re.findall(STEPS, second.stderr))
    print("--- after a Java-only edit, re-ran: " + ", ".join(sorted(reran)))
    assert reran == {"Running the `shell_command`", "occlum build"}
    assert json.loads((dist / "enclave.measurements.json").read_text())["mrenclave"] != meas["mrenclave"]
