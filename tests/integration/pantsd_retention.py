"""What repeated no-op runs leave alive in pantsd, measured with the heap probe (tests and bench).

`install_probe` adds the probe backend (tests/fixtures/pantsd_probe) to a repo copy; it must be
there from the first run, since a change of backends restarts pantsd. `measure` then runs a goal
`runs` times between a probe `mark` and `report`, and reads the engine's graph size after each run
from the scheduler's debug log (`GRAPH_LOG`, which pantsd takes at its start: pass it on every
run). A rule whose inputs changed from run to run (a time, a session
value) would add graph nodes, and keep values, on every run; an unchanged repo must add no more
nodes per run than `pants list` does, and keep none of this backend's objects or heap.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "tests/fixtures/pantsd_probe"
# Pants 2.17.1 logs "there are N total nodes" (the graph's size) at debug level after each request.
GRAPH_LOG = "--log-levels-by-target={'pants.engine.internals.scheduler': 'debug'}"
_GRAPH_SIZE = re.compile(r"there are (\d+) total nodes")

# Runs Pants in the repo copy with these arguments and returns its stderr; raises if it fails.
Run = Callable[..., str]


def install_probe(root: Path) -> None:
    shutil.copytree(PROBE, root / "pants-plugins/pantsd_probe", ignore=shutil.ignore_patterns("__pycache__"))
    toml = root / "pants.toml"
    before = toml.read_text()
    after = before.replace('  "occlum",\n', '  "occlum",\n  "pantsd_probe",  # tests and bench only\n', 1)
    assert after != before, "pants.toml's backend_packages changed; update install_probe"
    toml.write_text(after)


def graph_size(stderr: str) -> int:
    found = _GRAPH_SIZE.findall(stderr)
    assert found, f"no graph size in the log (was {GRAPH_LOG} passed?)"
    return int(found[-1])


@dataclass(frozen=True)
class Retention:
    goal: str
    runs: int
    traced_bytes_per_run: float  # Python heap kept per Pants run (tracemalloc)
    backend_bytes_per_run: float  # of it, allocated by this backend's code outside Pants' setup
    backend_setup_bytes_per_run: float  # allocated by this backend's code during Pants' setup
    malloc_bytes_per_run: Optional[float]  # glibc's bytes in use, change per Pants run (None: not glibc)
    graph_nodes_per_run: float  # the engine's graph, nodes added per no-op run
    backend_objects_grown: dict  # objects of `occlum.*` types, change over the runs
    sessions_grown: int  # Pants run sessions (OptionsBootstrapper) still alive, change
    top_types_grown: list

    def show_malloc(self) -> str:
        return "n/a" if self.malloc_bytes_per_run is None else f"{self.malloc_bytes_per_run / 1024:+.0f} KiB"

    def line(self) -> str:
        return (
            f"{self.goal}: {self.traced_bytes_per_run / 1024:.0f} KiB of Python heap kept per run over "
            f"{self.runs} no-op runs ({self.backend_bytes_per_run:.0f} bytes by the backend's code, "
            f"{self.backend_setup_bytes_per_run:.0f} by its code in Pants' setup); C heap in use "
            f"{self.show_malloc()} per run; graph nodes added per run {self.graph_nodes_per_run:g}; "
            f"backend objects kept {sum(self.backend_objects_grown.values())}; run sessions kept {self.sessions_grown}"
        )


def start(run: Run) -> None:
    run("heap-probe", "--heap-probe-mode=start")


def report(run: Run, out: Path) -> dict:
    run("heap-probe", "--heap-probe-mode=report", f"--heap-probe-out={out}")
    return json.loads(out.read_text())


def measure(run: Run, goal: Sequence[str], runs: int, out: Path, name: str = "") -> Retention:
    """`goal` run `runs` times on an unchanged repo; `start` must have been run, and `run` pass `GRAPH_LOG`."""
    assert runs >= 2, "the graph's growth needs two runs at least"
    run(*goal)  # settle: anything a first run with these options makes
    run("heap-probe", "--heap-probe-mode=mark")
    sizes = [graph_size(run(*goal)) for _ in range(runs)]
    data = report(run, out)
    # Every Pants run between the two censuses keeps its session, the report's included; only the
    # goal's runs run the backend's rules.
    pants_runs = runs + 1
    malloc = data["malloc_bytes_grown"]
    return Retention(
        goal=name or f"{goal[0]} of {len(goal) - 1} targets",
        runs=runs,
        traced_bytes_per_run=data["traced_bytes_grown"] / pants_runs,
        backend_bytes_per_run=data["backend_bytes_grown"] / runs,
        backend_setup_bytes_per_run=data["backend_setup_bytes_grown"] / pants_runs,
        malloc_bytes_per_run=None if malloc is None else malloc / pants_runs,
        graph_nodes_per_run=(sizes[-1] - sizes[0]) / (runs - 1),
        backend_objects_grown=data["backend_objects_grown"],
        sessions_grown=data["sessions_grown"],
        top_types_grown=data["top_types_grown"],
    )
