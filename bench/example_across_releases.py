"""The README's example on the running Pants, for comparing what should not depend on the release.

    <python in which Pants imports> bench/example_across_releases.py <work dir> > pants-X.json
    diff <(jq -S . pants-2.17.1.json) <(jq -S . pants-2.30.2.json)

It runs, on a copy of the repo whose example is pinned to the host's JDK (packed in Dragonwell's
layout) and with the Occlum test double as the toolchain: `pants package` staged, `pants package
--occlum-stage-only=no`, `pants run` (one HTTP GET), `pants help occlum_java_image`,
`pants enclave-memory` and `pants check-reproducible`. It prints JSON: each goal's exit code, the
sha256 of Occlum.json, of the copy_bom file, of the package and its records, and the MRENCLAVE. The
JDK archive and the double's install are made once in <work dir> and reused by every release, so
their bytes are the same for all; each run gets its own repo copy and empty stores.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for sub in ("tests/fixtures", "tests"):
    sys.path.insert(0, str(REPO / sub))

from host_jdk import make_host_jdk_archive  # noqa: E402
from integration.pants_repo import (  # noqa: E402
    PANTS,
    PANTS_VERSION,
    copy_repo,
    pants_args,
    pants_env,
    pin_example_jdk,
    run_and_get,
)
from occlum_double.make_install import make_fake_occlum_install  # noqa: E402

TARGET = "examples/hello-service:enclave"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(root: Path, args: list[str], env: dict, *goal: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PANTS, *args, *goal], cwd=root, env=env, capture_output=True, text=True, timeout=900)


def serve_once(root: Path, args: list[str], env: dict) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    build = root / "examples/hello-service/BUILD"
    build.write_text(build.read_text().replace('main_args=["8080"]', f'main_args=["{port}"]'))
    try:
        body, _, err = run_and_get(root, args, env, TARGET, port, f"hello-service.jar {port}")
    finally:
        build.write_text(build.read_text().replace(f'main_args=["{port}"]', 'main_args=["8080"]'))
    if body is None:
        return "no answer: " + err[-500:]
    return body


def main() -> None:
    work = Path(sys.argv[1]).resolve()
    archive = work / "mirror/host-jdk.tar.gz"
    if not archive.is_file():
        make_host_jdk_archive(archive)
    install = work / "opt/occlum"
    if not install.is_dir():
        make_fake_occlum_install(install, "0.31.0")
    jdk_sha = sha(archive)
    out: dict = {"pants": PANTS_VERSION, "jdk_archive_sha256": jdk_sha}
    with tempfile.TemporaryDirectory(prefix=f"example-{PANTS_VERSION}.", dir=work) as tmp_dir:
        tmp = Path(tmp_dir)
        root = copy_repo(tmp)
        pin_example_jdk(root, archive, jdk_sha, libc="glibc")
        env = pants_env(tmp)
        tools = f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']"
        dist = root / "dist/examples.hello-service"

        staged = run(root, pants_args(root, tmp, "--occlum-stage-only=yes"), env, "package", TARGET)
        out["package_staged_rc"] = staged.returncode
        if staged.returncode == 0:
            out["staged_occlum_json_sha256"] = sha(dist / "enclave/Occlum.json")
            out["staged_copy_bom_sha256"] = sha(dist / "enclave/enclave.copy_bom.yaml")
            out["staged_summary_sha256"] = sha(dist / "enclave/occlum-image.json")
        else:
            out["package_staged_err"] = staged.stderr[-2000:]

        args = pants_args(root, tmp, tools, "--occlum-stage-only=no")
        built = run(root, args, env, "package", TARGET)
        out["package_rc"] = built.returncode
        if built.returncode == 0:
            for name in ("enclave.tar.gz", "enclave.measurements.json", "enclave.cdx.json", "enclave.ra_config.json"):
                out[f"{name}_sha256"] = sha(dist / name)
            out["mrenclave"] = json.loads((dist / "enclave.measurements.json").read_text())["mrenclave"]
        else:
            out["package_err"] = built.stderr[-2000:]

        out["run_body"] = serve_once(root, args, env)
        helped = run(root, args, env, "help", "occlum_java_image")
        out["help_rc"] = helped.returncode
        # Field headings: an identifier alone on its line, followed by its `type:` line.
        lines = helped.stdout.splitlines()
        out["help_fields"] = {
            name: lines[i + 1].strip()
            for i, name in enumerate(lines[:-1])
            if name.isidentifier() and lines[i + 1].strip().startswith("type:")
        }
        memory = run(root, args, env, "enclave-memory", TARGET)
        out["enclave_memory_rc"] = memory.returncode
        out["enclave_memory_sha256"] = hashlib.sha256(memory.stdout.encode()).hexdigest()
        repro = run(root, args, env, "check-reproducible", TARGET)
        out["check_reproducible_rc"] = repro.returncode
        # Its last line, without the time and Pants' own wording of the step ("Completed: [Scheduling: ]").
        last = ((repro.stdout + repro.stderr).strip().splitlines() or [""])[-1]
        out["check_reproducible_last_line"] = last.split("Completed: ")[-1].removeprefix("Scheduling: ")
        run(root, pants_args(root, tmp, pantsd=True), env, "kill-pantsd")
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
