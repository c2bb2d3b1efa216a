"""`occlum build`, then the package (package_tool.py) and the measurements, in one sandbox: one
step for `pants package`.

    python3 build_and_package.py --instance occlum_instance --release 0.31.0 [--name NAME [--debug]
        [--threads N] [--segment-cache DIR] [--print-with OCCLUM | --dump-with SGX_SIGN]]
        -- <occlum> build [args...]

Without --name it only builds (the step `pants run` uses). The options are package_tool.py's, and
the tool that reads the signed enclave's measurements:

- `--print-with OCCLUM`: `OCCLUM print mrenclave` and `OCCLUM print mrsigner` (Occlum 0.29.1 and
  later) write to `occlum_measured/mrenclave` and `occlum_measured/mrsigner`;
- `--dump-with SGX_SIGN`: `SGX_SIGN dump -enclave build/lib/libocclum-libos.signed.so -dumpfile
  occlum_measured/dump.txt` (older releases, which have no `occlum print`).

They run beside the package, which does not change what they read. As steps of their own they
started only after Pants had stored the package: 0.2 s of every jar change.

Before the build, every folder and file of the instance gets the mode Pants' digests describe:
0755 for folders and executables, 0644 for the rest. `occlum build` writes each file's mode into
the image (SEFS inodes), so the modes the executor happened to give the inputs would otherwise be
measured: a remote worker (Buildbarn) materializes inputs read-only, and the enclave built there had
another MRENCLAVE than the same build on the client.

Why one step: the built instance holds a protected copy of the whole image (hundreds of MB with a
JDK). As two steps, Pants stores that copy after the build and writes it out again into the
package step's sandbox; as one, only the tarball and the few small files the measurements read
leave the sandbox. `pants run` still builds the whole instance as a step of its own.

The tools run through guarded_run.py (in the instance folder, stopped with their whole process
group when Pants dies). The build keeps its exit code; a package failure exits PACKAGE_FAILED and a
measurement failure MEASURE_FAILED, each with one `error: ` line (a measurement's output after it),
and neither leaves a tarball.

Self-contained (stdlib only, plus sandbox_guard.py, guarded_run.py and package_tool.py beside it).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import threading

if __name__ == "__main__":  # a script in the sandbox: its modules lie beside it (bundled_tools.py)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import guarded_run  # type: ignore[import-not-found,unused-ignore]
    import package_tool  # type: ignore[import-not-found,unused-ignore]
    import sandbox_guard  # type: ignore[import-not-found,unused-ignore]
else:
    from occlum.toolchain import guarded_run, package_tool, sandbox_guard

PACKAGE_FAILED = 86  # not an exit code `occlum build` (bash, make) gives
MEASURE_FAILED = 87
MEASURED = "occlum_measured"  # beside the instance folder, not in it: the package must not hold it
SIGNED_ENCLAVE = "build/lib/libocclum-libos.signed.so"
_MAX_SHOWN = 64 * 1024  # of a failed measurement's output


def normalize_modes(top: str) -> None:
    """Folders and executables 0755, other files 0644, under `top` (symlinks are left alone)."""
    for folder, _dirs, files in os.walk(top):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                os.chmod(path, 0o755 if st.st_mode & 0o111 else 0o644)


def options() -> argparse.ArgumentParser:
    """package_tool.py's options, with --name optional (without it, only the build runs), and the
    measurement tool."""
    p = package_tool.options(name_required=False)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--print-with", help="the `occlum` whose `print mrenclave|mrsigner` reads the measurements")
    how.add_argument("--dump-with", help="the `sgx_sign` whose `dump` reads them (Occlum before 0.29.1)")
    return p


class _Measurements(threading.Thread):
    """The measurement tools the options ask for, one after another (`occlum print` writes and
    removes `./dumpfile` in the instance: two at once would race), beside the package."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(daemon=True)
        self.instance = args.instance
        self.commands: list[tuple[str, list[str], str]] = []  # (the step, its argv, its output file)
        self.failure = ""  # the error text of the first that failed
        out = os.path.abspath(MEASURED)
        if args.print_with:
            for what in ("mrenclave", "mrsigner"):
                self.commands.append((f"occlum print {what}", [args.print_with, "print", what], f"{out}/{what}"))
        elif args.dump_with:
            dump = [args.dump_with, "dump", "-enclave", SIGNED_ENCLAVE, "-dumpfile", f"{out}/dump.txt"]
            self.commands.append(("sgx_sign dump", dump, f"{out}/dump.log"))
        if self.commands:
            os.makedirs(MEASURED, exist_ok=True)

    def run(self) -> None:
        for step, argv, path in self.commands:
            with open(path, "wb") as f:
                code = guarded_run.wait(guarded_run.start(argv, cwd=self.instance, stdout=f))
            if code != 0:
                with open(path, "rb") as f:
                    said = f.read(_MAX_SHOWN).decode("utf-8", "replace").strip()
                self.failure = f"error: `{step}` failed with exit code {code}\n{said}\n"
                return


def main(argv: list[str]) -> int:
    if "--" not in argv:
        sys.stderr.write("error: usage: build_and_package.py [options] -- <occlum> build [args...]\n")
        return 2
    split = argv.index("--")
    build = argv[split + 1 :]
    if not build:
        sys.stderr.write("error: no build command after --\n")
        return 2
    args = options().parse_args(argv[:split])

    sandbox_guard.start()
    normalize_modes(args.instance)
    code = guarded_run.run(build, cwd=args.instance)
    if code != 0 or args.name is None:
        return code
    measuring = _Measurements(args)
    measuring.start()
    code = package_tool.package(args, failed=PACKAGE_FAILED)
    measuring.join()
    if measuring.failure and code == 0:
        os.remove(f"{args.name}.tar.gz")
        sys.stderr.write(measuring.failure)
        return MEASURE_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
