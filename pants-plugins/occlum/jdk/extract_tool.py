#!/usr/bin/env python3
"""Safely unpack a JDK archive and check that it is a usable (musl) JDK for Occlum.

This file is copied into a Pants sandbox with sandbox_guard.py beside it and run with whatever
`python3` is there, so it must import only the standard library and run on CPython 3.9+.

    python3 extract_tool.py --archive ARCHIVE --out-dir jdk --info-out jdk-info.json \
        --expect-libc musl --label "//3rdparty/jdk:dragonwell (11.0.16.12.8)"

Every input costs bounded time, memory and disk: the bounds below are checked while the member
list is read, before anything is extracted (docs/security.md, "Bounds of the sandbox tools").

Exit codes: 0 ok; 2 archive or JDK refused (one `error: ` line on stderr);
3 unexpected internal or I/O failure (also one `error: ` line, never a traceback);
4 stopped because the Pants process that started it died (sandbox_guard).
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

if __name__ == "__main__":  # a script in the sandbox: the guard lies beside it (bundled_tools.py)
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [_HERE, os.path.join(os.path.dirname(_HERE), "toolchain")]  # 2nd: the source tree
    import sandbox_guard  # type: ignore[import-not-found,unused-ignore]
else:
    from occlum.toolchain import sandbox_guard

# A Dragonwell JDK unpacks to ~300 MB; 2 GiB leaves room for any real JDK and stops a bomb.
DEFAULT_MAX_BYTES = 2 * 1024**3
# Real JDK archives expand 2-3x; 200x is only reached by padding or a decompression bomb.
DEFAULT_MAX_RATIO = 200.0
# Below this many uncompressed bytes a high ratio cannot hurt anyone (and tiny archives
# full of tar padding compress absurdly well), so the ratio limit only applies above it.
RATIO_FLOOR_BYTES = 1024**2
_CHUNK = 1024**2
# A Dragonwell JDK has a few hundred members; 20,000 is far above any JDK and is listed in about 1 s.
MAX_MEMBERS = 20_000
# A JDK's longest member path is ~100 bytes; 1024 also bounds symlink targets (and Pants' dist/ paths).
MAX_PATH_BYTES = 1024
# Linux's NAME_MAX: no file system the image passes through takes a longer path component.
MAX_NAME_BYTES = 255
# A JDK's deepest members are ~6 levels deep (top folder included). The bound is the backend's
# image-path depth (occlum.image_paths.MAX_IMAGE_DEPTH, kept equal by a test): a deeper member could
# never fit under a `jdk_dir`, and ~34 levels crash Pants' engine when it copies the tree.
MAX_DEPTH = 16
# Path components visited while resolving ALL symlinks of the archive through each other. A JDK's
# few hundred links (legal/*/LICENSE -> ../java.base/LICENSE, ...) need ~1,000; nested links
# (`l2 -> l1/l1`, `l3 -> l2/l2`, ...) need 2^N, so only a symlink bomb reaches 100,000.
MAX_LINK_STEPS = 100_000
# Symlinks followed while resolving one link, as Linux's MAXSYMLINKS: more is a loop.
MAX_SYMLINK_HOPS = 40
# A pax or GNU long-name header holds a path and a few attributes (< 1 KiB in a JDK); tarfile reads
# one whole into memory, so a bigger one is refused before it is read.
MAX_EXT_HEADER_BYTES = 1024**2
# A name or link target quoted in a message is cut to this many characters: one message, one line.
MAX_SHOWN_CHARS = 200

EXIT_OK = 0
EXIT_REFUSED = 2
EXIT_INTERNAL = 3

# The exact PT_INTERP of each libc on x86-64. musl's is fixed by its install rules; glibc's is the
# x86-64 psABI's, used by every glibc distribution, and the only one an Occlum image provides
# (image/lib64/ld-linux-x86-64.so.2). Anything else, even `/x/ld-musl-x86_64.so.1`, is refused.
MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"
GLIBC_LOADER = "/lib64/ld-linux-x86-64.so.2"
_LOADERS = {"musl": MUSL_LOADER, "glibc": GLIBC_LOADER}

MUSL_HINT = "Occlum runs musl JDKs (Dragonwell publishes them as *_x64_alpine-linux.tar.gz)"
_NOT_GENUINE = "This is not a genuine JDK archive: re-download it from the vendor"
PACKED_BY_HAND = (
    "If you packed this JDK yourself, pack it with `python3 -m occlum.jdk.pack_jdk <JAVA_HOME> <out.tar.gz>`, "
    "which rewrites such links and prints the target that pins the result"
)


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


# --------------------------------------------------------------------------- messages


def _raw(value: str) -> bytes:
    """The bytes a name stands for (tarfile keeps undecodable bytes as surrogate escapes)."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def shown(value: str) -> str:
    """A name or link target quoted for a message: repr(), cut to MAX_SHOWN_CHARS characters."""
    if len(value) <= MAX_SHOWN_CHARS:
        return repr(value)
    return f"{value[:MAX_SHOWN_CHARS]!r}…({len(_raw(value))} bytes)"


def _reason(e: BaseException) -> str:
    """An exception as words for a one-line message: no class name, no newline, bounded length."""
    if isinstance(e, OSError) and e.strerror:
        text = e.strerror + (f" ({e.filename})" if e.filename else "")
    else:
        text = str(e) or "no details"
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"


# --------------------------------------------------------------------------- names


def _valid_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def split_member_name(name: str) -> list[str]:
    """Split an archive member name into path parts, refusing anything that could land outside
    the extraction directory, or that Occlum's tools cannot carry into the image."""
    q = shown(name)
    if "\x00" in name:
        raise JdkArchiveError(f"archive member {q} contains a NUL byte, which no file name can hold. {_NOT_GENUINE}")
    if "\\" in name:
        raise JdkArchiveError(
            f"archive member {q} contains a backslash; only plain POSIX paths "
            "are allowed. Repack the archive with ordinary file names"
        )
    if not _valid_utf8(name):
        raise JdkArchiveError(
            f"archive member {q} has a name that is not valid UTF-8; Pants and Occlum's image tools "
            "need UTF-8 names, and such a file would silently be left out of the image. Re-download "
            "the archive from the vendor, or re-pack it with UTF-8 file names"
        )
    if name.startswith("/"):
        raise JdkArchiveError(
            f"archive member {q} has an absolute path; only paths relative to the "
            "archive's single top folder are allowed. Repack it with relative paths "
            "(e.g. `tar czf jdk.tar.gz <dir>/`)"
        )
    size = len(_raw(name))
    if size > MAX_PATH_BYTES:
        raise JdkArchiveError(
            f"archive member {q} has a {size}-byte path, above the limit of {MAX_PATH_BYTES} bytes "
            "(a JDK's longest is about 100); re-download the archive from the vendor, or re-pack it "
            "with shorter paths"
        )
    # tar's own spelling of the archive root: "./" alone, or a leading "./" before every member.
    body = name[2:] if name.startswith("./") else name
    parts = [p for p in body.split("/") if p]  # "" from a folder's trailing "/" (or "a//b")
    if ".." in parts:
        raise JdkArchiveError(
            f"archive member {q} contains a `..` component; paths that climb out of "
            "the archive are not allowed. This is not a genuine JDK archive: re-download "
            "it from the vendor"
        )
    if "." in parts:
        raise JdkArchiveError(
            f"archive member {q} has a `.` component inside its path (only a leading `./` is allowed); "
            "`a/./b` is another spelling of `a/b`, which hides duplicates from review and from "
            "Occlum's copy_bom. Re-pack the archive with plain paths (e.g. `tar czf jdk.tar.gz <jdk-dir>/`)"
        )
    for part in parts:
        if len(_raw(part)) > MAX_NAME_BYTES:
            raise JdkArchiveError(
                f"archive member {q} has a {len(_raw(part))}-byte path component {shown(part)}, above "
                f"the limit of {MAX_NAME_BYTES} bytes (Linux's NAME_MAX). {_NOT_GENUINE}"
            )
    if len(parts) > MAX_DEPTH:
        raise JdkArchiveError(
            f"archive member {q} is nested {len(parts)} levels deep, above the limit of {MAX_DEPTH} "
            f"(a JDK's deepest members are about 6 levels deep, and Pants' engine crashes on paths "
            f"about 34 levels deep). {_NOT_GENUINE}"
        )
    if "$" in name:
        raise JdkArchiveError(
            f"archive member {q} has a `$` in its name; Occlum's copy_bom expands `$VAR` in every "
            "path, so such a file can never be copied into the image. A Dragonwell JDK has none: "
            "re-download the archive from the vendor, or re-pack it without that file"
        )
    return parts


class _LinkBudget:
    """Resolution steps left for all the archive's symlinks together (MAX_LINK_STEPS)."""

    def __init__(self, steps: int) -> None:
        self.total = steps
        self.left = steps


class _LinkBudgetExceeded(JdkArchiveError):
    pass


def resolve_link(
    link_parts: Sequence[str],
    target: str,
    links: dict[tuple[str, ...], str],
    budget: Optional[_LinkBudget] = None,
    deepest: Optional[int] = None,
) -> list[str]:
    """Resolve a symlink target against the archive tree, following other symlinks
    in the archive the way the kernel would. A purely lexical normpath is not enough:
    `a -> b/c/../..` with `b/c -> .` looks harmless lexically but escapes for real.

    Iterative, and every path component it visits costs one step of `budget`, so links
    nested into each other cost at most the budget, never 2^N."""
    if budget is None:
        budget = _LinkBudget(MAX_LINK_STEPS)
    if target.startswith("/"):
        raise JdkArchiveError(f"goes through the absolute target {shown(target)}")
    if deepest is None:  # no link lies deeper than this: skip the lookups below it
        deepest = max((len(k) for k in links), default=0)
    stack = list(link_parts[:-1])
    pending = target.split("/")[::-1]  # components still to visit, next one last
    hops = 0
    while pending:
        budget.left -= 1
        if budget.left < 0:
            raise _LinkBudgetExceeded(str(budget.total))
        comp = pending.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if not stack:
                raise JdkArchiveError("climbs outside the top folder")
            stack.pop()
            continue
        stack.append(comp)
        nested = links.get(tuple(stack)) if len(stack) <= deepest else None
        if nested is not None:
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise JdkArchiveError(
                    f"passes through more than {MAX_SYMLINK_HOPS} symlinks, where Linux gives up too "
                    "(a symlink loop, or links nested into each other)"
                )
            if nested.startswith("/"):
                raise JdkArchiveError(f"goes through the absolute target {shown(nested)}")
            stack.pop()
            pending.extend(nested.split("/")[::-1])
    return stack


# --------------------------------------------------------------------------- members


def _kind_error(m: Member) -> JdkArchiveError:
    q = shown(m.name)
    if m.kind == "hardlink":
        return JdkArchiveError(
            f"archive member {q} is a hard link (to {shown(m.linkname)}); hard links are refused outright "
            "because they can alias files outside the tree. Only regular files, directories and symlinks "
            "that stay inside the top folder are allowed. Repack the archive without "
            f"it (e.g. `tar --hard-dereference`). {PACKED_BY_HAND}"
        )
    if m.kind == "sparse":
        return _sparse_error(m.name)
    if m.kind in ("device", "fifo"):
        what = "a device node" if m.kind == "device" else "a FIFO"
        return JdkArchiveError(
            f"archive member {q} is {what}; devices and FIFOs have no place in a JDK archive, which holds "
            "only regular files, directories and symlinks. Re-download the archive from the vendor. "
            f"{PACKED_BY_HAND}"
        )
    return JdkArchiveError(
        f"archive member {q} is an unsupported entry type; only regular files, directories and symlinks "
        f"that stay inside the top folder are allowed. Re-download the archive from the vendor. {PACKED_BY_HAND}"
    )


def _sparse_error(name: str) -> JdkArchiveError:
    return JdkArchiveError(
        f"archive member {shown(name)} is a sparse file; JDK archives hold none. Re-download the "
        "archive from the vendor, or re-pack it without `--sparse`"
    )


def _link_target_problem(m: Member) -> str:
    """What is wrong with a symlink's target on its own, before resolving it ('' when nothing)."""
    target = m.linkname
    if not target:
        return "has an empty target"
    if "\x00" in target:
        return f"has a target with a NUL byte ({shown(target)})"
    if not _valid_utf8(target):
        return f"has a target that is not valid UTF-8 ({shown(target)})"
    if len(_raw(target)) > MAX_PATH_BYTES:
        return (
            f"has a {len(_raw(target))}-byte target {shown(target)}, above the limit of {MAX_PATH_BYTES} "
            "bytes (a JDK's are under 100)"
        )
    if target.startswith("/"):
        return f"has an absolute target {shown(target)}"
    return ""


def _symlink_error(m: Member, problem: str) -> JdkArchiveError:
    return JdkArchiveError(
        f"archive member {shown(m.name)} is a symlink that {problem}; only relative symlinks that "
        "resolve inside the top folder are allowed. A vendor's JDK archive holds none such: re-download "
        f"it from the vendor. {PACKED_BY_HAND}"
    )


def check_member(m: Member) -> list[str]:
    """The checks that need one member only; run as the member list is read. Returns its parts."""
    if m.kind not in ("file", "dir", "symlink"):
        # Name first when it is unprintable or huge, so the message can quote it safely.
        split_member_name(m.name)
        raise _kind_error(m)
    parts = split_member_name(m.name)
    if m.kind == "symlink":
        problem = _link_target_problem(m)
        if problem:
            raise _symlink_error(m, problem)
    return parts


def _too_many(count: Optional[int] = None) -> JdkArchiveError:
    """count None: the listing stopped at the first member over the limit."""
    has = f"{count} members" if count is not None else f"more than {MAX_MEMBERS} members"
    return JdkArchiveError(
        f"the archive has {has}, but at most {MAX_MEMBERS} are allowed (a Dragonwell JDK has a few "
        "hundred). This is not a JDK archive: check that the right file was pinned"
    )


def check_members(members: Sequence[Member], *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Validate every member before anything is written. Returns the top folder name."""
    if not members:
        raise JdkArchiveError(
            "the archive is empty; expected one top folder holding bin/java, lib/ and "
            "release. Check that the right file was pinned"
        )
    if len(members) > MAX_MEMBERS:
        raise _too_many(len(members))
    seen: dict[tuple[str, ...], Member] = {}
    for m in members:
        parts = tuple(check_member(m))
        if not parts:
            continue  # "./" itself: harmless, carries nothing
        if parts in seen:
            raise JdkArchiveError(
                f"archive member {shown(m.name)} appears more than once; duplicate names are not "
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
            f"{max_bytes} bytes; a JDK is well under 1 GiB, so this is not a JDK archive. Check the "
            "pinned file"
        )
    return top


def _single_top_folder(seen: dict[tuple[str, ...], Member]) -> str:
    tops = sorted({parts[0] for parts in seen})
    if len(tops) != 1:
        shown_tops = ", ".join(shown(t)[1:-1] for t in tops[:5]) + (", ..." if len(tops) > 5 else "")
        raise JdkArchiveError(
            f"the archive has {len(tops)} top-level entries ({shown_tops}) but must contain exactly one "
            "top folder (e.g. dragonwell-11.0.16.12+8-GA/) holding bin/java, lib/ and "
            "release. Repack it as `tar czf jdk.tar.gz <jdk-dir>/`"
        )
    top = tops[0]
    entry = seen.get((top,))
    if entry is not None and entry.kind != "dir":
        raise JdkArchiveError(
            f"the archive's only top-level entry {shown(entry.name)} is a {entry.kind}, not a folder; a JDK "
            "archive must hold one top folder with bin/java, lib/ and release inside"
        )
    if entry is not None and len(seen) == 1:
        raise JdkArchiveError(
            f"the archive's top folder {shown(top)} is empty; expected bin/java, lib/ and release inside it"
        )
    return top


def _check_parents(seen: dict[tuple[str, ...], Member]) -> None:
    # A member under a symlink or file would be written through that link: the
    # classic "lib -> /etc, then lib/passwd" escape. Depth <= MAX_DEPTH bounds the inner loop.
    for parts, m in seen.items():
        for i in range(1, len(parts)):
            parent = seen.get(parts[:i])
            if parent is not None and parent.kind != "dir":
                raise JdkArchiveError(
                    f"archive member {shown(m.name)} lies under {shown(parent.name)}, which is a {parent.kind} "
                    "and not a directory; writing through it is not allowed. Repack the archive "
                    "with real directories"
                )


def _check_symlinks(seen: dict[tuple[str, ...], Member]) -> None:
    # Resolve relative to the top folder: the link must stay inside it after extraction.
    links = {parts[1:]: m.linkname for parts, m in seen.items() if m.kind == "symlink"}
    budget = _LinkBudget(MAX_LINK_STEPS)
    deepest = max((len(k) for k in links), default=0)
    for parts, m in seen.items():
        if m.kind != "symlink":
            continue
        problem = _link_target_problem(m)
        if not problem:
            try:
                resolve_link(parts[1:], m.linkname, links, budget, deepest)
            except _LinkBudgetExceeded:
                raise JdkArchiveError(
                    f"archive member {shown(m.name)} is a symlink (to {shown(m.linkname)}) whose resolution used up "
                    f"the budget of {budget.total} path steps shared by all the archive's symlinks (a JDK's need "
                    f"about 1,000); only a symlink bomb needs that many. {_NOT_GENUINE}"
                ) from None
            except JdkArchiveError as e:
                problem = f"has the target {shown(m.linkname)}, which {e}"
        if problem:
            raise _symlink_error(m, problem)


# --------------------------------------------------------------------------- readers


def _corrupt(e: Union[BaseException, str]) -> JdkArchiveError:
    detail = e if isinstance(e, str) else _reason(e)
    return JdkArchiveError(f"the archive is truncated or corrupt: {detail}; re-download it and check its sha256")


# What damaged archive data raises while it is read. Other OSErrors are failures of this machine.
_CORRUPT_ERRORS = (EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile)

# tar header types whose payload tarfile reads whole into memory: GNU long name/link, pax
# extended and global headers, and Solaris' extended header (b"X").
_EXT_HEADER_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE, b"X")


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses, before tarfile reads them, the headers whose reading is unbounded:
    oversized pax / long-name headers, and the sparse maps of sparse members."""

    def _proc_member(self, tf):
        if self.type in _EXT_HEADER_TYPES and self.size > MAX_EXT_HEADER_BYTES:
            raise JdkArchiveError(
                f"the archive has an extended (pax or GNU long-name) header of {self.size} bytes at byte "
                f"{self.offset} of the tar stream, above the limit of {MAX_EXT_HEADER_BYTES} bytes; such a "
                f"header holds a path and a few attributes, well under 1 KiB in a JDK. {_NOT_GENUINE}"
            )
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _sparse_error(self.name)  # before tarfile walks its chain of sparse-map blocks
        return super()._proc_member(tf)  # type: ignore[misc]

    def _proc_gnusparse_10(self, next_member, pax_headers, tf):
        # GNU sparse 1.0 keeps its map in the data blocks; tarfile would read as many as it claims.
        raise _sparse_error(pax_headers.get("GNU.sparse.name") or next_member.name)


class _Reader:
    members: list[Member] = []
    stream_bytes = 0  # uncompressed tar stream length (tar) or sum of sizes (zip)

    def open(self, m: Member) -> IO[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _TarReader(_Reader):
    def __init__(
        self, path: str, gzipped: bool, max_bytes: int, max_ratio: float, tmp_dir: Optional[str] = None
    ) -> None:
        # Decompress once, fully, before anything is written: that verifies the gzip CRC/length
        # trailer (a truncated download fails here) and measures the real uncompressed size
        # without trusting any header. The plain tar goes to an unnamed temporary file (disk, not
        # memory), so listing and extraction never decompress again (gzip cannot seek backwards
        # cheaply) and memory stays flat whatever the archive holds.
        self._spool: Optional[IO[bytes]] = None
        if gzipped:
            self._spool, self.stream_bytes = _decompress(path, max_bytes, max_ratio, tmp_dir)
            source: dict[str, Any] = {"fileobj": self._spool}
        else:
            self.stream_bytes = os.path.getsize(path)
            source = {"name": path}
        try:
            self._tf = tarfile.open(
                mode="r:", tarinfo=_BoundedTarInfo, encoding="utf-8", errors="surrogateescape", **source
            )
            self.members = self._list()
        except _CORRUPT_ERRORS as e:
            self.close()
            raise _corrupt(e) from e
        except BaseException:
            self.close()
            raise

    def _list(self) -> list[Member]:
        """Read the member list one header at a time, refusing as early as possible."""
        members: list[Member] = []
        for ti in self._tf:  # reads one header per step (TarFile.getmembers() would read them all)
            sandbox_guard.check()
            if len(members) >= MAX_MEMBERS:
                raise _too_many()
            m = _member_from_tarinfo(ti)
            check_member(m)
            if m.kind == "file" and ti.offset_data + ti.size > self.stream_bytes:
                raise _corrupt(f"member {shown(ti.name)} ends past the end of the data")
            members.append(m)
        return members

    def open(self, m: Member) -> IO[bytes]:
        f = self._tf.extractfile(m.ref)
        if f is None:
            raise JdkArchiveError(f"archive member {shown(m.name)} has no data")
        return f

    def close(self) -> None:
        tf = getattr(self, "_tf", None)
        if tf is not None:
            tf.close()
        if self._spool is not None:
            self._spool.close()


def _decompress(path: str, max_bytes: int, max_ratio: float, tmp_dir: Optional[str]) -> tuple[IO[bytes], int]:
    compressed = os.path.getsize(path)
    spool = tempfile.TemporaryFile(dir=tmp_dir)
    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while True:
                sandbox_guard.check()
                try:
                    chunk = f.read(_CHUNK)
                except _CORRUPT_ERRORS as e:
                    raise _corrupt(e) from e
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise JdkArchiveError(
                        f"the archive decompresses to more than {max_bytes} bytes, the limit; "
                        "a JDK is well under 1 GiB, so this is not a JDK archive. Check the pinned file"
                    )
                check_ratio(total, compressed, max_ratio, partial=True)
                spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, total


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


_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record
_CD_HEADER_BYTES = 46


def _check_zip_member_count(path: str) -> None:
    """Count a zip's central directory records before zipfile builds a ZipInfo for each one.

    The count in the end record is the archive's own claim; zipfile reads the central directory by
    its size, so the records in it are counted too (stopping at MAX_MEMBERS + 1). A damaged layout
    is left for zipfile to report."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        tail_len = min(size, _EOCD.size + 0xFFFF)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _EOCD.size > len(tail):
            return
        eocd = size - tail_len + at
        fields = _EOCD.unpack(tail[at : at + _EOCD.size])
        claimed, cd_size, cd_end = fields[4], fields[5], eocd
        if eocd >= 76:
            f.seek(eocd - 76)
            rec = f.read(76)
            if rec[56:60] == b"PK\x06\x07" and rec[:4] == b"PK\x06\x06":  # zip64, as zipfile reads it
                fields64 = _EOCD64.unpack(rec[:56])
                claimed, cd_size, cd_end = fields64[7], fields64[8], eocd - 76
        if claimed > MAX_MEMBERS:
            raise _too_many(claimed)
        pos, count = cd_end - cd_size, 0
        if pos < 0:
            return
        while pos + _CD_HEADER_BYTES <= cd_end:
            f.seek(pos)
            head = f.read(_CD_HEADER_BYTES)
            if head[:4] != b"PK\x01\x02":
                return
            count += 1
            if count > MAX_MEMBERS:
                raise _too_many()
            if count % 1024 == 0:
                sandbox_guard.check()
            name_len, extra_len, comment_len = struct.unpack("<3H", head[28:34])
            pos += _CD_HEADER_BYTES + name_len + extra_len + comment_len


class _ZipReader(_Reader):
    def __init__(self, path: str) -> None:
        _check_zip_member_count(path)
        try:
            self._zf = zipfile.ZipFile(path)
        except UnicodeDecodeError:
            raise JdkArchiveError(
                "the archive has a member name marked as UTF-8 that is not valid UTF-8; Pants and "
                "Occlum's image tools need UTF-8 names. Re-download the archive from the vendor"
            ) from None
        except (*_CORRUPT_ERRORS, OSError) as e:  # zipfile seeks wherever the directory says
            raise _corrupt(e) from e
        try:
            members = []
            for zi in self._zf.infolist():
                sandbox_guard.check()
                m = self._member(zi)
                check_member(m)
                members.append(m)
            self.members = members
        except _CORRUPT_ERRORS as e:
            self._zf.close()
            raise _corrupt(e) from e
        except BaseException:
            self._zf.close()
            raise
        self.stream_bytes = sum(m.size for m in self.members)

    @staticmethod
    def _name(zi: zipfile.ZipInfo) -> str:
        # zipfile cuts names at a NUL and decodes names not flagged UTF-8 as cp437; Linux zips
        # hold raw (UTF-8) bytes there. Undecodable bytes stay as surrogates and are refused.
        name = zi.orig_filename
        if not zi.flag_bits & 0x800:
            try:
                name = name.encode("cp437").decode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                pass
        return name

    def _member(self, zi: zipfile.ZipInfo) -> Member:
        name = self._name(zi)
        if zi.flag_bits & 0x1:
            raise JdkArchiveError(
                f"archive member {shown(name)} is encrypted; encrypted zips are not supported. Pin the "
                "vendor's .tar.gz asset"
            )
        mode = zi.external_attr >> 16 if zi.create_system == 3 else 0
        fmt = stat.S_IFMT(mode)
        if name.endswith("/") or fmt == stat.S_IFDIR:
            return Member(name, "dir", 0, mode or 0o755, "", zi)
        if fmt == stat.S_IFLNK:
            if zi.file_size > MAX_PATH_BYTES:  # refused before its target is read
                problem = f"has a {zi.file_size}-byte target, above the limit of {MAX_PATH_BYTES} bytes"
                raise _symlink_error(Member(name, "symlink"), problem)
            target = self._zf.read(zi).decode("utf-8", "surrogateescape")
            return Member(name, "symlink", 0, mode, target, zi)
        if fmt in (stat.S_IFCHR, stat.S_IFBLK):
            return Member(name, "device", 0, mode, "", zi)
        if fmt in (stat.S_IFIFO, stat.S_IFSOCK):
            return Member(name, "fifo", 0, mode, "", zi)
        return Member(name, "file", zi.file_size, mode or 0o644, "", zi)

    def open(self, m: Member) -> IO[bytes]:
        return self._zf.open(m.ref)

    def close(self) -> None:
        self._zf.close()


def open_archive(
    path: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    tmp_dir: Optional[str] = None,
) -> _Reader:
    """Pick the reader by magic bytes, not by file name: Pants may rename downloads."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise JdkArchiveError(f"cannot read the archive {path!r}: {_reason(e)}") from e
    if head[:2] == b"\x1f\x8b":
        return _TarReader(path, True, max_bytes, max_ratio, tmp_dir)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _ZipReader(path)
    if head[257:262] == b"ustar":
        return _TarReader(path, False, max_bytes, max_ratio, tmp_dir)
    if not head:
        raise JdkArchiveError(f"the archive {path!r} is an empty file; re-download it")
    raise JdkArchiveError(
        f"the archive {path!r} is not a .tar.gz, .tgz, .tar or .zip file (first bytes {head[:8]!r}); "
        "pin the vendor's .tar.gz asset"
    )


def check_ratio(uncompressed: int, compressed: int, max_ratio: float, *, partial: bool = False) -> None:
    """partial: `uncompressed` is what came out so far (the archive is refused as soon as it is over)."""
    if uncompressed <= RATIO_FLOOR_BYTES or compressed <= 0:
        return
    ratio = uncompressed / compressed
    if ratio > max_ratio:
        more = "more than " if partial else ""
        raise JdkArchiveError(
            f"the archive expands {more}{ratio:.0f}x ({compressed} compressed bytes -> {more}{uncompressed} "
            f"uncompressed), above the allowed ratio of {max_ratio:g}; real JDK archives expand about 2-3x, "
            "so this looks like a decompression bomb. Check the pinned file"
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
        sandbox_guard.check()
        path = os.path.join(dest, *rel)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755)  # recursion depth <= MAX_DEPTH
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
        try:
            src = reader.open(m)
        except _CORRUPT_ERRORS as e:
            raise _corrupt(e) from e
        try:
            while True:
                sandbox_guard.check()
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
                        f"archive member {shown(m.name)} streams more data than its header declares "
                        f"({m.size} bytes) or than the total size limit allows; the archive is corrupt or "
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
    for i in range(e_phnum):  # at most 65535 headers of 56 bytes
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
    """musl or glibc only for EXACTLY that libc's loader path; static without one; else unknown."""
    if interp is None:
        return "static"
    for libc, loader in _LOADERS.items():
        if interp == loader:
            return libc
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
        raise JdkArchiveError(f"JAVA_VERSION={shown(version)} is not a Java version number")
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
        raise JdkArchiveError(f"{e} (JAVA_VERSION={shown(version)[1:-1]})") from e
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
        keys = ", ".join(sorted(release)) or "none"
        raise JdkArchiveError(
            f"the JDK's `release` file has no JAVA_VERSION line (keys found: {shown(keys)[1:-1]}); expected "
            'e.g. JAVA_VERSION="11.0.16". Check that the archive is an unmodified vendor '
            "JDK"
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
    pin = "pin an *_alpine-linux build" if expect == "musl" else "pin a glibc (*_x64_linux) build"
    if libc == "unknown":
        return (
            f"the JDK's bin/java asks for the loader {shown(interp or '')} (its PT_INTERP), which is not exactly "
            f"musl's {MUSL_LOADER} or glibc's {GLIBC_LOADER}; the target declares libc='{expect}', "
            f"whose loader is {_LOADERS[expect]}. {MUSL_HINT}; {pin}"
        )
    found = (
        "has no PT_INTERP (a static or unusual build)"
        if libc == "static"
        else f"is a {libc} build (PT_INTERP {interp})"
    )
    fix = f"set libc='{libc}' or {pin}" if libc in ("musl", "glibc") else pin
    return f"the JDK's bin/java {found} but the target declares libc='{expect}'. {MUSL_HINT}; {fix}"


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp_dir = os.path.dirname(os.path.abspath(args.out_dir))
    reader = open_archive(args.archive, args.max_bytes, args.max_ratio, tmp_dir)
    try:
        top = check_members(reader.members, max_bytes=args.max_bytes)
        check_ratio(reader.stream_bytes, os.path.getsize(args.archive), args.max_ratio)
        return _extract_and_validate(reader, top, args)
    finally:
        reader.close()


def _extract_and_validate(reader: _Reader, top: str, args: argparse.Namespace) -> dict[str, Any]:
    out_dir = os.path.abspath(args.out_dir)
    # A remote-execution worker may create a declared output directory before the step runs
    # (Buildbarn does): an empty folder is replaced whole by the closing rename.
    if os.path.lexists(out_dir) and (os.path.islink(out_dir) or not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise JdkArchiveError(f"the output directory {args.out_dir!r} already exists and is not empty; it must not")
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
        sys.stderr.write(
            f"error: {label}: failed to extract {args.archive!r}: {_reason(e)}. This is a failure of the "
            "build machine (disk space, permissions) or a bug in the plugin, not a problem of the archive\n"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sandbox_guard.start()
    sys.exit(main(sys.argv[1:]))
