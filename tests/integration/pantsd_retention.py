"""What repeated no-op runs leave alive in pantsd, measured with the heap probe (tests and bench).

`install_probe` adds the probe backend (tests/fixtures/pantsd_probe) to a repo copy; it must be
there from the first run, since a change of backends restarts pantsd. `measure` then runs a goal
`runs` times between a probe `mark` and `report`, every run with `--stats-memory-summary`, which
lists the engine's memoized nodes per rule. A rule whose inputs changed from run to run (a
timestamp, a session value) would add nodes and values on every run; an unchanged repo must add
none of this backend's. The probe also says how much of the heap kept was allocated with this
backend's code on the stack, apart from Pants' per-run setup (loading backends, parsing options),
which Pants keeps for every run whatever the goal.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "tests/fixtures/pantsd_probe"
BACKEND_NODE_PREFIX = "occlum."

# Runs Pants in the repo copy with these arguments and returns its stderr; raises if it fails.
Run = Callable[..., str]

_NATIVE = re.compile(r"^\s+\d+\t\t(\d+)\t\t\(native\) (\S+)$", re.M)


def install_probe(root: Path) -> None:
    shutil.copytree(PROBE, root / "pants-plugins/pantsd_probe", ignore=shutil.ignore_patterns("__pycache__"))
    toml = root / "pants.toml"
    before = toml.read_text()
    after = before.replace('  "occlum",\n', '  "occlum",\n  "pantsd_probe",  # tests and bench only\n', 1)
    assert after != before, "pants.toml's backend_packages changed; update install_probe"
    toml.write_text(after)


def native_nodes(stderr: str) -> dict[str, int]:
    """Node counts per rule from Pants' `--stats-memory-summary` log."""
    counts = {name: int(n) for n, name in _NATIVE.findall(stderr)}
    assert counts, "no memory summary in the log (was --stats-memory-summary passed?)"
    return counts


@dataclass(frozen=True)
class Retention:
    goal: str
    runs: int
    traced_bytes_per_run: float  # Python heap kept per Pants run (tracemalloc)
    backend_bytes_per_run: float  # the part allocated with this backend's code on the stack
    malloc_bytes_per_run: float | None  # C heap in use, change per Pants run (None: not glibc)
    backend_objects_grown: dict  # objects of `occlum.*` types, change over the runs
    backend_nodes_grown: dict  # engine nodes of `occlum.*` rules, change over the runs
    backend_nodes: int  # engine nodes of `occlum.*` rules after the last run
    sessions_grown: int  # Pants run sessions (OptionsBootstrapper) still alive, change
    top_types_grown: list

    def show_malloc(self) -> str:
        return "n/a" if self.malloc_bytes_per_run is None else f"{self.malloc_bytes_per_run / 1024:+.0f} KiB"

    def line(self) -> str:
        return (
            f"{self.goal}: {self.traced_bytes_per_run / 1024:.0f} KiB of Python heap kept per run over "
            f"{self.runs} no-op runs ({self.backend_bytes_per_run:+.0f} bytes by the backend's code), "
            f"C heap in use {self.show_malloc()} per run; backend objects kept "
            f"{sum(self.backend_objects_grown.values())}; backend engine nodes added "
            f"{sum(self.backend_nodes_grown.values())} (of {self.backend_nodes}); "
            f"run sessions kept {self.sessions_grown}"
        )


def start(run: Run) -> None:
    run("heap-probe", "--heap-probe-mode=start")


def report(run: Run, out: Path) -> dict:
    run("heap-probe", "--heap-probe-mode=report", f"--heap-probe-out={out}")
    return json.loads(out.read_text())


def measure(run: Run, goal: Sequence[str], runs: int, out: Path, name: str = "") -> Retention:
    """`goal` run `runs` times (at least 2) on an unchanged repo; `start` must have been run."""
    run("--stats-memory-summary", *goal)  # settle: anything a first run with these options makes
    run("heap-probe", "--heap-probe-mode=mark")
    first = native_nodes(run("--stats-memory-summary", *goal))
    for _ in range(runs - 2):
        run("--stats-memory-summary", *goal)
    last = native_nodes(run("--stats-memory-summary", *goal))
    data = report(run, out)
    # The report is a Pants run too: every run between the two snapshots keeps its session.
    pants_runs = runs + 1
    nodes = {
        k: last.get(k, 0) - first.get(k, 0)
        for k in set(first) | set(last)
        if k.startswith(BACKEND_NODE_PREFIX) and last.get(k, 0) != first.get(k, 0)
    }
    return Retention(
        goal=name or f"{goal[0]} of {len(goal) - 1} targets",
        runs=runs,
        traced_bytes_per_run=data["traced_bytes_grown"] / pants_runs,
        backend_bytes_per_run=data["traced_bytes_grown_by_origin"].get("occlum", 0) / pants_runs,
        malloc_bytes_per_run=None if data["malloc_bytes_grown"] is None else data["malloc_bytes_grown"] / pants_runs,
        backend_objects_grown=data["backend_objects_grown"],
        backend_nodes_grown=nodes,
        backend_nodes=sum(n for k, n in last.items() if k.startswith(BACKEND_NODE_PREFIX)),
        sessions_grown=data["sessions_grown"],
        top_types_grown=data["top_types_grown"],
    )
