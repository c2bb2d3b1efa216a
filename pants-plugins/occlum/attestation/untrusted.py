"""Reading files a verifier does not trust: regular files only, bounded while reading, JSON of
bounded depth, and typed access that names the file and the JSON path when the shape is wrong.

A verifier is handed files by whoever wants to pass it. So nothing here trusts `stat`: a symlink to
`/dev/zero` says size 0, a FIFO blocks an `open`. Each file is opened without following a symlink
and without blocking, checked to be a regular file on the descriptor itself, and read only up to
its bound plus one byte.
"""

from __future__ import annotations

import json
import os
import re
import stat
from typing import Any, Optional, TypeVar

MAX_JSON_DEPTH = 64  # the deepest record the backend writes is 6 levels
# A whole string, a bracket, or a lone quote (an unterminated string: the JSON is invalid past it).
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|"', re.DOTALL)

T = TypeVar("T")


class Unusable(Exception):
    """A file cannot be checked at all; the message is for the user (exit 2)."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str, what: str = "") -> int:
    """A descriptor on `path`, which must be a regular file reached without a symlink."""
    label = f"{what} {path}".strip()
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise Unusable(f"{label} is missing") from None
    except OSError as e:
        raise Unusable(f"cannot read {label}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise Unusable(f"{label} is {_kind(st.st_mode)}, not a regular file; pass the file itself")
    try:
        # O_NONBLOCK: a FIFO swapped in after the lstat must not block the open.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise Unusable(f"cannot read {label}: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Unusable(f"{label} is {_kind(st.st_mode)}, not a regular file; pass the file itself")
    return fd


def read_bounded(path: str, limit: int, what: str = "") -> bytes:
    """The whole of a regular file of at most `limit` bytes, counted while reading."""
    fd = open_regular(path, what)
    chunks, total = [], 0
    try:
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise Unusable(
                    f"{path} is larger than the {limit} bytes it may be; it is not what `pants package` wrote"
                )
    except OSError as e:
        raise Unusable(f"cannot read {path}: {e.strerror}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text` (strings skipped), in linear time."""
    depth = deepest = 0
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token == '"':
            break  # each string is scanned once, so the scan stays linear
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def parse_json(data: bytes, name: str) -> Any:
    """JSON from untrusted bytes: UTF-8, depth at most MAX_JSON_DEPTH, no NaN or Infinity."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Unusable(f"{name} is not UTF-8 text (byte {e.start}); it is not a record `pants package` wrote") from None
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise Unusable(f"{name} nests {depth} levels deep, more than the {MAX_JSON_DEPTH} a record may have")

    def refuse_constant(value: str) -> Any:
        raise ValueError(f"{value} is not JSON")

    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # Python keeps a repeated key's last value, cJSON (Occlum's ra_config parser) its first: a
        # record read two ways could pass here and mean another thing there.
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(f"the key {key!r} appears twice in one object")
            out[key] = value
        return out

    try:
        value = json.loads(text, parse_constant=refuse_constant, object_pairs_hook=refuse_duplicates)
        # A lone surrogate (a \ud800 escape) is valid JSON but no text: refuse it before it is printed.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return value
    except UnicodeEncodeError:
        raise Unusable(f"{name} holds a string with a lone surrogate escape, which is not text") from None
    except (ValueError, RecursionError) as e:
        raise Unusable(f"{name} is not valid JSON: {e}") from None


def read_json(path: str, limit: int, what: str = "") -> Any:
    return parse_json(read_bounded(path, limit, what), os.path.basename(path))


def _type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


class Doc:
    """Typed access into one untrusted JSON document; a wrong shape is an Unusable naming the path."""

    def __init__(self, name: str, value: Any, path: str = "$") -> None:
        self.name, self.value, self.path = name, value, path

    def _wrong(self, path: str, value: Any, expected: str) -> Unusable:
        return Unusable(f"{self.name}: {path} is {_type_name(value)}, but it must be {expected}")

    def obj(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self._wrong(self.path, self.value, "an object")
        return self.value

    def get(self, key: str, required: bool = False) -> Doc:
        """The member `key` of this object (a Doc of None when it, or this object, is absent and not
        required)."""
        path = f"{self.path}.{key}"
        if self.value is None and not required:
            return Doc(self.name, None, path)
        here = self.obj()
        if key not in here and required:
            raise Unusable(f"{self.name}: {path} is missing")
        return Doc(self.name, here.get(key), path)

    def items(self) -> list[Doc]:
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            raise self._wrong(self.path, self.value, "an array")
        return [Doc(self.name, v, f"{self.path}[{i}]") for i, v in enumerate(self.value)]

    def of(self, kind: type[T], expected: str) -> Optional[T]:
        """The value if it is of `kind` (None stays None); any other value is an Unusable."""
        if self.value is None:
            return None
        # bool is an int in Python, but not a number in a record.
        if not isinstance(self.value, kind) or (kind is int and isinstance(self.value, bool)):
            raise self._wrong(self.path, self.value, expected)
        return self.value

    def text(self) -> Optional[str]:
        return self.of(str, "a string")

    def integer(self) -> Optional[int]:
        return self.of(int, "an integer")

    def boolean(self) -> Optional[bool]:
        return self.of(bool, "true or false")
