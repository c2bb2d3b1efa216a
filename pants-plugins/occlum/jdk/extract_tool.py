#!/usr/bin/env python3
"""Safely unpack a JDK archive and check that it is a usable (musl) JDK for Occlum.

This file is copied on its own into a Pants sandbox and run with whatever `python3`
is there, so it must import only the standard library and run on CPython 3.7+.

    python3 extract_tool.py --archive ARCHIVE --out-dir jdk --info-out jdk-info.json \
        --expect-libc musl --label "//3rdparty/jdk:dragonwell (11.0.16.12.8)"

Exit codes: 0 ok; 2 archive or JDK refused (one `error: ` line on stderr);
3 unexpected internal or I/O failure (also one `error: ` line, never a traceback).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import shutil
import stat
import struct
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Optional, Union

DEFAULT_MAX_BYTES = 2 * 1024**3
DEFAULT_MAX_RATIO = 200.0
# Below this many uncompressed bytes a high ratio cannot hurt anyone (and tiny archives
# full of tar padding compress absurdly well), so the ratio limit only applies above it.
RATIO_FLOOR_BYTES = 1024**2
_CHUNK = 1024**2
_MAX_SYMLINK_HOPS = 40

EXIT_OK = 0
EXIT_REFUSED = 2
EXIT_INTERNAL = 3

MUSL_HINT = "Occlum runs musl JDKs (Dragonwell publishes them as *_x64_alpine-linux.tar.gz)"


class JdkArchiveError(Exception):
    """The archive or the JDK inside it is refused; the message is meant for users."""


@dataclass(frozen=True)
class Member:
    """One archive entry, reduced to what the safety checks need.

    kind is one of: file, dir, symlink, hardlink, device, fifo, sparse, other.
    """

    name: str
    kind: str
    size: int = 0
    mode: int = 0o644
    linkname: str = ""
    ref: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ElfInfo:
    elf_class: int  # 1 = 32-bit, 2 = 64-bit
    e_type: int
    e_machine: int
    interpreter: Optional[str]


# --------------------------------------------------------------------------- names


def split_member_name(name: str) -> list[str]:
    """Split an archive member name into path parts, refusing anything that could
    land outside the extraction directory."""
    if "\x00" in name or "\\" in name:
        raise JdkArchiveError(
            f"archive member {name!r} contains a NUL or backslash; only plain POSIX paths "
            "are allowed. Repack the archive with ordinary file names"
        )
    if name.startswith("/"):
        raise JdkArchiveError(
            f"archive member {name!r} has an absolute path; only paths relative to the "
            "archive's single top folder are allowed. Repack it with relative paths "
            "(e.g. `tar czf jdk.tar.gz <dir>/`)"
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise JdkArchiveError(
            f"archive member {name!r} contains a `..` component; paths that climb out of "
            "the archive are not allowed. This is not a genuine JDK archive: re-download "
            "it from the vendor"
        )
    return parts


def resolve_link(link_parts: Sequence[str], target: str, links: dict[tuple[str, ...], str]) -> list[str]:
    """Resolve a symlink target against the archive tree, following other symlinks
    in the archive the way the kernel would. A purely lexical normpath is not enough:
    `a -> b/c/../..` with `b/c -> .` looks harmless lexically but escapes for real."""

    def walk(stack: list[str], target: str, hops: int) -> list[str]:
        if target.startswith("/"):
            raise JdkArchiveError(f"goes through the absolute target {target!r}")
        for comp in target.split("/"):
            if comp in ("", "."):
                continue
            if comp == "..":
                if not stack:
                    raise JdkArchiveError("climbs outside the top folder")
                stack.pop()
                continue
            stack.append(comp)
            nested = links.get(tuple(stack))
            if nested is not None:
                if hops >= _MAX_SYMLINK_HOPS:
                    raise JdkArchiveError("is part of a symlink loop")
                stack.pop()
                stack = walk(stack, nested, hops + 1)
        return stack

    return walk(list(link_parts[:-1]), target, 0)


# --------------------------------------------------------------------------- members


_KIND_WORDS = {
    "hardlink": "a hard link",
    "device": "a device node",
    "fifo": "a FIFO",
    "sparse": "a sparse file",
    "other": "an unsupported entry type",
}


def check_members(members: Sequence[Member], *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Validate every member before anything is written. Returns the top folder name."""
    if not members:
        raise JdkArchiveError(
            "the archive is empty; expected one top folder holding bin/java, lib/ and "
            "release. Check that the right file was pinned"
        )
    seen: dict[tuple[str, ...], Member] = {}
    for m in members:
        _check_kind(m)
        parts = tuple(split_member_name(m.name))
        if not parts:
            continue  # "./" itself: harmless, carries nothing
        if parts in seen:
            raise JdkArchiveError(
                f"archive member {m.name!r} appears more than once; duplicate names are not "
                "allowed because a later copy could silently replace a checked one. "
                "Repack the archive without duplicates"
            )
        seen[parts] = m
    top = _single_top_folder(seen)
    _check_parents(seen)
    _check_symlinks(seen)
    total = sum(m.size for m in seen.values() if m.kind == "file")
    if total > max_bytes:
        raise JdkArchiveError(
            f"the archive's members add up to {total} bytes uncompressed, above the limit of "
            f"{max_bytes} bytes; a JDK is well under 1 GiB. Check the pinned file, or raise "
            "--max-bytes if it really is this big"
        )
    return top


def _check_kind(m: Member) -> None:
    if m.kind in ("file", "dir", "symlink"):
        return
    what = _KIND_WORDS.get(m.kind, "an unsupported entry type")
    extra = ""
    if m.kind == "hardlink":
        extra = f" (to {m.linkname!r}); hard links are refused outright because they can alias files outside the tree"
    raise JdkArchiveError(
        f"archive member {m.name!r} is {what}{extra}; only regular files, directories and symlinks "
        "that stay inside the top folder are allowed. Repack the archive without "
        "it (e.g. `tar --hard-dereference`)"
    )


def _single_top_folder(seen: dict[tuple[str, ...], Member]) -> str:
    tops = sorted({parts[0] for parts in seen})
    if len(tops) != 1:
        shown = ", ".join(tops[:5]) + (", ..." if len(tops) > 5 else "")
        raise JdkArchiveError(
            f"the archive has {len(tops)} top-level entries ({shown}) but must contain exactly one "
            "top folder (e.g. dragonwell-11.0.16.12+8-GA/) holding bin/java, lib/ and "
            "release. Repack it as `tar czf jdk.tar.gz <jdk-dir>/`"
        )
    top = tops[0]
    entry = seen.get((top,))
    if entry is not None and entry.kind != "dir":
        raise JdkArchiveError(
            f"the archive's only top-level entry {entry.name!r} is a {entry.kind}, not a folder; a JDK archive "
            "must hold one top folder with bin/java, lib/ and release inside"
        )
    if entry is not None and len(seen) == 1:
        raise JdkArchiveError(
            f"the archive's top folder {top!r} is empty; expected bin/java, lib/ and release inside it"
        )
    return top


def _check_parents(seen: dict[tuple[str, ...], Member]) -> None:
    # A member under a symlink or file would be written through that link: the
    # classic "lib -> /etc, then lib/passwd" escape.
    for parts, m in seen.items():
        for i in range(1, len(parts)):
            parent = seen.get(parts[:i])
            if parent is not None and parent.kind != "dir":
                raise JdkArchiveError(
                    f"archive member {m.name!r} lies under {parent.name!r}, which is a {parent.kind} and not a "
                    "directory; writing through it is not allowed. Repack the archive "
                    "with real directories"
                )


def _check_symlinks(seen: dict[tuple[str, ...], Member]) -> None:
    # Resolve relative to the top folder: the link must stay inside it after extraction.
    links = {parts[1:]: m.linkname for parts, m in seen.items() if m.kind == "symlink"}
    for parts, m in seen.items():
        if m.kind != "symlink":
            continue
        problem = ""
        if not m.linkname:
            problem = "has an empty target"
        elif m.linkname.startswith("/"):
            problem = f"has an absolute target {m.linkname!r}"
        else:
            try:
                resolve_link(parts[1:], m.linkname, links)
            except JdkArchiveError as e:
                problem = f"has the target {m.linkname!r}, which {e}"
        if problem:
            raise JdkArchiveError(
                f"archive member {m.name!r} is a symlink that {problem}; only relative symlinks that "
                "resolve inside the top folder are allowed. This is not a genuine JDK "
                "archive: re-download it from the vendor"
            )


# --------------------------------------------------------------------------- readers


def _corrupt(e: BaseException) -> JdkArchiveError:
    return JdkArchiveError(
        f"the archive is truncated or corrupt: {type(e).__name__}: {e}; re-download it and check its sha256"
    )


_CORRUPT_ERRORS = (EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile, OSError)


class _Reader:
    members: list[Member] = []
    stream_bytes = 0  # uncompressed tar stream length (tar) or sum of sizes (zip)

    def open(self, m: Member) -> IO[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _TarReader(_Reader):
    def __init__(self, path: str, gzipped: bool, max_bytes: int) -> None:
        # Decompress once, fully, before anything is written: that verifies the gzip CRC/length
        # trailer (a truncated download fails here) and measures the real uncompressed size
        # without trusting any header. The plain tar is then read from memory, so listing and
        # extraction never decompress again (gzip cannot seek backwards cheaply).
        if gzipped:
            data = _decompress(path, max_bytes)
            self.stream_bytes = len(data)
            source: dict[str, Any] = {"fileobj": io.BytesIO(data), "mode": "r:"}
        else:
            self.stream_bytes = os.path.getsize(path)
            source = {"name": path, "mode": "r:"}
        try:
            self._tf = tarfile.open(**source)
            infos = self._tf.getmembers()
        except _CORRUPT_ERRORS as e:
            raise _corrupt(e) from e
        for ti in infos:
            if ti.offset_data + ti.size > self.stream_bytes and ti.isreg():
                raise _corrupt(EOFError(f"member {ti.name!r} ends past the end of the data"))
        self.members = [_member_from_tarinfo(ti) for ti in infos]

    def open(self, m: Member) -> IO[bytes]:
        f = self._tf.extractfile(m.ref)
        if f is None:
            raise JdkArchiveError(f"archive member {m.name!r} has no data")
        return f

    def close(self) -> None:
        self._tf.close()


def _decompress(path: str, max_bytes: int) -> bytes:
    chunks = []
    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise JdkArchiveError(
                        f"the archive decompresses to more than {max_bytes} bytes (limit --max-bytes); "
                        "a JDK is well under 1 GiB. Check the pinned file, or raise "
                        "--max-bytes if it really is this big"
                    )
                chunks.append(chunk)
    except _CORRUPT_ERRORS as e:
        raise _corrupt(e) from e
    return b"".join(chunks)


def _member_from_tarinfo(ti: tarfile.TarInfo) -> Member:
    if ti.issparse():
        kind = "sparse"
    elif ti.isreg():
        kind = "file"
    elif ti.isdir():
        kind = "dir"
    elif ti.issym():
        kind = "symlink"
    elif ti.islnk():
        kind = "hardlink"
    elif ti.ischr() or ti.isblk():
        kind = "device"
    elif ti.isfifo():
        kind = "fifo"
    else:
        kind = "other"
    return Member(ti.name, kind, ti.size if kind == "file" else 0, ti.mode, ti.linkname, ti)


class _ZipReader(_Reader):
    def __init__(self, path: str) -> None:
        try:
            self._zf = zipfile.ZipFile(path)
            infos = self._zf.infolist()
            self.members = [self._member(zi) for zi in infos]
        except _CORRUPT_ERRORS as e:
            raise _corrupt(e) from e
        self.stream_bytes = sum(m.size for m in self.members)

    def _member(self, zi: zipfile.ZipInfo) -> Member:
        if zi.flag_bits & 0x1:
            raise JdkArchiveError(f"archive member {zi.filename!r} is encrypted; encrypted zips are not supported")
        mode = zi.external_attr >> 16 if zi.create_system == 3 else 0
        fmt = stat.S_IFMT(mode)
        if zi.filename.endswith("/") or fmt == stat.S_IFDIR:
            return Member(zi.filename, "dir", 0, mode or 0o755, "", zi)
        if fmt == stat.S_IFLNK:
            if zi.file_size > 4096:
                raise JdkArchiveError(f"archive member {zi.filename!r} is a symlink with a {zi.file_size}-byte target")
            target = self._zf.read(zi).decode("utf-8", "replace")
            return Member(zi.filename, "symlink", 0, mode, target, zi)
        if fmt in (stat.S_IFCHR, stat.S_IFBLK):
            return Member(zi.filename, "device", 0, mode, "", zi)
        if fmt in (stat.S_IFIFO, stat.S_IFSOCK):
            return Member(zi.filename, "fifo", 0, mode, "", zi)
        return Member(zi.filename, "file", zi.file_size, mode or 0o644, "", zi)

    def open(self, m: Member) -> IO[bytes]:
        return self._zf.open(m.ref)

    def close(self) -> None:
        self._zf.close()


def open_archive(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> _Reader:
    """Pick the reader by magic bytes, not by file name: Pants may rename downloads."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise JdkArchiveError(f"cannot read the archive {path!r}: {e}") from e
    if head[:2] == b"\x1f\x8b":
        return _TarReader(path, True, max_bytes)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _ZipReader(path)
    if head[257:262] == b"ustar":
        return _TarReader(path, False, max_bytes)
    if not head:
        raise JdkArchiveError(f"the archive {path!r} is an empty file; re-download it")
    raise JdkArchiveError(
        f"the archive {path!r} is not a .tar.gz, .tgz, .tar or .zip file (first bytes {head[:8]!r}); "
        "pin the vendor's .tar.gz asset"
    )


def check_ratio(uncompressed: int, compressed: int, max_ratio: float) -> None:
    if uncompressed <= RATIO_FLOOR_BYTES or compressed <= 0:
        return
    ratio = uncompressed / compressed
    if ratio > max_ratio:
        raise JdkArchiveError(
            f"the archive expands {ratio:.0f}x ({compressed} compressed bytes -> {uncompressed} uncompressed), above "
            f"the allowed ratio of {max_ratio:g}; real JDK archives expand about 2-3x, so this looks "
            "like a decompression bomb. Check the pinned file, or raise --max-ratio"
        )


# --------------------------------------------------------------------------- writing


def _normalized_mode(m: Member) -> int:
    return 0o755 if m.mode & 0o111 else 0o644


def extract_members(reader: _Reader, dest: str, max_bytes: int) -> tuple[int, int]:
    """Write the top folder's contents into the (fresh, empty) directory dest.
    Returns (regular files written, bytes written)."""
    entries: list[tuple[list[str], Member]] = []
    for m in reader.members:
        parts = split_member_name(m.name)
        if len(parts) > 1:
            entries.append((parts[1:], m))
    # Directories first, symlinks last: nothing is ever written through a link we made.
    order = {"dir": 0, "file": 1, "symlink": 2}
    entries.sort(key=lambda e: (order[e[1].kind], e[0]))
    files = written = 0
    for rel, m in entries:
        path = os.path.join(dest, *rel)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755)
        if m.kind == "dir":
            if not os.path.isdir(path):
                os.mkdir(path, 0o755)
            os.chmod(path, 0o755)
        elif m.kind == "file":
            written += _write_file(reader, m, path, max_bytes - written)
            files += 1
        else:
            os.symlink(m.linkname, path)
    # Parents implied by deeper members were made under the umask; normalize them too.
    for dirpath, _dirs, _files in os.walk(dest):
        os.chmod(dirpath, 0o755)
    return files, written


def _write_file(reader: _Reader, m: Member, path: str, budget: int) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    count = 0
    with os.fdopen(fd, "wb") as out:
        src = reader.open(m)
        try:
            while True:
                try:
                    chunk = src.read(_CHUNK)
                except _CORRUPT_ERRORS as e:
                    raise _corrupt(e) from e
                if not chunk:
                    break
                count += len(chunk)
                # Headers can lie (zip) or be bypassed; count what actually streams out.
                if count > m.size or count > budget:
                    raise JdkArchiveError(
                        f"archive member {m.name!r} streams more data than its header declares "
                        f"({m.size} bytes) or than --max-bytes allows; the archive is corrupt or "
                        "hostile. Re-download it"
                    )
                out.write(chunk)
        finally:
            src.close()
    os.chmod(path, _normalized_mode(m))
    return count


# --------------------------------------------------------------------------- JDK checks

_ET_NAMES = {1: "relocatable object", 2: "executable", 3: "shared object", 4: "core dump"}
PT_INTERP = 3
EM_X86_64 = 62


def read_elf(f: IO[bytes]) -> ElfInfo:
    """Parse an ELF header and its program headers from a seekable binary file."""
    f.seek(0)
    ident = f.read(64)
    if len(ident) < 16 or ident[:4] != b"\x7fELF":
        raise JdkArchiveError(f"it is not an ELF file (first bytes {ident[:4]!r})")
    elf_class, data = ident[4], ident[5]
    if elf_class != 2:
        raise JdkArchiveError(f"it is a 32-bit ELF file (EI_CLASS={elf_class}); a 64-bit build is needed")
    if data not in (1, 2) or len(ident) < 64:
        raise JdkArchiveError(f"its ELF header is malformed (EI_DATA={data}, {len(ident)} bytes)")
    end = "<" if data == 1 else ">"
    e_type, e_machine = struct.unpack(end + "HH", ident[16:20])
    (e_phoff,) = struct.unpack(end + "Q", ident[32:40])
    e_phentsize, e_phnum = struct.unpack(end + "HH", ident[54:58])
    interp = None
    if e_phnum and e_phentsize < 56:
        raise JdkArchiveError(f"its ELF program header size {e_phentsize} is malformed")
    for i in range(e_phnum):
        f.seek(e_phoff + i * e_phentsize)
        ph = f.read(56)
        if len(ph) < 56:
            raise JdkArchiveError("its ELF program headers are truncated")
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack(end + "IIQQQQ", ph[:40])
        if p_type == PT_INTERP:
            if p_filesz > 4096:
                raise JdkArchiveError(f"its PT_INTERP is implausibly long ({p_filesz} bytes)")
            f.seek(p_offset)
            raw = f.read(p_filesz)
            if len(raw) < p_filesz:
                raise JdkArchiveError("its PT_INTERP string is truncated")
            interp = raw.split(b"\x00", 1)[0].decode("utf-8", "replace")
    return ElfInfo(elf_class, e_type, e_machine, interp)


def read_elf_interpreter(data_or_path: Union[bytes, str, os.PathLike[str]]) -> Optional[str]:
    """PT_INTERP of an ELF64 file given as bytes or a path; None for static binaries."""
    if isinstance(data_or_path, (bytes, bytearray)):
        return read_elf(io.BytesIO(bytes(data_or_path))).interpreter
    with open(data_or_path, "rb") as f:
        return read_elf(f).interpreter


def libc_of_interpreter(interp: Optional[str]) -> str:
    if interp is None:
        return "static"
    if "ld-musl" in interp:
        return "musl"
    if "ld-linux" in interp:
        return "glibc"
    return "unknown"


_RELEASE_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$")


def parse_release(text: str) -> dict[str, str]:
    """Parse a JDK `release` file (KEY="value" lines; unquoted values tolerated)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        mt = _RELEASE_LINE.match(line)
        if not mt:
            continue
        value = mt.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[mt.group(1)] = value
    return out


def java_major(version: str) -> int:
    """Feature version: 11 for "11.0.16", 8 for "1.8.0_292", 17 for "17", 21 for "21-ea"."""
    mt = re.match(r"^\s*(\d+)(?:\.(\d+))?", version)
    if not mt:
        raise JdkArchiveError(f"JAVA_VERSION={version!r} is not a Java version number")
    first = int(mt.group(1))
    if first == 1 and mt.group(2) is not None:
        return int(mt.group(2))
    return first


def validate_jdk(root: str, expect_libc: str) -> dict[str, Any]:
    """Check an extracted JDK tree; returns the facts for the info JSON (minus counts)."""
    release = _read_release(root)
    version = release["JAVA_VERSION"]
    try:
        info = _validate_binaries(root, expect_libc)
        major = java_major(version)
    except JdkArchiveError as e:
        raise JdkArchiveError(f"{e} (JAVA_VERSION={version})") from e
    info.update(
        java_version=version,
        java_major=major,
        implementor=release.get("IMPLEMENTOR"),
        runtime_version=release.get("JAVA_RUNTIME_VERSION"),
    )
    return info


def _read_release(root: str) -> dict[str, str]:
    path = os.path.join(root, "release")
    if not os.path.isfile(path):
        raise JdkArchiveError(
            "the JDK has no `release` file at its top (found none at release); every JDK "
            "9+ image has one with JAVA_VERSION=... Check that the archive is a full JDK, "
            "not a partial or custom one"
        )
    with open(path, "rb") as f:
        release = parse_release(f.read(1024**2).decode("utf-8", "replace"))
    if not release.get("JAVA_VERSION"):
        raise JdkArchiveError(
            "the JDK's `release` file has no JAVA_VERSION line (keys found: {}); expected "
            'e.g. JAVA_VERSION="11.0.16". Check that the archive is an unmodified vendor '
            "JDK".format(", ".join(sorted(release)) or "none")
        )
    return release


def _validate_binaries(root: str, expect_libc: str) -> dict[str, Any]:
    java = os.path.join(root, "bin", "java")
    if not os.path.isfile(java):
        raise JdkArchiveError(
            "the JDK has no bin/java (a JDK/JRE archive must have bin/java directly under "
            "its top folder); check that the pinned file is a JDK and not e.g. a source "
            "or debug-symbols archive"
        )
    try:
        with open(java, "rb") as f:
            elf = read_elf(f)
    except JdkArchiveError as e:
        raise JdkArchiveError(f"the JDK's bin/java is not a usable executable: {e}; pin a Linux x64 JDK build") from e
    if elf.e_type not in (2, 3):
        raise JdkArchiveError(
            "the JDK's bin/java is an ELF {} (e_type {}), not an executable; pin a Linux x64 JDK build".format(
                _ET_NAMES.get(elf.e_type, "file"), elf.e_type
            )
        )
    if elf.e_machine != EM_X86_64:
        raise JdkArchiveError(
            f"the JDK's bin/java is built for ELF machine {elf.e_machine} but Occlum runs x86-64 only "
            "(e_machine 62); pin an *_x64_alpine-linux build"
        )
    if not os.stat(java).st_mode & 0o111:
        raise JdkArchiveError("the JDK's bin/java is not marked executable in the archive; repack it with mode 0755")
    libc = libc_of_interpreter(elf.interpreter)
    if libc != expect_libc:
        raise JdkArchiveError(_libc_mismatch(libc, elf.interpreter, expect_libc))
    if not os.path.isfile(os.path.join(root, "lib", "server", "libjvm.so")):
        raise JdkArchiveError(
            "the JDK has no lib/server/libjvm.so (the HotSpot server VM Occlum loads); "
            "pin a full JDK 11+ build (JDK 8 layouts with jre/lib/amd64/ are not supported)"
        )
    return {"libc": libc, "interpreter": elf.interpreter}


def _libc_mismatch(libc: str, interp: Optional[str], expect: str) -> str:
    found = {
        "static": "has no PT_INTERP (a static or unusual build)",
        "unknown": f"uses an unrecognised loader (PT_INTERP {interp})",
    }.get(libc, f"is a {libc} build (PT_INTERP {interp})")
    pin = "pin an *_alpine-linux build" if expect == "musl" else "pin a glibc (*_x64_linux) build"
    fix = f"set libc='{libc}' or {pin}" if libc in ("musl", "glibc") else pin
    return f"the JDK's bin/java {found} but the target declares libc='{expect}'. {MUSL_HINT}; {fix}"


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    reader = open_archive(args.archive, args.max_bytes)
    try:
        top = check_members(reader.members, max_bytes=args.max_bytes)
        check_ratio(reader.stream_bytes, os.path.getsize(args.archive), args.max_ratio)
        return _extract_and_validate(reader, top, args)
    finally:
        reader.close()


def _extract_and_validate(reader: _Reader, top: str, args: argparse.Namespace) -> dict[str, Any]:
    out_dir = os.path.abspath(args.out_dir)
    if os.path.lexists(out_dir):
        raise JdkArchiveError(f"the output directory {args.out_dir!r} already exists; it must not")
    # Same parent as the final dir so the closing rename is atomic; with the usual
    # relative --out-dir this is the sandbox cwd.
    tmp = tempfile.mkdtemp(prefix=".jdk-extract-", dir=os.path.dirname(out_dir))
    info_tmp = None
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        files, written = extract_members(reader, tmp, args.max_bytes)
        info = validate_jdk(tmp, args.expect_libc)
        info.update(top_folder=top, files=files, bytes=written)
        info_tmp = _write_json_tmp(info, args.info_out)
        os.rename(tmp, out_dir)
        os.replace(info_tmp, args.info_out)
        return info
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if info_tmp and os.path.exists(info_tmp):
            os.unlink(info_tmp)
        raise


def _write_json_tmp(info: dict[str, Any], info_out: str) -> str:
    fd, path = tempfile.mkstemp(prefix=".jdk-info-", dir=os.path.dirname(os.path.abspath(info_out)))
    with os.fdopen(fd, "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(path, 0o644)
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Safely extract and validate a JDK archive.")
    p.add_argument("--archive", required=True, help=".tar.gz/.tgz/.tar/.zip with one top folder")
    p.add_argument("--out-dir", required=True, help="must not exist; receives the top folder's contents")
    p.add_argument("--info-out", required=True, help="JSON file describing the JDK")
    p.add_argument("--expect-libc", required=True, choices=("musl", "glibc"))
    p.add_argument("--label", default="", help="target address and version, used in messages")
    p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    p.add_argument("--max-ratio", type=float, default=DEFAULT_MAX_RATIO)
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    label = args.label or os.path.basename(args.archive)
    try:
        run(args)
        return EXIT_OK
    except JdkArchiveError as e:
        sys.stderr.write(f"error: {label}: {e}\n")
        return EXIT_REFUSED
    except Exception as e:  # never a traceback: Pants shows stderr to the user verbatim
        sys.stderr.write(f"error: {label}: failed to extract {args.archive!r}: {type(e).__name__}: {e}\n")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
