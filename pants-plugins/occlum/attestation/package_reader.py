"""Read an Occlum package (`occlum package`'s `.tar.gz`) as a verifier must: every header and member
bounded, each member's sha256, and what a reader given for a member makes of its bytes, streamed.
A verifier may scan the package more than once: the first scan tells what the next one must read.

A package is untrusted input. Python's tarfile reads a pax or GNU long-name header whole into
memory, so a 600 MB header in a 600 KB package would cost 600 MB; here such headers are refused
above MAX_HEADER_BYTES before they are read. A name that appears twice is refused too: `tar -x`
keeps the last copy, so a verifier that read the first would check other bytes than those that run.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Optional

from occlum.attestation.untrusted import Unusable, open_regular

MAX_MEMBERS = 1_000_000
MAX_HEADER_BYTES = 1024 * 1024  # a pax header or GNU long name: a path of a few KB at most
MAX_TOTAL_BYTES = 16 * 1024**3  # what the members may add up to, decompressed
_LONG_HEADERS = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE)


class _BoundedTarInfo(tarfile.TarInfo):
    def _proc_member(self, tf):
        # tarfile reads these headers' bodies whole; refuse a huge one before it does.
        if self.type in _LONG_HEADERS + (tarfile.SOLARIS_XHDTYPE,) and self.size > MAX_HEADER_BYTES:
            raise Unusable(
                f"a {'pax' if self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE) else 'long-name'} header of "
                f"{self.size} bytes, more than the {MAX_HEADER_BYTES} a package's header may be"
            )
        return super()._proc_member(tf)  # type: ignore[misc]


@dataclass(frozen=True)
class Member:
    kind: str  # "file", "dir", "symlink" or "other"
    size: int
    sha256: Optional[str]  # regular files only
    link: Optional[str] = None


@dataclass
class PackageContents:
    top: str  # the package's one top directory (the instance's name)
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
        with (
            open(fd, "rb", closefd=False) as raw,
            tarfile.open(fileobj=raw, mode="r|gz", tarinfo=_BoundedTarInfo) as tf,
        ):
            return _members(tf, readers)
    except Unusable as e:
        raise Unusable(f"{path}: {e}") from None
    except (OSError, tarfile.TarError, EOFError, ValueError, UnicodeError) as e:
        raise Unusable(f"cannot read {path} as a .tar.gz: {e}") from None
    finally:
        os.close(fd)


def _members(tf: tarfile.TarFile, readers: Readers) -> PackageContents:
    out: Optional[PackageContents] = None
    total = 0
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
            continue
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
