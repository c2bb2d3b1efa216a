"""Rewrite a .tar.gz so its bytes depend only on its contents (reproducible packages).

`occlum package` runs plain `tar -czf`, which records mtimes, owners and the order the file system
lists entries in. This rewrites the archive with members sorted by name, mtime 0, uid/gid 0 and no
owner names, permissions normalised (dirs and executables 0755, files 0644), and a gzip header
with no name and mtime 0. Content, names, types and link targets are unchanged.

    python3 repack_tool.py IN.tar.gz OUT.tar.gz

Self-contained (stdlib only, plus sandbox_guard.py beside it); the plugin runs it as a cached step
after `occlum package`.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import sys
import tarfile
import zlib
from typing import IO, cast

if __name__ == "__main__":  # a script in the sandbox: the guard lies beside it (bundled_tools.py)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sandbox_guard  # type: ignore[import-not-found,unused-ignore]
else:
    from occlum.toolchain import sandbox_guard


def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info = info.replace(mtime=0, uid=0, gid=0, uname="", gname="", deep=False)
    info.pax_headers = {}
    if info.isdir() or (info.isfile() and info.mode & 0o111):
        info.mode = 0o755
    elif info.issym():
        info.mode = 0o777
    else:
        info.mode = 0o644
    info.pax_headers = {}
    return info


def _already_normal(src: str, members: list) -> bool:
    """True when the archive's bytes already depend only on its contents (so re-packing is moot)."""
    with open(src, "rb") as f:
        head = f.read(10)
    # gzip header: magic, deflate, no FNAME/FCOMMENT/FEXTRA flags, mtime 0.
    if head[:3] != b"\x1f\x8b\x08" or head[3] & 0b11100 or head[4:8] != b"\0\0\0\0":
        return False
    names = [m.name for m in members]
    return names == sorted(names) and all(
        m.mtime == 0
        and m.uid == 0
        and m.gid == 0
        and not m.uname
        and not m.gname
        and not m.pax_headers
        and m.mode == normalise(m).mode
        for m in members
    )


def repack(src: str, dst: str) -> int:
    # Decompress once: members are read in name order, and a backward seek in a gzip stream
    # restarts decompression from the top (that made a 190 MB package take minutes, not seconds).
    with open(src, "rb") as f:
        raw = f.read()
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tin:
        if _already_normal(src, tin.getmembers()):
            shutil.copyfile(src, dst)  # skip a gzip pass over the whole package
            return len(tin.getmembers())
        members = sorted(tin.getmembers(), key=lambda m: m.name)
        with open(dst, "wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=cast(IO[bytes], gz), mode="w", format=tarfile.GNU_FORMAT) as tout:
                for m in members:
                    sandbox_guard.check()
                    tout.addfile(normalise(m), tin.extractfile(m) if m.isfile() else None)
    return len(members)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: repack_tool.py IN.tar.gz OUT.tar.gz\n")
        return 2
    try:
        repack(argv[0], argv[1])
    except (OSError, tarfile.TarError, EOFError, zlib.error) as e:
        sys.stderr.write(f"error: cannot re-pack {argv[0]}: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sandbox_guard.start()
    sys.exit(main(sys.argv[1:]))
