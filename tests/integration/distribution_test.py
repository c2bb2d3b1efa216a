"""The wheel from build-support/build-dist, installed the way docs/installing.md says, packages an
image in a fresh monorepo that holds none of this repo's code."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from pants.version import VERSION

from fake_jdk import make_fake_jdk_archive, make_jar
from integration.pants_repo import pex_cli_args

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "plugin"
    proc = subprocess.run(
        [str(REPO / "build-support/build-dist"), str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("occlum_pants_backend-0.1.0-py3-none-any.whl")
    return wheel


def test_wheel_and_sdist_contents(dist: Path) -> None:
    wheel = _wheel(dist)
    (sdist,) = dist.glob("occlum*pants*backend-0.1.0.tar.gz")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        for schema in sorted((REPO / "schemas").glob("*.json")):
            assert z.read(f"occlum/schemas/{schema.name}") == schema.read_bytes(), f"{schema.name} differs"
        meta = z.read("occlum_pants_backend-0.1.0.dist-info/METADATA").decode()
    # Runtime code only: no tests, no test helpers.
    assert not [n for n in names if n.endswith(("_test.py", "/conftest.py"))]
    assert not [n for n in names if "testutil" in n or "error_catalogue" in n]
    assert "occlum/register.py" in names and "occlum/toolchain/copy_bom.py" in names
    assert "Requires-Python: >=3.9" in meta
    assert 'Requires-Dist: jsonschema<4.18,>=4.17.3; python_version < "3.10"' in meta
    assert 'Requires-Dist: jsonschema<5,>=4.17.3; python_version >= "3.10"' in meta
    assert "pantsbuild.pants" not in meta.split("\n\n", 1)[0]
    with tarfile.open(sdist) as t:
        snames = t.getnames()
    assert any(n.endswith("/occlum/schemas/index.json") for n in snames)
    assert any(n.endswith("/CHANGELOG.md") for n in snames)
    assert not [n for n in snames if n.endswith("_test.py")]
    # Nothing was written inside the source package.
    assert not (REPO / "pants-plugins/occlum/schemas").exists()


def _pip(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


UNDER_TEST = os.environ.get("OCCLUM_TEST_PANTS_PYTHON")


@pytest.fixture(scope="module")
def pants_venv(dist: Path, tmp_path_factory) -> Path:
    """docs/installing.md, option A: a fresh venv holding only pantsbuild.pants==2.17.1 (from the
    package index, as a user gets it), then the wheel with whatever it needs from the index. On a
    Pants given by OCCLUM_TEST_PANTS_PYTHON (build-support/run-tests), the fresh venv reads that
    Pants' packages instead, and the wheel is installed beside them."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    if UNDER_TEST:
        overlay = REPO / "build-support/pants-under-test/overlay.py"
        subprocess.run([UNDER_TEST, str(overlay), "--bare", str(venv), UNDER_TEST], check=True)
    else:
        # This process runs in the repo's Pants venv (CPython 3.9); `-m venv` makes a new, empty one.
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pants = _pip(venv, "install", "--quiet", "pantsbuild.pants==2.17.1")
        assert pants.returncode == 0, pants.stdout + pants.stderr
    before = _pip(venv, "freeze").stdout.splitlines()
    wheel = _pip(venv, "install", str(_wheel(dist)))
    assert wheel.returncode == 0, wheel.stdout + wheel.stderr
    after = _pip(venv, "freeze").stdout.splitlines()
    # Installing the backend adds packages but changes none of Pants' own.
    changed = [line for line in before if line not in after]
    assert changed == [], f"installing the wheel moved packages Pants pins: {changed}"
    (venv / "added.txt").write_text("\n".join(sorted(set(after) - set(before))) + "\n")
    return venv


def test_pip_check_is_clean_in_a_fresh_pants_venv(pants_venv: Path) -> None:
    check = _pip(pants_venv, "check")
    print(f"\npip check: {check.stdout.strip()}")
    print("added by the wheel: " + ", ".join((pants_venv / "added.txt").read_text().splitlines()))
    assert check.returncode == 0 and "No broken requirements found." in check.stdout, check.stdout + check.stderr


def test_every_module_of_the_installed_package_imports(pants_venv: Path) -> None:
    script = (
        "import importlib, pkgutil, occlum\n"
        "names = sorted(m.name for m in pkgutil.walk_packages(occlum.__path__, 'occlum.'))\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names), occlum.__file__)\n"
    )
    proc = subprocess.run(
        [str(pants_venv / "bin/python"), "-c", script],
        capture_output=True,
        text=True,
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count, where = proc.stdout.split()
    assert where.startswith(str(pants_venv)) and int(count) >= 30, proc.stdout


def _fresh_repo(root: Path, work: Path) -> None:
    root.mkdir()
    archive = make_fake_jdk_archive(work / "dragonwell-11.0.16.12.8-musl.tar.gz")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    (root / "svc").mkdir()
    make_jar(root / "svc" / "app.jar")
    (root / "pants.toml").write_text(
        '[GLOBAL]\npants_version = "' + str(VERSION) + '"\nbackend_packages = ["occlum"]\n\n'
        "[anonymous-telemetry]\nenabled = false\n\n"
        '[occlum]\nversion = "0.31.0"\n'
    )
    (root / "BUILD").write_text("")
    (root / "svc" / "BUILD").write_text(
        'file(name="app", source="app.jar")\n'
        f'dragonwell_jdk(name="jdk", url="file://{archive}", sha256="{sha}")\n'
        'occlum_java_image(name="enclave", jdk=":jdk", jar=":app")\n'
    )


def test_fresh_monorepo_packages_with_the_installed_wheel(dist: Path, pants_venv: Path, tmp_path: Path) -> None:
    venv = pants_venv
    root = tmp_path / "monorepo"
    _fresh_repo(root, tmp_path)
    # The backend comes from the installed wheel, not from this checkout.
    where = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "import occlum, occlum.config.releases as r; print(occlum.__file__); print(r.schemas_dir())",
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert where.returncode == 0, where.stderr
    occlum_file, schemas = where.stdout.split()
    assert occlum_file.startswith(str(venv)) and schemas == str(Path(occlum_file).parent / "schemas")
    assert not any(p.suffix == ".py" for p in root.rglob("*"))

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "LC_ALL": "C.UTF-8",
        "NO_SCIE_WARNING": "1",
    }
    args = [
        str(venv / "bin/python"),
        "-m",
        "pants",
        "--no-pantsd",
        "--no-pantsrc",
        f"--local-store-dir={tmp_path / 'store'}",
        f"--named-caches-dir={tmp_path / 'named'}",
        *pex_cli_args(),
        "package",
        "--occlum-stage-only=yes",
        "svc:enclave",
    ]
    start = time.monotonic()
    proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr

    out = root / "dist" / "svc" / "enclave"
    config = out / "Occlum.json"
    assert config.is_file(), sorted(str(p.relative_to(root)) for p in (root / "dist").rglob("*"))
    check = subprocess.run(
        [str(venv / "bin/occlum-validate"), "--release", "0.31.0", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    doc = json.loads(config.read_text())
    jar = out / "image/usr/lib/spring/app.jar"
    assert jar.read_bytes() == (root / "svc/app.jar").read_bytes()
    assert (out / "image/usr/lib/jvm/java-11-alibaba-dragonwell/jre/lib/server/libjvm.so").is_file()

    print(f"\nwheel: {_wheel(dist).name} ({_wheel(dist).stat().st_size} bytes), installed into {venv}")
    print(f"backend loaded from: {occlum_file}")
    print(f"pants package --occlum-stage-only=yes svc:enclave: exit 0 in {took:.1f} s")
    for line in (proc.stderr + proc.stdout).splitlines():
        if "Wrote" in line or "stag" in line.lower():
            print("  " + line.strip()[:200])
    print(
        f"{config.relative_to(root)}: {check.stdout.strip().split(': ', 1)[-1]} "
        f"(occlum-validate --release 0.31.0); entry_points={doc['entry_points']}"
    )
