"""Where a step's time goes: sandbox setup, the tool's own work, output capture, the rest.

One `pants package` runs with Pants' workunit logger and `--keep-sandboxes=always`. For each step:

* wall: the `run_local_process` workunit, from sandbox creation to its removal;
* setup: its `setup_sandbox` child (writing the input digest into the sandbox);
* run + capture: `total_elapsed_ms` in the process metadata (from spawn to outputs in the store);
* own work: the same command re-run by hand in a copy of the kept sandbox with its outputs removed
  (warm page cache, no Pants): what the tool itself costs;
* capture = run + capture - own work; other = wall - setup - run + capture (sandbox creation and
  removal, scheduling).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Step (description prefix) -> what it writes, removed before re-running it by hand.
STEPS = {
    "Running the `shell_command`": ("**/*.jar", "**/classes"),
    # `.__occlum_status` stays: `occlum new` wrote it, and `occlum build` checks it before it runs.
    # The package is written in the same step.
    "occlum build": ("occlum_instance/build", "occlum_instance/run", "occlum_instance/.sgx_mode", "*.tar.gz"),
}
SEGMENTS = ".occlum-package-segments"  # the package's named cache, as the sandbox links it

WORKUNIT_FLAGS = (
    "--backend-packages=+['pants.backend.experimental.tools.workunit_logger']",
    "--workunit-logger-enabled",
    "--keep-sandboxes=always",
)


@dataclass(frozen=True)
class Split:
    step: str
    wall: float
    setup: float
    run_and_capture: float
    own: float

    @property
    def capture(self) -> float:
        return max(0.0, self.run_and_capture - self.own)

    @property
    def other(self) -> float:
        return max(0.0, self.wall - self.setup - self.run_and_capture)


def _secs(wu: dict) -> float:
    return wu.get("duration_secs", 0) + wu.get("duration_nanos", 0) / 1e9


def _segments_as_before(copy: Path, before: set[str]) -> None:
    """Point the copy's segment cache at the segments that were kept before the run: the run by hand
    then deflates what the run deflated, not less."""
    link = copy / SEGMENTS
    if not link.is_symlink():
        return
    target = Path(os.readlink(link))
    link.unlink()
    link.mkdir()
    for name in before:
        with contextlib.suppress(OSError):
            os.link(target / name, link / name)


def _own_work(sandbox: Path, outputs: tuple[str, ...], reps: int, segments_before: set[str]) -> float:
    times = []
    for _ in range(reps):
        copy = Path(tempfile.mkdtemp(prefix="bench-rerun-"))
        try:
            shutil.copytree(sandbox, copy, symlinks=True, dirs_exist_ok=True)
            _segments_as_before(copy, segments_before)
            for pattern in outputs:
                for p in copy.glob(pattern):
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            script = (copy / "__run.sh").read_text().replace(f"cd {sandbox}", f"cd {copy}", 1)
            (copy / "__run.sh").write_text(script)
            t = time.perf_counter()
            r = subprocess.run(["bash", str(copy / "__run.sh")], capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            if r.returncode != 0:
                raise RuntimeError(f"re-running {sandbox} failed:\n{(r.stdout + r.stderr)[-2000:]}")
        finally:
            shutil.rmtree(copy, ignore_errors=True)
    return statistics.median(times)


def kept_segments(named_caches: Path) -> set[str]:
    """The package segments kept in these named caches now (call before the run split_steps reads)."""
    folder = named_caches / "occlum_package_segments"
    return set(os.listdir(folder)) if folder.is_dir() else set()


def split_steps(logdir: Path, stderr: str, reps: int = 3, segments_before: frozenset[str] = frozenset()) -> list[Split]:
    """The split of each step in STEPS that ran, from the run's workunit log and kept sandboxes."""
    [log] = sorted(logdir.glob("*.json"))[-1:]
    units = json.loads(log.read_text())
    by_id = {u["span_id"]: u for u in units}
    kept = dict(
        (desc.strip().strip('"'), Path(d))
        for d, desc in re.findall(r"Preserving local process execution dir (\S+) for (.*)", stderr)
    )
    out = []
    for u in units:
        desc = u.get("description") or ""
        step = next((s for s in STEPS if u["name"] == "run_local_process" and desc.startswith(s)), None)
        if step is None:
            continue
        setup = sum(_secs(c) for c in units if c.get("parent_id") == u["span_id"] and c["name"] == "setup_sandbox")
        parent = by_id.get(u.get("parent_id"), {})
        elapsed = (parent.get("metadata") or {}).get("total_elapsed_ms", 0) / 1000
        own = _own_work(kept[desc], STEPS[step], reps, set(segments_before)) if desc in kept else float("nan")
        out.append(Split(step, _secs(u), setup, elapsed, own))
    return out


def table(splits: list[Split]) -> list[str]:
    lines = [
        "| step | wall | sandbox setup | tool's own work | output capture | other (sandbox create/remove) |",
        "|---|---|---|---|---|---|",
    ]
    for s in splits:
        lines.append(
            f"| {s.step} | {s.wall:.2f} s | {s.setup:.2f} s | {s.own:.2f} s | {s.capture:.2f} s | {s.other:.2f} s |"
        )
    return lines
