"""Read an Occlum package (`occlum package`'s `.tar.gz`) as a verifier must: every header and member
bounded, each member's sha256, and what a reader given for a member makes of its bytes, streamed.
A verifier may scan the package more than once: the first scan tells what the next one must read.

What this reads must be what `tar -x` would write, or a check holds for other bytes than those that
run. So the package must be one gzip stream and nothing after it (gzip and tar read on into a second
stream); no member may lie below a symlink member (tar would write through the link) or replace a
directory; a member has at most one name-setting header (Python's tarfile and GNU tar disagree on
which of two wins); and no global pax header may set names.

A package is untrusted input. Python's tarfile reads a pax or GNU long-name header whole into
memory, so a 600 MB header in a 600 KB package would cost 600 MB; here such headers are refused
above MAX_HEADER_BYTES before they are read. A name that appears twice is refused too: `tar -x`
keeps the last copy, so a verifier that read the first would check other bytes than those that run.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Optional, cast

from occlum.attestation.untrusted import Unusable, open_regular

MAX_MEMBERS = 1_000_000
MAX_HEADER_BYTES = 1024 * 1024  # a pax header or GNU long name: a path of a few KB at most
MAX_TOTAL_BYTES = 16 * 1024**3  # what the members may add up to, decompressed
MAX_RATIO = 200  # decompressed / compressed, past the first 256 MiB: a JDK and jars compress 2-4 times
_EXTENDED = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


class _BoundedTarInfo(tarfile.TarInfo):
    def _proc_member(self, tf):
        if self.type in _EXTENDED:
            # tarfile reads these headers' bodies whole; refuse a huge one before it does.
            if self.size > MAX_HEADER_BYTES:
                kind = "long-name" if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) else "pax"
                raise Unusable(
                    f"a {kind} header of {self.size} bytes, more than the {MAX_HEADER_BYTES} a package's header may be"
                )
            if self.type == tarfile.XGLTYPE:
                raise Unusable("it has a global pax header; `occlum package` (GNU tar) writes none")
            # tarfile reads the next header from inside this one's handler; a second extended header
            # for the same member is where Python's tarfile and GNU tar pick different names.
            previous = getattr(tf, "_occlum_extended", None)
            if previous is not None and not {previous, self.type} == {
                tarfile.GNUTYPE_LONGNAME,
                tarfile.GNUTYPE_LONGLINK,
            }:
                raise Unusable("a member has two name-setting headers, which tar programs read differently")
            tf._occlum_extended = self.type
        else:
            tf._occlum_extended = None
        return super()._proc_member(tf)  # type: ignore[misc]


class _OneGzipStream:
    """The package's bytes, gunzipped as they are read: one gzip stream and nothing after it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw, self._inflate = raw, zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.file_sha256 = hashlib.sha256()  # of the package's own bytes, read once for both
        self._buffer, self._in, self._out, self._done = b"", 0, 0, False

    def read(self, n: int = -1) -> bytes:
        n = n if n >= 0 else 1 << 20
        while len(self._buffer) < n and not self._done:
            if self._inflate.eof:
                if self._inflate.unused_data or self._raw.read(1):
                    raise Unusable(
                        "it has bytes after its gzip stream (a second stream or trailing data), which gzip and "
                        "`tar -x` would read on into; `occlum package` writes one stream"
                    )
                self._done = True
                break
            src = self._inflate.unconsumed_tail or self._raw.read(1 << 16)
            if not src:
                raise Unusable("its gzip stream ends before its end marker: the file is truncated")
            if not self._inflate.unconsumed_tail:
                self._in += len(src)
                self.file_sha256.update(src)
            chunk = self._inflate.decompress(src, 1 << 20)
            self._out += len(chunk)
            if self._out > MAX_TOTAL_BYTES or (self._out > 1 << 28 and self._out > MAX_RATIO * self._in):
                raise Unusable(
                    f"it inflates to more than {min(self._out, MAX_TOTAL_BYTES)} bytes from {self._in}: not a package"
                )
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def finish(self) -> None:
        """After the archive's end: only zero padding may follow, up to the end of the stream."""
        while chunk := self.read(1 << 20):
            if chunk.strip(b"\0"):
                raise Unusable("it has data after the tar archive's end, which some tar programs read on into")


@dataclass(frozen=True)
class Member:
    kind: str  # "file", "dir", "symlink" or "other"
    size: int
    sha256: Optional[str]  # regular files only
    link: Optional[str] = None


@dataclass
class PackageContents:
    top: str  # the package's one top directory (the instance's name)
    sha256: str = ""  # of the package file itself
    members: dict[str, Member] = field(default_factory=dict)  # path below the top directory -> member
    read: dict[str, Any] = field(default_factory=dict)  # what the readers made of the members they read


# Given a member's path below the top directory, a function that reads it (None: only hash it).
Readers = Callable[[str], Optional[Callable[[IO[bytes]], Any]]]


class _Hashing:
    """A member's stream that hashes what is read through it, so a reader need not."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f, self.sha256, self.size = f, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        chunk = self._f.read(n if n >= 0 else 1 << 20)
        self.sha256.update(chunk)
        self.size += len(chunk)
        return chunk

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def read_bytes(limit: int) -> Callable[[IO[bytes]], bytes]:
    """A reader that keeps a member's bytes, at most `limit` of them."""

    def read(f: IO[bytes]) -> bytes:
        data = f.read(limit + 1)
        while len(data) <= limit and (more := f.read(limit + 1 - len(data))):
            data += more
        if len(data) > limit:
            raise Unusable(f"a member is larger than the {limit} bytes the verifier reads of it")
        return data

    return read


def _kind(m: tarfile.TarInfo) -> str:
    return "file" if m.isfile() else "dir" if m.isdir() else "symlink" if m.issym() else "other"


def _normal(name: str) -> str:
    parts = name.rstrip("/").split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise Unusable(f"member {name!r} is not a plain relative path; `occlum package` writes none such")
    return "/".join(parts)


def read_package(path: str, readers: Readers) -> PackageContents:
    """Every member of the package at `path`, hashed, and read by `readers(rest)` where one is given."""
    fd = open_regular(path, "the package")
    try:
        with open(fd, "rb", closefd=False) as raw:
            stream = _OneGzipStream(raw)
            with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|", tarinfo=_BoundedTarInfo) as tf:
                contents = _members(tf, readers)
            stream.finish()  # reads to the file's end: the hash below covers every byte
            contents.sha256 = stream.file_sha256.hexdigest()
            return contents
    except Unusable as e:
        raise Unusable(f"{path}: {e}") from None
    except (OSError, tarfile.TarError, EOFError, ValueError, UnicodeError, zlib.error) as e:
        raise Unusable(f"cannot read {path} as a .tar.gz: {e}") from None
    finally:
        os.close(fd)


def _members(tf: tarfile.TarFile, readers: Readers) -> PackageContents:
    out: Optional[PackageContents] = None
    total = 0
    symlinks: set[str] = set()
    directories: set[str] = set()  # every path that is, or is implied to be, a directory
    for count, m in enumerate(tf, start=1):
        if count > MAX_MEMBERS:
            raise Unusable(f"more than {MAX_MEMBERS} members; it is not an Occlum package")
        name = _normal(m.name)
        top, _, rest = name.partition("/")
        if out is None:
            out = PackageContents(top)
        elif top != out.top:
            raise Unusable(f"members under both {out.top}/ and {top}/; an Occlum package has one top directory")
        if rest in out.members or (not rest and count > 1):
            raise Unusable(f"member {name} appears twice; `tar -x` would keep the last copy")
        if not rest:
            if not m.isdir():
                raise Unusable(f"its top member {name} is not a directory")
            continue
        parents = ["/".join(rest.split("/")[:i]) for i in range(1, rest.count("/") + 1)]
        below = next((p for p in parents if p in symlinks), None)
        if below is not None:
            raise Unusable(
                f"member {name} lies below the symlink member {top}/{below}; `tar -x` would write through it"
            )
        if rest in directories and not m.isdir():
            raise Unusable(f"member {name} would replace a directory that earlier members are in")
        directories.update(parents)
        if m.isdir():
            directories.add(rest)
        if m.issym() or m.islnk():
            symlinks.add(rest)
        total += max(m.size, 0)
        if total > MAX_TOTAL_BYTES:
            raise Unusable(f"its members add up to more than {MAX_TOTAL_BYTES} bytes")
        kind = _kind(m)
        if kind == "file":
            f = tf.extractfile(m)
            assert f is not None  # a regular file always has a stream
            stream = _Hashing(f)
            reader = readers(rest)
            if reader is not None:
                try:
                    out.read[rest] = reader(stream)  # type: ignore[arg-type]
                except Unusable as e:
                    raise Unusable(f"member {name}: {e}") from None
            stream.drain()
            out.members[rest] = Member(kind, stream.size, stream.sha256.hexdigest())
        else:
            out.members[rest] = Member(kind, 0, None, m.linkname or None)
    if out is None:
        raise Unusable("it holds no members")
    return out
