"""Occlum size strings ("256MB"), parsed exactly like Occlum's parse_memory_size.

docs/occlum-contract.md §1.2: trim, take the first unit of KB, MB, GB, TB, B that the string
ends with (case-sensitive), parse the trimmed rest as a Rust usize (ASCII
digits, optional leading '+'), multiply by the binary unit factor.
"""

from __future__ import annotations

import re

KB = 1024
MB = 1024**2
GB = 1024**3
TB = 1024**4

# Order matters: "B" must be tried last, since "256KB" also ends with "B".
_UNITS: tuple[tuple[str, int], ...] = (("KB", KB), ("MB", MB), ("GB", GB), ("TB", TB), ("B", 1))

# Regex of everything the tool accepts (docs/occlum-contract.md §1.2), used by the JSON Schemas.
TOOL_SIZE_PATTERN = r"^\s*\+?[0-9]+\s*(KB|MB|GB|TB|B)\s*$"
# What the plugin itself emits.
CANONICAL_SIZE_PATTERN = r"^[1-9][0-9]*(KB|MB|GB)$"

# Rust's str::trim strips Unicode White_Space; Python's str.strip() also strips
# \x1c-\x1f, which Rust does not, so spell the set out.
_RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_USIZE_MAX = 2**64 - 1
_RUST_USIZE = re.compile(r"\+?[0-9]+")
_ALLOWED = 'an integer followed by a case-sensitive binary unit KB, MB, GB, TB or B (1KB = 1024 bytes), e.g. "256MB"'


class SizeError(ValueError):
    """A size string Occlum would reject, or a byte count with no canonical form."""


def parse_size(text: str) -> int:
    """Return the size in bytes, or raise SizeError where Occlum would say "... is not correct"."""
    if not isinstance(text, str):
        raise SizeError(f"found {text!r} ({type(text).__name__}); sizes must be JSON strings: {_ALLOWED}")
    trimmed = text.strip(_RUST_WHITESPACE)
    for unit, factor in _UNITS:  # noqa: B007 (the match is used after the loop)
        if trimmed.endswith(unit):
            number = trimmed[: -len(unit)].strip(_RUST_WHITESPACE)
            break
    else:
        raise SizeError(f"found {text!r}, which has no recognised unit; {_explain(trimmed)}")
    if not _RUST_USIZE.fullmatch(number):
        raise SizeError(f"found {text!r}, whose number {number!r} is not a whole number; {_explain(trimmed)}")
    value = int(number)
    # The tool rejects a number above usize::MAX but silently wraps the
    # multiplication; both would give a bogus enclave, so reject both.
    if value > _USIZE_MAX or value * factor > _USIZE_MAX:
        raise SizeError(f"found {text!r}, which does not fit in 64 bits; {_ALLOWED}")
    return value * factor


def _explain(trimmed: str) -> str:
    """A hint for the most common mistakes, then the grammar."""
    m = re.fullmatch(r"\+?([0-9]*\.?[0-9]*)\s*([A-Za-z]*)", trimmed)
    if m:
        number, unit = m.groups()
        if unit.upper() in {u for u, _ in _UNITS} and unit not in {u for u, _ in _UNITS}:
            return f"units are case-sensitive (write {unit.upper()!r}, not {unit!r}): {_ALLOWED}"
        if unit in {"K", "M", "G", "T", "k", "m", "g", "t"}:
            return f"the unit needs a trailing B (write {unit.upper() + 'B'!r}): {_ALLOWED}"
        if unit.endswith("iB"):
            return f"units are already binary; write {unit[0].upper() + 'B'!r}, not {unit!r}: {_ALLOWED}"
        if "." in number:
            return f"fractions are not allowed, use a smaller unit: {_ALLOWED}"
        if not number:
            return f"the number is missing: {_ALLOWED}"
    return f"expected {_ALLOWED}"


def format_size(num_bytes: int) -> str:
    """Canonical form: the largest of GB/MB/KB that divides evenly, e.g. 1680 MiB -> "1680MB"."""
    if isinstance(num_bytes, bool) or not isinstance(num_bytes, int):
        raise SizeError(f"found {num_bytes!r}; a size must be an int number of bytes")
    if num_bytes <= 0 or num_bytes % KB:
        raise SizeError(
            f"found {num_bytes!r} bytes; only positive multiples of 1024 bytes have a canonical Occlum size"
        )
    for unit, factor in (("GB", GB), ("MB", MB), ("KB", KB)):
        if num_bytes % factor == 0:
            return f"{num_bytes // factor}{unit}"
    raise AssertionError("unreachable: KB divides num_bytes")
