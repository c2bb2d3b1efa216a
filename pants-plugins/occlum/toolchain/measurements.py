"""Parse the enclave measurements out of `sgx_sign dump` output (Occlum releases before 0.29.1)."""

from __future__ import annotations

import re

MRENCLAVE_MARKER = "metadata->enclave_css.body.enclave_hash.m:"
MRSIGNER_MARKER = "mrsigner->value:"


class MeasurementParseError(ValueError):
    pass


def _two_lines_after(lines: list[str], marker: str) -> str:
    try:
        i = next(i for i, line in enumerate(lines) if line.strip() == marker)
    except StopIteration:
        raise MeasurementParseError(f"the dump has no {marker!r} line") from None
    tokens = re.findall(r"0x([0-9a-fA-F]{2})", " ".join(lines[i + 1 : i + 3]))
    if len(tokens) != 32:
        raise MeasurementParseError(f"expected 32 bytes after {marker!r}, found {len(tokens)}")
    return "".join(tokens).lower()


def parse_sgx_sign_dump(text: str) -> tuple[str, str]:
    """(MRENCLAVE, MRSIGNER) as 64 lowercase hex digits each, as `occlum print` would show them."""
    lines = text.splitlines()
    return _two_lines_after(lines, MRENCLAVE_MARKER), _two_lines_after(lines, MRSIGNER_MARKER)


def parse_print_output(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise MeasurementParseError(f"`occlum print` gave {text.strip()!r}, not 64 hex digits")
    return value
