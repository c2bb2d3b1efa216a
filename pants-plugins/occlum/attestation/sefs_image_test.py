"""SEFS images read back into files, as the LibOS mounts them; a broken or hostile tree is refused."""

from __future__ import annotations

import hashlib
import io
import os
import struct
from pathlib import Path

import pytest

from occlum.attestation.protected_file import ProtectedFile, read_protected
from occlum.attestation.sefs_image import BLOCK, SefsError, kinds_by_file, read_image
from occlum_double.double_sefs import protected_file, zip_image


def _tree(root: Path) -> Path:
    (root / "opt" / "app").mkdir(parents=True)
    (root / "opt" / "app" / "big.bin").write_bytes(b"x" * 10_000)
    (root / "opt" / "app" / "run.sh").write_text("#!/bin/sh\n")
    (root / "opt" / "app" / "run.sh").chmod(0o755)
    (root / "opt" / "app" / "link").symlink_to("big.bin")
    (root / "empty").mkdir()
    os.mkfifo(root / "fifo")  # not zipped, as sefs-cli skips it
    return root


def _read(image: Path) -> tuple[bytes, dict[str, ProtectedFile]]:
    metadata = read_protected(io.BytesIO((image / "metadata").read_bytes()), keep_up_to=1 << 30)
    files = {
        p.name: read_protected(io.BytesIO(p.read_bytes()), keep_up_to=1 << 30)
        for p in image.iterdir()
        if p.name != "metadata"
    }
    return metadata.data or b"", files


@pytest.fixture
def image(tmp_path: Path) -> Path:
    zip_image(str(_tree(tmp_path / "src")), str(tmp_path / "__ROOT"))
    return tmp_path / "__ROOT"


def test_the_image_reads_back_as_its_tree(image: Path) -> None:
    metadata, files = _read(image)
    entries = {e.path: e for e in read_image(metadata, files)}
    assert sorted(entries) == ["/empty", "/opt", "/opt/app", "/opt/app/big.bin", "/opt/app/link", "/opt/app/run.sh"]
    assert entries["/opt/app/big.bin"].sha256 == hashlib.sha256(b"x" * 10_000).hexdigest()
    assert (entries["/opt/app/link"].kind, entries["/opt/app/link"].target) == ("symlink", "big.bin")
    assert entries["/opt/app/run.sh"].mode == 0o755 and entries["/empty"].kind == "dir"
    assert kinds_by_file(metadata)[entries["/opt/app/link"].file_name] == 3


def _record_at(metadata: bytes, number: int) -> bytes:
    return metadata[number * BLOCK : number * BLOCK + 112]


def _patch(metadata: bytes, number: int, offset: int, value: bytes) -> bytes:
    at = number * BLOCK + offset
    return metadata[:at] + value + metadata[at + len(value) :]


def _dir_file(metadata: bytes, number: int) -> str:
    return _record_at(metadata, number)[80:96].hex()


def _rewrite_dir(files: dict[str, ProtectedFile], name: str, entries: list[tuple[int, bytes, int]]) -> bytes:
    body = b"".join(struct.pack("<I", i) + n.ljust(256, b"\0") + struct.pack("<I", k) for i, n, k in entries)
    blob, mac = protected_file(body, name)
    files[name] = read_protected(io.BytesIO(blob), keep_up_to=1 << 20)
    return mac


def test_a_file_whose_mac_is_not_its_inode_s_is_refused(image: Path) -> None:
    metadata, files = _read(image)
    victim = next(e for e in read_image(metadata, files) if e.path == "/opt/app/big.bin").file_name
    blob, _ = protected_file(b"owned", victim)
    files[victim] = read_protected(io.BytesIO(blob))
    with pytest.raises(SefsError, match="is not the one its inode records"):
        read_image(metadata, files)


def test_a_missing_inode_file_is_refused(image: Path) -> None:
    metadata, files = _read(image)
    victim = next(e for e in read_image(metadata, files) if e.path == "/opt/app/run.sh").file_name
    del files[victim]
    with pytest.raises(SefsError, match=f"/opt/app/run.sh: its file __ROOT/{victim} is missing"):
        read_image(metadata, files)


@pytest.mark.parametrize(
    "entries_of_root, words",
    [
        (lambda r: [(2, b".", 2), (2, b"..", 2), (2, b"loop", 2)], "appears twice: the tree has a cycle"),
        (lambda r: [(2, b".", 2), (2, b"..", 2), (3, b"a/b", 2)], "an entry is named 'a/b'"),
        (lambda r: [(2, b".", 2), (2, b"..", 2), (3, b"..", 2)], "an entry is named '..'"),
        (lambda r: [(9, b".", 2), (2, b"..", 2)], "its `.` entry is not itself"),
        (lambda r: [(2, b".", 2), (2, b"..", 2), (999_999, b"far", 1)], "inode 999999 is not in the image"),
        # The LibOS opens the first entry of a name: a second could hide behind it from a reader.
        (lambda r: [(2, b".", 2), (2, b"..", 2), (3, b"twice", 2), (3, b"twice", 2)], "two entries are named 'twice'"),
        (lambda r: [(2, b".", 2), (2, b"..", 2), (3, b"opt", 1)], "its entry says type 1, its inode 2"),
    ],
)
def test_a_hostile_directory_is_refused(image: Path, entries_of_root, words: str) -> None:
    metadata, files = _read(image)
    root_file = _dir_file(metadata, 2)
    entries = entries_of_root(None)
    mac = _rewrite_dir(files, root_file, entries)
    metadata = _patch(metadata, 2, 96, mac)  # the root's record names the new file's MAC
    metadata = _patch(metadata, 2, 16, struct.pack("<I", len(entries)))
    with pytest.raises(SefsError, match=words):
        read_image(metadata, files)


def test_depth_is_bounded(tmp_path: Path) -> None:
    deep = tmp_path / "src"
    path = deep
    for i in range(70):
        path = path / f"d{i}"
    path.mkdir(parents=True)
    zip_image(str(deep), str(tmp_path / "__ROOT"))
    metadata, files = _read(tmp_path / "__ROOT")
    with pytest.raises(SefsError, match="nests more than 64 directories deep"):
        read_image(metadata, files)


def test_not_a_sefs_metadata_file() -> None:
    with pytest.raises(SefsError, match="magic 0x2F8DBE2A"):
        read_image(bytes(256), {})


def test_a_directory_shorter_than_its_inode_says(image: Path) -> None:
    metadata, files = _read(image)
    metadata = _patch(metadata, 2, 16, struct.pack("<I", 10_000))
    with pytest.raises(SefsError, match="fewer than the 10000 entries"):
        read_image(metadata, files)
