"""The wheel from build-support/build-dist, installed the way docs/installing.md says, packages an
image in a fresh monorepo that holds none of this repo's code."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from fake_jdk import make_fake_jdk_archive, make_jar

REPO = Path(__file__).resolve().parents[2]

PANTS_VENV = Path(sys.executable).parent.parent


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
    assert not [n for n in names if n.endswith(("_test.py", "/testutil.py", "/conftest.py"))]
    assert "occlum/register.py" in names and "occlum/util_rules/copy_bom.py" in names
    assert "Requires-Python: <3.10,>=3.9" in meta
    assert "Requires-Dist: jsonschema<5,>=4.17" in meta
    assert "pantsbuild.pants" not in meta.split("\n\n", 1)[0]
    with tarfile.open(sdist) as t:
        snames = t.getnames()
    assert any(n.endswith("/occlum/schemas/index.json") for n in snames)
    assert any(n.endswith("/CHANGELOG.md") for n in snames)
    assert not [n for n in snames if n.endswith("_test.py")]
    # Nothing was written inside the source package.
    assert not (REPO / "pants-plugins/occlum/schemas").exists()


def _install_venv(dist: Path, dest: Path) -> Path:
    """docs/installing.md, option A: pip install the wheel into the environment that runs Pants.
    Here that is a copy of this repo's Pants venv, so the real one stays untouched."""
    venv = dest / "venv"
    try:
        subprocess.run(["cp", "-al", str(PANTS_VENV), str(venv)], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run(["cp", "-a", str(PANTS_VENV), str(venv)], check=True)
    # Scripts name their interpreter by absolute path: point them at the copy (sed -i makes new files).
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            head = script.read_bytes()[:200]
            if head.startswith(b"#!") and str(PANTS_VENV).encode() in head:
                subprocess.run(["sed", "-i", f"1s#{PANTS_VENV}#{venv}#", str(script)], check=True)
    proc = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-index", str(_wheel(dist))],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return venv


def _fresh_repo(root: Path, work: Path) -> None:
    root.mkdir()
    archive = make_fake_jdk_archive(work / "dragonwell-11.0.16.12.8-musl.tar.gz")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    (root / "svc").mkdir()
    make_jar(root / "svc" / "app.jar")
    (root / "pants.toml").write_text(
        '[GLOBAL]\npants_version = "2.17.1"\nbackend_packages = ["occlum"]\n\n'
        "[anonymous-telemetry]\nenabled = false\n\n"
        '[occlum]\nversion = "0.31.0"\n'
    )
    (root / "BUILD").write_text("")
    (root / "svc" / "BUILD").write_text(
        'file(name="app", source="app.jar")\n'
        f'dragonwell_jdk(name="jdk", url="file://{archive}", sha256="{sha}")\n'
        'occlum_java_image(name="enclave", jdk=":jdk", jar=":app")\n'
    )


def test_fresh_monorepo_packages_with_the_installed_wheel(dist: Path, tmp_path: Path) -> None:
    venv = _install_venv(dist, tmp_path)
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
        str(venv / "bin/pants"),
        "--no-pantsd",
        "--no-pantsrc",
        f"--local-store-dir={tmp_path / 'store'}",
        f"--named-caches-dir={tmp_path / 'named'}",
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
