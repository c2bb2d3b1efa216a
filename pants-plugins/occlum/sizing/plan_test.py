"""plan_memory: the limits an image gets, with every hand-set size in force in the arithmetic."""

from __future__ import annotations

from typing import Optional

import pytest

from occlum.config.sizes import MB
from occlum.sizing.plan import KNOBS, MemoryPlan, OcclumMemoryError, plan_memory

DEMO_OPTIONS = ("-Xmx512m", "-XX:MaxMetaspaceSize=64m")


def plan(
    release: str, hand_set: Optional[dict[str, int]] = None, options: tuple[str, ...] = DEMO_OPTIONS
) -> MemoryPlan:
    given: dict[str, Optional[int]] = {k: None for k in KNOBS}
    given.update(hand_set or {})
    return plan_memory(
        "svc:enclave", release, options, given, java_threads=64, child_processes=0, headroom_percent=10.0
    )


# Per-process sizes are in force in every process: before 0.24.2 each process reserves ELF + heap +
# stack + the whole mmap region; from 0.24.2 brk and stack per process come from one pool and
# default_mmap_size is only a limit. With nothing hand-set every release derives 1785MB.
@pytest.mark.parametrize(
    "field, value, expected",
    [
        (
            "default_heap_size",
            512 * MB,
            {"0.20.0": 2265, "0.24.1": 2265, "0.24.2": 2265, "0.28.1": 2265, "0.31.0": 2265},
        ),
        (
            "default_stack_size",
            64 * MB,
            {"0.20.0": 1845, "0.24.1": 1845, "0.24.2": 1845, "0.28.1": 1845, "0.31.0": 1845},
        ),
        (
            "default_mmap_size",
            2500 * MB,
            {"0.20.0": 2556, "0.24.1": 2556, "0.24.2": 1785, "0.28.1": 1785, "0.31.0": 1785},
        ),
    ],
)
@pytest.mark.parametrize("release", ["0.20.0", "0.24.1", "0.24.2", "0.28.1", "0.31.0"])
def test_hand_set_per_process_sizes_enter_the_user_space(release: str, field: str, value: int, expected: dict) -> None:
    assert plan(release).limits["user_space_size"] == 1785 * MB
    p = plan(release, {field: value})
    assert p.limits["user_space_size"] == expected[release] * MB
    assert p.limits[field] == value
    how = p.budget.limit("user_space_size").how
    pooled = release not in ("0.20.0", "0.24.1")
    if field == "default_mmap_size" and pooled:
        # From 0.24.2 default_mmap_size is a per-process limit, not a reservation: the pool holds
        # the JVM's own mmaps, whatever the hand-set limit.
        assert how.startswith("one pool (0.24.2+): JVM mmaps 1729MB + ELF 20MB") and "2500MB" not in how, how
    else:
        assert f"{field} {value // MB}MB (set by hand)" in how, how


@pytest.mark.parametrize("release", ["0.20.0", "0.24.1", "0.31.0"])
def test_a_user_space_too_small_for_the_hand_set_heap_is_refused_with_the_values_in_force(release: str) -> None:
    with pytest.raises(OcclumMemoryError) as e:
        plan(release, {"default_heap_size": 512 * MB, "user_space_size": 1785 * MB})
    msg = str(e.value)
    assert "user_space_size is 1785MB, but the JVM options need 2265MB" in msg
    assert "default_heap_size 512MB (set by hand)" in msg and "default_heap_size 32MB" not in msg


def test_the_report_shows_the_values_in_force() -> None:
    report = plan("0.24.1", {"default_mmap_size": 2500 * MB}).report("svc:enclave")
    assert "default_mmap_size 2500MB (set by hand)" in report and "2556MB" in report


# --- EDMM maxima ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, release, since",
    [
        ("user_space_max_size", "0.29.7", "0.30.0"),
        ("kernel_space_heap_max_size", "0.29.3", "0.29.4"),
        ("user_space_max_size", "0.20.0", "0.30.0"),
    ],
)
def test_a_maximum_on_a_release_without_it_is_refused(field: str, release: str, since: str) -> None:
    with pytest.raises(OcclumMemoryError) as e:
        plan(release, {field: 2048 * MB})
    assert str(e.value) == (
        f"The `{field}` field of svc:enclave needs Occlum {since} or later, but `[occlum].version` is {release}, "
        f"whose Occlum.json has no `resource_limits.{field}`. Remove the field, or set `[occlum].version` to "
        f"{since} or later."
    )


def test_a_maximum_bounds_the_pool_and_what_is_written_beside_it() -> None:
    # Without EDMM the maximum is the user space: it must hold the JVM...
    with pytest.raises(OcclumMemoryError, match="user_space_max_size is 1024MB, but the JVM options need 1785MB"):
        plan("0.31.0", {"user_space_max_size": 1024 * MB})
    # ...and a derived size beside it is written no larger than it.
    p = plan("0.31.0", {"user_space_max_size": 4096 * MB, "kernel_space_heap_max_size": 32 * MB})
    assert p.limits["user_space_size"] == 1785 * MB and p.limits["user_space_max_size"] == 4096 * MB
    assert p.limits["kernel_space_heap_size"] == 32 * MB and p.limits["kernel_space_heap_max_size"] == 32 * MB
    # Unset maxima are not written at all.
    assert "user_space_max_size" not in plan("0.31.0").limits


def test_occlum_0_31_java_demo_limits() -> None:
    # v0.31.0:demos/java/run_java_on_occlum.sh, with its template's other values. The model counts
    # direct memory at its bound (the heap, 512MB, by default), which the demo's 1680MB cannot
    # hold, so the bound is made explicit.
    p = plan(
        "0.31.0",
        {
            "user_space_size": 1 * MB,
            "user_space_max_size": 1680 * MB,
            "kernel_space_heap_size": 1 * MB,
            "kernel_space_heap_max_size": 64 * MB,
            "kernel_space_stack_size": 1 * MB,
            "max_num_of_threads": 64,
            "default_heap_size": 256 * MB,
            "default_stack_size": 4 * MB,
            "default_mmap_size": 100 * MB,
        },
        options=(*DEMO_OPTIONS, "-XX:MaxDirectMemorySize=128m"),
    )
    assert {k: v // MB if k != "max_num_of_threads" else v for k, v in p.limits.items()} == {
        "user_space_size": 1,
        "user_space_max_size": 1680,
        "kernel_space_heap_size": 1,
        "kernel_space_heap_max_size": 64,
        "kernel_space_stack_size": 1,
        "max_num_of_threads": 64,
        "default_heap_size": 256,
        "default_stack_size": 4,
        "default_mmap_size": 100,
    }
    report = p.report("svc:demo")
    assert "user_space_size                  1MB  set by hand" in report
    assert "without EDMM not in force: user_space_max_size takes its place" in report
    with pytest.raises(OcclumMemoryError, match="user_space_max_size is 1680MB, but the JVM options need 2009MB"):
        plan("0.31.0", {"user_space_max_size": 1680 * MB, "default_heap_size": 256 * MB})


def test_a_user_space_over_the_1_tb_bound_is_refused() -> None:
    given: dict[str, Optional[int]] = {k: None for k in KNOBS}
    kw = dict(java_threads=4096, child_processes=0, headroom_percent=10.0)
    with pytest.raises(OcclumMemoryError, match=r"user space of 1164912MB .* more than 1048576MB, the most"):
        plan_memory("svc:enclave", "0.31.0", ("-Xmx256g", "-Xss128m"), given, **kw)  # type: ignore[arg-type]
    ok = plan_memory("svc:enclave", "0.31.0", ("-Xmx256g", "-Xss64m"), given, **kw)  # type: ignore[arg-type]
    assert ok.limits["user_space_size"] <= 1024**4
