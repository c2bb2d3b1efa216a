"""Write an Occlum package (`<name>.tar.gz`) from a built instance, reproducibly and in one pass.

    python3 package_tool.py --release 0.31.0 --instance occlum_instance --name NAME [--debug] [--threads N]

The tarball holds what `occlum package` of that release puts in it (`package_members` below, read
from `tools/occlum` of each release), under the same top-level folder, but its bytes depend only on
those files: members in the order `occlum package` names them, each folder's contents in name order
(what `tar --sort=name` gives), mtime 0, uid/gid 0 without owner names, modes 0755 (folders and
executables) or 0644, and a gzip header without a name or time stamp.

Why not run `occlum package` and re-pack its output: that is a second decompress-and-gzip pass over
the whole instance (~190 MB for a Java service), about half of a jar change's rebuild. Why not give
`occlum package`'s own `tar` deterministic flags (TAR_OPTIONS): the bytes would then hang on the
host's tar and gzip (`--sort` needs GNU tar 1.28+, a non-GNU tar ignores TAR_OPTIONS, gzip's
header differs between versions), and nothing would notice when they drift.

Compression uses every core: the stream is cut into BLOCK-byte blocks, each deflated with the
previous block's last 32 KiB as its dictionary and ended with a sync flush (what pigz does), so the
output is one standard gzip member whose bytes do not depend on the number of threads.

Already-compressed bytes are stored, not deflated: each 64 KiB piece whose 4 KiB middle sample does
not shrink by 5% at level 1 (`_stored`). On the bench's Spring Boot service the jar's 64.5 MB
protected file then takes 0.38 s instead of 0.82 s on two cores and comes out 5% larger (0.937 of
its size, against 0.890 deflated throughout): the package grows by 2.4% (3.0 MB of 126 MB), a jar
change gets 0.44 s faster. The JDK's files barely change (its 130 MB modules file: 0.07% larger).

Incremental: each regular file of SEGMENT_MIN bytes or more is deflated as a segment of its own
(no dictionary from before it), so its compressed bytes depend only on its contents. With
`--segment-cache DIR` (a Pants append-only cache), a segment deflated once is kept there by the
sha256 of its contents and reused: after a jar change, only the files the change touched are
deflated again. A kept segment carries the sha256 of its deflated bytes, checked before each use:
a damaged or truncated one is deflated again and replaced (as ccache checks its entries). That
catches damage, not a planted entry: whoever can write to Pants' named caches can as well write
to its local store of process results, which Pants reuses unchecked. The folder is kept under
CACHE_MAX_BYTES by dropping the least recently used segments.

Self-contained (stdlib only, plus sandbox_guard.py beside it).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import fnmatch
import hashlib
import os
import stat
import struct
import sys
import tarfile
import threading
import zlib
from typing import IO, Optional, cast

if not __package__:  # a script in the sandbox, or imported by one: the guard lies beside it (bundled_tools.py)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sandbox_guard  # type: ignore[import-not-found,unused-ignore]
else:
    from occlum.toolchain import sandbox_guard

LEVEL = 6  # gzip's default, what `tar -czf` uses
BLOCK = 1 << 20
_WINDOW = 32 * 1024
PIECE = 64 * 1024  # what is stored or deflated as a whole
PIECE_PROBE = 4 * 1024
SHRINK_MIN = 0.05  # a piece whose sample shrinks less is stored (measured on a Spring Boot jar below)
SEGMENT_MIN = 256 * 1024  # smaller files share segments: a cache entry per file would cost more than it saves
CACHE_MAX_BYTES = 4 << 30
DEFAULT_THREADS_MAX = 8  # beyond this, reading the instance, not deflate, bounds the package
# What a kept segment's bytes depend on besides its contents: a change here must miss the cache.
_SEGMENT_FORMAT = (
    f"occlum-package-segment v4 level={LEVEL} block={BLOCK} piece={PIECE}/{PIECE_PROBE}/{SHRINK_MIN} "
    f"zlib={zlib.ZLIB_RUNTIME_VERSION}"
)


class PackageError(Exception):
    pass


def _release(text: str) -> tuple[int, int, int]:
    parts = text.lstrip("v").split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise PackageError(f"--release must look like 0.31.0, not {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def package_members(release: str, sgx_mode: str, debug: bool) -> list[str]:
    """The paths `occlum package` names to tar, relative to the instance, in its order (globs kept).

    From `cmd_package` in `tools/occlum` at each release tag of occlum/occlum.
    """
    r = _release(release)
    members = ["Occlum.json", "build/bin", "build/lib/libocclum-libos.signed.so", "build/lib/libocclum-pal.so*"]
    if r < (0, 21, 0):
        members += ["build/mount", "build/Occlum.json.protected"]
    elif r < (0, 29, 6):  # 0.29.6 stopped writing build/Occlum.json.protected
        members += ["build/mount", "build/Occlum.json.protected", "build/initfs", "build/.Occlum_sys.json.protected"]
        members += ["initfs"]
    else:
        members += ["build/initfs", "build/mount", "build/.Occlum_sys.json.protected", "initfs"]
    members += ["run", ".__occlum_status", ".sgx_mode"]
    if (0, 23, 7) <= r < (0, 29, 5):
        if debug and sgx_mode != "HW":
            members += ["build/lib/libocclum-libos_sim.so*", "build/lib/libocclum-pal_sim.so*"]
    elif r >= (0, 29, 5):
        if sgx_mode == "SIM":
            members.append("build/lib/libocclum-pal_sim.so*")
        elif sgx_mode == "HYPER":
            members.append("build/lib/libocclum-pal_hyper.so*")
    return members


def _expand(instance: str, pattern: str) -> list[str]:
    """A shell glob the way bash expands it for tar: sorted matches, or a missing-path error."""
    if "*" not in pattern:
        if not os.path.lexists(os.path.join(instance, pattern)):
            raise PackageError(f"{pattern}: Cannot stat: No such file or directory")
        return [pattern]
    folder, glob = os.path.split(pattern)
    names = sorted(n for n in os.listdir(os.path.join(instance, folder)) if fnmatch.fnmatchcase(n, glob))
    if not names:  # bash leaves an unmatched glob as it is; tar then cannot stat it
        raise PackageError(f"{pattern}: Cannot stat: No such file or directory")
    return [f"{folder}/{n}" for n in names]


def _walk(instance: str, rel: str) -> list[str]:
    """`rel` and, for a folder, everything under it, depth first in name order (`tar --sort=name`)."""
    out = [rel]
    full = os.path.join(instance, rel)
    if os.path.isdir(full) and not os.path.islink(full):
        for name in sorted(os.listdir(full)):
            out += _walk(instance, f"{rel}/{name}")
    return out


def _entries(instance: str, members: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for pattern in members:
        for top in _expand(instance, pattern):
            for rel in _walk(instance, top):
                if rel not in seen:  # tar archives a path named twice twice; no release names one twice
                    seen.add(rel)
                    out.append(rel)
    return out


def _tarinfo(instance: str, rel: str, arcname: str, rename: Optional[tuple[str, str]]) -> tarfile.TarInfo:
    full = os.path.join(instance, rel)
    st = os.lstat(full)
    info = tarfile.TarInfo(arcname)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if stat.S_ISLNK(st.st_mode):
        info.type, info.mode = tarfile.SYMTYPE, 0o777
        target = os.readlink(full)
        if rename:  # GNU tar's --transform also applies to symlink targets (its default flags)
            target = target.replace(rename[0], rename[1], 1)
        info.linkname = target
    elif stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif stat.S_ISREG(st.st_mode):
        info.size, info.mode = st.st_size, 0o755 if st.st_mode & 0o111 else 0o644
    else:
        raise PackageError(f"{rel}: not a file, folder or symlink")
    return info


def _stored(piece: bytes) -> bool:
    """Whether a PIECE-byte piece is stored rather than deflated: when a PIECE_PROBE-byte sample
    from its middle does not shrink by SHRINK_MIN at level 1. Already-compressed bytes (a jar's
    deflated classes, encrypted files) gain a few percent from gzip -6, which spends ~50 MB/s of a
    core on them; the headers and names between them, and the files around them, still deflate.
    Decided by the bytes alone, so the output still depends only on the contents."""
    if len(piece) < 2 * PIECE_PROBE:
        return False
    mid = len(piece) // 2 - PIECE_PROBE // 2
    sample = piece[mid : mid + PIECE_PROBE]
    return len(zlib.compress(sample, 1)) > (1 - SHRINK_MIN) * PIECE_PROBE


def _runs(block: bytes) -> list[tuple[int, int, int]]:
    """The block as (start, end, level) runs of PIECE-byte pieces that are all stored (level 0)
    or all deflated (LEVEL)."""
    runs: list[tuple[int, int, int]] = []
    for start in range(0, len(block), PIECE):
        end = min(start + PIECE, len(block))
        level = 0 if _stored(block[start:end]) else LEVEL
        if runs and runs[-1][2] == level:
            runs[-1] = (runs[-1][0], end, level)
        else:
            runs.append((start, end, level))
    return runs


class SegmentCache:
    """Compressed segments kept by content in a folder (a Pants append-only cache)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0

    def path(self, content_sha256: bytes) -> str:
        key = hashlib.sha256(_SEGMENT_FORMAT.encode() + b"\0" + content_sha256).hexdigest()
        return os.path.join(self.folder, key)

    def prune(self, limit: int = CACHE_MAX_BYTES) -> None:
        """Drop the least recently used segments until the folder holds at most 3/4 of `limit`."""
        entries = []
        for name in os.listdir(self.folder):
            try:
                st = os.stat(os.path.join(self.folder, name))
            except OSError:  # another package step removed it
                continue
            entries.append((st.st_mtime, st.st_size, name))
        total = sum(size for _, size, _ in entries)
        if total <= limit:
            return
        for _, size, name in sorted(entries):
            if total <= limit * 3 // 4:
                break
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.folder, name))
            total -= size


_KEPT_MAGIC = b"OPSEG\x00\x00\x03"
_KEPT_HEADER = len(_KEPT_MAGIC) + 32  # the magic, then the sha256 of the deflated bytes that follow


def _intact(path: str) -> bool:
    """Whether the kept segment at `path` holds the deflated bytes its writer wrote (its sha256)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        header = f.read(_KEPT_HEADER)
        for chunk in iter(lambda: f.read(BLOCK), b""):
            h.update(chunk)
    return len(header) == _KEPT_HEADER and header.startswith(_KEPT_MAGIC) and header[len(_KEPT_MAGIC) :] == h.digest()


class _KeptWriter:
    """Writes a segment into the cache: to a temporary file, then renamed whole, with its sha256."""

    def __init__(self, kept: str) -> None:
        self._kept = kept
        self._tmp = f"{kept}.{os.getpid()}.{threading.get_ident()}.tmp"
        self._f = open(self._tmp, "wb")  # noqa: SIM115 (closed by commit)
        self._f.write(bytes(_KEPT_HEADER))
        self._h = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self._h.update(data)

    def commit(self) -> None:
        self._f.seek(0)
        self._f.write(_KEPT_MAGIC + self._h.digest())
        self._f.close()
        os.replace(self._tmp, self._kept)  # whole or not at all: another step may read it next


class ParallelGzip:
    """A write-only file object producing one gzip member, deflating BLOCK-byte blocks on a pool."""

    def __init__(self, out: IO[bytes], threads: int, cache: Optional[SegmentCache] = None) -> None:
        self._out = out
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads)  # zlib frees the GIL
        # In stream order: (future of compressed bytes, the cache entry to copy them to, or None),
        # or (None, action) for what the writer does when it gets there.
        self._pending: collections.deque = collections.deque()
        self._max_pending = 2 * threads
        self._buf = bytearray()
        self._dict = b""
        self._crc = 0
        self._size = 0
        self._cache = cache
        # Header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown (255), like gzip -n's
        # bytes but without naming the host's OS.
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")

    @staticmethod
    def _deflate(block: bytes, zdict: bytes) -> bytes:
        # Raw deflate (wbits -15): the gzip framing is written once, around all blocks. Each run
        # starts from the 32 KiB before it, as one stream over the block would.
        out = []
        for start, end, level in _runs(block):
            window = (zdict + block[:start])[-_WINDOW:] if start < _WINDOW else block[start - _WINDOW : start]
            z = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, *([window] if window else []))
            out.append(z.compress(block[start:end]) + z.flush(zlib.Z_SYNC_FLUSH))
        return b"".join(out)

    def _drain(self, keep: int) -> None:
        while len(self._pending) > keep:
            future, action = self._pending.popleft()
            if future is None:
                action()
                continue
            data = future.result()
            self._out.write(data)
            if action is not None:
                action.write(data)

    def _submit(self, block: bytes, sink: Optional[_KeptWriter] = None) -> None:
        sandbox_guard.check()
        self._crc = zlib.crc32(block, self._crc)
        self._size += len(block)
        self._pending.append((self._pool.submit(self._deflate, block, self._dict), sink))
        self._dict = block[-_WINDOW:]
        self._drain(self._max_pending)

    def _end_segment(self) -> None:
        """Deflate what is buffered; what follows starts without a dictionary."""
        if self._buf:
            self._submit(bytes(self._buf))
            self._buf.clear()
        self._dict = b""

    def tell(self) -> int:  # tarfile asks where the archive starts
        return self._size + len(self._buf)

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) >= BLOCK:
            self._submit(bytes(self._buf[:BLOCK]))
            del self._buf[:BLOCK]
        return len(data)

    def write_file(self, path: str, size: int) -> None:
        """The `size` bytes of the file at `path`, as a segment of their own, kept in the cache."""
        self._end_segment()
        h = hashlib.sha256()
        crc, n = self._crc, 0
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(BLOCK), b""):
                sandbox_guard.check()
                h.update(chunk)
                crc = zlib.crc32(chunk, crc)
                n += len(chunk)
        if n != size:
            raise PackageError(f"{path}: changed while it was packaged ({size} bytes, then {n})")
        kept = self._cache.path(h.digest()) if self._cache else None
        if kept and os.path.isfile(kept):
            check = self._pool.submit(_intact, kept)
            self._pending.append((None, lambda: self._use_kept(check, kept, path)))
            self._crc, self._size = crc, self._size + size
            self._drain(self._max_pending)
            return
        self._deflate_file(path, kept)

    def _deflate_file(self, path: str, kept: Optional[str]) -> None:
        sink = None
        if kept:
            sink = _KeptWriter(kept)
            self._cache.misses += 1  # type: ignore[union-attr]
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(BLOCK), b""):
                self._submit(chunk, sink)
        self._dict = b""
        if sink is not None:
            self._pending.append((None, sink.commit))

    def _use_kept(self, check: concurrent.futures.Future, kept: str, path: str) -> None:
        if check.result():
            with contextlib.suppress(OSError):
                os.utime(kept)  # recently used: pruned last
            with open(kept, "rb") as f:
                f.seek(_KEPT_HEADER)
                for chunk in iter(lambda: f.read(BLOCK), b""):
                    self._out.write(chunk)
            self._cache.hits += 1  # type: ignore[union-attr]
            return
        # Damaged: deflate the file here, in order, and keep the right bytes instead.
        self._cache.misses += 1  # type: ignore[union-attr]
        sink = _KeptWriter(kept)
        with open(path, "rb") as f:
            zdict = b""
            for chunk in iter(lambda: f.read(BLOCK), b""):
                data = self._deflate(chunk, zdict)
                zdict = chunk[-_WINDOW:]
                self._out.write(data)
                sink.write(data)
        sink.commit()

    def close(self) -> None:
        self._end_segment()
        self._drain(0)
        self._pool.shutdown()
        self._out.write(b"\x03\x00")  # an empty final block: every block above ends in a sync flush
        self._out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))


def default_threads() -> int:
    """One per core this process may run on, at most DEFAULT_THREADS_MAX."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, DEFAULT_THREADS_MAX))


def write_package(
    instance: str,
    name: str,
    release: str,
    debug: bool,
    out_path: str,
    threads: Optional[int] = None,
    cache: Optional[SegmentCache] = None,
) -> int:
    """Write `out_path`; returns the number of members."""
    mode_file = os.path.join(instance, ".sgx_mode")
    sgx_mode = open(mode_file).read().strip() if os.path.isfile(mode_file) else ""
    base = os.path.basename(os.path.normpath(instance))
    # From 0.24.0 `tar --transform s/<base>/<name>/` renames the top folder (first match only).
    rename = (base, name) if _release(release) >= (0, 24, 0) else None
    entries = _entries(instance, package_members(release, sgx_mode, debug))
    with open(out_path, "wb") as raw:
        gz = ParallelGzip(raw, max(1, threads or default_threads()), cache)
        with tarfile.open(fileobj=cast(IO[bytes], gz), mode="w", format=tarfile.GNU_FORMAT) as tar:
            for rel in entries:
                arcname = f"{base}/{rel}"
                if rename:
                    arcname = arcname.replace(rename[0], rename[1], 1)
                info = _tarinfo(instance, rel, arcname, rename)
                if info.isreg() and info.size >= SEGMENT_MIN:
                    # tarfile's own header, then the contents as a segment of their own, then the
                    # padding tarfile would write; its offset kept right for the end-of-archive blocks.
                    header = info.tobuf(tarfile.GNU_FORMAT, tar.encoding, tar.errors)
                    gz.write(header)
                    gz.write_file(os.path.join(instance, rel), info.size)
                    padding = -info.size % tarfile.BLOCKSIZE
                    gz.write(bytes(padding))
                    tar.offset += len(header) + info.size + padding
                elif info.isreg():
                    with open(os.path.join(instance, rel), "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        gz.close()
    if cache is not None:
        cache.prune()
    return len(entries)


def options(name_required: bool = True) -> argparse.ArgumentParser:
    """The tool's options (build_and_package.py takes the same, with --name optional)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--release", required=True, help="the Occlum release that built the instance")
    p.add_argument("--instance", required=True, help="the built instance folder")
    p.add_argument("--name", required=name_required, help="the package's base name: writes NAME.tar.gz")
    p.add_argument("--debug", action="store_true", help="as `occlum package --debug`")
    p.add_argument("--threads", type=int, default=None, help="compression threads (default: one per core, at most 8)")
    p.add_argument("--segment-cache", default=None, help="a folder of compressed segments to reuse (if it exists)")
    return p


def main(argv: list[str]) -> int:
    return package(options().parse_args(argv))


def package(args: argparse.Namespace, failed: int = 1) -> int:
    """Write the package `options()` describe; `failed` is the exit code when it cannot."""
    out = f"{args.name}.tar.gz"
    # No folder, no cache: remote workers without append-only caches package all the same.
    cache = SegmentCache(args.segment_cache) if args.segment_cache and os.path.isdir(args.segment_cache) else None
    try:
        write_package(args.instance, args.name, args.release, args.debug, out, threads=args.threads, cache=cache)
    except (PackageError, OSError) as e:
        if os.path.exists(out):
            os.remove(out)
        problem = e if isinstance(e, PackageError) else f"{e.strerror}: {e.filename}"
        sys.stderr.write(f"error: `occlum package` of Occlum {args.release} would fail: {problem}\n")
        return failed
    return 0


if __name__ == "__main__":
    sandbox_guard.start()
    sys.exit(main(sys.argv[1:]))
