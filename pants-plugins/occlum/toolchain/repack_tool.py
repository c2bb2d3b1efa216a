"""Rewrite a .tar.gz so its bytes depend only on its contents (reproducible packages).

`occlum package` runs plain `tar -czf`, which records mtimes, owners and the order the file system
lists entries in. This rewrites the archive with members sorted by name, mtime 0, uid/gid 0 and no
owner names, permissions normalised (dirs and executables 0755, files 0644), and a gzip header
with no name and mtime 0. Content, names, types and link targets are unchanged.

    python3 repack_tool.py IN.tar.gz OUT.tar.gz

Self-contained (stdlib only); the plugin runs it as a cached step after `occlum package`.
"""

from __future__ import annotations

import gzip
import sys
import tarfile


def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info = info.replace(mtime=0, uid=0, gid=0, uname="", gname="", deep=False)
    if info.isdir() or (info.isfile() and info.mode & 0o111):
        info.mode = 0o755
    elif info.issym():
        info.mode = 0o777
    else:
        info.mode = 0o644
    info.pax_headers = {}
    return info


def repack(src: str, dst: str) -> int:
    with tarfile.open(src, "r:*") as tin:
        members = sorted(tin.getmembers(), key=lambda m: m.name)
        with open(dst, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tout:
                for m in members:
                    tout.addfile(normalise(m), tin.extractfile(m) if m.isfile() else None)
    return len(members)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: repack_tool.py IN.tar.gz OUT.tar.gz\n")
        return 2
    try:
        repack(argv[0], argv[1])
    except (OSError, tarfile.TarError, EOFError) as e:
        sys.stderr.write(f"error: cannot re-pack {argv[0]}: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
