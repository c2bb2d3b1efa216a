from __future__ import annotations

import hashlib

import pytest
import yaml

from occlum.toolchain.copy_bom import SOURCE_ROOT, bom_data, render_copy_bom

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
