"""The backend's package writer ships what `occlum package` ships, in one reproducible pass.

The reference is the Occlum test double's `occlum package`, which names the files `cmd_package` in
`tools/occlum` names at each release tag (occlum/occlum, read for 0.20.0 to 0.31.0): the same
members (names, types, link targets, bytes) must come out of both, for every boundary where that
list changes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from occlum.toolchain import package_tool
from occlum.toolchain.package_tool import ParallelGzip, SegmentCache, package_members, write_package
from occlum_double.make_install import make_fake_occlum_install

TOOL = Path(package_tool.__file__)
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C"}


def _occlum(install: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(install / "build/bin/occlum"), *args], cwd=cwd, env=ENV, capture_output=True, text=True)


def _built(tmp_path: Path, release: str, mode: str, debuggable: bool = False) -> tuple[Path, Path]:
    install = make_fake_occlum_install(tmp_path / "opt", release)
    r = _occlum(install, tmp_path, "new", "occlum_instance")
    assert r.returncode == 0, r.stdout + r.stderr
    inst = tmp_path / "occlum_instance"
    config = json.loads((inst / "Occlum.json").read_text())
    config["metadata"]["debuggable"] = debuggable
    (inst / "Occlum.json").write_text(json.dumps(config))
    (inst / "image/bin/app").write_bytes(b"\x7fELF app " * 1000)
    r = _occlum(install, inst, "build", "--sgx-mode", mode)
    assert r.returncode == 0, r.stdout + r.stderr
    return install, inst


def _members(path: Path) -> dict[str, tuple]:
    with tarfile.open(path) as tf:
        return {
            m.name: (
                m.type,
                m.linkname,
                hashlib.sha256(tf.extractfile(m).read()).hexdigest() if m.isfile() else None,  # type: ignore[union-attr]
            )
            for m in tf.getmembers()
        }


CASES = [
    ("0.20.0", "HW", False),  # no initfs, no top-folder rename
    ("0.22.0", "HW", False),  # initfs, and build/Occlum.json.protected beside .Occlum_sys.json.protected
    ("0.23.7", "SIM", True),  # --debug: the SIM LibOS and PAL are added
    ("0.24.0", "HW", False),  # the top folder is renamed to the package name
    ("0.29.4", "SIM", True),
    ("0.29.5", "SIM", True),  # only the SIM PAL is added
    ("0.29.6", "HW", False),  # build/Occlum.json.protected is gone
    ("0.31.0", "HW", False),
    ("0.31.0", "SIM", True),
]


@pytest.mark.parametrize("release, mode, debug", CASES, ids=[f"{r}-{m}" for r, m, _ in CASES])
def test_same_members_as_occlum_package(tmp_path: Path, release: str, mode: str, debug: bool) -> None:
    install, inst = _built(tmp_path, release, mode, debuggable=debug)
    r = _occlum(install, inst, "package", *(["--debug"] if debug else []), "app.tar.gz")
    assert r.returncode == 0, r.stdout + r.stderr
    write_package(str(inst), "app", release, debug, str(tmp_path / "ours.tar.gz"))
    theirs, ours = _members(inst / "app.tar.gz"), _members(tmp_path / "ours.tar.gz")
    assert ours == theirs
    top = "app" if release >= "0.24.0" else "occlum_instance"
    assert f"{top}/build/lib/libocclum-libos.signed.so" in ours
    assert (f"{top}/build/Occlum.json.protected" in ours) == (release < "0.29.6")
    assert not any(n.startswith(f"{top}/image") for n in ours)


def test_bytes_depend_only_on_the_contents(tmp_path: Path) -> None:
    _, inst = _built(tmp_path, "0.31.0", "HW")
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "1.tar.gz"), threads=1)
    # Same files, other mtimes, modes beyond rwx, and three threads instead of one.
    for p in inst.rglob("*"):
        if not p.is_symlink():
            os.utime(p, (1_800_000_000, 1_800_000_000))
            if p.is_file():
                p.chmod(0o664 if not os.access(p, os.X_OK) else 0o775)
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "2.tar.gz"), threads=3)
    assert (tmp_path / "1.tar.gz").read_bytes() == (tmp_path / "2.tar.gz").read_bytes()
    raw = (tmp_path / "1.tar.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0" and raw[3] == 0  # no gzip time stamp, no file name
    with tarfile.open(tmp_path / "1.tar.gz") as tf:
        infos = tf.getmembers()
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in infos)
    assert {oct(m.mode) for m in infos if m.isfile()} <= {"0o644", "0o755"}
    # A changed byte in one file changes the package.
    (inst / "Occlum.json").write_text((inst / "Occlum.json").read_text() + " ")
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "3.tar.gz"))
    assert (tmp_path / "3.tar.gz").read_bytes() != raw


@pytest.mark.parametrize("size", [0, 1, package_tool.BLOCK - 1, package_tool.BLOCK, 3 * package_tool.BLOCK + 7])
def test_parallel_gzip_is_one_standard_gzip_member(tmp_path: Path, size: int) -> None:
    data = (hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1))[:size]
    data = data[: size // 2] + bytes(size - size // 2)  # half noise, half zeros
    out = tmp_path / "x.gz"
    with open(out, "wb") as f:
        gz = ParallelGzip(f, threads=2)
        for i in range(0, size, 70_001):  # writes that do not line up with blocks
            gz.write(data[i : i + 70_001])
        gz.close()
    assert gzip.decompress(out.read_bytes()) == data
    d = zlib.decompressobj(wbits=31)
    assert d.decompress(out.read_bytes()) == data and d.eof and d.unused_data == b""  # one member
    subprocess.run(["gzip", "-t", str(out)], check=True)


def test_compression_costs_about_what_gzip_6_costs(tmp_path: Path) -> None:
    data = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest()[:8] + bytes(24) for i in range(200_000))
    out = tmp_path / "x.gz"
    with open(out, "wb") as f:
        gz = ParallelGzip(f, threads=2)
        gz.write(data)
        gz.close()
    # The sync flush per 1 MiB block and the primed dictionary keep the size within 1% of gzip -6.
    assert out.stat().st_size <= 1.01 * len(gzip.compress(data, 6))


def _big_files(inst: Path, seed: str) -> None:
    """Files over SEGMENT_MIN in the image's SEFS folder: segments of their own."""
    size = package_tool.SEGMENT_MIN + 12_345
    for i in range(3):
        noise = b"".join(hashlib.sha256(f"{seed}{i}-{j}".encode()).digest() for j in range(size // 64 + 1))
        (inst / f"build/mount/big{i}").write_bytes((noise[: size // 2] + bytes(size))[:size])


def test_kept_segments_give_the_same_bytes_and_only_changed_files_are_deflated(tmp_path: Path) -> None:
    _, inst = _built(tmp_path, "0.31.0", "HW")
    _big_files(inst, "a")
    plain = tmp_path / "plain.tar.gz"
    write_package(str(inst), "app", "0.31.0", False, str(plain), threads=2)
    (tmp_path / "cache").mkdir()
    cache = SegmentCache(str(tmp_path / "cache"))
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "cold.tar.gz"), threads=1, cache=cache)
    assert (cache.hits, cache.misses) == (0, 3)
    assert len(os.listdir(tmp_path / "cache")) == 3
    cache = SegmentCache(str(tmp_path / "cache"))
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "warm.tar.gz"), threads=3, cache=cache)
    assert (cache.hits, cache.misses) == (3, 0)
    assert plain.read_bytes() == (tmp_path / "cold.tar.gz").read_bytes() == (tmp_path / "warm.tar.gz").read_bytes()
    big1 = hashlib.sha256((inst / "build/mount/big1").read_bytes()).hexdigest()
    assert _members(plain)["app/build/mount/big1"][2] == big1
    # One file changes: one segment is deflated again, the package is what a cold run writes.
    (inst / "build/mount/big1").write_bytes(b"changed" + (inst / "build/mount/big1").read_bytes()[7:])
    cache = SegmentCache(str(tmp_path / "cache"))
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "edit.tar.gz"), threads=2, cache=cache)
    assert (cache.hits, cache.misses) == (2, 1)
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "edit-plain.tar.gz"), threads=2)
    assert (tmp_path / "edit.tar.gz").read_bytes() == (tmp_path / "edit-plain.tar.gz").read_bytes()
    subprocess.run(["gzip", "-t", str(tmp_path / "edit.tar.gz")], check=True)


def test_a_damaged_segment_is_not_used(tmp_path: Path) -> None:
    _, inst = _built(tmp_path, "0.31.0", "HW")
    _big_files(inst, "b")
    plain = tmp_path / "plain.tar.gz"
    write_package(str(inst), "app", "0.31.0", False, str(plain))
    (tmp_path / "cache").mkdir()
    first = SegmentCache(str(tmp_path / "cache"))
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "1.tar.gz"), cache=first)
    kept = sorted((tmp_path / "cache").iterdir())
    kept[0].write_bytes(kept[0].read_bytes()[:-100])  # truncated
    flipped = bytearray(kept[1].read_bytes())
    flipped[len(flipped) // 2] ^= 1  # one bit of the deflated bytes
    kept[1].write_bytes(bytes(flipped))
    kept[2].write_bytes(zlib.compress(b"other", 6)[2:-4])  # a deflate stream without the header
    cache = SegmentCache(str(tmp_path / "cache"))
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "2.tar.gz"), cache=cache)
    assert (cache.hits, cache.misses) == (0, 3)
    assert (tmp_path / "2.tar.gz").read_bytes() == plain.read_bytes()
    cache = SegmentCache(str(tmp_path / "cache"))  # the three were replaced by the right bytes
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "3.tar.gz"), cache=cache)
    assert (cache.hits, cache.misses) == (3, 0)
    assert (tmp_path / "3.tar.gz").read_bytes() == plain.read_bytes()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")]


def test_the_cache_folder_is_pruned_least_recently_used_first(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    for i in range(8):
        (folder / f"s{i}").write_bytes(bytes(1000))
        os.utime(folder / f"s{i}", (1_000_000 + i, 1_000_000 + i))
    SegmentCache(str(folder)).prune(limit=8000)  # at the limit: nothing goes
    assert len(list(folder.iterdir())) == 8
    SegmentCache(str(folder)).prune(limit=7000)  # over: down to 3/4 of it, oldest first
    assert sorted(p.name for p in folder.iterdir()) == [f"s{i}" for i in range(3, 8)]


def test_the_tool_uses_the_cache_folder_only_if_it_exists(tmp_path: Path) -> None:
    _, inst = _built(tmp_path, "0.31.0", "HW")
    _big_files(inst, "c")
    argv = [sys.executable, str(TOOL), "--release", "0.31.0", "--instance", "occlum_instance", "--name", "app"]
    r = subprocess.run([*argv, "--segment-cache", "nope"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "nope").exists()
    first = (tmp_path / "app.tar.gz").read_bytes()
    (tmp_path / "seg").mkdir()
    r = subprocess.run([*argv, "--segment-cache", "seg"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "seg").iterdir())) == 3
    assert (tmp_path / "app.tar.gz").read_bytes() == first


def test_incompressible_pieces_are_stored_and_the_rest_deflated(tmp_path: Path) -> None:
    noise = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(3 * package_tool.BLOCK // 32))
    text = b"".join(b"line %d of a very compressible file\n" % i for i in range(60_000))
    data = noise + text  # three blocks of noise, then text
    out = tmp_path / "x.gz"
    with open(out, "wb") as f:
        gz = ParallelGzip(f, threads=2)
        gz.write(data)
        gz.close()
    assert gzip.decompress(out.read_bytes()) == data
    # The noise costs its own size plus stored-block headers; the text is deflated as gzip -6 would.
    assert out.stat().st_size <= len(noise) * 1.001 + len(gzip.compress(text, 6)) * 1.05
    piece = package_tool.PIECE
    assert package_tool._stored(noise[:piece]) and not package_tool._stored(text[:piece])
    # Noise, then text, within one block: two runs, the noise stored, the text deflated.
    mixed = noise[: 3 * piece] + text[: package_tool.BLOCK - 3 * piece]
    assert package_tool._runs(mixed) == [(0, 3 * piece, 0), (3 * piece, len(mixed), package_tool.LEVEL)]
    assert zlib.decompressobj(-15).decompress(ParallelGzip._deflate(mixed, b"")) == mixed  # no final block yet


def test_a_block_deflated_throughout_is_one_stream_as_before(tmp_path: Path) -> None:
    text = b"".join(b"line %d of a very compressible file\n" % i for i in range(40_000))[: package_tool.BLOCK]
    zdict = b"some previous block's last bytes" * 100
    z = zlib.compressobj(package_tool.LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, zdict)
    assert ParallelGzip._deflate(text, zdict) == z.compress(text) + z.flush(zlib.Z_SYNC_FLUSH)


def test_a_missing_member_fails_like_occlum_package(tmp_path: Path) -> None:
    _, inst = _built(tmp_path, "0.31.0", "HW")
    (inst / "build/.Occlum_sys.json.protected").unlink()
    r = subprocess.run(
        [sys.executable, str(TOOL), "--release", "0.31.0", "--instance", str(inst), "--name", "app"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert r.stderr == (
        "error: `occlum package` of Occlum 0.31.0 would fail: "
        "build/.Occlum_sys.json.protected: Cannot stat: No such file or directory\n"
    )
    assert not (tmp_path / "app.tar.gz").exists()


def test_an_unmatched_glob_fails_like_bash_and_tar(tmp_path: Path) -> None:
    # 0.23.7-0.29.4 add the SIM LibOS for a non-HW debug package; an HW build has none.
    _, inst = _built(tmp_path, "0.29.4", "HW")
    (inst / ".sgx_mode").write_text("HYPER")
    with pytest.raises(package_tool.PackageError, match=r"libocclum-libos_sim\.so\*: Cannot stat"):
        write_package(str(inst), "app", "0.29.4", True, str(tmp_path / "x.tar.gz"))


def test_symlink_targets_are_renamed_like_tar_transform(tmp_path: Path) -> None:
    _, inst = _built(tmp_path, "0.31.0", "HW")
    (inst / "run/link").symlink_to("../occlum_instance/run/x")
    write_package(str(inst), "app", "0.31.0", False, str(tmp_path / "p.tar.gz"))
    with tarfile.open(tmp_path / "p.tar.gz") as tf:
        assert tf.getmember("app/run/link").linkname == "../app/run/x"


def test_members_per_release_follow_tools_occlum() -> None:
    assert package_members("0.20.0", "HW", False) == [
        "Occlum.json",
        "build/bin",
        "build/lib/libocclum-libos.signed.so",
        "build/lib/libocclum-pal.so*",
        "build/mount",
        "build/Occlum.json.protected",
        "run",
        ".__occlum_status",
        ".sgx_mode",
    ]
    assert package_members("0.31.0", "HYPER", False)[-1] == "build/lib/libocclum-pal_hyper.so*"
    assert package_members("0.29.4", "HYPER", False)[-1] == ".sgx_mode"  # HYPER adds nothing before 0.29.5
    with pytest.raises(package_tool.PackageError, match="--release"):
        package_members("0.31", "HW", False)
