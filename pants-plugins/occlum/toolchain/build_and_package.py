"""`occlum build`, then the package (package_tool.py), in one sandbox: one step for `pants package`.

    python3 build_and_package.py --instance occlum_instance --release 0.31.0 [--name NAME [--debug]
        [--threads N] [--segment-cache DIR]] -- <occlum> build [args...]

Without --name it only builds (the step `pants run` uses). The options are package_tool.py's.

Before the build, every folder and file of the instance gets the mode Pants' digests describe:
0755 for folders and executables, 0644 for the rest. `occlum build` writes each file's mode into
the image (SEFS inodes), so the modes the executor happened to give the inputs would otherwise be
measured: a remote worker (Buildbarn) materializes inputs read-only, and the enclave built there had
another MRENCLAVE than the same build on the client.

Why one step: the built instance holds a protected copy of the whole image (hundreds of MB with a
JDK). As two steps, Pants stores that copy after the build and writes it out again into the
package step's sandbox; as one, only the tarball and the few small files the measurements read
leave the sandbox. `pants run` still builds the whole instance as a step of its own.

The build runs through guarded_run.py (in the instance folder, stopped with its whole process
group when Pants dies) and keeps its exit code; a package failure exits PACKAGE_FAILED
with one `error: ` line, and leaves no tarball.

Self-contained (stdlib only, plus sandbox_guard.py, guarded_run.py and package_tool.py beside it).
"""

from __future__ import annotations

import os
import stat
import sys

if __name__ == "__main__":  # a script in the sandbox: its modules lie beside it (bundled_tools.py)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import guarded_run  # type: ignore[import-not-found,unused-ignore]
    import package_tool  # type: ignore[import-not-found,unused-ignore]
    import sandbox_guard  # type: ignore[import-not-found,unused-ignore]
else:
    from occlum.toolchain import guarded_run, package_tool, sandbox_guard

PACKAGE_FAILED = 86  # not an exit code `occlum build` (bash, make) gives


def normalize_modes(top: str) -> None:
    """Folders and executables 0755, other files 0644, under `top` (symlinks are left alone)."""
    for folder, _dirs, files in os.walk(top):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                os.chmod(path, 0o755 if st.st_mode & 0o111 else 0o644)


def main(argv: list[str]) -> int:
    if "--" not in argv:
        sys.stderr.write("error: usage: build_and_package.py [options] -- <occlum> build [args...]\n")
        return 2
    split = argv.index("--")
    options, build = argv[:split], argv[split + 1 :]
    if not build:
        sys.stderr.write("error: no build command after --\n")
        return 2
    # package_tool.py's options, with --name optional: without it, only the build runs.
    args = package_tool.options(name_required=False).parse_args(options)

    sandbox_guard.start()
    normalize_modes(args.instance)
    code = guarded_run.run(build, cwd=args.instance)
    if code != 0 or args.name is None:
        return code
    return package_tool.main(options, failed=PACKAGE_FAILED)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
