"""Resolve an image's Occlum memory limits: hand-set fields win, the rest come from the JVM model.

Pure (no Pants imports), so `pants package` and the `enclave-memory` report share it and the report
needs no JDK download. Errors name the target, the knob and the arithmetic (docs/memory-sizing.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional, Union

from occlum.config.model import LIMITS
from occlum.config.sizes import format_size
from occlum.jvm.options import effective_jvm_options
from occlum.records import BudgetLine, LimitLine, MemoryRecord
from occlum.sizing import (
    Budget,
    Finding,
    JvmOptionError,
    SizingError,
    check_limits,
    derive_limits,
    epc_estimate,
    parse_jvm_options,
    render_report,
)

# The limits a target may set by hand; any left unset is derived.
KNOBS = tuple(limit.name for limit in LIMITS)


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
    try:
        jvm = parse_jvm_options(effective_jvm_options(jvm_options))
    except JvmOptionError as e:
        raise OcclumMemoryError(f"The `jvm_options` field in target {target} has a bad value: {e}") from e
    try:
        budget = derive_limits(
            release, jvm, java_threads=java_threads, child_processes=child_processes, headroom_percent=headroom_percent
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
    for knob in KNOBS:
        hand_set = given.get(knob)
        limits[knob] = budget.value(knob) if hand_set is None else hand_set
    return MemoryPlan(release, budget, dict(given), limits, tuple(findings), epc_estimate(budget, limits).value)
