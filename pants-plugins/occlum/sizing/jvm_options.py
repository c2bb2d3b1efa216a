"""Parse the JVM options that decide how much memory HotSpot reserves.

Only the options the sizing model reads are understood; every other option is ignored,
as are tokens that are not options (a class-path value, say). Parsing stops at `-jar`:
what follows is the jar and the program's own arguments, which HotSpot does not read.
Like HotSpot, the last occurrence of an option wins, and `-Xmx` and `-XX:MaxHeapSize`
(likewise `-Xms`/`-XX:InitialHeapSize`, `-Xss`/`-XX:ThreadStackSize`) set the same flag.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from occlum.config.sizes import GB, KB, MB, TB

# HotSpot's memory-size syntax: decimal digits, then an optional k/m/g/t (either case).
_SIZE_RE = re.compile(r"([0-9]+)([kKmMgGtT]?)")
_SUFFIX = {"": 1, "k": KB, "m": MB, "g": GB, "t": TB}
_SIZE_FORM = "a whole number of bytes, optionally followed by k/K, m/M, g/G or t/T (binary units), e.g. 512m"
_PERCENT_RE = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_PERCENT_FORM = "a decimal number from 0 to 100, e.g. 75.0"


class JvmOptionError(ValueError):
    """A JVM option the model reads whose value HotSpot would reject, or that no enclave can hold."""

    def __init__(self, option: str, value: str, allowed: str, *, out_of_range: bool = False) -> None:
        problem = "the value" if out_of_range else "the malformed value"
        super().__init__(f"JVM option {option} has {problem} {value!r}; expected {allowed}")
        self.option = option
        self.value = value
        self.allowed = allowed


# What HotSpot accepts (x86_64, JDK 11), capped where an enclave cannot hold more: the model adds
# these sizes up, so each must stay finite and sane. (minimum, maximum) in bytes.
_MAX_SIZE = 256 * GB
_BOUNDS: dict[str, tuple[int, int]] = {
    "max_heap": (2 * MB, _MAX_SIZE),  # HotSpot refuses a smaller maximum heap ("Too small maximum heap")
    "initial_heap": (0, _MAX_SIZE),
    "max_metaspace": (0, _MAX_SIZE),
    "compressed_class_space": (1 * MB, 3 * GB),  # HotSpot's own range
    "reserved_code_cache": (0, 2 * GB),  # HotSpot's own maximum
    "max_direct_memory": (0, _MAX_SIZE),
    "thread_stack": (0, 1 * GB),  # HotSpot's own maximum; 0 means the OS default
    "max_ram": (0, _MAX_SIZE),
}


def _show_bytes(n: int) -> str:
    for unit, size in (("g", GB), ("m", MB), ("k", KB)):
        if n % size == 0 and n >= size:
            return f"{n // size}{unit}"
    return f"{n}"


def _in_bounds(field: str, option: str, raw: str, value: int) -> int:
    lo, hi = _BOUNDS[field]
    if not lo <= value <= hi:
        raise JvmOptionError(option, raw, f"a size from {_show_bytes(lo)} to {_show_bytes(hi)}", out_of_range=True)
    return value


@dataclass(frozen=True)
class JvmOptions:
    """What the options set; None means "not given", i.e. HotSpot's default applies (model.py)."""

    max_heap: Optional[int] = None  # -Xmx, -XX:MaxHeapSize
    initial_heap: Optional[int] = None  # -Xms, -XX:InitialHeapSize
    max_metaspace: Optional[int] = None  # -XX:MaxMetaspaceSize
    compressed_class_space: Optional[int] = None  # -XX:CompressedClassSpaceSize
    reserved_code_cache: Optional[int] = None  # -XX:ReservedCodeCacheSize
    max_direct_memory: Optional[int] = None  # -XX:MaxDirectMemorySize
    thread_stack: Optional[int] = None  # -Xss, -XX:ThreadStackSize; in bytes
    max_ram_percentage: Optional[float] = None  # -XX:MaxRAMPercentage
    max_ram: Optional[int] = None  # -XX:MaxRAM
    compressed_oops: Optional[bool] = None  # -XX:+/-UseCompressedOops
    tiered_compilation: Optional[bool] = None  # -XX:+/-TieredCompilation


def _size(option: str, value: str) -> int:
    m = _SIZE_RE.fullmatch(value)
    if not m:
        raise JvmOptionError(option, value, _SIZE_FORM)
    return int(m.group(1)) * _SUFFIX[m.group(2).lower()]


def _kilobytes(option: str, value: str) -> int:
    # -XX:ThreadStackSize counts in KB: 256 means 256 KB. A suffix multiplies the count,
    # so HotSpot reads -XX:ThreadStackSize=1m as 1M kilobytes (1 GB); the model does too.
    return _size(option, value) * KB


def _percent(option: str, value: str) -> float:
    if not _PERCENT_RE.fullmatch(value) or not 0.0 <= float(value) <= 100.0:
        raise JvmOptionError(option, value, _PERCENT_FORM)
    return float(value)


# Prefix options (-Xmx512m) and -XX:Name=value options, mapped to (field, value parser).
_X_OPTIONS: tuple[tuple[str, str, Callable[[str, str], object]], ...] = (
    ("-Xmx", "max_heap", _size),
    ("-Xms", "initial_heap", _size),
    ("-Xss", "thread_stack", _size),
)
_XX_VALUES: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "MaxHeapSize": ("max_heap", _size),
    "InitialHeapSize": ("initial_heap", _size),
    "MaxMetaspaceSize": ("max_metaspace", _size),
    "CompressedClassSpaceSize": ("compressed_class_space", _size),
    "ReservedCodeCacheSize": ("reserved_code_cache", _size),
    "MaxDirectMemorySize": ("max_direct_memory", _size),
    "ThreadStackSize": ("thread_stack", _kilobytes),
    "MaxRAMPercentage": ("max_ram_percentage", _percent),
    "MaxRAM": ("max_ram", _size),
}
_XX_FLAGS: dict[str, str] = {"UseCompressedOops": "compressed_oops", "TieredCompilation": "tiered_compilation"}


def _checked(field: str, option: str, raw: str, parse: Callable[[str, str], object]) -> object:
    value = parse(option, raw)
    return _in_bounds(field, option, raw, value) if field in _BOUNDS and isinstance(value, int) else value


def _with(parsed: JvmOptions, field: str, value: Any) -> JvmOptions:
    """`parsed` with one field replaced (the field's name comes from the tables above)."""
    return replace(parsed, **{field: value})


def parse_jvm_options(options: Sequence[str]) -> JvmOptions:
    """Read the sizing-relevant options; raise JvmOptionError on a malformed value."""
    parsed = JvmOptions()
    for opt in options:
        if opt == "-jar":
            break
        for prefix, field, parse in _X_OPTIONS:
            if opt.startswith(prefix):
                parsed = _with(parsed, field, _checked(field, prefix, opt[len(prefix) :], parse))
                break
        else:
            if not opt.startswith("-XX:"):
                continue
            body = opt[len("-XX:") :]
            if body[:1] in "+-" and body[1:] in _XX_FLAGS:
                parsed = _with(parsed, _XX_FLAGS[body[1:]], body[0] == "+")
                continue
            name, eq, value = body.partition("=")
            if name in _XX_VALUES:
                field, parse = _XX_VALUES[name]
                if not eq:
                    raise JvmOptionError(f"-XX:{name}", "", f"-XX:{name}=<value> with {_allowed(parse)}")
                parsed = _with(parsed, field, _checked(field, f"-XX:{name}", value, parse))
    return parsed


def _allowed(parse: Callable[[str, str], object]) -> str:
    return _PERCENT_FORM if parse is _percent else _SIZE_FORM
