"""Resolve an image's Occlum memory limits: hand-set fields win, the rest come from the JVM model.

Pure (no Pants imports), so `pants package` and the `enclave-memory` report share it and the report
needs no JDK download. Errors name the target, the knob and the arithmetic (docs/memory-sizing.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional, Union

from occlum.config.model import LIMITS
from occlum.config.releases import parse_release
from occlum.config.sizes import format_size
from occlum.jvm.options import effective_jvm_options
from occlum.records import BudgetLine, LimitLine, MemoryRecord
from occlum.sizing import (
    Budget,
    Finding,
    JvmOptionError,
    PerProcess,
    SizingError,
    check_limits,
    derive_limits,
    epc_estimate,
    parse_jvm_options,
    render_report,
)

# The limits a target may set by hand; any required one left unset is derived.
KNOBS = tuple(limit.name for limit in LIMITS)
_PER_PROCESS = ("default_heap_size", "default_stack_size", "default_mmap_size")
_BOUNDED_BY = (("user_space_size", "user_space_max_size"), ("kernel_space_heap_size", "kernel_space_heap_max_size"))


class OcclumMemoryError(Exception):
    pass


@dataclass(frozen=True)
class MemoryPlan:
    release: str
    budget: Budget
    given: Mapping[str, Optional[int]]  # hand-set values (bytes, or a count for threads)
    limits: Mapping[str, int]  # what Occlum.json gets
    findings: tuple[Finding, ...]
    epc: int

    def how(self, knob: str) -> str:
        return "set by hand" if self.given.get(knob) is not None else self.budget.limit(knob).how

    def summary(self) -> MemoryRecord:
        def show(knob: str, v: int) -> Union[str, int]:
            return v if knob == "max_num_of_threads" else format_size(v)

        return MemoryRecord(
            jvm_budget=tuple(BudgetLine(c.name, format_size(c.size), c.source) for c in self.budget.components),
            limits=tuple(LimitLine(k, show(k, v), self.how(k)) for k, v in self.limits.items()),
            enclave_memory_estimate=format_size(self.epc),
            warnings=tuple(f.message for f in self.findings if f.severity == "warning"),
        )

    def report(self, target: str) -> str:
        return render_report(target, self.release, self.budget, dict(self.given), self.findings)


def plan_memory(
    target: str,
    release: str,
    jvm_options: tuple[str, ...],
    given: Mapping[str, Optional[int]],
    *,
    java_threads: int,
    child_processes: int,
    headroom_percent: float,
) -> MemoryPlan:
    """Raise OcclumMemoryError for bad options or limits too small for the JVM; keep warnings."""
    for limit in LIMITS:
        if limit.optional and given.get(limit.name) is not None and parse_release(release) < parse_release(limit.since):
            raise OcclumMemoryError(
                f"The `{limit.name}` field of {target} needs Occlum {limit.since} or later, but `[occlum].version` "
                f"is {release}, whose Occlum.json has no `{limit.key}`. Remove the field, or set "
                f"`[occlum].version` to {limit.since} or later."
            )
    try:
        jvm = parse_jvm_options(effective_jvm_options(jvm_options))
    except JvmOptionError as e:
        raise OcclumMemoryError(f"The `jvm_options` field in target {target} has a bad value: {e}") from e
    try:
        budget = derive_limits(
            release,
            jvm,
            java_threads=java_threads,
            child_processes=child_processes,
            headroom_percent=headroom_percent,
            per_process=PerProcess(**{knob: given.get(knob) for knob in _PER_PROCESS}),
        )
    except SizingError as e:
        raise OcclumMemoryError(f"Cannot size the enclave of {target} for its `jvm_options`: {e}") from e
    findings = check_limits(release, jvm, given, budget)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise OcclumMemoryError(
            f"The memory limits of {target} cannot hold its JVM (Occlum {release}):\n"
            + "\n".join(f"  - the `{f.knob}` field: {f.message}" for f in errors)
            + "\nRaise the named field(s), or remove them to let the plugin derive them from "
            "`jvm_options` (see `pants enclave-memory` and docs/memory-sizing.md)."
        )
    limits: dict[str, int] = {}
    for limit in LIMITS:
        hand_set = given.get(limit.name)
        if hand_set is not None:
            limits[limit.name] = hand_set
        elif not limit.optional:
            limits[limit.name] = budget.value(limit.name)
    # A maximum bounds the size beside it: a derived size above a hand-set maximum is written as
    # the maximum (without EDMM the maximum is what is in force anyway).
    for size, maximum in _BOUNDED_BY:
        if given.get(size) is None and maximum in limits:
            limits[size] = min(limits[size], limits[maximum])
    return MemoryPlan(release, budget, dict(given), limits, tuple(findings), epc_estimate(budget, limits).value)
