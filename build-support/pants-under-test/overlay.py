"""Make a venv that runs the test suite on a Pants given from outside, and print its path.

    <any python> build-support/pants-under-test/overlay.py <python in which that Pants imports>

The given interpreter is a team's Pants venv (scie-pants keeps one per version under
~/.cache/nce/<hash>/bindings/venvs/<version>/) or a venv that runs Pants from its sources. It is not
changed: a new venv is made from the same CPython, its site-packages reads the given venv's
site-packages (a .pth file that calls site.addsitedir, so that venv's own .pth files work too), and
only the test packages that venv lacks are added, hash-pinned, from requirements-<X.Y>.lock beside
this file. Pants' own dependencies stay Pants' own. The venv is kept (keyed by the interpreter, the
Pants version and the lock) and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBE = """
import json, site, sys, importlib.metadata as md
import pants.version
have = sorted({(d.metadata["Name"] or "").lower() for d in md.distributions()})
info = {"pants": str(pants.version.VERSION), "python": "%d.%d" % sys.version_info[:2],
        "sites": site.getsitepackages(), "have": have}
try:
    import pants.testutil.rule_runner  # noqa: F401
    info["testutil"] = True
except ImportError:
    info["testutil"] = False
print(json.dumps(info))
"""


def die(message: str) -> None:
    sys.stderr.write(f"pants-under-test: {message}\n")
    raise SystemExit(2)


def probe(python: str) -> dict:
    proc = subprocess.run([python, "-c", PROBE], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        die(
            f"Pants does not import in {python}: {tail}\n"
            "  OCCLUM_TEST_PANTS_PYTHON must name an interpreter in which `import pants.version` works: a\n"
            "  scie-pants venv's bin/python, or a venv that runs Pants from its sources."
        )
    info = json.loads(proc.stdout)
    if not info["testutil"]:
        die(
            f"Pants {info['pants']} imports in {python}, but pants.testutil does not, and the RuleRunner tests\n"
            "  need that release's own. scie-pants venvs do not ship it: add the release's\n"
            "  src/python/pants/testutil (from pantsbuild/pants at the same release tag) to that venv, or use a\n"
            "  venv that runs Pants from its sources, where it is included."
        )
    return info


def _name(line: str) -> str:
    return re.split(r"[=<>;\s]", line, maxsplit=1)[0].lower().replace("_", "-")


def missing_requirements(lock: Path, have: set[str]) -> str:
    """The lock's entries (with their hashes) for packages the Pants interpreter does not have."""
    blocks: list[list[str]] = []
    for line in lock.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith((" ", "\t")) and blocks:
            blocks[-1].append(line)
        else:
            blocks.append([line])
    have = {h.replace("_", "-") for h in have}
    kept = [b for b in blocks if _name(b[0]) not in have]
    return "".join(line + "\n" for block in kept for line in block)


def make_venv(python: str, dest: Path) -> None:
    """`python -m venv`, and where that CPython has no ensurepip (Debian's split it out), a venv
    without pip; pip() then drives it from outside."""
    if subprocess.run([python, "-m", "venv", str(dest)], capture_output=True).returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        subprocess.run([python, "-m", "venv", "--without-pip", str(dest)], check=True)


def pip(venv: Path, outside: str) -> list[str]:
    """pip for `venv`: its own, or else `outside`'s pip aimed at it (`pip --python`, pip 22.3+)."""
    own = str(venv / "bin/python")
    quiet = ["--disable-pip-version-check", "--quiet"]
    if subprocess.run([own, "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [own, "-m", "pip", *quiet]
    return [outside, "-m", "pip", *quiet, "--python", own]


def new_venv(python: str, dest: Path, sites: list[str]) -> None:
    """A venv of the same CPython as `python` that also reads `sites` (that Pants' packages)."""
    make_venv(python, dest)
    site_dir = Path(
        subprocess.run(
            [str(dest / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    lines = "".join(f"import site; site.addsitedir({s!r})\n" for s in sites)
    (site_dir / "_pants_under_test.pth").write_text(lines)


PEX_VERSION_PROBE = "from pants.backend.python.util_rules.pex_cli import PexCli; print(PexCli.default_version)"


def make_pex_cli(venv: Path, outside: str) -> None:
    """Pants 2.19.1+ resolve a backend's requirements.txt (jsonschema here) with the `pex` CLI, which
    they download from GitHub. Build the same release of it from PyPI's wheel, and record where it
    is for the tests (tests/integration/pants_repo.py passes it as `[pex-cli]` options)."""
    python = str(venv / "bin/python")
    version = subprocess.run([python, "-c", PEX_VERSION_PROBE], capture_output=True, text=True, check=True)
    tag = version.stdout.strip()
    out = venv / "pex-cli"
    shutil.rmtree(out, ignore_errors=True)
    (out / "wheel").mkdir(parents=True)
    subprocess.run(
        [*pip(venv, outside), "download", "--no-deps", "-d", str(out / "wheel"), f"pex=={tag.lstrip('v')}"], check=True
    )
    (wheel,) = (out / "wheel").glob("pex-*.whl")
    # pex installed in a venv of its own builds a PEX of pex from that very wheel.
    make_venv(python, out / "tool")
    subprocess.run([*pip(out / "tool", outside), "install", "--no-deps", str(wheel)], check=True)
    # No --no-pypi: pex may fetch the pip it runs on (pip 24.1 on CPython 3.14) from the index. Its
    # stdout (the PEX's path) goes to stderr: this script's stdout is the venv's path, for run-tests.
    subprocess.run(
        [str(out / "tool/bin/pex"), str(wheel), "-c", "pex", "-o", str(out / "pex")], check=True, stdout=sys.stderr
    )
    data = (out / "pex").read_bytes()
    record = {"version": tag, "path": str(out / "pex"), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (venv / "pex-cli.json").write_text(json.dumps(record, indent=1) + "\n")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--bare":
        # A venv with that Pants and nothing else, for the wheel test to install the wheel into.
        new_venv(sys.argv[3], Path(sys.argv[2]), probe(sys.argv[3])["sites"])
        return
    if len(sys.argv) != 2:
        die("usage: overlay.py <python in which Pants imports> | --bare <new venv> <that python>")
    python = sys.argv[1]
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        die(f"OCCLUM_TEST_PANTS_PYTHON={python!r} is not an executable file.")
    info = probe(python)
    lock = HERE / f"requirements-{info['python']}.lock"
    if not lock.is_file():
        locks = ", ".join(sorted(p.name for p in HERE.glob("requirements-*.lock")))
        die(f"Pants {info['pants']} runs on CPython {info['python']}, and there is no {lock.name} ({locks}).")
    key = hashlib.sha256(
        "\0".join([os.path.realpath(python), python, info["pants"], lock.read_text()]).encode()
    ).hexdigest()[:16]
    cache = Path(
        os.environ.get("PANTS_VENV_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "occlum-pants"
    )
    venv = cache / f"under-test-{info['pants']}-{key}"
    if not (venv / ".complete").is_file():
        tmp = Path(f"{venv}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        new_venv(python, tmp, info["sites"])
        reqs = missing_requirements(lock, set(info["have"]))
        if reqs:
            (tmp / "requirements.txt").write_text(reqs)
            install = [*pip(tmp, python), "install", "--no-deps", "--require-hashes"]
            subprocess.run([*install, "-r", str(tmp / "requirements.txt")], check=True)
        shutil.rmtree(venv, ignore_errors=True)
        tmp.rename(venv)
        for script in (venv / "bin").iterdir():  # venv scripts carry the tmp path in their shebangs
            if script.is_file() and not script.is_symlink():
                data = script.read_bytes()
                if str(tmp).encode() in data:
                    script.write_bytes(data.replace(str(tmp).encode(), str(venv).encode()))
        make_pex_cli(venv, python)
        (venv / ".complete").write_text(json.dumps(info, indent=1) + "\n")
    check = subprocess.run(
        [str(venv / "bin/python"), "-c", "import pants.version, pytest; print(pants.version.VERSION)"],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0 or check.stdout.strip() != info["pants"]:
        die(f"the venv {venv} does not import Pants {info['pants']}: {check.stderr.strip()[-500:]}")
    print(venv)


if __name__ == "__main__":
    main()
