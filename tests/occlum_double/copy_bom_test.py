"""Tests of the copy_bom TEST DOUBLE (tests/occlum_double/copy_bom) against docs/occlum-contract.md §3.2-§3.3.
Boms are written the way the backend writes them (pants-plugins/occlum/toolchain/copy_bom.py: yaml.safe_dump with
sort_keys=False, default_flow_style=False, width=1000), and as Occlum's own templates look."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import re
import stat
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from occlum_double.make_install import HERE, make_fake_occlum_install

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C"}
BASE_DIRS_0310 = ["bin", "dev", "etc", "host", "lib", "lib64", "opt", "proc", "root", "sys", "tmp", "sbin", "ext2"]
LOG_LINE = re.compile(r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ERROR copy_bom::(util|bom)\] ")


@pytest.fixture(scope="session")
def installs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("opt")
    return {r: make_fake_occlum_install(base / r, r) for r in ("0.24.0", "0.24.1", "0.31.0")}


@pytest.fixture(scope="session")
def double() -> ModuleType:
    """The double as a module, for its YAML reader."""
    loader = importlib.machinery.SourceFileLoader("occlum_copy_bom_double", str(HERE / "copy_bom"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def copy_bom(install: Path, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    e = dict(ENV)
    e.update(env or {})
    return subprocess.run(
        [str(install / "build" / "bin" / "copy_bom"), *args], cwd=str(cwd), env=e, capture_output=True, text=True
    )


def run(install: Path, inst: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """copy_bom as the backend documents it, from an instance next to the bom."""
    tpl = str(install / "etc" / "template")
    return copy_bom(
        install, inst, "-f", "../app.copy_bom.yaml", "--root", "image", "--include-dir", tpl, *extra, env=env
    )


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root: kind, permission bits and (files) sha256 + mtime, (links) their text."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            s = p.lstat()
            if stat.S_ISLNK(s.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(s.st_mode):
                out[rel] = ("dir", stat.S_IMODE(s.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(s.st_mode), sha(p.read_bytes()), s.st_mtime_ns)
    return out


def log_messages(stderr: str) -> list[str]:
    """The env_logger records of stderr, without their `[<time> ERROR module] ` header."""
    return [LOG_LINE.sub("", line) for line in stderr.splitlines() if LOG_LINE.match(line)]


def instance(tmp: Path, bom: dict | str, name: str = "app.copy_bom.yaml") -> Path:
    """<tmp>/<name> holds the bom and <tmp>/occlum_instance is the cwd, as the backend's staged folder."""
    (tmp / name).write_text(bom if isinstance(bom, str) else dump(bom))
    inst = tmp / "occlum_instance"
    inst.mkdir(exist_ok=True)
    return inst


# ----------------------------------------------------------------- install
def test_copy_bom_and_base_yaml_arrive_in_0241(installs) -> None:
    assert not (installs["0.24.0"] / "build/bin/copy_bom").exists()
    assert not (installs["0.24.0"] / "etc/template/base.yaml").exists()
    for rel in ("0.24.1", "0.31.0"):
        tool = installs[rel] / "build/bin/copy_bom"
        assert tool.is_file() and os.access(tool, os.X_OK)
        assert "TEST DOUBLE" in "".join(tool.read_text().splitlines(True)[:3])
    base = {r: yaml.safe_load((installs[r] / "etc/template/base.yaml").read_text()) for r in ("0.24.1", "0.31.0")}
    assert base["0.31.0"] == {"targets": [{"target": "/", "mkdirs": BASE_DIRS_0310}]}
    assert base["0.24.1"] == {"targets": [{"target": "/", "mkdirs": BASE_DIRS_0310[:-2]}]}  # sbin, ext2: v0.31.0


# ------------------------------------------------------- rebuilding an image
ODD_NAMES = ["01", "yes", "a: b #c", "é ü.txt", "with space", "null", "x'y\"z", "-dash", "[x]"]


def staged_image(image: Path) -> None:
    """A staged image: base dirs, files of several modes and odd names, symlinks, empty dirs."""
    for d in BASE_DIRS_0310:
        (image / d).mkdir(parents=True)
    jre = image / "usr/lib/jvm/java-11-alibaba-dragonwell/jre"
    write(jre / "bin/java", b"\x7fELF java", 0o755)
    write(jre / "lib/server/libjvm.so", b"\x7fELF jvm", 0o755)
    write(jre / "lib/server/libjsig.so", b"\x7fELF jsig", 0o700)
    write(jre / "release", b'JAVA_VERSION="11.0.16"\n', 0o444)
    (jre / "lib/libjsig.so").symlink_to("server/libjsig.so")
    write(image / "usr/lib/spring/app.jar", b"PK jar", 0o600)
    write(image / "etc/hosts", b"127.0.0.1   localhost\n")
    write(image / "top.txt", b"at the root", 0o640)
    for i, name in enumerate(ODD_NAMES):
        write(image / "etc/odd" / name, b"odd %d" % i)
    (image / "lib/libc.so").write_bytes(b"libc")
    (image / "lib/ld-musl-x86_64.so.1").symlink_to("/lib/libc.so")
    (image / "etc/dangling").symlink_to("../nowhere")
    (image / "data/empty/deeper").mkdir(parents=True)
    (image / "var/log").mkdir(parents=True)
    os.utime(image / "usr/lib/spring/app.jar", ns=(1, 1_600_000_000_123_456_789))


def bom_for(image: Path, source_root: str = "../image", upper: bool = True) -> dict:
    """The backend's shape: a first "/" target with mkdirs, then one target per directory with its
    symlinks (createlinks) and files (copy from the staged image, with hashes)."""
    dirs: list[str] = []
    by_parent: dict[str, dict[str, list]] = {}
    for p in sorted(image.rglob("*")):
        rel = "/" + str(p.relative_to(image))
        parent, name = os.path.split(rel)
        if p.is_dir() and not p.is_symlink():
            if rel.lstrip("/") not in BASE_DIRS_0310:  # those come from the included base.yaml
                dirs.append(rel.lstrip("/"))
            continue
        group = by_parent.setdefault(parent, {"links": [], "files": []})
        if p.is_symlink():
            group["links"].append({"src": os.readlink(p), "linkname": name})
        else:
            digest = sha(p.read_bytes())
            group["files"].append({"name": name, "hash": digest.upper() if upper else digest})
    targets: list[dict] = [{"target": "/", "mkdirs": dirs}]
    for parent, group in sorted(by_parent.items()):
        target = targets[0] if parent == "/" else {"target": parent}
        if target is not targets[0]:
            targets.append(target)
        if group["links"]:
            target["createlinks"] = group["links"]
        if group["files"]:
            source = source_root + (parent if parent != "/" else "")
            target["copy"] = [{"from": source, "files": group["files"]}]
    return {"includes": ["base.yaml"], "targets": targets}


def test_bom_of_an_image_rebuilds_it_exactly(installs, tmp_path) -> None:
    inst_dir = installs["0.31.0"]
    staged_image(tmp_path / "image")
    inst = instance(tmp_path, bom_for(tmp_path / "image"))
    r = copy_bom(
        inst_dir,
        inst,
        "-f",
        "../app.copy_bom.yaml",
        "--root",
        "image",
        "--include-dir",
        str(inst_dir / "etc/template"),
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert snapshot(inst / "image") == snapshot(tmp_path / "image")
    assert os.readlink(inst / "image/etc/dangling") == "../nowhere"


def test_includes_come_from_include_dir_relative_to_cwd(installs, tmp_path) -> None:
    inst = instance(tmp_path, {"includes": ["base.yaml"], "targets": [{"target": "/opt", "mkdirs": ["x"]}]})
    rel = os.path.relpath(installs["0.31.0"] / "etc/template", inst)
    r = copy_bom(installs["0.31.0"], inst, "--file=../app.copy_bom.yaml", "--root", "image", "--include-dir", rel)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in (inst / "image").iterdir()) == sorted(BASE_DIRS_0310)
    assert (inst / "image/opt/x").is_dir()


def test_include_next_to_the_bom_wins_over_include_dir(installs, tmp_path) -> None:
    (tmp_path / "base.yaml").write_text("targets:\n  - target: /\n    mkdirs:\n      - mine\n")
    inst = instance(tmp_path, {"includes": ["base.yaml"], "targets": []})
    tpl = str(installs["0.31.0"] / "etc/template")
    r = run(installs["0.31.0"], inst, "--include-dir", tpl)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [p.name for p in (inst / "image").iterdir()] == ["mine"]
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 0 and (inst / "image/mine").is_dir()
    (tmp_path / "base.yaml").unlink()
    r = copy_bom(installs["0.31.0"], inst, "-f", "../app.copy_bom.yaml", "--root", "image2")
    assert r.returncode == 255
    assert log_messages(r.stderr) == ["cannot find included bom file base.yaml in ../app.copy_bom.yaml."]


def test_relative_paths_resolve_against_the_parent_of_root(installs, tmp_path) -> None:
    write(tmp_path / "work/src/f.txt", b"right", 0o600)
    write(tmp_path / "work/src/tree/a.txt", b"tree")
    write(tmp_path / "src/f.txt", b"decoy: relative to the cwd")  # what a cwd-relative lookup would find
    write(tmp_path / "src/tree/a.txt", b"decoy tree")
    (tmp_path / "work/inst").mkdir()
    (tmp_path / "cwd").mkdir()
    bom = {
        "targets": [
            {"target": "/f", "copy": [{"from": "../src", "files": [{"name": "f.txt", "hash": sha(b"right").upper()}]}]},
            {"target": "/d", "copy": [{"from": "../src", "dirs": ["tree"]}]},
            {"target": "/plain", "copy": [{"files": ["../src/f.txt"]}]},
        ]
    }
    (tmp_path / "bom.yaml").write_text(dump(bom))
    r = copy_bom(installs["0.31.0"], tmp_path / "cwd", "-f", "../bom.yaml", "--root", "../work/inst/image")
    assert r.returncode == 0, r.stdout + r.stderr
    image = tmp_path / "work/inst/image"
    assert (image / "f/f.txt").read_bytes() == b"right" and stat.S_IMODE((image / "f/f.txt").stat().st_mode) == 0o600
    assert (image / "d/tree/a.txt").read_bytes() == b"tree"
    assert (image / "plain/f.txt").read_bytes() == b"right"
    # bom.rs quirk: a copy entry with only `from` hands rsync the raw `from`, relative to the cwd.
    (tmp_path / "bom2.yaml").write_text(dump({"targets": [{"target": "/whole", "copy": [{"from": "../src/tree"}]}]}))
    r = copy_bom(installs["0.31.0"], tmp_path / "cwd", "-f", "../bom2.yaml", "--root", "../work/inst/image")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (image / "whole/a.txt").read_bytes() == b"decoy tree"


# ----------------------------------------------------------------- hashes
def test_lower_case_hash_fails_with_249_and_the_upper_case_digest(installs, tmp_path) -> None:
    write(tmp_path / "image/usr/lib/spring/app.jar", b"PK jar")
    inst = instance(tmp_path, bom_for(tmp_path / "image", upper=False))
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 249  # -7
    assert log_messages(r.stderr) == [
        'The hash value of ../image/usr/lib/spring/app.jar should be "%s". Please correct it.' % sha(b"PK jar").upper()
    ]
    assert not (inst / "image").exists()  # hashes are checked before anything is made
    r = run(installs["0.31.0"], inst, "--dry-run")
    assert r.returncode == 249


def test_var_path_with_hash_fails_before_expansion(installs, tmp_path) -> None:
    write(tmp_path / "image/usr/lib/spring/app.jar", b"PK jar")
    bom = bom_for(tmp_path / "image", source_root="${OCCLUM_STAGED_IMAGE}")
    inst = instance(tmp_path, bom)
    env = {"OCCLUM_STAGED_IMAGE": str(tmp_path / "image")}
    r = run(installs["0.31.0"], inst, env=env)
    assert r.returncode == 255  # -1
    assert r.stdout == (
        "can not open file ${OCCLUM_STAGED_IMAGE}/usr/lib/spring/app.jar. No such file or directory (os error 2)\n"
    )
    assert not (inst / "image").exists()


@pytest.mark.parametrize("var", ["${OCCLUM_STAGED_IMAGE}", "$OCCLUM_STAGED_IMAGE", "${UNSET_VAR:-%s}"])
def test_var_path_without_hash_is_expanded(installs, tmp_path, var) -> None:
    write(tmp_path / "image/usr/lib/spring/app.jar", b"PK jar", 0o751)
    bom = bom_for(tmp_path / "image", source_root=var.replace("%s", str(tmp_path / "image")))
    for t in bom["targets"]:
        for c in t.get("copy", []):
            for f in c["files"]:
                del f["hash"]
    inst = instance(tmp_path, bom)
    env = {"OCCLUM_STAGED_IMAGE": str(tmp_path / "image")}
    r = run(installs["0.31.0"], inst, env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    jar = inst / "image/usr/lib/spring/app.jar"
    assert jar.read_bytes() == b"PK jar" and stat.S_IMODE(jar.stat().st_mode) == 0o751


# ------------------------------------------------------------------ errors
def test_missing_file(installs, tmp_path) -> None:
    bom: dict[str, Any] = {
        "targets": [{"target": "/x", "copy": [{"from": "../image", "files": [{"name": "gone", "hash": "AB"}]}]}]
    }
    inst = instance(tmp_path, bom)
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 255  # -1: the hash check cannot open it
    assert r.stdout == "can not open file ../image/gone. No such file or directory (os error 2)\n"
    # Without a hash, nothing opens the file before rsync: its failure is a copy error (-2).
    bom["targets"][0]["copy"][0]["files"] = ["gone"]
    inst = instance(tmp_path, bom)
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 254
    assert 'rsync: [sender] link_stat "%s/../image/gone" failed: No such file or directory (2)' % inst in r.stderr
    # A missing bom.
    r = copy_bom(installs["0.31.0"], inst, "-f", "nope.yaml", "--root", "image")
    assert r.returncode == 255
    assert log_messages(r.stderr) == ["cannot read bom file nope.yaml. No such file or directory (os error 2)."]


@pytest.mark.parametrize(
    "text, message",
    [
        ("targets:\n  - mkdirs: [bin]\n", "targets[0]: missing field `target` at line 2 column 5"),
        (
            "targets:\n  - target: /\n    mkdirs: bin\n",
            'targets[0].mkdirs: invalid type: string "bin", expected a sequence',
        ),
        (
            "targets:\n- target: /\n  copy:\n  - files:\n    - name: a\n      autodep: 'false'\n",
            "targets[0].copy[0].files: data did not match any variant of untagged enum NormalFile",
        ),
        (
            "targets:\n- target: /\n  copy:\n  - files:\n    - 1e5\n",  # serde_yaml 0.8 reads a plain 1e5 as a float
            "targets[0].copy[0].files: data did not match any variant of untagged enum NormalFile",
        ),
        ("targets:\n  - target: /\n    mkdirs:\n\t- bin\n", "found a tab character that violates indentation"),
        ("targets: [a\n", "did not find expected ',' or ']'"),
        ("includes: x\n", 'includes: invalid type: string "x", expected a sequence at line 1 column 11'),
        ("# only a comment\n", "EOF while parsing a value"),
        ("targets: []\n---\ntargets: []\n", "more than one document is not supported"),
        ("targets:\n- target: /\n  target: /x\n", "targets[0]: duplicate field `target`"),
        ("- a\n", "invalid type: sequence, expected struct Bom at line 1 column 1"),
        ("targets:\n  - target: &a /\n", "anchors are not supported by the copy_bom test double"),
    ],
)
def test_invalid_bom_exits_253(installs, tmp_path, text, message) -> None:
    inst = instance(tmp_path, text)
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 253, r.stdout + r.stderr  # -3
    (msg,) = log_messages(r.stderr)
    assert msg.startswith("../app.copy_bom.yaml is not a valid bom file. ") and message in msg, msg
    assert not (inst / "image").exists()


def test_other_invalid_boms(installs, tmp_path) -> None:
    inst = instance(tmp_path, {"targets": [{"target": "/", "copy": [{"from": None}]}]})
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 253 and log_messages(r.stderr) == ["field 'from' cannot be empty"]
    (tmp_path / "a.yaml").write_text(dump({"includes": ["b.yaml"]}))
    (tmp_path / "b.yaml").write_text(dump({"includes": ["a.yaml"]}))
    r = copy_bom(installs["0.31.0"], inst, "-f", "../a.yaml", "--root", "image")
    assert r.returncode == 253
    assert log_messages(r.stderr) == [
        "The bom file number exceeds the MAX_ITERATION bound. Please check if there is including cycle."
    ]
    # The same name quoted is a string, and fine.
    write(tmp_path / "src/1e5", b"x")
    inst = instance(tmp_path, "targets:\n- target: /\n  copy:\n  - from: ../src\n    files:\n    - '1e5'\n")
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 0 and (inst / "image/1e5").read_bytes() == b"x", r.stderr


def test_operation_failures(installs, tmp_path) -> None:
    inst = instance(tmp_path, {"targets": [{"target": "/", "mkdirs": ["afile/sub"]}]})
    write(inst / "image/afile", b"in the way")
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 252  # -4
    assert log_messages(r.stderr) == ["mkdir image/afile/sub fails. Not a directory (os error 20)"]
    inst = instance(tmp_path, {"targets": [{"target": "/", "createlinks": [{"src": "x", "linkname": "no/l"}]}]})
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 251  # -5
    assert log_messages(r.stderr) == ["ln -s x image/no/l failed. No such file or directory (os error 2)"]
    # A directory copy that rsync fails exits with util.rs's CREATE_DIR_ERROR (-4), not COPY_DIR_ERROR (-6).
    inst = instance(tmp_path, {"targets": [{"target": "/", "copy": [{"dirs": ["../nodir"]}]}]})
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 252 and "link_stat" in r.stderr


def test_warns_when_root_is_not_empty(installs, tmp_path) -> None:
    inst = instance(tmp_path, {"targets": [{"target": "/", "mkdirs": ["bin"]}]})
    (inst / "image").mkdir()
    r = run(installs["0.31.0"], inst)
    assert (r.returncode, r.stdout) == (0, "")
    r = run(installs["0.31.0"], inst)
    assert (r.returncode, r.stdout) == (0, "WARNING: image is not an empty directory before running copy_bom.\n")
    r = run(installs["0.24.1"], inst)
    assert (r.returncode, r.stdout) == (0, "")  # the warning arrived in v0.29.1


# ------------------------------------------------------------- copying
def test_wildcards_are_literal_names(installs, tmp_path) -> None:
    write(tmp_path / "src/a.jar", b"a")
    inst = instance(tmp_path, {"targets": [{"target": "/", "copy": [{"from": "../src", "files": ["*.jar"]}]}]})
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 254 and 'link_stat "%s/../src/*.jar" failed' % inst in r.stderr
    write(tmp_path / "src/*.jar", b"star")
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 0 and sorted(p.name for p in (inst / "image").iterdir()) == ["*.jar"]


def test_dirs_are_copied_like_rsync_a(installs, tmp_path) -> None:
    tree = tmp_path / "src/tree"
    write(tree / "bin/tool", b"tool", 0o750)
    write(tree / "keep.txt", b"k")
    write(tree / "junk.tmp", b"j")
    write(tree / ".git/HEAD", b"ref")
    (tree / "empty").mkdir()
    (tree / "inside").symlink_to("bin/tool")
    (tree / "outside").symlink_to(str(tmp_path / "src/other.txt"))
    write(tmp_path / "src/other.txt", b"other")
    bom = {
        "excludes": [".git", "*.tmp"],
        "targets": [
            {"target": "/a", "copy": [{"from": "../src", "dirs": ["tree"]}]},
            {"target": "/b", "copy": [{"from": "../src", "dirs": ["tree/"]}]},
            {"target": "/c", "createlinks": [{"src": "../a/tree", "linkname": "t"}], "mkdirs": ["x/y"]},
        ],
    }
    inst = instance(tmp_path, bom)
    r = run(installs["0.31.0"], inst)
    assert r.returncode == 0, r.stderr
    image = inst / "image"
    for copied in (image / "a/tree", image / "b"):
        assert stat.S_IMODE((copied / "bin/tool").stat().st_mode) == 0o750
        assert os.readlink(copied / "inside") == "bin/tool"  # a link inside the tree is kept
        assert not (copied / "outside").is_symlink() and (copied / "outside").read_bytes() == b"other"
        assert (copied / "empty").is_dir() and (copied / "keep.txt").is_file()
        assert not (copied / ".git").exists() and not (copied / "junk.tmp").exists()
    assert os.readlink(image / "c/t") == "../a/tree" and (image / "c/x/y").is_dir()


def test_dry_run_and_log_level(installs, tmp_path) -> None:
    write(tmp_path / "src/f", b"f")
    bom = {"targets": [{"target": "/usr", "mkdirs": ["d"], "copy": [{"from": "../src", "files": ["f"]}]}]}
    inst = instance(tmp_path, bom)
    env = {"OCCLUM_LOG_LEVEL": "info"}
    r = run(installs["0.31.0"], inst, "--dry-run", env=env)
    assert r.returncode == 0 and not (inst / "image").exists()
    assert "INFO  copy_bom::util] mkdir -p image/usr/d" in r.stderr
    assert "INFO  copy_bom::util] rsync -aL ../src/f image/usr/f" in r.stderr
    inst = instance(tmp_path, {"targets": [{"target": "/", "copy": [{"files": ["../nope"]}]}]})
    r = run(installs["0.31.0"], inst, env={"OCCLUM_LOG_LEVEL": "off"})
    assert r.returncode == 254 and r.stderr == ""


def test_command_line(installs, tmp_path) -> None:
    tool = installs["0.31.0"]
    r = copy_bom(tool, tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith(
        "error: The following required arguments were not provided:\n    --file <bom-file>\n    --root <root-dir>\n"
    )
    inst = instance(tmp_path, {"includes": ["one.yaml", "two.yaml"]})
    r = copy_bom(tool, inst, "-f", "../app.copy_bom.yaml", "--root", "image", "-i", str(tmp_path))
    assert r.returncode == 1 and "error: Found argument '-i' which wasn't expected" in r.stderr
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a/one.yaml").write_text("targets:\n  - target: /one\n")
    (tmp_path / "b/two.yaml").write_text("targets:\n  - target: /two\n")
    # clap 2: one --include-dir takes every word up to the next option.
    r = copy_bom(tool, inst, "--include-dir", "../a", "../b", "-f", "../app.copy_bom.yaml", "--root", "image")
    assert r.returncode == 0, r.stderr
    assert (inst / "image/one").is_dir() and (inst / "image/two").is_dir()
    r = copy_bom(tool, tmp_path, "--help")
    assert r.returncode == 0 and "--include-dir <included-dirs>..." in r.stdout


# -------------------------------------------------------------- the reader
def _plain_python(double: ModuleType, node) -> Any:
    """A node as Python data: scalars keep their text, except the plain null, true, false and
    decimal integers that yaml.safe_dump writes (serde_yaml reads them so too)."""
    if node.kind == "seq":
        return [_plain_python(double, n) for n in node.value]
    if node.kind == "map":
        return {_plain_python(double, k): _plain_python(double, v) for k, v in node.value}
    kind, value = double.typed(node)
    if kind in ("unit", "bool") or (kind == "int" and re.fullmatch(r"-?(0|[1-9][0-9]*)", node.value)):
        return value
    return node.value


# YAML 1.1 line breaks: PyYAML writes them raw, yaml-rust (YAML 1.2) does not break lines on them.
_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x85\u2028\u2029"), max_size=24)
_KEY = st.text(st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"], blacklist_characters="\x85"), max_size=12)
_DATA = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEY, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None)
@given(_DATA)
def test_reader_reads_what_yaml_safe_dump_writes(double, data) -> None:
    text = dump(data)
    assert _plain_python(double, double.parse_yaml(text)) == data, text


@pytest.mark.parametrize(
    "value",
    ["01", "yes", "a: b #c", "x'y\"z", "~", "null", "true", " lead", "trail ", "é\n\nz", "tab\there", "\x07", "-"]
    + ["?x", ":x", "x:", "#x", "[x]", "{x}", "&x", "*x", "!x", "|x", ">x", "%x", "@x", "`x", "'", '"', "\\"]
    + ["0o17", "0x1F", "1.5e5", "../image/usr/lib/spring"]
    # longer than width=1000: PyYAML folds them over several lines (plain, single- and double-quoted)
    + [" ".join("w%d" % i for i in range(400)), "a: " + " ".join("q%d" % i for i in range(400))]
    + ["\t" + " ".join("d%d" % i for i in range(400)), "x" * 1500],
)
def test_reader_scalars_as_the_backend_writes_them(double, value) -> None:
    data = {"targets": [{"target": value, "copy": [{"from": value, "files": [{"name": value, "hash": value}]}]}]}
    text = dump(data)
    assert _plain_python(double, double.parse_yaml(text)) == data, text


OCCLUM_EXAMPLE = """\
# include other bom files
includes:\x20
  - base.yaml
  - java-11-alibaba-dragonwell.yaml
# This excludes will only take effect when copy directories. We will exclude files or dirs with following patterns.
excludes:
  - .git
  - .dockerignore
targets:\x20
  # one target represents operations at the same destination
  - target: /
    # make directory in dest: mkdir -p $target/dirname
    mkdirs:\x20
     - bin
     - proc
    # build a symlink: ln -s $src $target/linkname
    createlinks:
      - src: ../hello
        linkname: hello_softlink
    copy:\x20
      # from represents the prefix of copydirs and files(to copy)
      # If there's no copydirs or files, copy the *ENTIRE from directory* to target: cp -r $from/ $target
      - from: .
        # copy directory: cp -r $from/dirname $target
        dirs:
          - hello_c_demo
          - example_dirname
        # copy file: cp $from/filename $target
        files:\x20
          - Makefile
          - name: Cargo.toml
            hash: DA665E483C11922D07239B1A04BEE0F0C7C1AB6D60AF041DDA7CE56D07AF723E
            autodep: false
            rename: Cargo.toml.backup
  - target: /bin
    mkdirs:
      - python-occlum
      - python-occlum/bin
  - target: /etc
    copy:
      - dirs:
        # If there's a '/' as the postfix in directory name, copy the contents in\x20
        # directories, not including the directory itself.
        # cp -r /etc/opt/ /etc
        - /etc/opt/
"""  # v0.31.0:tools/copy_bom/example.yaml (trailing blanks included)

OCCLUM_JAVA_TEMPLATE = """\
targets:
  # copy jvm
  - target: /usr/lib/jvm
    copy:
      - dirs:
        - /opt/occlum/toolchains/jvm/java-11-alibaba-dragonwell
"""  # v0.31.0:etc/template/java-11-alibaba-dragonwell.yaml


@pytest.mark.parametrize("text", [OCCLUM_EXAMPLE, OCCLUM_JAVA_TEMPLATE, "---\nincludes: [a.yaml, 'b.yaml']\n..."])
def test_reader_reads_occlum_templates(double, text) -> None:
    loaded = yaml.safe_load(text)
    assert _plain_python(double, double.parse_yaml(text)) == loaded
    bom = double.parse_bom(text)
    assert (bom["includes"], bom["excludes"]) == (loaded.get("includes"), loaded.get("excludes"))
    assert [t["target"] for t in bom["targets"] or []] == [t["target"] for t in loaded.get("targets", [])]


def test_bom_fields_of_the_example(double) -> None:
    bom = double.parse_bom(OCCLUM_EXAMPLE)
    files = bom["targets"][0]["copy"][0]["files"]
    assert files[0] == "Makefile"
    assert files[1] == {
        "name": "Cargo.toml",
        "hash": "DA665E483C11922D07239B1A04BEE0F0C7C1AB6D60AF041DDA7CE56D07AF723E",
        "rename": "Cargo.toml.backup",
        "autodep": False,
    }
    assert bom["targets"][1] == {
        "target": "/bin",
        "mkdirs": ["python-occlum", "python-occlum/bin"],
        "createlinks": None,
        "copy": None,
    }


def test_shellexpand(double, monkeypatch) -> None:
    monkeypatch.setenv("A", "/a")
    monkeypatch.setenv("EMPTY", "")
    monkeypatch.delenv("UNSET", raising=False)
    cases = {
        "$A/x": "/a/x",
        "${A}x": "/ax",
        "${UNSET:-/d}/x": "/d/x",
        "${EMPTY:-/d}": "",
        "$$A": "$A",
        "a$": "a$",
        "${A": "${A",
        "$A.b": "/a.b",
    }
    for raw, expanded in cases.items():
        assert double.shellexpand_env(raw) == expanded, raw
    assert double.resolve_envs("${UNSET}/x and $A") == "${UNSET}/x and $A"  # a failed expansion keeps the text
