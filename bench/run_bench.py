"""Benchmark cold, no-op and incremental builds of the example enclave, remote-cache hits, and scale.

    ./bench/run                 # ~25 min on 2 cores; prints tables (also written to bench/last-results.md)
    ./bench/run --quick         # fewer repetitions
    ./bench/run --only scale    # one scenario (for development; prints its figures, no table)

The Occlum toolchain here is the TEST DOUBLE in tests/occlum_double/ (no Occlum or SGX on these
machines). Like the real one, its `occlum build` reads and hashes every file of image/, so build
work grows with the image. The JDK is the host's (~190 MB, ~100 files) packed in Dragonwell's
layout, so layout and extraction costs are those of a real JDK. Every figure in a table comes from
one run on one machine; compare ratios, not absolute seconds.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for sub in ("tests/fixtures", "tests", "bench"):  # the tests' helpers, as pytest.ini puts them on the path
    sys.path.insert(0, str(REPO / sub))

import scale  # noqa: E402
import step_split  # noqa: E402
from host_jdk import make_host_jdk_archive  # noqa: E402
from integration import pantsd_retention  # noqa: E402
from integration.pants_repo import copy_repo  # noqa: E402
from occlum_double.make_install import make_fake_occlum_install  # noqa: E402
from remote_cache.buildgrid import running_buildgrid  # noqa: E402

VENV = Path(sys.executable).parent.parent
NATIVE = VENV / "lib/python3.9/site-packages/pants/bin/native_client"
KINDS = {
    "download": "Download",
    "extract": "Extract and validate",
    "jar": "Running the `shell_command`",
    "occlum new": "occlum new",
    "occlum build": "occlum build",  # and the package, in the same sandbox
}
TARGET = "examples/hello-service:enclave"


NOOP_NATIVE = "no-op rebuild, pantsd warm, native"
ScaleRow = scale.Row  # `scale` names a Bench method too, inside the class


class Bench:
    def __init__(self, work: Path, reps: int) -> None:
        self.work, self.reps = work, reps
        self.root = copy_repo(work)
        self.install = make_fake_occlum_install(work / "opt" / "occlum", "0.31.0")
        self.jdk_dir = work / "mirror"
        self.archive, self.sha = make_host_jdk_archive(self.jdk_dir / "host-jdk.tar.gz")
        self.pin_jdk(self.archive, self.sha)
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(work / "home"),
            "LC_ALL": "C.UTF-8",
            "NO_SCIE_WARNING": "1",
        }
        self.base = [
            "--no-pantsrc",
            f"--pythonpath=['{self.root / 'pants-plugins'}']",
            f"--occlum-executable-search-paths=['{self.install / 'build' / 'bin'}']",
            "--occlum-stage-only=no",
        ]
        self.rows: list[tuple] = []

    # --- helpers ---------------------------------------------------------------------------

    def pin_jdk(self, archive: Path, sha: str) -> None:
        build = self.root / "examples/jdk/BUILD"
        text = re.sub(
            r"dragonwell_jdk\([^)]*\)",
            f'dragonwell_jdk(name="dragonwell", url="file://{archive}", sha256="{sha}", libc="glibc")',
            build.read_text(),
        )
        build.write_text(text)

    def pants(
        self, *args: str, client: str = "native", store: str = "store", extra: tuple = (), root: Path | None = None
    ) -> tuple[float, str]:
        root = root or self.root
        base = [*self.base[:1], f"--pythonpath=['{root / 'pants-plugins'}']", *self.base[2:]]
        # Its own named caches (the package step's kept segments), beside its own store.
        opts = [
            *base,
            f"--local-store-dir={self.work / store}",
            f"--named-caches-dir={self.work / store}-named",
            *extra,
        ]
        if client == "native":
            env = {**self.env, "_PANTS_SERVER_EXE": str(VENV / "bin" / "pants")}
            argv = [str(NATIVE), *opts, *args]
        else:
            env, argv = self.env, [str(VENV / "bin" / "pants"), *opts, *args]
        t = time.perf_counter()
        r = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            raise RuntimeError(f"pants {' '.join(args)} failed:\n{r.stderr[-3000:]}")
        return dt, r.stderr

    @staticmethod
    def ran(stderr: str) -> dict:
        return {k: len(re.findall(rf"Completed: {re.escape(v)}", stderr)) for k, v in KINDS.items()}

    def record(self, name: str, times: list[float], logs: list[str], note: str = "") -> None:
        runs = [self.ran(log) for log in logs]
        # Per kind: how many ran in a typical (the last) run; all runs are shown when they differ.
        counts = {k: sorted({r[k] for r in runs}) for k in KINDS}
        self.rows.append((name, statistics.median(times), len(times), counts, note))
        print(f"  {name}: median {statistics.median(times):.2f}s over {len(times)}; ran {runs[-1]}", flush=True)

    def kill_pantsd(self, root: Path | None = None) -> None:
        root = root or self.root
        subprocess.run(["pkill", "-f", f"pantsd.*{root}"], capture_output=True)
        pids = root / ".pids"
        if pids.exists():
            for pidfile in pids.rglob("pid"):
                try:
                    os.kill(int(pidfile.read_text()), 9)
                except (ValueError, ProcessLookupError):
                    pass
            shutil.rmtree(pids, ignore_errors=True)
        time.sleep(1)

    def toggle_java(self, i: int) -> None:
        src = self.root / "examples/hello-service/src/hello/HelloService.java"
        text = re.sub(r'GREETING = "[^"]*"', f'GREETING = "Hello #{i} from an Occlum enclave!\\\\n"', src.read_text())
        src.write_text(text)

    def set_threads(self, n: int) -> None:
        build = self.root / "examples/hello-service/BUILD"
        text = re.sub(r"\n    max_num_of_threads=\d+,", "", build.read_text())
        build.write_text(
            text.replace('    main_args=["8080"],', f'    main_args=["8080"],\n    max_num_of_threads={n},')
        )

    # --- scenarios -------------------------------------------------------------------------

    def cold(self) -> None:
        times, logs = [], []
        for i in range(max(2, self.reps - 1)):
            self.kill_pantsd()
            dt, log = self.pants("package", TARGET, store=f"cold-store-{i}")
            times.append(dt)
            logs.append(log)
        self.record("cold build (empty store, pantsd starting)", times, logs)

    def warm_noop(self) -> None:
        self.kill_pantsd()
        self.pants("package", TARGET)  # warm the store and pantsd
        times, logs = [], []
        for _ in range(self.reps + 2):
            dt, log = self.pants("package", TARGET)
            times.append(dt)
            logs.append(log)
        self.record("no-op rebuild, pantsd warm, native client", times, logs)
        lt = [self.pants("list", TARGET)[0] for _ in range(self.reps + 2)]
        self.rows.append(
            ("`pants list` of the target, native client", statistics.median(lt), len(lt), None, "reference")
        )
        py = [self.pants("package", TARGET, client="python")[0] for _ in range(self.reps)]
        self.rows.append(
            ("no-op rebuild, pantsd warm, Python client", statistics.median(py), len(py), None, "reference")
        )
        self.noop_ratio = statistics.median(times) / statistics.median(lt)
        self.native_vs_python = statistics.median(py) / statistics.median(times)

    def jar_change(self) -> None:
        times, logs = [], []
        for i in range(self.reps):
            self.toggle_java(100 + i)
            dt, log = self.pants("package", TARGET)
            times.append(dt)
            logs.append(log)
        self.record("after a jar (Java source) change", times, logs)
        self.jar_times = times

    def config_change(self) -> None:
        times, logs = [], []
        for i in range(self.reps):
            self.set_threads(70 + i)
            dt, log = self.pants("package", TARGET)
            times.append(dt)
            logs.append(log)
        self.record("after an Occlum.json field change (max_num_of_threads)", times, logs)

    def jdk_change(self) -> None:
        times, logs = [], []
        for i in range(self.reps):
            # A new pin each time: the same JDK plus one marker file, so a new sha256.
            variant = self.jdk_dir / f"host-jdk-{i}.tar.gz"
            with tarfile.open(self.archive) as src, tarfile.open(variant, "w:gz", compresslevel=1) as dst:
                for m in src.getmembers():
                    dst.addfile(m, src.extractfile(m) if m.isfile() else None)
                data = f"variant {i}\n".encode()
                info = tarfile.TarInfo(f"{src.getmembers()[0].name.split('/')[0]}/conf/bench-variant")
                info.size = len(data)
                import io

                dst.addfile(info, io.BytesIO(data))
            self.pin_jdk(variant, hashlib.sha256(variant.read_bytes()).hexdigest())
            dt, log = self.pants("package", TARGET)
            times.append(dt)
            logs.append(log)
        self.pin_jdk(self.archive, self.sha)
        self.record("after a JDK pin change", times, logs)

    def remote(self) -> None:
        with running_buildgrid(self.work / "bgd") as (address, _cas):
            remote = (
                "--remote-cache-read",
                "--remote-cache-write",
                f"--remote-store-address={address}",
                "--remote-instance-name=main",
                "--cache-content-behavior=defer",  # as pants.ci.toml
            )
            self.kill_pantsd()
            self.toggle_java(900)  # a state no earlier scenario built, so the first run fills the remote
            self.pants("--no-pantsd", "package", TARGET, client="python", store="remote-seed", extra=remote)
            times, logs = [], []
            for i in range(self.reps):
                dt, log = self.pants(
                    "--no-pantsd", "package", TARGET, client="python", store=f"remote-fresh-{i}", extra=remote
                )
                times.append(dt)
                logs.append(log)
            self.record("fresh local store, warm remote cache (--no-pantsd)", times, logs, "new runner")
            base = [
                self.pants("--no-pantsd", "package", TARGET, client="python", store="remote-seed")[0] for _ in range(2)
            ]
            self.rows.append(
                (
                    "same, local store warm, no remote (--no-pantsd)",
                    statistics.median(base),
                    2,
                    None,
                    "reference: startup cost",
                )
            )

    def split(self) -> None:
        """One jar change with the workunit logger and kept sandboxes: where each step's time goes."""
        logdir = self.work / "workunits"
        logdir.mkdir(exist_ok=True)
        self.kill_pantsd()
        self.toggle_java(700)
        flags = (*step_split.WORKUNIT_FLAGS, f"--workunit-logger-logdir={logdir}")
        _, log = self.pants("package", TARGET, extra=flags)
        self.splits = step_split.split_steps(logdir, log)
        for x in self.splits:
            print(f"  {x}", flush=True)
        for sandbox in re.findall(r"Preserving local process execution dir (\S+) for", log):
            shutil.rmtree(sandbox, ignore_errors=True)
        self.kill_pantsd()

    def scale(self) -> None:
        """N = 1, 5, 20 services on one pin; one service with an image twice as large."""
        self.scale_rows: list[scale.Row] = []
        payload = scale.make_payload(self.archive, self.work / "payload.bin")
        manual_plain = self.manual_once()
        manual_large = self.manual_once(payload)
        for name, n, big in (
            ("1 service", 1, False),
            ("5 services", 5, False),
            ("20 services", 20, False),
            ("1 service, image x2", 1, True),
        ):
            row_dir = self.work / f"scale-{n}-{int(big)}"
            row_dir.mkdir()
            root = copy_repo(row_dir)
            targets = scale.write_services(root, n, self.archive, self.sha, payload if big else None)
            archives: list[str] = []
            extra: tuple[str, ...] = ()
            if n == 20:
                # The heap probe and the graph-size log must be there from pantsd's start (a new
                # backend restarts pantsd; the log level is read when it starts).
                pantsd_retention.install_probe(root)
                archives = scale.write_archives(root, n)
                extra = (pantsd_retention.GRAPH_LOG,)
            store = f"scale-store-{n}-{int(big)}"
            row = scale.Row(name, n, manual_one=manual_large if big else manual_plain)
            scale.run_row(
                row,
                root,
                targets,
                functools.partial(self.pants, store=store, root=root, extra=extra),
                self.ran,
                self.work / store,
                changes=self.reps,
                noop_runs=15 if n == 20 else 0,
            )
            if n == 20:
                self.retention(row, root, store, targets, archives, extra)
            print(
                f"  {name}: cold {row.cold:.1f}s ran {row.cold_ran}; jar changes {row.changes} ran "
                f"{row.change_ran}; store {scale.show_bytes(row.store_bytes)}; pantsd RSS "
                f"{row.rss_after_cold >> 20} MiB, {row.rss_after_changes >> 20} MiB, no-op package "
                f"{[b >> 20 for b in row.rss_noop_package]}, list {[b >> 20 for b in row.rss_noop_list]}",
                flush=True,
            )
            self.scale_rows.append(row)
            self.kill_pantsd(root)
            shutil.rmtree(self.work / store, ignore_errors=True)
            shutil.rmtree(row_dir, ignore_errors=True)

    def retention(
        self, row: ScaleRow, root: Path, store: str, targets: list[str], archives: list[str], extra: tuple[str, ...]
    ) -> None:
        """What no-op runs of 20 services keep in pantsd, against Pants' own `package` and `list`."""

        def run(*args: str) -> str:
            return self.pants(*args, store=store, root=root, extra=extra)[1]

        run("package", *archives)  # built once, so the series below is a no-op
        pantsd_retention.start(run)  # after the RSS series: tracing slows pantsd
        for key, name, goal in (
            ("enclaves", "`package` of 20 enclaves", ("package", *targets)),
            ("archives", "`package` of 20 Pants-only `archive` targets", ("package", *archives)),
            ("list", "`list` of 20 enclaves", ("list", *targets)),
        ):
            r = pantsd_retention.measure(run, goal, 10, self.work / "retention.json", name)
            row.retention[key] = r
            print(f"  {r.line()}", flush=True)

    def layout_vs_tar(self) -> None:
        tool = REPO / "pants-plugins/occlum/jdk/extract_tool.py"
        ours, tars = [], []
        for _ in range(self.reps):
            d = Path(tempfile.mkdtemp(dir=self.work))
            t = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    str(tool),
                    "--archive",
                    str(self.archive),
                    "--out-dir",
                    str(d / "jdk"),
                    "--info-out",
                    str(d / "info.json"),
                    "--expect-libc",
                    "glibc",
                ],
                check=True,
            )
            ours.append(time.perf_counter() - t)
            (d / "tar").mkdir()
            t = time.perf_counter()
            subprocess.run(["tar", "xzf", str(self.archive), "-C", str(d / "tar")], check=True)
            tars.append(time.perf_counter() - t)
            shutil.rmtree(d)
        info = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"import tarfile;m=tarfile.open('{self.archive}').getmembers();"
                    "print(__import__('json').dumps([len(m), sum(x.size for x in m)]))",
                ],
                capture_output=True,
                text=True,
            ).stdout
        )
        self.layout = (statistics.median(ours), statistics.median(tars), info)

    def manual_once(self, payload: Path | None = None) -> float:
        """The seed's manual way, once, with the same double: every step, every time."""
        jar_dir = self.work / "manual-jar"

        def build_jar() -> Path:
            # Build the jar as a developer would (javac + jar), then the seed's shell steps.
            shutil.rmtree(jar_dir, ignore_errors=True)
            (jar_dir / "classes").mkdir(parents=True)
            srcs = [str(p) for p in (self.root / "examples/hello-service/src").rglob("*.java")]
            subprocess.run(["javac", "--release", "11", "-d", str(jar_dir / "classes"), *srcs], check=True)
            jar = ["jar", "--create", "--file", str(jar_dir / "app.jar"), "--main-class", "hello.HelloService"]
            subprocess.run([*jar, "-C", str(jar_dir / "classes"), "."], check=True)
            return jar_dir / "app.jar"

        return self.manual_flow(build_jar, payload)

    def manual_flow(self, build_jar: Callable[[], Path], payload: Path | None = None) -> float:
        """The manual flow around a jar `build_jar` makes: occlum new, copy the JDK, the jar and libz,
        the jq edits of Occlum.json, occlum build, occlum package. Returns its wall time."""
        occlum = self.install / "build" / "bin" / "occlum"
        jdk = self.work / "manual-jdk"
        if not jdk.exists():
            jdk.mkdir()
            with tarfile.open(self.archive) as tf:
                tf.extractall(jdk)
        top = next(jdk.iterdir())
        t = time.perf_counter()
        inst = self.work / "manual-instance"
        shutil.rmtree(inst, ignore_errors=True)
        jar = build_jar()
        subprocess.run([str(occlum), "new", str(inst)], check=True, capture_output=True)
        dest = inst / "image/usr/lib/jvm/java-11-alibaba-dragonwell/jre"
        shutil.copytree(top, dest, symlinks=True)
        (inst / "image/usr/lib/spring").mkdir(parents=True)
        shutil.copy2(jar, inst / "image/usr/lib/spring/app.jar")
        shutil.copy2(self.install / "toolchains/gcc/x86_64-linux-musl/lib/libz.so.1", inst / "image/lib/libz.so.1")
        if payload is not None:
            (inst / "image/srv/data").mkdir(parents=True)
            shutil.copy2(payload, inst / "image/srv/data/payload.bin")
        cfg = json.loads((inst / "Occlum.json").read_text())  # the jq edits
        cfg["resource_limits"].update(user_space_size="1680MB", kernel_space_heap_size="64MB", max_num_of_threads=64)
        cfg["process"].update(default_heap_size="256MB", default_mmap_size="1400MB")
        cfg["entry_points"] = ["/usr/lib/jvm/java-11-alibaba-dragonwell/jre/bin"]
        (inst / "Occlum.json").write_text(json.dumps(cfg, indent=4))
        subprocess.run([str(occlum), "build"], cwd=inst, check=True, capture_output=True)
        subprocess.run([str(occlum), "package", "--debug", "app.tar.gz"], cwd=inst, check=True, capture_output=True)
        elapsed = time.perf_counter() - t
        shutil.rmtree(inst, ignore_errors=True)
        return elapsed

    def manual_baseline(self) -> None:
        times = [self.manual_once() for _ in range(self.reps)]
        self.manual = statistics.median(times)
        print(f"  seed's manual way: median {self.manual:.2f}s over {len(times)}", flush=True)

    # --- output ----------------------------------------------------------------------------

    def table(self) -> str:
        lines = [
            "Toolchain: the TEST DOUBLE of the occlum CLI (tests/occlum_double/); its build hashes every image file.",
            f"JDK: the host's, {self.layout[2][0]} archive members, {self.layout[2][1] / 2**20:.0f} MiB unpacked. "
            f"Machine: {os.cpu_count()} cores.",
            "",
            "| scenario | wall (median) | runs | download | extract | jar | occlum new | occlum build + package "
            "| note |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, med, n, counts, note in self.rows:
            cells = ["" if counts is None else "/".join(map(str, counts[k])) for k in KINDS]
            lines.append(f"| {name} | {med:.2f} s | {n} | " + " | ".join(cells) + f" | {note} |")
        ours, tar, _ = self.layout
        jar_med = statistics.median(self.jar_times)
        lines += [
            "",
            "Cells: processes that actually ran (Pants `Completed:` lines); `a/b` when runs differed.",
            "",
            f"- no-op rebuild / `pants list`: **{self.noop_ratio:.2f}x** (target: within 1.3x)",
            f"- native client vs Python client on a warm no-op: **{self.native_vs_python:.1f}x faster**",
            f"- seed's manual way (occlum new, cp JDK + jar + libz, jq, occlum build, occlum package, every time): "
            f"**{self.manual:.2f} s** per change vs **{jar_med:.2f} s** with Pants after a jar change: "
            f"**{self.manual / jar_med:.1f}x**",
            f"- nothing changed: the manual way redoes everything ({self.manual:.2f} s), Pants' no-op takes "
            f"{statistics.median(t for n, t, *_ in self.rows if n.startswith(NOOP_NATIVE)):.2f} s",
            "- both packages are one compression pass; Pants' is byte-reproducible (written by the backend, "
            "deflated on every core), the manual `occlum package` (plain `tar -czf`) is not",
            "- JDK extraction + checks (our extract step) vs plain `tar xzf` of the same archive: "
            f"{ours:.2f} s vs {tar:.2f} s = **{ours / tar:.2f}x**",
            "",
            "### Where a jar change's time goes (one run, seconds)",
            "",
            *step_split.table(self.splits),
            "",
            "Own work: the step's command re-run by hand in a copy of its kept sandbox (no Pants). Capture: "
            "run-and-capture time Pants reports minus own work. Other: sandbox creation and removal.",
            "",
            "### Scale: services sharing one JDK pin (one run per row)",
            "",
            *scale.table(self.scale_rows),
            "",
            "Manual: the seed's flow for one service, measured once per image size; cold manual is N times that "
            "(computed, not run: it redoes everything per service), a jar change redoes one service. Store: the "
            "local store after the cold build; growth per added service is against the 1-service row. The "
            "double's `occlum build` keeps image files as plain copies, so the store "
            "dedupes them with the JDK; a real SEFS image (a MAC per block) is new bytes, about the image's "
            "size, per service.",
            "",
            *self.rss_lines(),
        ]
        return "\n".join(lines)

    def rss_lines(self) -> list[str]:
        big = next(r for r in self.scale_rows if r.services == 20)
        pkg, lst = big.rss_noop_package, big.rss_noop_list
        return [
            f"- pantsd RSS with 20 services: {big.rss_after_cold >> 20} MiB after the cold build, "
            f"{big.rss_after_changes >> 20} MiB after {len(big.changes)} jar changes",
            f"- over {len(pkg)} no-op `package` runs: {pkg[0] >> 20} -> {pkg[-1] >> 20} MiB, "
            f"**{scale.growth_per_run(pkg) / 2**20:.2f} MiB per run**; then over {len(lst)} `pants list` runs "
            f"(Pants alone, none of this backend's rules): {lst[0] >> 20} -> {lst[-1] >> 20} MiB, "
            f"**{scale.growth_per_run(lst) / 2**20:.2f} MiB per run**. pantsd restarts itself when it passes "
            "`[GLOBAL].pantsd_max_memory_usage` (4 GiB by default).",
            f"- no-op `package` minus `pants list`, RSS per run: "
            f"{(scale.growth_per_run(pkg) - scale.growth_per_run(lst)) / 2**20:+.2f} MiB. RSS moves with the "
            "allocator (freed pages are reused and returned unevenly); the heap probe below says whose the "
            "kept memory is.",
            "",
            "What pantsd keeps per no-op run, measured inside it by the heap probe (`tests/fixtures/pantsd_probe`), "
            "10 runs of each goal in the same pantsd:",
            "",
            "| goal (20 targets, no-op) | Python heap kept per run | of it, allocated by this backend's code: "
            "rules / in Pants' setup | this backend's objects kept | graph nodes added per run "
            "| Pants run sessions kept | C heap in use, change per run |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {r.goal} | {r.traced_bytes_per_run / 1024:.0f} KiB | {r.backend_bytes_per_run:.0f} / "
                f"{r.backend_setup_bytes_per_run:.0f} bytes | {sum(r.backend_objects_grown.values())} "
                f"| {r.graph_nodes_per_run:g} | {r.sessions_grown} over {r.runs + 1} runs | {r.show_malloc()} |"
                for r in big.retention.values()
            ),
            "",
            "Python heap: tracemalloc, from a probe `mark` to its `report` (both probe runs, so one Pants run "
            "more than the no-op runs). Allocated by this backend's code: one of its frames on the stack; "
            "in Pants' setup: while Pants loads the backends and parses the options, which it keeps for every "
            "run. Graph: the engine's node count after each run (scheduler debug log). C heap: glibc's bytes "
            "in use (the engine's Rust memory, Python's larger objects, tracemalloc's own records); it moves "
            "by a MiB or two either way from run to run, for every goal.",
            "",
            *self.retention_summary(big),
        ]

    @staticmethod
    def retention_summary(row: ScaleRow) -> list[str]:
        enc, arch, lst = (row.retention[k] for k in ("enclaves", "archives", "list"))
        return [
            f"- 20 enclaves against `list`: {(enc.traced_bytes_per_run - lst.traced_bytes_per_run) / 1024:+.0f} KiB "
            f"of heap and {enc.graph_nodes_per_run - lst.graph_nodes_per_run:+g} graph nodes per run; against "
            f"Pants' own `package` of 20 `archive` targets: "
            f"{(enc.traced_bytes_per_run - arch.traced_bytes_per_run) / 1024:+.0f} KiB and "
            f"{enc.graph_nodes_per_run - arch.graph_nodes_per_run:+g} nodes. Allocated by this backend's code and "
            f"kept: **{enc.backend_bytes_per_run + enc.backend_setup_bytes_per_run:.0f} bytes per run**.",
            "- what every goal keeps is Pants 2.17.1's own: each run's options (`OptionsBootstrapper._full_options` "
            "is a `memoized_method`, whose cache holds each instance). pantsd's restart at "
            "`[GLOBAL].pantsd_max_memory_usage` (4 GiB by default) is what bounds it.",
        ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (3 instead of 5)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--only", nargs="*", default=None, help="run only these scenarios (for development; no table)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="occlum-bench-"))
    bench = Bench(work, 3 if args.quick else 5)
    try:
        steps = (
            bench.cold,
            bench.warm_noop,
            bench.jar_change,
            bench.config_change,
            bench.jdk_change,
            bench.remote,
            bench.layout_vs_tar,
            bench.manual_baseline,
            bench.split,
            bench.scale,
        )
        for step in steps:
            if args.only is not None and step.__name__ not in args.only:
                continue
            print(f"[bench] {step.__name__} ...", flush=True)
            step()
        if args.only is not None:
            return 0
    finally:
        bench.kill_pantsd()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = bench.table()
    print("\n" + out)
    (REPO / "bench" / "last-results.md").write_text(
        f"# Last benchmark run ({time.strftime('%Y-%m-%d %H:%M')})\n\n{out}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
