from __future__ import annotations

import pytest

from occlum.config.sizes import MB
from occlum.sizing.jvm_options import JvmOptionError, parse_jvm_options
from occlum.sizing.model import SizingError, derive_limits, epc_estimate

# The seed demo's options plus the two flags the plugin adds (docs/occlum-contract.md §3.1, 3.6).
DEMO = parse_jvm_options(["-XX:-UseCompressedOops", "-Dos.name=Linux", "-Xmx512m", "-XX:MaxMetaspaceSize=64m"])
DEMO_COMPONENTS = {
    "Java heap": 512,
    "metaspace": 64,
    "code cache": 240,
    "direct memory": 512,
    "thread stacks": 64,
    "GC data structures": 19,
    "JVM libraries + lib/modules": 160,
    "JVM native malloc": 32,
}
DEMO_LIMITS = {
    "user_space_size": 1785 * MB,
    "default_mmap_size": 1729 * MB,
    "default_heap_size": 32 * MB,
    "default_stack_size": 4 * MB,
    "kernel_space_heap_size": 64 * MB,
    "kernel_space_stack_size": 1 * MB,
    "max_num_of_threads": 64,
}


@pytest.mark.parametrize("release", ["0.20.0", "0.31.0"])
def test_demo_numbers(release: str) -> None:
    b = derive_limits(release, DEMO, java_threads=64)
    assert {c.name: c.size // MB for c in b.components} == DEMO_COMPONENTS
    assert b.mmap_total == 1571 * MB
    assert {lim.knob: lim.value for lim in b.limits} == DEMO_LIMITS
    assert epc_estimate(b).value == 1913 * MB
    assert b.limit("default_mmap_size").how.endswith(
        "Java heap 512MB + metaspace 64MB + code cache 240MB + direct memory 512MB + thread stacks 64MB + "
        "GC data structures 19MB + JVM libraries + lib/modules 160MB = 1571MB, + headroom 10% = 1729MB"
    )


def test_every_limit_is_whole_mb() -> None:
    b = derive_limits("0.31.0", parse_jvm_options(["-Xmx333333333", "-Xss999k"]), java_threads=7, headroom_percent=3.3)
    assert all(lim.value % MB == 0 for lim in b.limits if lim.knob != "max_num_of_threads")


def test_0_20_0_region_per_process_and_children_reserve_it_again() -> None:
    b = derive_limits("0.20.0", DEMO, child_processes=2)
    assert b.value("user_space_size") == 3 * 1785 * MB
    assert "per process x 3 processes = 5355MB" in b.limit("user_space_size").how
    assert b.value("max_num_of_threads") == 66


def test_0_24_1_vs_0_24_2_one_child() -> None:
    old = derive_limits("0.24.1", DEMO, child_processes=1)
    new = derive_limits("0.24.2", DEMO, child_processes=1)
    assert old.value("user_space_size") == 3570 * MB
    assert old.limit("default_mmap_size").how.startswith("every JVM mapping must fit the per-process region")
    # Pool: JVM mmaps once, each process's ELF + brk + stack, the child's own mmaps.
    assert new.value("user_space_size") == (1729 + 2 * 56 + 64) * MB
    assert new.limit("default_mmap_size").how.startswith("not reserved since 0.24.2")
    assert new.value("default_mmap_size") == old.value("default_mmap_size") == 1729 * MB


def test_0_30_0_user_space_size_is_the_static_size() -> None:
    assert "the static size without EDMM" in derive_limits("0.30.0", DEMO).limit("user_space_size").how
    assert "static" not in derive_limits("0.29.7", DEMO).limit("user_space_size").how


def test_hotspot_defaults_when_options_are_absent() -> None:
    b = derive_limits("0.31.0", parse_jvm_options(["-Xmx1g"]), java_threads=10)
    sizes = {c.name: c.size // MB for c in b.components}
    # Unlimited metaspace -> 256MB; compressed oops on by default -> 1GB class space.
    assert sizes["metaspace"] == 256 and sizes["compressed class space"] == 1024
    assert sizes["code cache"] == 240 and sizes["direct memory"] == 1024 and sizes["thread stacks"] == 10
    b = derive_limits(
        "0.31.0",
        parse_jvm_options(
            ["-Xmx1g", "-XX:-UseCompressedOops", "-XX:-TieredCompilation", "-Xss256k", "-XX:MaxDirectMemorySize=16m"]
        ),
        java_threads=10,
    )
    sizes = {c.name: c.size // MB for c in b.components}
    assert "compressed class space" not in sizes
    assert (sizes["code cache"], sizes["direct memory"], sizes["thread stacks"]) == (48, 16, 3)


def test_heap_from_ram_percentage_is_a_share_of_the_user_space() -> None:
    opts = ["-XX:-UseCompressedOops", "-XX:MaxMetaspaceSize=64m"]
    b = derive_limits("0.31.0", parse_jvm_options(opts))
    assert b.value("user_space_size") == 1451 * MB
    assert b.component("Java heap").size == 363 * MB  # ceil(25% of 1451MB)
    assert b.component("Java heap").source == "default MaxRAMPercentage 25% of the user space 1451MB"
    b = derive_limits("0.20.0", parse_jvm_options(opts + ["-XX:MaxRAMPercentage=40", "-XX:MaxDirectMemorySize=64m"]))
    assert (b.value("user_space_size"), b.component("Java heap").size) == (1304 * MB, 522 * MB)
    b = derive_limits("0.31.0", parse_jvm_options(opts + ["-XX:MaxRAM=2g", "-XX:MaxRAMPercentage=50"]))
    assert b.component("Java heap").size == 1024 * MB
    b = derive_limits("0.31.0", parse_jvm_options(opts + ["-Xms1g"]))
    assert b.component("Java heap").size == 1024 * MB


def test_ram_percentage_that_can_never_fit() -> None:
    with pytest.raises(SizingError) as e:
        derive_limits("0.31.0", parse_jvm_options(["-XX:MaxRAMPercentage=50"]))
    assert str(e.value) == (
        "-XX:MaxRAMPercentage 50% makes the heap (and MaxDirectMemorySize, which defaults to it) need more than "
        "the whole user space the JVM sees; give -Xmx, a smaller MaxRAMPercentage, or -XX:MaxDirectMemorySize"
    )


def test_xms_above_xmx() -> None:
    with pytest.raises(JvmOptionError) as e:
        derive_limits("0.31.0", parse_jvm_options(["-Xmx256m", "-Xms1g"]))
    assert (
        str(e.value)
        == "JVM option -Xms has the malformed value '1024MB'; expected at most the maximum heap size (-Xmx)"
    )


def test_epc_estimate_uses_hand_set_limits() -> None:
    b = derive_limits("0.31.0", DEMO)
    given = {
        "user_space_size": MB,
        "user_space_max_size": 1680 * MB,
        "kernel_space_heap_size": MB,
        "kernel_space_heap_max_size": 64 * MB,
        "max_num_of_threads": 64,
    }
    assert epc_estimate(b, given).value == (1680 + 64 + 64) * MB
    # Before 0.30.0 user_space_max_size is ignored (docs/occlum-contract.md §1.5 trap).
    assert epc_estimate(derive_limits("0.20.0", DEMO), {"user_space_size": 1400 * MB}).value == (1400 + 64 + 64) * MB
