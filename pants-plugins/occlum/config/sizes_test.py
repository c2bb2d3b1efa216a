from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from occlum.config.sizes import (
    CANONICAL_SIZE_PATTERN,
    GB,
    KB,
    MB,
    TB,
    TOOL_SIZE_PATTERN,
    SizeError,
    format_size,
    parse_size,
)

# docs/occlum-contract.md §1.2 table, plus edge cases of the same grammar.
ACCEPTED = [
    ("256MB", 256 * MB),
    (" 256 MB ", 256 * MB),
    ("+256MB", 256 * MB),
    ("268435456B", 268435456),
    ("4096KB", 4096 * KB),
    ("1GB", GB),
    ("2TB", 2 * TB),
    ("0MB", 0),
    ("\t32MB\n", 32 * MB),
]
REJECTED = ["256mb", "256M", "1.5GB", "256KiB", "MB", "", "   ", "-1MB", "++1MB", "1 2MB", "MB256", "256 KB B", "bogus"]


@pytest.mark.parametrize("text,expected", ACCEPTED)
def test_parse_accepts(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", REJECTED)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(SizeError):
        parse_size(text)
    assert not re.search(TOOL_SIZE_PATTERN, text)


@pytest.mark.parametrize("value", [256, 256.0, None, True, ["256MB"]])
def test_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(SizeError, match="must be JSON strings"):
        parse_size(value)  # type: ignore[arg-type]


def test_overflow_is_rejected_not_wrapped() -> None:
    with pytest.raises(SizeError, match="64 bits"):
        parse_size("16777216TB")  # 2**64 bytes: the tool would wrap to 0
    assert parse_size("16777215TB") == 16777215 * TB


@pytest.mark.parametrize(
    "text,hint",
    [
        ("256mb", "case-sensitive"),
        ("256M", "trailing B"),
        ("256KiB", "already binary"),
        ("1.5GB", "fractions"),
        ("MB", "number is missing"),
    ],
)
def test_error_messages_say_what_was_found_and_what_is_allowed(text: str, hint: str) -> None:
    with pytest.raises(SizeError) as info:
        parse_size(text)
    msg = str(info.value)
    assert repr(text) in msg
    assert hint in msg
    assert '"256MB"' in msg and "KB, MB, GB, TB or B" in msg


@pytest.mark.parametrize(
    "num,text",
    [
        (1680 * MB, "1680MB"),
        (GB, "1GB"),
        (1536 * MB, "1536MB"),
        (4 * KB, "4KB"),
        (2048 * GB, "2048GB"),
        (1025 * KB, "1025KB"),
        (64 * MB, "64MB"),
    ],
)
def test_format_size_is_canonical(num: int, text: str) -> None:
    assert format_size(num) == text
    assert re.fullmatch(CANONICAL_SIZE_PATTERN, text)


@pytest.mark.parametrize("num", [0, -4096, 1000, 1025, True, 1.0])
def test_format_size_rejects(num: object) -> None:
    with pytest.raises(SizeError):
        format_size(num)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=2**40))
def test_format_then_parse_round_trips(kib: int) -> None:
    text = format_size(kib * KB)
    assert re.fullmatch(CANONICAL_SIZE_PATTERN, text)
    assert parse_size(text) == kib * KB


@given(st.text(alphabet="0123456789+-. \tKMGTBkmbi", max_size=10))
def test_parser_agrees_with_tool_regex(text: str) -> None:
    try:
        parse_size(text)
        accepted = True
    except SizeError as e:
        accepted = "64 bits" in str(e)  # regex has no upper bound
    assert accepted == bool(re.search(TOOL_SIZE_PATTERN, text))
