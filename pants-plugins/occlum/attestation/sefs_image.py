"""An Occlum image (SEFS, as `sefs-cli zip` writes it) read back into its files, checked as the
LibOS checks it when it mounts the image.

Format (occlum/sefs, `rcore-fs-sefs/src/structs.rs` and `lib.rs`; `sefs-cli/app/src/main.rs`):
`__ROOT/metadata` is a protected file of 128-byte blocks: block 0 the superblock (magic 0x2F8DBE2A),
block 1 + 1024*g group g's free map, and each used inode number's block that inode's 112-byte
record (size, type, mode, nlinks, blocks, uid, gid, three times, its file's name as 16 bytes, its
file's MAC). Each inode's content is the protected file `__ROOT/<name in hex>`. A directory's content
is 264-byte entries (inode number, a 256-byte NUL-terminated name, type), `.` and `..` first; its
`blocks` is the number of entries. The root directory is inode 2. The image's MAC, the one written
into `.Occlum_sys.json`, is the MAC of `metadata`; each inode's MAC is its own file's, which the
LibOS compares when it opens the inode (`check_integrity`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

from occlum.attestation.protected_file import ProtectedFile

SEFS_MAGIC = 0x2F8DBE2A
BLOCK = 128
INODE_RECORD = 112
ROOT_INODE = 2
DIRENT = 264
TYPE_FILE, TYPE_DIR, TYPE_SYMLINK = 1, 2, 3
KINDS = {TYPE_FILE: "file", TYPE_DIR: "dir", TYPE_SYMLINK: "symlink"}
MAX_DEPTH = 64  # the backend refuses image paths deeper than 16 components
MAX_ENTRIES = 1_000_000


class SefsError(Exception):
    """The image cannot be read back into files as the LibOS would; the message says where."""


@dataclass(frozen=True)
class Inode:
    number: int
    size: int
    kind: int
    mode: int
    entries: int  # a directory's number of entries
    file_name: str  # 32 hex digits: the protected file under __ROOT
    mac: bytes


@dataclass(frozen=True)
class ImageEntry:
    path: str  # "/opt/app/big.bin"
    kind: str  # "file", "dir" or "symlink"
    mode: int
    sha256: Optional[str] = None  # files
    target: Optional[str] = None  # symlinks
    file_name: str = ""  # the protected file under __ROOT that holds it


def inode(metadata: bytes, number: int) -> Inode:
    """The record of inode `number` in the plaintext of `metadata`."""
    start = number * BLOCK
    record = metadata[start : start + INODE_RECORD]
    if number < ROOT_INODE or len(record) < INODE_RECORD:
        raise SefsError(f"inode {number} is not in the image's metadata ({len(metadata)} bytes)")
    size, kind, mode, _nlinks, blocks = struct.unpack_from("<QIHHI", record, 0)
    return Inode(number, size, kind, mode & 0o7777, blocks, record[80:96].hex(), record[96:112])


def check_superblock(metadata: bytes) -> None:
    if len(metadata) < 16 or struct.unpack_from("<I", metadata, 0)[0] != SEFS_MAGIC:
        raise SefsError("its metadata does not start with the SEFS superblock (magic 0x2F8DBE2A)")


def _content(files: dict[str, ProtectedFile], node: Inode, where: str) -> ProtectedFile:
    f = files.get(node.file_name)
    if f is None:
        raise SefsError(f"{where}: its file __ROOT/{node.file_name} is missing")
    if not f.integrity_only:
        raise SefsError(f"{where}: its file __ROOT/{node.file_name} is not integrity-only")
    if f.mac != node.mac:
        raise SefsError(f"{where}: the MAC of __ROOT/{node.file_name} is not the one its inode records")
    if f.name != node.file_name:
        raise SefsError(f"{where}: __ROOT/{node.file_name} was stored under another name ({f.name!r})")
    if node.kind != TYPE_DIR and f.size != node.size:
        raise SefsError(f"{where}: its inode says {node.size} bytes, its file holds {f.size}")
    return f


def _entries(data: bytes, count: int, where: str) -> list[tuple[int, str, int]]:
    if count < 2 or len(data) < count * DIRENT:
        raise SefsError(f"{where}: its directory file holds fewer than the {count} entries its inode says")
    out = []
    for i in range(count):
        number, raw, kind = struct.unpack_from("<I256sI", data, i * DIRENT)
        name = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        out.append((number, name, kind))
    return out


@dataclass(frozen=True)
class Pending:
    """An entry found by walking the directories; a file's or symlink's content is checked later."""

    path: str
    node: Inode


MAX_SYMLINK_BYTES = 4096  # PATH_MAX


def walk_directories(metadata: bytes, dirs: dict[str, ProtectedFile]) -> list[Pending]:
    """Every entry of the image, walked from the root as the LibOS would, reading only directories.
    `dirs` maps names under `__ROOT` to what was read of them (directories' data kept)."""
    check_superblock(metadata)
    out: list[Pending] = []
    seen_dirs: set[int] = set()

    def walk(number: int, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise SefsError(f"{path}: the image nests more than {MAX_DEPTH} directories deep")
        if number in seen_dirs:
            raise SefsError(f"{path or '/'}: directory inode {number} appears twice: the tree has a cycle")
        seen_dirs.add(number)
        node = inode(metadata, number)
        if node.kind != TYPE_DIR:
            raise SefsError(f"{path or '/'}: inode {number} is not a directory")
        content = _content(dirs, node, path or "/")
        if content.data is None:
            raise SefsError(f"{path or '/'}: its directory file was not read")
        entries = _entries(content.data, node.entries, path or "/")
        if entries[0][0] != number:
            raise SefsError(f"{path or '/'}: its `.` entry is not itself")
        names: set[str] = set()
        for child_number, name, entry_kind in entries[2:]:
            if not name or "/" in name or name in (".", ".."):
                raise SefsError(f"{path or '/'}: an entry is named {name!r}, which no file can be")
            if name in names:
                # The LibOS opens the first entry of a name; a second one could hide it from a reader.
                raise SefsError(f"{path or '/'}: two entries are named {name!r}")
            names.add(name)
            child_path = f"{path}/{name}"
            if len(out) >= MAX_ENTRIES:
                raise SefsError(f"the image has more than {MAX_ENTRIES} entries")
            child = inode(metadata, child_number)
            if entry_kind != child.kind:
                raise SefsError(f"{child_path}: its entry says type {entry_kind}, its inode {child.kind}")
            if child.kind not in KINDS:
                raise SefsError(f"{child_path}: inode {child_number} has type {child.kind}, not a file, dir or symlink")
            if child.kind == TYPE_SYMLINK and child.size > MAX_SYMLINK_BYTES:
                raise SefsError(f"{child_path}: a symlink of {child.size} bytes, longer than any path")
            out.append(Pending(child_path, child))
            if child.kind == TYPE_DIR:
                walk(child_number, child_path, depth + 1)

    walk(ROOT_INODE, "", 0)
    return out


def check_contents(pending: list[Pending], files: dict[str, ProtectedFile]) -> list[ImageEntry]:
    """The entries with each file's and symlink's content checked against its inode (symlinks' data kept)."""
    out = []
    for p in pending:
        node, mode = p.node, p.node.mode & 0o777
        if node.kind == TYPE_DIR:
            out.append(ImageEntry(p.path, "dir", mode, file_name=node.file_name))
            continue
        f = _content(files, node, p.path)
        if node.kind == TYPE_FILE:
            out.append(ImageEntry(p.path, "file", mode, f.sha256, file_name=node.file_name))
        else:
            if f.data is None:
                raise SefsError(f"{p.path}: its symlink file was not read")
            target = f.data.decode("utf-8", "surrogateescape")
            out.append(ImageEntry(p.path, "symlink", mode, None, target, node.file_name))
    return out


def read_image(metadata: bytes, files: dict[str, ProtectedFile]) -> list[ImageEntry]:
    """walk_directories then check_contents, when every file was read in one go (tests, small images)."""
    return check_contents(walk_directories(metadata, files), files)


def kinds_by_file(metadata: bytes) -> dict[str, int]:
    """Every inode's file name under __ROOT and its type, from the metadata alone (so that a second
    scan of the package knows which files' data to keep)."""
    check_superblock(metadata)
    out: dict[str, int] = {}
    for number in range(ROOT_INODE, len(metadata) // BLOCK + 1):
        if number % 1024 == 1:
            continue  # a group's free map
        try:
            node = inode(metadata, number)
        except SefsError:
            break
        if node.kind in KINDS:
            out[node.file_name] = node.kind
    return out
