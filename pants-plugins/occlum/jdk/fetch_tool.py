"""Download one archive and verify its sha256 (and size) before anyone can read it.

Self-contained (stdlib only, CPython 3.9+): the plugin copies this file and sandbox_guard.py into a
Pants sandbox and runs it as a cacheable Process, so the verified archive lands in Pants' cache
(local or remote) and a JDK pin needs no published size (Pants' native DownloadFile requires one).

    python3 fetch_tool.py --sha256 HEX [--size N] --out archive/NAME --label TEXT URL [URL ...]

URLs are tried in order (mirrors first). Each costs bounded time and disk: a whole-download deadline
(--deadline) and, without a `size` pin, a byte cap (--max-bytes).

Exit 0: OUT holds the verified bytes. Exit 2: nothing written; one `error: ...` message on stderr
lists every URL tried and why it failed. Exit 3: a failure of this machine or of the plugin (one
`error: ` line): no other URL could help. Exit 4: the Pants process that started it died.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, Optional

if __name__ == "__main__":  # a script in the sandbox: the guard lies beside it (bundled_tools.py)
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [_HERE, os.path.join(os.path.dirname(_HERE), "toolchain")]  # 2nd: the source tree
    import sandbox_guard  # type: ignore[import-not-found,unused-ignore]
else:
    from occlum.toolchain import sandbox_guard

_CHUNK = 1 << 20
# Without a `size` pin (the default pins have none), no URL may send more: a Dragonwell archive is
# ~200 MB, so 1 GiB fits any JDK and stops a server that streams forever.
DEFAULT_MAX_BYTES = 1024**3
# Whole-download deadline per URL, in seconds: ~200 MB in 900 s needs only ~230 KB/s, and a server
# that drips a byte at a time is given up on instead of holding the build for hours.
DEFAULT_DEADLINE = 900.0
# Per-read socket timeout, in seconds: a dead connection fails within a minute.
DEFAULT_TIMEOUT = 60.0
# Server-provided text (an HTTP reason, an error string) quoted in a message is cut here: one line.
MAX_SHOWN_CHARS = 200

EXIT_OK = 0
EXIT_FAILED = 2
EXIT_INTERNAL = 3

# One fix line per cause, printed once under the failures it answers.
_NETWORK_FIX = (
    "check the network or proxy (`[dragonwell].fetch_env_vars`), point `[dragonwell].mirrors` at a "
    "reachable copy (https:// or file://), or pin another build"
)
_SIZE_FIX = (
    "pin the archive's `size` (the target's `size` field next to `url`, or the size column of its "
    "`[dragonwell].known_versions` entry) if it really is this big, or check that the URL serves the archive"
)
_CHECKSUM_FIX = (
    "the server sent other bytes than the pin; use a URL that serves the pinned archive, and re-pin "
    "`sha256` only after verifying the new archive's origin"
)
_FILE_FIX = (
    "make the file:// URL name the archive file itself, readable by the user who runs Pants, or point "
    "`[dragonwell].mirrors` at a copy that exists"
)
_SLOW_FIX = "use a faster mirror (`[dragonwell].mirrors`), or download the archive once and pin it as a file:// URL"


class FetchError(Exception):
    """This URL failed; the message says why, in one line, and `fix` what to do about it."""

    def __init__(self, message: str, fix: str = _NETWORK_FIX) -> None:
        super().__init__(message)
        self.fix = fix


class LocalError(Exception):
    """Writing on this machine failed; another URL cannot help."""


class _DeadlineHit(BaseException):
    """Raised by SIGALRM when a URL's deadline passes inside a blocking call (connect, headers)."""


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"


def _reason(e: BaseException) -> str:
    """A download failure in words: no exception class name, one line, bounded length."""
    if isinstance(e, urllib.error.HTTPError):
        return _cut(f"HTTP {e.code} {e.reason}")
    if isinstance(e, urllib.error.URLError):
        return _reason(e.reason) if isinstance(e.reason, BaseException) else _cut(str(e.reason))
    if isinstance(e, OSError) and e.strerror:  # "[Errno 21] Is a directory: 'x'" -> "Is a directory: 'x'"
        where = f": {e.filename!r}" if e.filename else ""
        return _cut(f"{e.strerror}{where}")
    if isinstance(e, http.client.IncompleteRead):
        return f"the connection ended {len(e.partial)} bytes into a chunk, with {e.expected} more expected"
    return _cut(str(e) or "the connection failed without details")


def _on_alarm(signum: int, frame: Any) -> None:
    raise _DeadlineHit()


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Interrupt whatever blocks after `seconds` (SIGALRM; main thread only, else the checks
    between reads are the only deadline)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _content_length(resp: Any) -> Optional[int]:
    value = resp.headers.get("Content-Length") if getattr(resp, "headers", None) is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Download:
    def __init__(self, size: Optional[int], deadline: float, max_bytes: int) -> None:
        self.size = size
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.start = time.monotonic()
        self.received = 0

    def too_slow(self) -> FetchError:
        elapsed = time.monotonic() - self.start
        got = f"{self.received} of {self.size} bytes" if self.size is not None else f"{self.received} bytes"
        return FetchError(
            f"gave up after {elapsed:.1f} s with {got} received: the whole download must finish within "
            f"{self.deadline:g} s per URL (a ~200 MB JDK needs about 230 KB/s), so the server "
            "is too slow or has stalled",
            _SLOW_FIX,
        )

    def too_big(self, announced: Optional[int] = None) -> FetchError:
        if self.size is not None:
            if announced is not None:
                return FetchError(
                    f"the server announces {announced} bytes, more than the pinned {self.size} bytes", _CHECKSUM_FIX
                )
            return FetchError(f"the server sent more than the pinned {self.size} bytes", _CHECKSUM_FIX)
        what = f"announces {announced} bytes" if announced is not None else f"sent more than {self.max_bytes} bytes"
        return FetchError(
            f"the server {what}, but an archive without a `size` pin may have at most {self.max_bytes} bytes "
            "(a Dragonwell archive is about 200 MB)",
            _SIZE_FIX,
        )


def fetch_one(
    url: str,
    sha256: str,
    size: Optional[int],
    out: str,
    timeout: float,
    deadline: float = DEFAULT_DEADLINE,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> None:
    tmp = out + ".part"
    dl = _Download(size, deadline, max_bytes)
    try:
        with _alarm(deadline):
            _fetch(url, sha256, tmp, out, min(timeout, deadline), dl)
    except _DeadlineHit:
        raise dl.too_slow() from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _fetch(url: str, sha256: str, tmp: str, out: str, timeout: float, dl: _Download) -> None:
    cap = dl.size if dl.size is not None else dl.max_bytes
    digest = hashlib.sha256()
    try:
        resp = urllib.request.urlopen(url, timeout=timeout)
    except (OSError, http.client.HTTPException, ValueError) as e:
        if url.lower().startswith("file:"):
            raise FetchError(f"could not read: {_reason(e)}", _FILE_FIX) from e
        raise FetchError(f"could not download: {_reason(e)}") from e
    with resp:
        announced = _content_length(resp)
        if announced is not None and announced > cap:
            raise dl.too_big(announced)
        # One system call per read, so a server that drips bytes meets the deadline check below.
        read = getattr(resp, "read1", None) or resp.read
        try:
            f = open(tmp, "wb")
        except OSError as e:
            raise LocalError(_local(tmp, e)) from e
        with f:
            while True:
                sandbox_guard.check()
                if time.monotonic() - dl.start > dl.deadline:
                    raise dl.too_slow()
                try:
                    chunk = read(_CHUNK)
                except (OSError, http.client.HTTPException, ValueError) as e:
                    raise FetchError(f"could not download: {_reason(e)} (after {dl.received} bytes)") from e
                if not chunk:
                    break
                dl.received += len(chunk)
                if dl.received > cap:
                    raise dl.too_big()
                digest.update(chunk)
                try:
                    f.write(chunk)
                except OSError as e:
                    raise LocalError(_local(tmp, e)) from e
    n = dl.received
    if announced is not None and n < announced and url.lower().startswith(("http:", "https:")):
        raise FetchError(f"the server closed the connection after {n} of the {announced} bytes it announced")
    if dl.size is not None and n != dl.size:
        raise FetchError(f"got {n} bytes, but the pin says {dl.size} bytes", _CHECKSUM_FIX)
    actual = digest.hexdigest()
    if actual != sha256:
        raise FetchError(f"sha256 mismatch: got {actual} ({n} bytes), pinned {sha256}", _CHECKSUM_FIX)
    try:
        os.replace(tmp, out)
    except OSError as e:
        raise LocalError(_local(out, e)) from e


def _local(path: str, e: OSError) -> str:
    return (
        f"cannot write {path!r} in the sandbox: {e.strerror or _reason(e)}. This is a problem of this machine "
        "(disk space, permissions), not of the network or of the URL"
    )


def _out_problem(out: str) -> Optional[str]:
    last = out.rsplit("/", 1)[-1]
    if last in ("", ".", ".."):
        shown = "empty" if not last else repr(last)
        return (
            f"internal error: --out {out!r} does not name a file (its last path component is {shown}). The "
            "plugin names the download after the URL's last path segment, and this URL has no usable one; "
            "pin a URL that ends in the archive's file name (e.g. https://host/path/jdk.tar.gz)"
        )
    return None


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    return parse


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--label", default="archive")
    parser.add_argument("--timeout", type=_positive(float), default=DEFAULT_TIMEOUT, help="seconds per read")
    parser.add_argument("--deadline", type=_positive(float), default=DEFAULT_DEADLINE, help="seconds per URL")
    parser.add_argument(
        "--max-bytes", type=_positive(int), default=DEFAULT_MAX_BYTES, help="the cap when no --size is pinned"
    )
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args(argv)
    problem = _out_problem(args.out)
    if problem:
        sys.stderr.write(f"error: could not fetch {args.label}: {problem}\n")
        return EXIT_INTERNAL
    try:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    except OSError as e:
        sys.stderr.write(f"error: could not fetch {args.label}: {_local(os.path.dirname(args.out), e)}\n")
        return EXIT_INTERNAL
    failures: list[FetchError] = []
    for url in args.urls:
        try:
            fetch_one(url, args.sha256.lower(), args.size, args.out, args.timeout, args.deadline, args.max_bytes)
            return EXIT_OK
        except FetchError as e:
            failures.append(e)
        except LocalError as e:
            sys.stderr.write(f"error: could not fetch {args.label} from {url}: {e}\n")
            return EXIT_INTERNAL
        except Exception as e:  # never a traceback for the user
            failures.append(FetchError(f"unexpected failure: {_reason(e)}"))
    fixes = list(dict.fromkeys(f.fix for f in failures))  # each cause's fix once, in the order met
    sys.stderr.write(
        f"error: could not fetch {args.label}; tried {len(args.urls)} URL(s):\n"
        + "".join(f"  - {url}: {f}\n" for url, f in zip(args.urls, failures))
        + "".join(f"Fix: {fix}.\n" for fix in fixes)
    )
    return EXIT_FAILED


if __name__ == "__main__":
    sandbox_guard.start()
    sys.exit(main(sys.argv[1:]))
