from __future__ import annotations

from occlum.config.sizes import MB
from occlum.sizing.checks import Finding, check_limits
from occlum.sizing.jvm_options import parse_jvm_options
from occlum.sizing.model import derive_limits
from occlum.sizing.report import render_report

DEMO = parse_jvm_options(["-XX:-UseCompressedOops", "-Dos.name=Linux", "-Xmx512m", "-XX:MaxMetaspaceSize=64m"])
DEMO_0_20 = {
    "user_space_size": 1400 * MB,
    "kernel_space_heap_size": 64 * MB,
    "max_num_of_threads": 64,
    "default_heap_size": 256 * MB,
    "default_mmap_size": 1120 * MB,
    "default_stack_size": 4 * MB,
    "kernel_space_stack_size": MB,
}


def check(release: str, given: dict, jvm=DEMO, edmm: bool = False, **kw):
    return check_limits(release, jvm, given, derive_limits(release, jvm, **kw), edmm=edmm)


def test_demo_0_20_0_limits_are_too_small_for_the_model() -> None:
    assert check("0.20.0", DEMO_0_20) == (
        Finding(
            "error",
            "user_space_size",
            (
                "user_space_size is 1400MB, but the JVM options need 1785MB: (ELF 20MB + default_heap_size 32MB + "
                "default_stack_size 4MB + default_mmap_size 1729MB) = 1785MB per process; each process reserves its "
                "region at creation (before 0.24.2). Raise user_space_size to at least 1785MB."
            ),
        ),
        Finding(
            "error",
            "default_mmap_size",
            (
                "default_mmap_size is 1120MB, but the JVM options need 1729MB: every JVM mapping must fit the "
                "per-process region (before 0.24.2): Java heap 512MB + metaspace 64MB + code cache 240MB + direct "
                "memory 512MB + thread stacks 64MB + GC data structures 19MB + JVM libraries + lib/modules 160MB = "
                "1571MB, + headroom 10% = 1729MB. Raise default_mmap_size to at least 1729MB (before 0.24.2 every "
                "JVM mapping must fit this per-process region)."
            ),
        ),
    )


def test_enough_memory_is_clean_and_small_mmap_only_warns_from_0_24_2() -> None:
    given = dict(DEMO_0_20, user_space_size=1785 * MB, default_mmap_size=1729 * MB)
    assert check("0.20.0", given) == ()
    found = check("0.24.2", dict(given, default_mmap_size=1120 * MB))
    assert [(f.severity, f.knob) for f in found] == [("warning", "default_mmap_size")]
    assert "still sets the default RLIMIT_AS" in found[0].message


def test_user_space_max_size_is_the_static_size_from_0_30_0() -> None:
    given = {"user_space_size": MB, "user_space_max_size": 1680 * MB, "max_num_of_threads": 64}
    (f,) = check("0.30.0", given)
    assert (f.severity, f.knob) == ("error", "user_space_max_size")
    assert f.message.startswith("user_space_max_size is 1680MB, but the JVM options need 1785MB: ")
    assert f.message.endswith(
        "Raise user_space_max_size to at least 1785MB (it is the static user space; user_space_size is then ignored)."
    )
    # Before 0.30.0 the max is ignored and the user space is 1MB (docs/occlum-contract.md §1.5 trap).
    found = check("0.29.7", given)
    assert [(f.severity, f.knob) for f in found] == [("error", "user_space_size"), ("warning", "user_space_max_size")]
    # With EDMM the max is at least 16GB and nothing is committed at load.
    assert check("0.31.0", dict(given, user_space_max_size=64000 * MB), edmm=True) == ()


def test_far_larger_warns_about_commit_at_load() -> None:
    (f,) = check("0.31.0", {"user_space_size": MB, "user_space_max_size": 6000 * MB})
    assert f == Finding(
        "warning",
        "user_space_max_size",
        (
            "user_space_max_size is 6000MB, far more than the 1785MB the JVM options need. Without EDMM enclave "
            "memory is committed when the enclave loads, so the extra 4215MB costs EPC and load time; lower "
            "user_space_max_size or give the JVM a larger -Xmx to use it."
        ),
    )
    # Twice the need but less than 512MB over it: fine.
    small = parse_jvm_options(
        [
            "-XX:-UseCompressedOops",
            "-Xmx64m",
            "-XX:MaxMetaspaceSize=32m",
            "-XX:ReservedCodeCacheSize=32m",
            "-XX:MaxDirectMemorySize=8m",
        ]
    )
    need = derive_limits("0.31.0", small, java_threads=16).value("user_space_size")
    assert need < 512 * MB
    assert check("0.31.0", {"user_space_size": 2 * need + MB}, jvm=small, java_threads=16) == ()


def test_threads_below_estimate_is_an_error() -> None:
    (f,) = check("0.31.0", {"max_num_of_threads": 32}, java_threads=40, child_processes=2)
    assert f == Finding(
        "error",
        "max_num_of_threads",
        (
            "max_num_of_threads is 32, but the thread estimate is 42: 40 Java threads + 2 child processes x 1 thread "
            "= 42 (one TCS per LibOS thread). Raise max_num_of_threads to at least 42, or lower the thread count "
            '(server.tomcat.threads.max, -XX:ActiveProcessorCount); a thread without a TCS fails with "Failed to '
            'enter the enclave to execute a LibOS thread".'
        ),
    )


def test_recommendation_knobs_only_warn_and_kernel_heap_max_counts() -> None:
    found = check("0.31.0", {"kernel_space_heap_size": 32 * MB, "default_heap_size": 8 * MB})
    assert [(f.severity, f.knob) for f in found] == [
        ("warning", "default_heap_size"),
        ("warning", "kernel_space_heap_size"),
    ]
    assert found[1].message == (
        "kernel_space_heap_size is 32MB, but the model recommends 64MB: 64MB, the value of every "
        "Occlum Java demo. Raise kernel_space_heap_size to at least 64MB."
    )
    assert check("0.31.0", {"kernel_space_heap_size": MB, "kernel_space_heap_max_size": 64 * MB}) == ()


def test_jvm_flag_warnings() -> None:
    (oops,) = check(
        "0.31.0", {}, jvm=parse_jvm_options(["-Xmx512m", "-XX:MaxMetaspaceSize=64m", "-XX:+UseCompressedOops"])
    )
    assert oops == Finding(
        "warning",
        "jvm_options",
        (
            "-XX:+UseCompressedOops is set: compressed oops make HotSpot mmap the heap at fixed low addresses; inside "
            "Occlum's fixed enclave range those mmaps fail and are retried, so startup takes minutes (Occlum issue "
            "#986); use -XX:-UseCompressedOops."
        ),
    )
    found = check("0.31.0", {}, jvm=parse_jvm_options(["-Xmx512m"]))
    assert [f.message.split(" ")[0] for f in found] == ["-XX:-UseCompressedOops", "-XX:MaxMetaspaceSize"]
    assert "the model counts 256MB" in found[1].message


def test_report() -> None:
    budget = derive_limits("0.20.0", DEMO)
    text = render_report(
        "//app:svc",
        "0.20.0",
        budget,
        {"max_num_of_threads": 64, "default_mmap_size": 1120 * MB},
        check_limits("0.20.0", DEMO, {"default_mmap_size": 1120 * MB}, budget),
    )
    lines = text.splitlines()
    assert lines[0] == "Memory sizing for //app:svc on Occlum 0.20.0"
    assert "  Java heap                       512MB  -Xmx/-XX:MaxHeapSize" in lines
    assert "  mmaps total                    1571MB  + headroom 10% on the mmaps" in lines
    assert "  default_mmap_size          1120MB  set by hand; the model derives 1729MB" in lines
    assert any(line.startswith("  user_space_size            1785MB  (ELF 20MB") for line in lines)
    assert (
        "Enclave memory (EPC) without EDMM: about 1913MB = user space 1785MB + kernel heap 64MB + 64 threads "
        "x kernel stack 1MB = 1913MB (plus a few MB of LibOS code and TCS pages)"
    ) in lines
    assert lines[-1].startswith("  ERROR default_mmap_size: default_mmap_size is 1120MB")
