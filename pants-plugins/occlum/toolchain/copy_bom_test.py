from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

from occlum.toolchain.copy_bom import SOURCE_ROOT, bom_data, render_copy_bom
from occlum_double.make_install import image_tree, make_fake_occlum_install, rebuild_with_copy_bom

JDK = "/usr/lib/jvm/java-11-alibaba-dragonwell/jre"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# An example staged image: the JDK, a symlink inside it, the jar, an extra file and an empty dir.
FILES = {
    f"{JDK}/bin/java": b"\x7fELF java",
    f"{JDK}/lib/server/libjvm.so": b"\x7fELF jvm",
    f"{JDK}/lib/server/libjsig.so": b"\x7fELF jsig",
    f"{JDK}/release": b'JAVA_VERSION="11.0.16"\n',
    "/usr/lib/spring/app.jar": b"PK jar",
    "/etc/app/application.yml": b"server.port: 8080\n",
    "/top.txt": b"at the root",
}
EXAMPLE = [(p, "file", _sha(d)) for p, d in FILES.items()] + [
    (f"{JDK}/lib/libjsig.so", "symlink", "server/libjsig.so"),
    ("/data", "dir", ""),
]


def _parsed(entries=EXAMPLE, **kw) -> dict:
    return yaml.safe_load(render_copy_bom(entries, **kw))


def _files_in(bom: dict) -> dict:
    """image path -> hash, and the `from` each file is copied from."""
    out = {}
    for t in bom["targets"]:
        for c in t.get("copy", []):
            for f in c["files"]:
                path = t["target"].rstrip("/") + "/" + f["name"]
                assert path not in out
                out[path] = (f["hash"], c["from"] + "/" + f["name"])
    return out


def test_every_file_appears_with_its_sha256_hash() -> None:
    files = _files_in(_parsed())
    assert set(files) == set(FILES)
    for path, data in FILES.items():
        sha, source = files[path]
        # Upper-case hex, as copy_bom compares it; a literal path relative to the instance.
        assert sha == hashlib.sha256(data).hexdigest().upper()
        assert source == f"{SOURCE_ROOT}{path}" and "$" not in source


def test_structure_follows_copy_bom_grammar() -> None:
    bom = _parsed()
    assert list(bom) == ["includes", "targets"]
    assert bom["includes"] == ["base.yaml"]
    allowed = {"target", "mkdirs", "createlinks", "copy"}
    for t in bom["targets"]:
        assert set(t) <= allowed
        assert t["target"].startswith("/")
        for c in t.get("copy", []):
            assert set(c) == {"from", "files"}
            for f in c["files"]:
                assert set(f) == {"name", "hash"} and "/" not in f["name"]
    # Directories first, from the root, including every parent and the empty /data.
    first = bom["targets"][0]
    assert first["target"] == "/"
    assert {"data", "etc/app", "usr/lib/spring", JDK.lstrip("/") + "/lib/server", "usr"} <= set(first["mkdirs"])
    # Targets sorted and unique.
    assert first["copy"][0]["files"][0]["name"] == "top.txt"  # root files join the "/" target
    names = [t["target"] for t in bom["targets"]]
    assert names == sorted(names) and len(set(names)) == len(names)


def test_symlinks_become_createlinks_in_their_directory() -> None:
    bom = _parsed()
    (lib,) = [t for t in bom["targets"] if t["target"] == f"{JDK}/lib"]
    assert lib["createlinks"] == [{"src": "server/libjsig.so", "linkname": "libjsig.so"}]
    assert "copy" not in lib


def test_output_is_deterministic_and_order_independent() -> None:
    assert render_copy_bom(EXAMPLE) == render_copy_bom(list(reversed(EXAMPLE)))
    # Paths may be given without the leading "/"; lower-case hex is normalised to upper case.
    relative = [(p.lstrip("/"), k, v.lower() if k == "file" else v) for p, k, v in EXAMPLE]
    assert render_copy_bom(relative) == render_copy_bom(EXAMPLE)


def test_header_says_how_to_rebuild() -> None:
    text = render_copy_bom(EXAMPLE)
    assert text.startswith("# Occlum copy_bom file")
    assert "copy_bom -f ../" in text and "--root image" in text and "occlum new occlum_instance" in text


def test_options() -> None:
    bom = bom_data(EXAMPLE, includes=(), source_root="/srv/staged/image/")
    assert "includes" not in bom
    files = _files_in(bom)
    assert files["/usr/lib/spring/app.jar"][1] == "/srv/staged/image/usr/lib/spring/app.jar"
    assert files["/top.txt"][1] == "/srv/staged/image/top.txt"


def test_odd_names_survive_yaml() -> None:
    sha = _sha(b"x")
    entries = [("/etc/app/yes", "file", sha), ("/etc/app/a: b #c", "file", sha), ("/etc/app/01", "file", sha)]
    names = {f["name"] for t in _parsed(entries)["targets"] for c in t.get("copy", []) for f in c["files"]}
    assert names == {"yes", "a: b #c", "01"}


@pytest.mark.parametrize(
    "entries, message",
    [
        ([("/a", "fifo", "")], "kind must be one of"),
        ([("/a", "file", "abc")], "sha256 as 64 hex digits"),
        ([("/a", "symlink", "")], "needs its target"),
        ([("/a/../b", "file", "0" * 64)], "must be normalized"),
        ([("/", "dir", "")], "empty image path"),
        ([("/a", "file", "0" * 64), ("a", "file", "1" * 64)], "listed twice"),
        ([("/$HOME", "file", "0" * 64)], "contains '$'"),
    ],
)
def test_bad_entries_are_refused(entries, message) -> None:
    with pytest.raises(ValueError, match=message.replace("$", r"\$")):
        render_copy_bom(entries)


def test_empty_image() -> None:
    assert _parsed([]) == {"includes": ["base.yaml"], "targets": []}


# --- the bom the backend writes, run the way its header says, with the test double of copy_bom ---


def _entries(root: Path) -> list[tuple[str, str, str]]:
    return [(path, kind, value or "") for path, (kind, _mode, value) in image_tree(root).items()]


def test_copy_bom_rebuilds_the_staged_image_exactly(tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    image = staged / "image"
    jre = image / "usr/lib/jvm/java-11-alibaba-dragonwell/jre"
    (jre / "bin").mkdir(parents=True)
    (jre / "lib/server").mkdir(parents=True)
    (jre / "bin/java").write_bytes(b"\x7fELF java")
    (jre / "bin/java").chmod(0o755)
    (jre / "lib/server/libjvm.so").write_bytes(b"\x7fELF jvm")
    (jre / "lib/libjsig.so").symlink_to("server/libjsig.so")
    (jre / "release").write_text('JAVA_VERSION="11.0.16"\n')
    (image / "usr/lib/spring").mkdir(parents=True)
    (image / "usr/lib/spring/app.jar").write_bytes(b"PK jar")
    # Names YAML readers disagree on (numbers, octal, booleans, colons) and an empty folder.
    (image / "etc/app").mkdir(parents=True)
    for name in ("1e5", "0o17", "yes", "01", "a: b #c", "with space"):
        (image / "etc/app" / name).write_text(name)
    (image / "data").mkdir()
    before = image_tree(image)
    (staged / "enclave.copy_bom.yaml").write_text(render_copy_bom(_entries(image)))

    install = make_fake_occlum_install(tmp_path / "opt", "0.31.0")
    run, rebuilt = rebuild_with_copy_bom(staged, "enclave.copy_bom.yaml", install)
    assert run.returncode == 0, run.stdout + run.stderr
    after = image_tree(rebuilt)
    assert {p: after.get(p) for p in before} == before
    # Anything more is what Occlum's own base.yaml makes: empty root folders.
    extra = set(after) - set(before)
    assert extra and all(after[p][0] == "dir" and p.count("/") == 1 for p in extra), sorted(extra)


def test_the_real_copy_bom_refuses_a_lower_case_hash(tmp_path: Path) -> None:
    # What the backend used to write: lower-case hex. The double, like copy_bom, compares upper case.
    (tmp_path / "image").mkdir()
    (tmp_path / "image/a.txt").write_text("a")
    bom = render_copy_bom([("/a.txt", "file", hashlib.sha256(b"a").hexdigest())]).replace(
        hashlib.sha256(b"a").hexdigest().upper(), hashlib.sha256(b"a").hexdigest()
    )
    (tmp_path / "x.yaml").write_text(bom)
    install = make_fake_occlum_install(tmp_path / "opt", "0.31.0")
    (tmp_path / "inst").mkdir()
    run = subprocess.run(
        [
            str(install / "build/bin/copy_bom"),
            "-f",
            "../x.yaml",
            "--root",
            "image",
            "--include-dir",
            str(install / "etc/template"),
        ],
        cwd=tmp_path / "inst",
        capture_output=True,
        text=True,
    )
    assert run.returncode == 249 and "Please correct it." in run.stdout + run.stderr
