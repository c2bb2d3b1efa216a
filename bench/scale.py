"""Scale rows: a monorepo of N services sharing one JDK pin, and an image twice as large.

Each service is a directory with its own Java source, jar build (`shell_command`), `dragonwell_jdk`
target (all with the same url and sha256, as teams pin one JDK in many BUILD files) and
`occlum_java_image`. For each row, in a fresh repo copy with an empty store and a new pantsd:

* cold: `pants package` of every service;
* jar change: one service's Java source changes, `pants package` of every service again (what CI
  runs): only that service's jar, `occlum build` and package may run;
* the local store's size after the cold build.

The "large image" row adds, through `files`, a payload as large as the JDK to one service.
"""

from __future__ import annotations

import re
import shutil
import statistics
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

SERVICE_BUILD = """\
files(name="src", sources=["src/**/*.java"])

shell_command(
    name="app",
    command=\"\"\"
        mkdir -p classes &&
        javac --release 11 -d classes $(find src -name '*.java' | sort) &&
        jar --create --file app.jar --main-class hello.HelloService --date=1980-01-01T00:00:02Z -C classes .
    \"\"\",
    tools=["javac", "jar", "mkdir", "find", "sort"],
    execution_dependencies=[":src"],
    output_files=["app.jar"],
    workdir="{path}",
    root_output_directory="{path}",
)

dragonwell_jdk(name="jdk", url="file://{archive}", sha256="{sha}", libc="glibc")
{payload_target}
occlum_java_image(
    name="enclave",
    jdk=":jdk",
    jar=":app",
    jvm_options=["-Xmx512m", "-XX:MaxMetaspaceSize=64m"],
    main_args=["8080"],{files}
)
"""


@dataclass
class Row:
    name: str
    services: int
    cold: float = 0.0
    cold_ran: dict = field(default_factory=dict)
    changes: list[float] = field(default_factory=list)
    change_ran: list[dict] = field(default_factory=list)
    store_bytes: int = 0
    manual_one: float = 0.0
    rss_after_cold: int = 0
    rss_after_changes: int = 0
    rss_noop_package: list[int] = field(default_factory=list)  # after each no-op `package`
    rss_noop_list: list[int] = field(default_factory=list)  # after each `list` (Pants alone)
    retention: dict = field(default_factory=dict)  # pantsd_retention.Retention by goal (20 services only)

    @property
    def change(self) -> float:
        return statistics.median(self.changes)


def write_services(root: Path, n: int, archive: Path, sha: str, payload: Path | None = None) -> list[str]:
    """N service directories under services/; returns their image targets."""
    java = (root / "examples/hello-service/src/hello/HelloService.java").read_text()
    targets = []
    for i in range(n):
        path = f"services/svc{i:02d}"
        src = root / path / "src/hello"
        src.mkdir(parents=True)
        (src / "HelloService.java").write_text(java.replace("Hello from", f"Hello from service {i} in"))
        payload_target, files = "", ""
        if payload is not None and i == 0:
            shutil.copyfile(payload, root / path / "payload.bin")
            payload_target = '\nfile(name="payload", source="payload.bin")\n'
            files = '\n    files={"/srv/data/payload.bin": ":payload"},'
        (root / path / "BUILD").write_text(
            SERVICE_BUILD.format(path=path, archive=archive, sha=sha, payload_target=payload_target, files=files)
        )
        targets.append(f"{path}:enclave")
    return targets


def write_archives(root: Path, n: int) -> list[str]:
    """N Pants-only `archive` targets under archs/: `package` with none of this backend's rules."""
    targets = []
    for i in range(n):
        d = root / f"archs/a{i:02d}"
        d.mkdir(parents=True)
        (d / "x.txt").write_text(f"archive {i}\n")
        (d / "BUILD").write_text('file(name="f", source="x.txt")\narchive(name="arch", format="tar", files=[":f"])\n')
        targets.append(f"archs/a{i:02d}:arch")
    return targets


def change_java(root: Path, i: int, stamp: int) -> None:
    src = root / f"services/svc{i:02d}/src/hello/HelloService.java"
    src.write_text(re.sub(r'GREETING = "[^"]*"', f'GREETING = "changed {stamp}\\\\n"', src.read_text()))


def make_payload(archive: Path, dest: Path) -> Path:
    """As large and as compressible as the JDK: its unpacked bytes, in one file."""
    with tarfile.open(archive) as tf, open(dest, "wb") as out:
        for m in tf.getmembers():
            if m.isfile():
                f = tf.extractfile(m)
                assert f is not None
                out.write(f.read())
    return dest


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pantsd_pid(root: Path) -> int:
    pid_file = root / ".pids" / "pantsd" / "pid"
    if not pid_file.exists():
        found = list((root / ".pids").rglob("pantsd/pid"))
        pid_file = found[0]
    return int(pid_file.read_text().strip())


def show_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def run_row(
    row: Row,
    root: Path,
    targets: list[str],
    pants: Callable[..., tuple[float, str]],
    ran: Callable[[str], dict],
    store: Path,
    changes: int,
    noop_runs: int = 0,
) -> None:
    """Cold; then `changes` jar changes, each in another service; pantsd RSS; then no-op runs."""
    row.cold, log = pants("package", *targets)
    row.cold_ran = ran(log)
    row.store_bytes = dir_bytes(store)
    row.rss_after_cold = rss_of(pantsd_pid(root))
    for i in range(changes):
        change_java(root, i % len(targets), int(time.time() * 1000))
        t, log = pants("package", *targets)
        row.changes.append(t)
        row.change_ran.append(ran(log))
    row.rss_after_changes = rss_of(pantsd_pid(root))
    for _ in range(noop_runs):
        pants("package", *targets)
        row.rss_noop_package.append(rss_of(pantsd_pid(root)))
    for _ in range(noop_runs):
        pants("list", *targets)
        row.rss_noop_list.append(rss_of(pantsd_pid(root)))


def growth_per_run(series: list[int]) -> float:
    return (series[-1] - series[0]) / (len(series) - 1) if len(series) > 1 else 0.0


def _growth(row: Row, one: Row | None) -> str:
    """What each service past the first adds to the store (against the 1-service row of the same image)."""
    if one is None or row.services == 1:
        return "-"
    return show_bytes((row.store_bytes - one.store_bytes) / (row.services - 1))


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| row | services | cold: Pants | cold: manual (N x one) | Download / Extract (cold) "
        "| jar change: Pants | steps run (jar / build and package) | jar change: manual | ratio manual / Pants "
        "| store after cold | store / N | store growth per added service |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    one = next((r for r in rows if r.services == 1), None)
    for r in rows:
        # Steps run per jar change: the same in every run, else shown as a/b.
        c = {k: "/".join(str(v) for v in sorted({d[k] for d in r.change_ran})) for k in r.change_ran[0]}
        lines.append(
            f"| {r.name} | {r.services} | {r.cold:.1f} s | {r.manual_one * r.services:.1f} s "
            f"| {r.cold_ran['download']} / {r.cold_ran['extract']} | {r.change:.2f} s "
            f"| {c['jar']} / {c['occlum build']} | {r.manual_one:.2f} s "
            f"| {r.manual_one / r.change:.2f}x | {show_bytes(r.store_bytes)} "
            f"| {show_bytes(r.store_bytes / r.services)} | {_growth(r, one)} |"
        )
    return lines
