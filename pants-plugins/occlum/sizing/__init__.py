"""JVM-aware enclave memory sizing (docs/memory-sizing.md)."""

from occlum.sizing.checks import Finding, check_limits
from occlum.sizing.jvm_options import JvmOptionError, JvmOptions, parse_jvm_options
from occlum.sizing.model import Budget, Component, Limit, PerProcess, SizingError, derive_limits, epc_estimate
from occlum.sizing.report import render_report

__all__ = [
    "Budget",
    "Component",
    "Finding",
    "JvmOptionError",
    "JvmOptions",
    "Limit",
    "PerProcess",
    "SizingError",
    "check_limits",
    "derive_limits",
    "epc_estimate",
    "parse_jvm_options",
    "render_report",
]
