"""Compare hand-set Occlum limits with what the JVM options need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from occlum.config.releases import has_kernel_space_heap_max_size, has_user_space_max_size, parse_release
from occlum.config.sizes import GB, MB
from occlum.sizing.jvm_options import JvmOptions
from occlum.sizing.model import Budget, mb, pools_user_space

# "Far larger": more than twice the need AND more than 512MB over it. Twice alone would flag a
# 300MB enclave set to 700MB, whose load-time cost is small; 512MB alone would flag big heaps
# where it is noise. Past both, the slack costs real EPC (SGX1 servers have 128-256MB of EPC per
# socket, so it is paged) and seconds of enclave load time.
OVERSIZE_FACTOR = 2
OVERSIZE_SLACK = 512 * MB
EDMM_MIN_USER_SPACE_MAX = 16 * GB  # with EDMM the max user space is max(user_space_max_size, 16GB)


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" | "warning"
    knob: str  # the target field alias, e.g. "user_space_size"; "jvm_options" for JVM flags
    message: str


def check_limits(
    release: str,
    jvm: JvmOptions,
    limits_given: Mapping[str, Optional[int]],
    budget: Budget,
    *,
    edmm: bool = False,
) -> tuple[Finding, ...]:
    """Errors first, then warnings. `limits_given` holds hand-set values (bytes; None = not set)."""
    r = parse_release(release)
    edmm = edmm and has_user_space_max_size(r)
    out: list[Finding] = []

    def given(knob: str) -> Optional[int]:
        return limits_given.get(knob)

    def too_small(knob: str, value: int, need_knob: str, severity: str, why: str = "") -> None:
        need = budget.limit(need_knob)
        if value < need.value:
            verb = "the JVM options need" if severity == "error" else "the model recommends"
            out.append(
                Finding(
                    severity,
                    knob,
                    (
                        f"{knob} is {mb(value)}, but {verb} {mb(need.value)}: {need.how}. "
                        f"Raise {knob} to at least {mb(need.value)}{why}."
                    ),
                )
            )

    def far_larger(knob: str, value: int, need_knob: str) -> None:
        need = budget.value(need_knob)
        if not edmm and value > OVERSIZE_FACTOR * need and value > need + OVERSIZE_SLACK:
            out.append(
                Finding(
                    "warning",
                    knob,
                    (
                        f"{knob} is {mb(value)}, far more than the {mb(need)} the JVM options need. Without EDMM "
                        f"enclave memory is committed when the enclave loads, so the extra {mb(value - need)} costs "
                        f"EPC and load time; lower {knob} or give the JVM a larger -Xmx to use it."
                    ),
                )
            )

    # User space: from 0.30.0 user_space_max_size, when set, is the static size (docs/occlum-contract.md §1.4).
    usm = given("user_space_max_size")
    if usm is not None and not has_user_space_max_size(r):
        out.append(
            Finding(
                "warning",
                "user_space_max_size",
                (
                    f"user_space_max_size is ignored before Occlum 0.30.0; on {release} the user space is "
                    f"user_space_size alone."
                ),
            )
        )
    if edmm:
        if usm is not None:
            too_small("user_space_max_size", max(usm, EDMM_MIN_USER_SPACE_MAX), "user_space_size", "error")
    elif usm is not None and has_user_space_max_size(r):
        too_small(
            "user_space_max_size",
            usm,
            "user_space_size",
            "error",
            " (it is the static user space; user_space_size is then ignored)",
        )
        far_larger("user_space_max_size", usm, "user_space_size")
    elif (user := given("user_space_size")) is not None:
        too_small("user_space_size", user, "user_space_size", "error")
        far_larger("user_space_size", user, "user_space_size")

    mmap = given("default_mmap_size")
    if mmap is not None:
        if pools_user_space(release):
            too_small(
                "default_mmap_size",
                mmap,
                "default_mmap_size",
                "warning",
                " (not reserved since 0.24.2, but it still sets the default RLIMIT_AS)",
            )
        else:
            too_small(
                "default_mmap_size",
                mmap,
                "default_mmap_size",
                "error",
                " (before 0.24.2 every JVM mapping must fit this per-process region)",
            )

    # These are the model's recommendations, not sums of what the options reserve: warn only.
    for knob in ("default_heap_size", "default_stack_size", "kernel_space_stack_size"):
        if given(knob) is not None:
            too_small(knob, given(knob), knob, "warning")  # type: ignore[arg-type]
    # Without EDMM kernel_space_heap_max_size, when set (0.29.4+), is the static kernel heap.
    kknob = "kernel_space_heap_max_size"
    if not (has_kernel_space_heap_max_size(r) and given(kknob) is not None):
        kknob = "kernel_space_heap_size"
    if given(kknob) is not None:
        too_small(kknob, given(kknob), "kernel_space_heap_size", "warning")  # type: ignore[arg-type]
        far_larger(kknob, given(kknob), "kernel_space_heap_size")  # type: ignore[arg-type]

    threads = given("max_num_of_threads")
    need_threads = budget.limit("max_num_of_threads")
    if threads is not None and threads < need_threads.value:
        out.append(
            Finding(
                "error",
                "max_num_of_threads",
                (
                    f"max_num_of_threads is {threads}, but the thread estimate is {need_threads.value}: "
                    f"{need_threads.how}. Raise max_num_of_threads to at least {need_threads.value}, or lower the "
                    f"thread count (server.tomcat.threads.max, -XX:ActiveProcessorCount); a thread without a TCS "
                    f'fails with "Failed to enter the enclave to execute a LibOS thread".'
                ),
            )
        )

    out.extend(_jvm_warnings(jvm))
    return tuple(sorted(out, key=lambda f: f.severity != "error"))


def _jvm_warnings(jvm: JvmOptions) -> list[Finding]:
    out = []
    why = (
        "compressed oops make HotSpot mmap the heap at fixed low addresses; inside Occlum's fixed "
        "enclave range those mmaps fail and are retried, so startup takes minutes (Occlum issue "
        "#986); use -XX:-UseCompressedOops"
    )
    if jvm.compressed_oops is True:
        out.append(Finding("warning", "jvm_options", f"-XX:+UseCompressedOops is set: {why}."))
    elif jvm.compressed_oops is None:
        out.append(
            Finding(
                "warning",
                "jvm_options",
                (
                    f"-XX:-UseCompressedOops is missing, so HotSpot turns compressed oops on for heaps below "
                    f"32GB: {why}. The model also counts the 1GB compressed class space this reserves."
                ),
            )
        )
    if jvm.max_metaspace is None:
        out.append(
            Finding(
                "warning",
                "jvm_options",
                (
                    "-XX:MaxMetaspaceSize is not set, so metaspace is unlimited and grows until the user space "
                    "runs out; the model counts 256MB. Set -XX:MaxMetaspaceSize (64m-256m in Occlum's demos)."
                ),
            )
        )
    return out
