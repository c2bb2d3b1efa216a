"""One download and one extraction per JDK pin per machine, however many targets name the pin.

Real Pants 2.17.1, an empty store, and three services in three BUILD files, each with its own
`dragonwell_jdk` target pinned to the same URL and sha256. The archive is served over HTTP by this
test, which counts the requests: the bytes are fetched once. Pants' log shows one `Download` and
one `Extract and validate`. A later run that adds a fourth service with the same pin, with the
same store, fetches nothing. Nor does another install of Pants on the same machine: the steps are
keyed on the machine's python3, not on the interpreter inside each Pants install.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

import fake_jdk
from http_payload import ServedPayload
from integration.pants_repo import copy_repo, pants_args, pants_env, run_pants, write_jar_service


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServedPayload]:
    archive = fake_jdk.make_fake_jdk_archive(tmp_path / "jdk.tar.gz")
    srv = ServedPayload(archive.read_bytes())
    yield srv
    srv.shutdown()


def _count(log: str, step: str) -> int:
    return len(re.findall(rf"Completed: {re.escape(step)} Dragonwell", log))


def test_services_sharing_a_pin_fetch_and_extract_it_once(server: ServedPayload, tmp_path: Path) -> None:
    root = copy_repo(tmp_path)
    sha = hashlib.sha256(server.payload).hexdigest()
    # The same archive, described differently by each team: what a target says about a `url` pin
    # (`version`, `edition`) names it in messages but must not split the download.
    described = ("", ', version="11.0.16.12.8"', ', edition="extended"')
    targets = [write_jar_service(root, f"svc{i}", server.url, sha, described[i]) for i in range(3)]
    args = pants_args(root, tmp_path, "--occlum-stage-only=yes")
    env = pants_env(tmp_path)

    first = run_pants(root, args, env, "package", *targets)
    assert first.returncode == 0, first.stderr[-4000:]
    print(
        f"\n3 services, empty store: {server.gets} HTTP GET(s), "
        f"{_count(first.stderr, 'Download')} Download, {_count(first.stderr, 'Extract and validate')} Extract"
    )
    assert server.gets == 1
    assert _count(first.stderr, "Download") == 1, first.stderr
    assert _count(first.stderr, "Extract and validate") == 1, first.stderr
    for i in range(3):
        assert (root / f"dist/svc{i}/enclave/image/usr/lib/jvm").is_dir()

    targets.append(write_jar_service(root, "svc3", server.url, sha))
    second = run_pants(root, args, env, "package", *targets)
    assert second.returncode == 0, second.stderr[-4000:]
    assert server.gets == 1
    assert _count(second.stderr, "Download") == 0 and _count(second.stderr, "Extract and validate") == 0
    assert (root / "dist/svc3/enclave/image/usr/lib/jvm").is_dir()


def _second_pants_install(tmp: Path) -> Path:
    """Another install of the same Pants: a venv of its own (another interpreter path) that reads the
    first venv's packages, as a second scie-pants or CI image would hold its own copy."""
    venv = tmp / "second-pants-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = sysconfig.get_paths()["purelib"]
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "first_pants.pth").write_text(f"import site; site.addsitedir({purelib!r})\n")
    python = venv / "bin" / "python"
    assert str(python) != sys.executable
    return python


def test_two_pants_installs_share_one_download_and_extraction(server: ServedPayload, tmp_path: Path) -> None:
    root = copy_repo(tmp_path)
    sha = hashlib.sha256(server.payload).hexdigest()
    target = write_jar_service(root, "svc", server.url, sha)
    args = pants_args(root, tmp_path, "--occlum-stage-only=yes")
    env = pants_env(tmp_path)
    first = run_pants(root, args, env, "package", target)
    assert first.returncode == 0, first.stderr[-4000:]
    assert _count(first.stderr, "Extract and validate") == 1, first.stderr

    # The same machine and store, another Pants install: nothing is fetched or extracted again.
    other = _second_pants_install(tmp_path)
    second = subprocess.run(
        [str(other), "-m", "pants", *args, "package", target], cwd=root, env=env, capture_output=True, text=True
    )
    assert second.returncode == 0, second.stderr[-4000:]
    assert server.gets == 1
    assert _count(second.stderr, "Download") == 0 and _count(second.stderr, "Extract and validate") == 0, second.stderr
