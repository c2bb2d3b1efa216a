"""A jar change of a real Spring Boot service: Pants against the manual flow, and where the time goes.

    python3 bench/spring_jar_change.py [--reps N]

The service is the examples' Spring Boot 2.7 service with the dependencies of a large one (web,
actuator, data-jpa, security, webflux, ... : 100+ nested jars, ~80 MB), built by Maven from Maven
Central inside Pants, as in examples/spring-service (its maven.lock is generated here first). The
toolchain is the Occlum TEST DOUBLE (tests/occlum_double/), the JDK the host's packed in
Dragonwell's layout, as in bench/run_bench.py.

Rows: the median of N jar changes (one Java source edit each) with Pants, pantsd warm; the manual
flow for the same change (mvn package, occlum new, copy the JDK, the jar and libz, the Occlum.json
edits, occlum build, occlum package, every time); where one Pants jar change spends its time per step
(bench/step_split.py: the tool's own work against sandbox setup, output capture and the rest); and
the backend's in-process work on this jar (inspecting it, writing the SBOM), timed directly.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO / "pants-plugins"), str(REPO / "tests"), str(REPO / "tests/fixtures")]

import step_split  # noqa: E402
from run_bench import Bench  # noqa: E402

SERVICE = "bench-services/spring-big"
TARGET = f"{SERVICE}:enclave"
EXTRA_DEPENDENCIES = [
    ("org.springframework.boot", f"spring-boot-starter-{name}")
    for name in ("data-jpa", "validation", "security", "cache", "webflux", "mail", "thymeleaf", "aop", "oauth2-client")
] + [
    ("com.h2database", "h2"),
    ("com.fasterxml.jackson.dataformat", "jackson-dataformat-xml"),
    ("com.fasterxml.jackson.dataformat", "jackson-dataformat-yaml"),
    ("com.github.ben-manes.caffeine", "caffeine"),
    ("io.micrometer", "micrometer-registry-prometheus"),
    ("org.apache.commons", "commons-lang3"),
    ("commons-codec", "commons-codec"),
    ("org.apache.httpcomponents", "httpclient"),
    ("org.flywaydb", "flyway-core"),
]
SOURCE = "src/main/java/com/example/greeting/GreetingApplication.java"


def write_service(root: Path) -> Path:
    """examples/spring-service, with a large dependency set and a lock made for it."""
    svc = root / SERVICE
    shutil.copytree(root / "examples/spring-service", svc)
    pom = (svc / "pom.xml").read_text()
    deps = "".join(
        f"    <dependency>\n      <groupId>{g}</groupId>\n      <artifactId>{a}</artifactId>\n    </dependency>\n"
        for g, a in EXTRA_DEPENDENCIES
    )
    (svc / "pom.xml").write_text(pom.replace("  </dependencies>", deps + "  </dependencies>"))
    (svc / "src/main/resources/application.properties").write_text(
        "management.endpoints.web.exposure.include=health\nspring.main.banner-mode=off\n"
    )
    build = (svc / "BUILD").read_text()
    build = build.replace('workdir="examples/spring-service"', f'workdir="{SERVICE}"')
    (svc / "BUILD").write_text(
        build.replace('root_output_directory="examples/spring-service"', f'root_output_directory="{SERVICE}"')
    )
    subprocess.run(["mvn", "-q", "-B", "package"], cwd=svc, check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["jar", "xf", str(svc / "target/spring-service.jar"), "BOOT-INF/lib"], cwd=tmp, check=True)
        lib = Path(tmp) / "BOOT-INF/lib"
        sums = subprocess.run(
            ["sha256sum", *sorted(p.name for p in lib.iterdir())], cwd=lib, check=True, capture_output=True, text=True
        )
    (svc / "maven.lock").write_text(sums.stdout)
    shutil.rmtree(svc / "target")
    return svc


def toggle(svc: Path, i: int) -> None:
    src = svc / SOURCE
    src.write_text(
        re.sub(r'return "[^"]*";', f'return "Hello #{i} from Spring Boot in an Occlum enclave!\\\\n";', src.read_text())
    )


def manual_once(bench: Bench, svc: Path) -> float:
    """The manual flow for one jar change (Maven builds the jar), with the same double."""

    def build_jar() -> Path:
        subprocess.run(["mvn", "-q", "-B", "package"], cwd=svc, check=True, capture_output=True)
        shutil.copy2(svc / "target/spring-service.jar", bench.work / "spring-service.jar")  # for in_process()
        return svc / "target/spring-service.jar"

    elapsed = bench.manual_flow(build_jar)
    shutil.rmtree(svc / "target", ignore_errors=True)
    return elapsed


def in_process(jar: Path) -> tuple[float, float, int, int]:
    """The backend's in-process work on this jar: inspect_jar, and the nested jars' SBOM components."""
    from occlum.attestation.sbom import render_nested
    from occlum.jar.inspect_jar import inspect_jar

    data = jar.read_bytes()
    t = time.perf_counter()
    info = inspect_jar(data, jar.name)
    inspect = time.perf_counter() - t
    t = time.perf_counter()
    components = [render_nested(n) for n in info.nested]
    sbom = time.perf_counter() - t
    return inspect, sbom, len(components), len(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="occlum-spring-bench-"))
    bench = Bench(work, args.reps)
    bench.env["HOME"] = os.environ["HOME"]  # Maven's repository: the cache a CI machine keeps
    try:
        svc = write_service(bench.root)
        print("[bench] cold package (not timed as a row) ...", flush=True)
        bench.pants("package", TARGET)
        times, logs = [], []
        for i in range(args.reps):
            toggle(svc, i)
            dt, log = bench.pants("package", TARGET)
            times.append(dt)
            logs.append(log)
            print(f"  jar change {i}: {dt:.1f} s", flush=True)
        reran = sorted(
            set(
                re.findall(
                    r"Completed: (Running the `shell_command`|occlum build \S+ \([^)]*\), then its package)", logs[-1]
                )
            )
        )
        manual = [manual_once(bench, svc) for _ in range(args.reps)]
        print(f"  manual flow: {', '.join(f'{m:.1f}' for m in manual)} s", flush=True)
        # Where one jar change's time goes, step by step.
        logdir = work / "workunits"
        logdir.mkdir()
        bench.kill_pantsd()
        toggle(svc, 99)
        flags = (*step_split.WORKUNIT_FLAGS, f"--workunit-logger-logdir={logdir}")
        segments_before = frozenset(step_split.kept_segments(work / "store-named"))
        total, log = bench.pants("package", TARGET, extra=flags)
        splits = step_split.split_steps(logdir, log, segments_before=segments_before)
        inspect, sbom, nested, size = in_process(work / "spring-service.jar")
        for sandbox in re.findall(r"Preserving local process execution dir (\S+) for", log):
            shutil.rmtree(sandbox, ignore_errors=True)
    finally:
        bench.kill_pantsd()
        shutil.rmtree(work, ignore_errors=True)
    pants_med, manual_med = statistics.median(times), statistics.median(manual)
    lines = [
        f"Spring Boot service: {size / 1e6:.0f} MB fat jar, {nested} nested jars (Maven, from Maven Central).",
        "",
        "| scenario | median | runs |",
        "|---|---|---|",
        f"| Pants, after a jar change (pantsd warm; re-ran: {', '.join(reran)}) | {pants_med:.1f} s | {len(times)} |",
        "| manual flow, same change (mvn, occlum new, copy JDK + jar, jq, occlum build, occlum package) "
        f"| {manual_med:.1f} s | {len(manual)} |",
        "",
        f"Pants is **{manual_med / pants_med:.2f}x** faster than the manual flow for a jar change (goal: 1.5x).",
        "",
        f"Where one jar change's {total:.1f} s go (pantsd cold for this run, workunit logger on):",
        "",
        *step_split.table(splits),
        "",
        f"The backend's in-process work on this jar: inspecting it (every class's version, each nested jar) "
        f"{inspect:.2f} s; the nested jars' SBOM components {sbom:.3f} s.",
    ]
    out = "\n".join(lines)
    print("\n" + out)
    (REPO / "bench" / "spring-results.md").write_text(
        f"# Spring Boot jar change ({time.strftime('%Y-%m-%d %H:%M')})\n\n{out}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
