"""Find the path depth and length at which Pants' own engine fails, with no backend code involved.

    <python in which Pants imports> bench/engine_limits.py [--pantsd] [--lo 20] [--hi 64]

A repo with only `files` + `archive` (Pants' core targets): one file N folders deep, packaged. Pants
copies the `files` digest into the `archive` process's sandbox; on 2.17.1 that copy recurses once
per folder on a tokio worker's stack, and about 34 folders deep the process dies with SIGSEGV (no
message) or pantsd is killed. The script bisects N and prints the deepest that packages and the
first that does not, then a path of long components (bytes, not depth). The backend's own bounds
(occlum.image_paths) sit below the lowest figure found on every Pants the suite runs on; the figures
are in docs/security.md. Pants is run as `<this interpreter> -m pants`, the same as the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def pants_version() -> str:
    from pants.version import VERSION

    return str(VERSION)


def attempt(folders: int, component: str, *, pantsd: bool, timeout: int = 300) -> tuple[bool, str]:
    """Package one file `folders` folders deep; (worked, how it ended)."""
    root = Path(tempfile.mkdtemp(prefix="engine-limits."))
    try:
        (root / "pants.toml").write_text(
            f'[GLOBAL]\npants_version = "{pants_version()}"\nbackend_packages = []\n'
            'pants_ignore = ["/store/", "/named/", "/home/"]\n'
        )
        deep = root.joinpath(*([component] * folders))
        deep.mkdir(parents=True)
        (deep / "f.txt").write_text("deep\n")
        (root / "BUILD").write_text(
            'files(name="f", sources=["**/*.txt"])\narchive(name="ar", files=[":f"], format="tar")\n'
        )
        argv = [
            sys.executable,
            "-m",
            "pants",
            "--pantsd" if pantsd else "--no-pantsd",
            "--no-pantsrc",
            f"--local-store-dir={root / 'store'}",
            f"--named-caches-dir={root / 'named'}",
            "package",
            ":ar",
        ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root / "home"), "LC_ALL": "C.UTF-8"}
        env["NO_SCIE_WARNING"] = "1"
        try:
            proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return False, f"no answer in {timeout} s"
        finally:
            if pantsd:
                subprocess.run(
                    [*argv[:3], "--pantsd", "--no-pantsrc", "kill-pantsd"],
                    cwd=root,
                    env=env,
                    capture_output=True,
                    timeout=120,
                )
        ok = proc.returncode == 0 and (root / "dist/ar.tar").is_file()
        if ok:
            return True, "packaged"
        tail = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or ["(no output)"]
        signal = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        return False, f"{signal}: {tail[0][:160]}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bisect_depth(lo: int, hi: int, *, pantsd: bool) -> tuple[int, int, str]:
    """(deepest that worked, shallowest that failed, how it failed); lo must work, hi fail."""
    ok, how = attempt(lo, "a", pantsd=pantsd)
    if not ok:
        raise SystemExit(f"depth {lo} already fails ({how}); lower --lo")
    ok, failure = attempt(hi, "a", pantsd=pantsd)
    if ok:
        return hi, -1, f"nothing failed up to {hi}"
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok, how = attempt(mid, "a", pantsd=pantsd)
        print(f"  {mid} folders: {how}", flush=True)
        if ok:
            lo = mid
        else:
            hi, failure = mid, how
    return lo, hi, failure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pantsd", action="store_true", help="run with pantsd (default: --no-pantsd)")
    parser.add_argument("--lo", type=int, default=20, help="a depth known to work")
    parser.add_argument("--hi", type=int, default=64, help="a depth expected to fail")
    args = parser.parse_args()
    mode = "pantsd" if args.pantsd else "no pantsd"
    print(f"Pants {pants_version()} ({mode}), CPython {sys.version.split()[0]}", flush=True)
    lo, hi, failure = bisect_depth(args.lo, args.hi, pantsd=args.pantsd)
    print(f"depth: a file {lo} folders deep ({lo + 1} path components) packages; {hi} folders: {failure}")
    # Length, not depth: 12 folders of 250 bytes (3,000+ bytes, far past the backend's 1,024).
    ok, how = attempt(12, "b" * 250, pantsd=args.pantsd)
    print(f"length: a path of {12 * 251 + 5} bytes in 13 components: {how}")


if __name__ == "__main__":
    main()
