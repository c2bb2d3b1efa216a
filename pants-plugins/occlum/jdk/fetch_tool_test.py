"""fetch_tool: every URL costs bounded time and bytes, and every failure is one clear line.

A local http.server in a thread plays the vendor; its slow and endless routes are bounded in
bytes and time and stop when the test ends.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

from occlum.jdk import fetch_tool
from occlum.toolchain import sandbox_guard
from occlum.toolchain.sandbox_guard_test import assert_stops_with_parent, start_under_parent

LABEL = "Dragonwell 11.0.16.12.8 standard musl linux_x86_64 for svc:jdk"
BODY = bytes(range(256)) * 400  # 102,400 bytes
SHA = hashlib.sha256(BODY).hexdigest()
DRIP_SECONDS = 0.2  # between two bytes of a dripping route
MAX_DRIP_BYTES = 300  # a dripping route ends by itself after this many (60 s)


class Server:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hits: list[str] = []
        self.serving = threading.Event()  # set once a slow route has started sending
        routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {
            "/jdk.tar.gz": lambda h: self._send(h, BODY),
            "/slow-but-done.tar.gz": self._slow_but_done,
            "/drip.tar.gz": self._drip,
            "/drip-headers.tar.gz": self._drip_headers,
            "/forever.tar.gz": self._forever,
            "/short.tar.gz": self._short,
            "/huge.tar.gz": self._huge,
            "/missing.tar.gz": lambda h: h.send_error(404, "Not Found"),
        }
        for n in (99_999, 100_000, 100_001):
            routes[f"/exact{n}.tar.gz"] = self._exact(n)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                route = routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                try:
                    route(self)
                except OSError:  # the client gave up: that is what the slow routes are for
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, body: bytes, length: bool = True) -> None:
        h.send_response(200)
        if length:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _exact(self, n: int) -> Callable[[BaseHTTPRequestHandler], None]:
        """Exactly n bytes, with no Content-Length: only the streamed count can catch one too many."""
        return lambda h: self._send(h, exact_body(n), length=False)

    def _slow_but_done(self, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(BODY)))
        h.end_headers()
        for i in range(4):
            h.wfile.write(BODY[i * len(BODY) // 4 : (i + 1) * len(BODY) // 4])
            time.sleep(0.1)

    def _drip(self, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)  # no Content-Length: the body ends when the connection does
        h.end_headers()
        self.serving.set()
        for _ in range(MAX_DRIP_BYTES):
            if self.stop.wait(DRIP_SECONDS):
                return
            h.wfile.write(b"x")
            h.wfile.flush()

    def _drip_headers(self, h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
        self.serving.set()
        for _ in range(MAX_DRIP_BYTES):
            if self.stop.wait(DRIP_SECONDS):
                return
            h.wfile.write(b"x")
            h.wfile.flush()

    def _forever(self, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.end_headers()
        chunk = b"\0" * 65536
        for _ in range(1600):  # 100 MiB at most, far over what any test allows
            if self.stop.is_set():
                return
            h.wfile.write(chunk)

    def _short(self, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        h.wfile.write(b"x" * 10)

    def _huge(self, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(fetch_tool.DEFAULT_MAX_BYTES + 1))
        h.end_headers()  # and nothing more: the tool must not wait for a GiB


def exact_body(n: int) -> bytes:
    return (BODY * (n // len(BODY) + 1))[:n]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    s = Server()
    yield s
    s.close()


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fetch(*urls: str, sha: str = SHA, extra: tuple = (), out: str = "archive/jdk.tar.gz") -> int:
    return fetch_tool.main(["--sha256", sha, "--out", out, "--label", LABEL, *extra, *urls])


def refused(capsys: pytest.CaptureFixture, rc: int, *words: str, code: int = 2) -> str:
    err = capsys.readouterr().err
    assert rc == code, err
    assert err.startswith("error: could not fetch " + LABEL) and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    assert not list(Path("archive").glob("*")) if Path("archive").is_dir() else True  # nothing written
    return err


def per_url_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("  - ")]


# ---------------------------------------------------------------- ordinary downloads


def test_download_and_verify(server: Server, work: Path) -> None:
    assert fetch(server.url("/jdk.tar.gz"), extra=("--size", str(len(BODY)))) == 0
    assert (work / "archive" / "jdk.tar.gz").read_bytes() == BODY
    assert os.listdir(work / "archive") == ["jdk.tar.gz"]


def test_mirrors_are_tried_in_order(server: Server, work: Path, capsys) -> None:
    assert fetch(server.url("/missing.tar.gz"), server.url("/jdk.tar.gz")) == 0
    assert server.hits == ["/missing.tar.gz", "/jdk.tar.gz"]


def test_sha256_mismatch(server: Server, work: Path, capsys) -> None:
    err = refused(capsys, fetch(server.url("/jdk.tar.gz"), sha="0" * 64), "sha256 mismatch: got " + SHA)
    # One cause, one fix: the checksum's, not the network's.
    assert fix_lines(err) == ["Fix: " + fetch_tool._CHECKSUM_FIX + "."]


def fix_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Fix:")]


def test_missing_file_url_says_what_is_wrong_in_words(work: Path, capsys) -> None:
    err = refused(capsys, fetch("file:///srv/down/jdk.tar.gz"))
    assert "  - file:///srv/down/jdk.tar.gz: could not read: No such file or directory: '/srv/down/jdk.tar.gz'" in err
    assert "Errno" not in err
    assert fix_lines(err) == ["Fix: " + fetch_tool._FILE_FIX + "."]


def test_a_file_url_naming_a_folder_has_no_raw_errno(tmp_path: Path, work: Path, capsys) -> None:
    err = refused(capsys, fetch(f"file://{tmp_path}"), "could not read: Is a directory")
    assert "[Errno" not in err and fix_lines(err) == ["Fix: " + fetch_tool._FILE_FIX + "."]


def test_each_cause_gets_its_fix_once(server: Server, work: Path, capsys) -> None:
    err = refused(
        capsys,
        fetch(server.url("/missing.tar.gz"), server.url("/missing2.tar.gz"), server.url("/jdk.tar.gz"), sha="0" * 64),
    )
    assert fix_lines(err) == ["Fix: " + fetch_tool._NETWORK_FIX + ".", "Fix: " + fetch_tool._CHECKSUM_FIX + "."]


def test_http_errors_are_words(server: Server, work: Path, capsys) -> None:
    err = refused(capsys, fetch(server.url("/missing.tar.gz")), "could not download: HTTP 404 Not Found")
    assert "HTTPError" not in err


def test_a_connection_cut_short_is_named(server: Server, work: Path, capsys) -> None:
    err = refused(capsys, fetch(server.url("/short.tar.gz")), "closed the connection after 10 of the 1000 bytes")
    assert "IncompleteRead" not in err


def test_unexpected_failures_name_no_exception_class(work: Path, capsys, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(fetch_tool, "fetch_one", boom)
    err = refused(capsys, fetch("https://example.invalid/jdk.tar.gz"), "unexpected failure: 'boom'")
    assert "KeyError" not in err and len(per_url_lines(err)) == 1


# ---------------------------------------------------------------- the deadline (--deadline)


def test_default_bounds() -> None:
    assert fetch_tool.DEFAULT_DEADLINE == 900.0
    assert fetch_tool.DEFAULT_MAX_BYTES == 1024**3


def test_a_dripping_server_meets_the_deadline(server: Server, work: Path, capsys) -> None:
    # Each byte comes well within the per-read timeout; only the whole-download deadline ends it.
    t = time.monotonic()
    rc = fetch(server.url("/drip.tar.gz"), extra=("--deadline", "1.5", "--timeout", "60"))
    took = time.monotonic() - t
    err = refused(capsys, rc, "gave up after 1.", "bytes received", "within 1.5 s per URL")
    assert took < 4, err
    assert "--deadline" not in err and fix_lines(err) == ["Fix: " + fetch_tool._SLOW_FIX + "."]
    assert "0 bytes received" not in err  # some bytes came: the message counts them


def test_a_server_dripping_its_headers_meets_the_deadline(server: Server, work: Path, capsys) -> None:
    # Stuck inside urlopen (no read loop runs yet): SIGALRM ends it.
    t = time.monotonic()
    rc = fetch(server.url("/drip-headers.tar.gz"), extra=("--deadline", "1", "--timeout", "60"))
    took = time.monotonic() - t
    refused(capsys, rc, "gave up after 1.", "s with 0 bytes received", "within 1 s per URL")
    assert took < 4


def test_a_slow_download_within_the_deadline_passes(server: Server, work: Path) -> None:
    assert fetch(server.url("/slow-but-done.tar.gz"), extra=("--deadline", "5")) == 0
    assert (work / "archive" / "jdk.tar.gz").read_bytes() == BODY


def test_the_deadline_is_per_url(server: Server, work: Path) -> None:
    t = time.monotonic()
    assert fetch(server.url("/drip.tar.gz"), server.url("/jdk.tar.gz"), extra=("--deadline", "1")) == 0
    assert time.monotonic() - t < 4


# ---------------------------------------------------------------- the byte cap (--max-bytes)


def test_an_endless_stream_without_a_size_pin_is_capped(server: Server, work: Path, capsys) -> None:
    err = refused(
        capsys,
        fetch(server.url("/forever.tar.gz"), extra=("--max-bytes", "100000")),
        "sent more than 100000 bytes",
        "without a `size` pin may have at most 100000 bytes (a Dragonwell archive",
    )
    assert len(per_url_lines(err)) == 1
    # The fix names the target field and option a user can set, not the tool's own flag.
    assert "--max-bytes" not in err and fix_lines(err) == ["Fix: " + fetch_tool._SIZE_FIX + "."]


@pytest.mark.parametrize("n,ok", [(99_999, True), (100_000, True), (100_001, False)])
def test_max_bytes_boundary(server: Server, work: Path, capsys, n: int, ok: bool) -> None:
    sha = hashlib.sha256(exact_body(n)).hexdigest()
    rc = fetch(server.url(f"/exact{n}.tar.gz"), sha=sha, extra=("--max-bytes", "100000"))
    if ok:
        assert rc == 0, capsys.readouterr().err
    else:
        refused(capsys, rc, "sent more than 100000 bytes")


def test_an_announced_size_over_the_real_cap_is_refused_before_reading(server: Server, work: Path, capsys) -> None:
    t = time.monotonic()
    rc = fetch(server.url("/huge.tar.gz"))
    refused(capsys, rc, f"announces {fetch_tool.DEFAULT_MAX_BYTES + 1} bytes", f"at most {1024**3} bytes")
    assert time.monotonic() - t < 3


def test_a_size_pin_replaces_the_cap(server: Server, work: Path, capsys) -> None:
    refused(capsys, fetch(server.url("/jdk.tar.gz"), extra=("--size", "1000")), "announces 102400 bytes", "pinned 1000")
    sha = hashlib.sha256(exact_body(100_001)).hexdigest()
    rc = fetch(server.url("/exact100001.tar.gz"), sha=sha, extra=("--size", "100001", "--max-bytes", "100000"))
    assert rc == 0, capsys.readouterr().err


# ---------------------------------------------------------------- --out and local failures


@pytest.mark.parametrize("out", ["archive/", "archive/.", "archive/..", ""])
def test_out_must_name_a_file(server: Server, work: Path, capsys, out: str) -> None:
    rc = fetch(server.url("/jdk.tar.gz"), out=out)
    err = capsys.readouterr().err
    assert rc == 3 and err.count("\n") == 1, err
    assert "internal error: --out" in err and "does not name a file" in err and "check the network" not in err
    assert server.hits == []


def test_a_local_write_failure_is_not_a_network_problem(server: Server, work: Path, capsys) -> None:
    (work / "archive" / "jdk.tar.gz").mkdir(parents=True)  # the final rename cannot replace a folder
    rc = fetch(server.url("/jdk.tar.gz"), server.url("/jdk.tar.gz"))
    err = capsys.readouterr().err
    assert rc == 3 and err.count("\n") == 1, err
    assert "cannot write 'archive/jdk.tar.gz' in the sandbox: Is a directory" in err
    assert "not of the network" in err and "check the network" not in err
    assert server.hits == ["/jdk.tar.gz"]  # no use trying the next URL
    assert not (work / "archive" / "jdk.tar.gz.part").exists()


def test_an_unwritable_out_folder_is_not_a_network_problem(server: Server, work: Path, capsys) -> None:
    (work / "archive").write_text("a file where the folder goes")
    rc = fetch(server.url("/jdk.tar.gz"))
    err = capsys.readouterr().err
    assert rc == 3 and "cannot write 'archive' in the sandbox" in err and "check the network" not in err, err


# ---------------------------------------------------------------- as a script in its sandbox


def test_fetch_tool_stops_when_pants_dies(server: Server, tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    (sandbox / "__occlum_tools").mkdir(parents=True)
    shutil.copy(fetch_tool.__file__, str(sandbox / "__occlum_tools" / "fetch_tool.py"))
    shutil.copy(sandbox_guard.__file__, str(sandbox / "__occlum_tools" / "sandbox_guard.py"))
    argv = [sys.executable, "-I", "__occlum_tools/fetch_tool.py", "--sha256", SHA, "--out", "archive/jdk.tar.gz"]
    env = {"PATH": os.environ.get("PATH", "")}  # no proxy
    parent, pid = start_under_parent([*argv, server.url("/drip.tar.gz")], sandbox, tmp_path / "log", env=env)
    assert server.serving.wait(10)  # downloading, a byte at a time, with no deadline near
    assert assert_stops_with_parent(parent, pid, tmp_path / "log") < 5
