"""A plain-text sizing report: JVM budget, Occlum limits, enclave memory, findings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

from occlum.config.model import LIMITS
from occlum.config.releases import parse_release
from occlum.sizing.checks import Finding
from occlum.sizing.model import Budget, epc_estimate, mb, mb_ceil

_KNOBS_IN_BYTES = tuple(limit.name for limit in LIMITS if limit.is_size)


# Without EDMM a maximum, when set, is the size in force (docs/occlum-contract.md §1.4).
_REPLACED_BY = {"user_space_size": "user_space_max_size", "kernel_space_heap_size": "kernel_space_heap_max_size"}


def _has_key(release: str, knob: str) -> bool:
    since = next(limit.since for limit in LIMITS if limit.name == knob)
    return parse_release(release) >= parse_release(since)


def _show(knob: str, value: int) -> str:
    if knob not in _KNOBS_IN_BYTES:
        return str(value)
    return mb(value) if value % (1024 * 1024) == 0 else f"{value}B"


def render_report(
    target: str,
    release: str,
    budget: Budget,
    limits: Mapping[str, Optional[int]],
    findings: Sequence[Finding],
) -> str:
    """`limits` are the hand-set values (None or missing = the plugin writes the derived value)."""
    lines = [f"Memory sizing for {target} on Occlum {release}", "", "JVM budget (what HotSpot reserves)"]
    width = max(len(c.name) for c in budget.components)
    for c in budget.components:
        where = "" if c.region == "mmap" else "  [brk heap]"
        lines.append(f"  {c.name:<{width}}  {mb(c.size):>8}  {c.source}{where}")
    lines.append(
        f"  {'mmaps total':<{width}}  {mb(budget.mmap_total):>8}  + headroom {budget.headroom_percent:g}% on the mmaps"
    )
    lines += ["", "Occlum limits"]
    shown = [lim.knob for lim in budget.limits]
    shown += [k for k in ("user_space_max_size", "kernel_space_heap_max_size") if limits.get(k) is not None]
    width = max(len(k) for k in shown)
    for knob in shown:
        hand = limits.get(knob)
        if hand is not None:
            model = (
                f"; the model derives {_show(knob, budget.value(knob))}"
                if knob in {limit.knob for limit in budget.limits}
                else ""
            )
            replaced = _REPLACED_BY.get(knob)
            if replaced and limits.get(replaced) is not None and _has_key(release, replaced):
                model += f"; without EDMM not in force: {replaced} takes its place"
            lines.append(f"  {knob:<{width}}  {_show(knob, hand):>8}  set by hand{model}")
        else:
            lim = budget.limit(knob)
            lines.append(f"  {knob:<{width}}  {_show(knob, lim.value):>8}  {lim.how}")
    epc = epc_estimate(budget, dict(limits))
    lines += ["", f"Enclave memory (EPC) without EDMM: about {mb(mb_ceil(epc.value))} = {epc.how}"]
    if findings:
        lines += ["", "Findings"]
        lines += [f"  {f.severity.upper()} {f.knob}: {f.message}" for f in findings]
    return "\n".join(lines) + "\n"
