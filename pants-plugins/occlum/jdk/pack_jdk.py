"""Pack a JDK you already have (a folder, or a .tar.gz) into an archive `dragonwell_jdk` accepts, and
print the target that pins it.

    python3 -m occlum.jdk.pack_jdk /usr/lib/jvm/java-11 dist/jdk.tar.gz
    # with the backend's sources:  PYTHONPATH=pants-plugins python3 -m occlum.jdk.pack_jdk ...

For machines that cannot reach GitHub, where Dragonwell is published. The extraction step refuses
what a vendor archive never holds; a JDK packed by hand often holds it: absolute symlinks (Debian's
JDKs link into /etc and /usr/share), hard links, links that climb out of the folder. This writes one
top folder; symlinks that stay inside the JDK as relative links; any other symlink as a copy of what
it points to; hard links as plain files; no devices, FIFOs or sockets; sorted members, zero times and
owners, so the same folder gives the same bytes and sha256. It then checks the archive with the
extraction step's own checks, reads the libc from `bin/java`, and prints the `dragonwell_jdk` target.

Occlum runs musl JDKs only. A glibc JDK (most Linux distributions') packs and stages, and runs under
the test double, but a real Occlum enclave needs a musl build (an Alpine one).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import stat
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, cast

from occlum.jdk.extract_tool import JdkArchiveError, libc_of_interpreter, read_elf_interpreter
from occlum.jdk.extract_tool import main as extract_main

MAX_FILES = 100_000  # a JDK has a few thousand


class PackError(Exception):
    """The folder cannot be packed as a JDK; the message says why and what to do."""


def _inside(root: Path, target: Path) -> bool:
    try:
        target.relative_to(root)
        return True
    except ValueError:
        return False


def _entries(root: Path) -> list[tuple[str, Path]]:
    """(path in the archive below the top folder, path on disk), sorted, without following links."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            out.append((full.relative_to(root).as_posix(), full))
            if len(out) > MAX_FILES:
                raise PackError(f"{root} holds more than {MAX_FILES} entries; a JDK holds a few thousand")
    return sorted(out)


def _info(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode) if kind != tarfile.SYMTYPE else 0o777
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _check_folder(src: Path) -> None:
    root = src.resolve()
    if not (root / "bin" / "java").exists() or not (root / "release").is_file():
        raise PackError(
            f"{src} has no bin/java and `release` file, so it is not a JDK folder; pass the folder that holds "
            "bin/, lib/ and release (JAVA_HOME)"
        )


def pack(src: Path, out: Path, top: str) -> None:
    """Write `src`, a JDK folder (see _check_folder), as the archive `out` with one top folder `top`."""
    root = src.resolve()
    with (
        open(out, "wb") as f,
        gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz,
        tarfile.open(fileobj=cast(IO[bytes], gz), mode="w", format=tarfile.PAX_FORMAT) as tf,
    ):
        tf.addfile(_info(top, os.stat(root), tarfile.DIRTYPE))
        for rel, path in _entries(root):
            name = f"{top}/{rel}"
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                target = Path(os.path.normpath(path.parent / os.readlink(path)))
                resolved = path.resolve()
                if _inside(root, target) and _inside(root, resolved) and resolved.exists():
                    # A link that stays inside the JDK: kept, as a relative link.
                    info = _info(name, st, tarfile.SYMTYPE)
                    info.linkname = os.path.relpath(target, path.parent)
                    tf.addfile(info)
                    continue
                if not resolved.exists():
                    continue  # dangling: nothing to copy, and the JDK never reads it
                st, path = os.stat(resolved), resolved  # points outside: the content is copied in
            if stat.S_ISDIR(st.st_mode):
                tf.addfile(_info(name, st, tarfile.DIRTYPE))
            elif stat.S_ISREG(st.st_mode):
                info = _info(name, st, tarfile.REGTYPE)  # a hard link's other names are plain files too
                info.size = st.st_size
                with open(path, "rb") as content:
                    tf.addfile(info, content)


def _libc(src: Path) -> str:
    interp = read_elf_interpreter(src.resolve() / "bin" / "java")
    return libc_of_interpreter(interp)


def _check(out: Path, libc: str) -> None:
    """The extraction step's own checks, on the archive just written."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--archive", str(out), "--out-dir", f"{tmp}/jdk", "--info-out", f"{tmp}/info.json"]
        argv += ["--expect-libc", libc, "--label", out.name]
        err = io.StringIO()
        old, sys.stderr = sys.stderr, err
        try:
            code = extract_main(argv)
        finally:
            sys.stderr = old
        if code != 0:
            raise PackError(f"the extraction step refuses the packed archive: {err.getvalue().strip()}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pack_jdk", description=__doc__.splitlines()[0])
    p.add_argument("jdk", help="the JDK folder (JAVA_HOME: it holds bin/java and release), or a .tar.gz of one")
    p.add_argument("out", help="the archive to write, e.g. 3rdparty/jdk/jdk.tar.gz")
    p.add_argument("--top", help="the archive's top folder (default: the JDK folder's name)")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(args.jdk)
            if src.is_file():
                with tarfile.open(src) as tf:
                    # The user's own archive, with the absolute links it may hold: packed again, then checked.
                    trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
                    tf.extractall(tmp, **trusted)  # type: ignore[arg-type]
                tops = [p for p in Path(tmp).iterdir()]
                src = tops[0] if len(tops) == 1 and tops[0].is_dir() else Path(tmp)
            _check_folder(src)
            libc = _libc(src)
            pack(src, out, args.top or src.resolve().name)
        _check(out, libc)
    except (PackError, JdkArchiveError, OSError, tarfile.TarError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    data = out.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    libc_arg = f', libc="{libc}"' if libc != "musl" else ""
    print(f"Wrote {out} ({len(data)} bytes, sha256 {sha}, a {libc} JDK). Pin it with:\n")
    print(f'dragonwell_jdk(name="jdk", url="file://{out}", sha256="{sha}", size={len(data)}{libc_arg})')
    if libc != "musl":
        print(f"\nNote: a {libc} JDK stages and packages, but Occlum runs musl JDKs only (an Alpine build).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
