"""Writes a fake /opt/occlum-shaped install that uses the Occlum TEST DOUBLE
(tests only; see README.md).  Stdlib only."""

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from .double_elf import make_libos

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]  # <repo>/tests/occlum_double -> <repo>
TEMPLATES = REPO_ROOT / "tests" / "data" / "occlum" / "templates"  # see tests/data/occlum/README.md

STUB = """#!/bin/sh
# Occlum TEST DOUBLE stub of {name} ({release}); tests only, does nothing real.
echo "{name}: occlum test double stub; not a real Occlum binary" >&2
exit 1
"""


def _vt(s):
    return tuple(int(x) for x in s.split("."))


def _template_for(release: str) -> Path:
    cands = sorted((p for p in TEMPLATES.glob("*.json")), key=lambda p: _vt(p.stem))
    best = None
    for p in cands:
        if _vt(p.stem) <= _vt(release):
            best = p
    if best is None:
        raise FileNotFoundError("no Occlum.json template <= %s under %s" % (release, TEMPLATES))
    return best


def _script(src: Path, dst: Path, python: str) -> None:
    lines = src.read_text().splitlines(True)
    lines[0] = "#!%s\n" % python
    dst.write_text("".join(lines))
    dst.chmod(0o755)


def _base_yaml(release: str) -> str:
    """Occlum's etc/template/base.yaml (docs/occlum-contract.md §3.2): `mkdirs` under `/`.
    sbin and ext2 were added in v0.31.0 (commit 012eb4ed), with `occlum init` creating them."""
    dirs = ["bin", "dev", "etc", "host", "lib", "lib64", "opt", "proc", "root", "sys", "tmp"]
    if _vt(release) >= (0, 31, 0):
        dirs += ["sbin", "ext2"]
    return "# basic directories in image\ntargets:\n  - target: /\n    mkdirs:\n" + "".join(
        "      - %s\n" % d for d in dirs
    )


def _blob(dst: Path, text: str) -> None:
    dst.write_bytes(("OCCLUM-TEST-DOUBLE " + text + "\n").encode())


def make_fake_occlum_install(dest: Path, release: str = "0.31.0", python: str = sys.executable) -> Path:
    dest = Path(dest)
    major, minor, patch = release.split(".")
    bin_dir = dest / "build" / "bin"
    lib_dir = dest / "build" / "lib"
    for d in (
        bin_dir,
        lib_dir,
        dest / "include",
        dest / "etc" / "template",
        dest / "toolchains" / "gcc" / "x86_64-linux-musl" / "lib",
        dest / "sgxsdk-tools" / "bin" / "x64",
    ):
        d.mkdir(parents=True, exist_ok=True)
    _script(HERE / "occlum", bin_dir / "occlum", python)
    for name in ("occlum-run", "occlum_exec_client", "occlum_exec_server", "init", "gen_internal_conf", "sefs-cli_sim"):
        p = bin_dir / name
        p.write_text(STUB.format(name=name, release=release))
        p.chmod(0o755)
    for name in ("libocclum-libos", "libocclum-libos_sim"):
        payload = ("OCCLUM-TEST-DOUBLE %s release %s\n" % (name, release)).encode()
        (lib_dir / ("%s.so.%s" % (name, release))).write_bytes(make_libos(payload))
    for name in ("libocclum-pal", "libocclum-pal_sim"):
        _blob(lib_dir / ("%s.so.%s" % (name, release)), "%s release %s" % (name, release))
    (dest / "include" / "occlum_version.h").write_text(
        "#ifndef _OCCLUM_VERSION_H_\n#define _OCCLUM_VERSION_H_\n\n"
        "// Version = %s (occlum test double)\n"
        "#define OCCLUM_MAJOR_VERSION %s\n#define OCCLUM_MINOR_VERSION %s\n#define OCCLUM_PATCH_VERSION %s\n\n"
        "#endif\n" % (release, major, minor, patch)
    )
    shutil.copyfile(_template_for(release), dest / "etc" / "template" / "Occlum.json")
    shutil.copyfile(HERE / "template_Enclave.pem", dest / "etc" / "template" / "Enclave.pem")
    (dest / "etc" / "localtime").write_bytes(b"TZif2-occlum-test-double-UTC\n")
    musl = dest / "toolchains" / "gcc" / "x86_64-linux-musl" / "lib"
    for name in ("libc.so", "ld-musl-x86_64.so.1", "libz.so.1", "libstdc++.so.6", "libgcc_s.so.1", "libgomp.so.1"):
        _blob(musl / name, "musl toolchain stand-in %s" % name)
    _script(HERE / "sgx_sign", dest / "sgxsdk-tools" / "bin" / "x64" / "sgx_sign", python)
    # The scripts that edit ELF files import this module from their own directory.
    for where in (bin_dir, dest / "sgxsdk-tools" / "bin" / "x64"):
        for module in ("double_elf.py", "double_sefs.py"):
            shutil.copyfile(HERE / module, where / module)
    if _vt(release) >= (0, 24, 1):  # copy_bom and the bom templates arrive in 0.24.1 (contract §1.5)
        _script(HERE / "copy_bom", bin_dir / "copy_bom", python)
        (dest / "etc" / "template" / "base.yaml").write_text(_base_yaml(release))
    return dest


def rebuild_with_copy_bom(staged: Path, bom: str, install: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Rebuild a staged instance's image the way its copy_bom header says, with this double:
    `occlum new occlum_instance` beside image/, then `copy_bom -f ../<bom> --root image` in it.
    Returns copy_bom's result and the rebuilt image folder."""
    env = {"PATH": "%s:/usr/bin:/bin" % (install / "build" / "bin"), "HOME": str(staged), "LANG": "C"}
    subprocess.run(["occlum", "new", "occlum_instance"], cwd=str(staged), env=env, check=True, capture_output=True)
    instance = staged / "occlum_instance"
    shutil.rmtree(str(instance / "image"))
    run = subprocess.run(
        ["copy_bom", "-f", "../" + bom, "--root", "image", "--include-dir", str(install / "etc" / "template")],
        cwd=str(instance),
        env=env,
        capture_output=True,
        text=True,
    )
    return run, instance / "image"


def image_tree(root: Path) -> dict:
    """Every path under root -> (kind, mode, sha256 or link target)."""
    out: dict = {}
    for p in sorted(root.rglob("*")):
        rel = "/" + p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = ("symlink", None, os.readlink(str(p)))
        elif p.is_dir():
            out[rel] = ("dir", stat.S_IMODE(p.lstat().st_mode), None)
        else:
            out[rel] = ("file", stat.S_IMODE(p.lstat().st_mode), hashlib.sha256(p.read_bytes()).hexdigest())
    return out
