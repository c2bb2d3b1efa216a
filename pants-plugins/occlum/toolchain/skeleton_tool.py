"""`occlum new` plus the musl runtime libraries the JDK needs, as one cacheable step.

Self-contained (stdlib only, plus sandbox_guard.py beside it); run by the plugin in a sandbox:

    python3 skeleton_tool.py --occlum /opt/occlum/build/bin/occlum --install-dir /opt/occlum \
        --out occlum_instance [--lib libz.so.1 ...]

Its inputs are only the toolchain (whose identity is in the step's env) and the library names, so
editing a service never re-runs it.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys

if __name__ == "__main__":  # a script in the sandbox: the guard lies beside it (bundled_tools.py)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sandbox_guard  # type: ignore[import-not-found,unused-ignore]
else:
    from occlum.toolchain import sandbox_guard

MUSL_LIB_DIR = os.path.join("toolchains", "gcc", "x86_64-linux-musl", "lib")

# `occlum new` copies the build host's /etc/localtime into image/ and initfs/ (0.22.0+), and both
# are measured, so MRENCLAVE would depend on the build machine's time zone (docs/occlum-contract.md §2.3, 4.4).
# Pin them to UTC (the zoneinfo "UTC" TZif file); a service sets TZ in `env` for another zone.
UTC_TZIF = base64.b64decode(
    "VFppZjIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAAAAQAAAAAAABVVEMAVFppZjIAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAQAAAAQAAAAAAABVVEMAClVUQzAK"
)
HOST_DEPENDENT_LOCALTIME = ("image/etc/localtime", "initfs/etc/localtime", "image/opt/occlum/glibc/etc/localtime")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--occlum", required=True)
    p.add_argument("--install-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--lib", action="append", default=[])
    args = p.parse_args(argv)
    # A remote-execution worker may create the declared output directory before the step runs
    # (Buildbarn does); `occlum new` refuses any existing destination, so an empty one goes first.
    if os.path.isdir(args.out) and not os.path.islink(args.out) and not os.listdir(args.out):
        os.rmdir(args.out)
    try:
        proc = subprocess.Popen(
            [args.occlum, "new", args.out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    except OSError as e:
        sys.stderr.write(f"error: cannot run `{args.occlum} new`: {e.strerror}\n")
        return 2
    sandbox_guard.track(proc.pid)  # killed with this script if Pants dies meanwhile
    stdout, stderr = proc.communicate()
    sandbox_guard.untrack(proc.pid)
    if proc.returncode != 0:
        sys.stderr.write(f"error: `occlum new` failed with exit code {proc.returncode}:\n{stdout}{stderr}")
        return 2
    for rel in HOST_DEPENDENT_LOCALTIME:
        path = os.path.join(args.out, rel)
        if os.path.lexists(path):
            os.unlink(path)
            with open(path, "wb") as f:
                f.write(UTC_TZIF)
            os.chmod(path, 0o644)
    lib_dir = os.path.join(args.install_dir, MUSL_LIB_DIR)
    dest_dir = os.path.join(args.out, "image", "lib")
    os.makedirs(dest_dir, exist_ok=True)
    for lib in args.lib:
        src = os.path.join(lib_dir, lib)
        if os.path.basename(lib) != lib or not os.path.isfile(src):
            have = sorted(os.listdir(lib_dir)) if os.path.isdir(lib_dir) else []
            sys.stderr.write(
                f"error: the runtime library {lib!r} of `[occlum].runtime_libs` is not in the toolchain's "
                f"{lib_dir}. Available there: {', '.join(have) or 'nothing (no musl toolchain installed)'}. "
                "Remove it from `[occlum].runtime_libs` or install Occlum's musl toolchain.\n"
            )
            return 2
        shutil.copyfile(src, os.path.join(dest_dir, lib))  # the file, not a link into the host
        os.chmod(os.path.join(dest_dir, lib), 0o755)
    return 0


if __name__ == "__main__":
    sandbox_guard.start()
    sys.exit(main(sys.argv[1:]))
