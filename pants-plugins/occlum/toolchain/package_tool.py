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

Self-contained (stdlib only, plus sandbox_guard.py beside it).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import fnmatch
import os
import stat
import struct
import sys
import tarfile
import zlib
from typing import IO, Optional, cast

if __name__ == "__main__":  # a script in the sandbox: the guard lies beside it (bundled_tools.py)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sandbox_guard  # type: ignore[import-not-found,unused-ignore]
else:
    from occlum.toolchain import sandbox_guard

LEVEL = 6  # gzip's default, what `tar -czf` uses
BLOCK = 1 << 20
_WINDOW = 32 * 1024


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


class ParallelGzip:
    """A write-only file object producing one gzip member, deflating BLOCK-byte blocks on a pool."""

    def __init__(self, out: IO[bytes], threads: int) -> None:
        self._out = out
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads)  # zlib frees the GIL
        self._pending: collections.deque = collections.deque()
        self._max_pending = 2 * threads
        self._buf = bytearray()
        self._dict = b""
        self._crc = 0
        self._size = 0
        # Header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown (255), like gzip -n's
        # bytes but without naming the host's OS.
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")

    @staticmethod
    def _deflate(block: bytes, zdict: bytes) -> bytes:
        # Raw deflate (wbits -15): the gzip framing is written once, around all blocks.
        z = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, *([zdict] if zdict else []))
        return z.compress(block) + z.flush(zlib.Z_SYNC_FLUSH)

    def _submit(self, block: bytes) -> None:
        sandbox_guard.check()
        self._crc = zlib.crc32(block, self._crc)
        self._size += len(block)
        self._pending.append(self._pool.submit(self._deflate, block, self._dict))
        self._dict = block[-_WINDOW:]
        while len(self._pending) > self._max_pending:
            self._out.write(self._pending.popleft().result())

    def tell(self) -> int:  # tarfile asks where the archive starts
        return self._size + len(self._buf)

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) >= BLOCK:
            self._submit(bytes(self._buf[:BLOCK]))
            del self._buf[:BLOCK]
        return len(data)

    def close(self) -> None:
        if self._buf:
            self._submit(bytes(self._buf))
            self._buf.clear()
        while self._pending:
            self._out.write(self._pending.popleft().result())
        self._pool.shutdown()
        self._out.write(b"\x03\x00")  # an empty final block: every block above ends in a sync flush
        self._out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))


def write_package(
    instance: str, name: str, release: str, debug: bool, out_path: str, threads: Optional[int] = None
) -> int:
    """Write `out_path`; returns the number of members."""
    mode_file = os.path.join(instance, ".sgx_mode")
    sgx_mode = open(mode_file).read().strip() if os.path.isfile(mode_file) else ""
    base = os.path.basename(os.path.normpath(instance))
    # From 0.24.0 `tar --transform s/<base>/<name>/` renames the top folder (first match only).
    rename = (base, name) if _release(release) >= (0, 24, 0) else None
    entries = _entries(instance, package_members(release, sgx_mode, debug))
    with open(out_path, "wb") as raw:
        gz = ParallelGzip(raw, max(1, threads or os.cpu_count() or 1))
        with tarfile.open(fileobj=cast(IO[bytes], gz), mode="w", format=tarfile.GNU_FORMAT) as tar:
            for rel in entries:
                arcname = f"{base}/{rel}"
                if rename:
                    arcname = arcname.replace(rename[0], rename[1], 1)
                info = _tarinfo(instance, rel, arcname, rename)
                if info.isreg():
                    with open(os.path.join(instance, rel), "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        gz.close()
    return len(entries)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--release", required=True, help="the Occlum release that built the instance")
    p.add_argument("--instance", required=True, help="the built instance folder")
    p.add_argument("--name", required=True, help="the package's base name: writes NAME.tar.gz")
    p.add_argument("--debug", action="store_true", help="as `occlum package --debug`")
    p.add_argument("--threads", type=int, default=None, help="compression threads (default: one per core)")
    args = p.parse_args(argv)
    out = f"{args.name}.tar.gz"
    try:
        write_package(args.instance, args.name, args.release, args.debug, out, threads=args.threads)
    except (PackageError, OSError) as e:
        if os.path.exists(out):
            os.remove(out)
        problem = e if isinstance(e, PackageError) else f"{e.strerror}: {e.filename}"
        sys.stderr.write(f"error: `occlum package` of Occlum {args.release} would fail: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    sandbox_guard.start()
    sys.exit(main(sys.argv[1:]))
