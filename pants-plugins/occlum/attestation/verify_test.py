"""verify-package on hostile files: each is refused with exit 2 and one line that names the file (and
the JSON path, for a wrong shape), in bounded time and memory, never a traceback or a hang.

The checks of real packages, and the forgeries, are in occlum/goals/verify_package_test.py (they
need `pants package` and the test double)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from occlum.attestation import package_reader, untrusted, verify
from occlum.attestation.verify import main

Setup = Callable[[Path], object]


def _tar(path: Path, members: list[tuple[str, bytes]], pax: dict[str, str] | None = None) -> None:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if pax:
                info.pax_headers = pax
            tf.addfile(info, io.BytesIO(data))


def write_set(folder: Path, occlum_json: bytes = b"{}") -> Path:
    """A package the verifier can open, and three records of the right overall shape."""
    package = folder / "enclave.tar.gz"
    _tar(package, [("enclave/Occlum.json", occlum_json)])
    for name in ("measurements", "cdx", "ra_config"):
        (folder / f"enclave.{name}.json").write_text("{}")
    return package


def _run(package: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main([str(package)])
    out = capsys.readouterr()
    return code, out.out + out.err


def _refused(package: Path, capsys: pytest.CaptureFixture, *words: str) -> None:
    code, out = _run(package, capsys)
    assert code == 2, out
    assert all(w in out for w in words), out
    assert "Traceback" not in out and out.startswith("error: ") and out.count("\n") == 1, out


def _record(name: str, text: str) -> Setup:
    return lambda d: (d / f"enclave.{name}.json").write_text(text)


@pytest.mark.parametrize(
    "setup, words",
    [
        (_record("cdx", '{"components": 5}'), ["enclave.cdx.json: $.components is a number, but it must be an array"]),
        (_record("cdx", '{"metadata": []}'), ["enclave.cdx.json: $.metadata is an array, but it must be an object"]),
        (_record("measurements", '{"image": {"jdk": 5}}'), ["enclave.measurements.json: $.image.jdk is a number"]),
        (_record("measurements", '{"product_id": "7"}'), ["$.product_id is a string, but it must be an integer"]),
        (_record("measurements", '{"debuggable": 1}'), ["$.debuggable is a number, but it must be true or false"]),
        (_record("measurements", "[]"), ["enclave.measurements.json: $ is an array, but it must be an object"]),
        (_record("ra_config", '{"sgx_mrs": [5]}'), ["enclave.ra_config.json: $.sgx_mrs[0] is a number"]),
        (_record("cdx", "[" * 200_000), ["enclave.cdx.json nests 200000 levels deep, more than the 64"]),
        (_record("measurements", '{"mrenclave": NaN}'), ["enclave.measurements.json is not valid JSON: NaN"]),
        (lambda d: (d / "enclave.cdx.json").write_bytes(b"\xff{}"), ["enclave.cdx.json is not UTF-8 text"]),
        (lambda d: (d / "enclave.measurements.json").unlink(), ["enclave.measurements.json is missing"]),
    ],
)
def test_a_record_of_the_wrong_shape_names_the_file_and_the_path(tmp_path, capsys, setup: Setup, words) -> None:
    package = write_set(tmp_path)
    setup(tmp_path)
    _refused(package, capsys, *words)


def test_the_package_s_occlum_json_of_the_wrong_shape(tmp_path, capsys) -> None:
    _refused(write_set(tmp_path, b'{"metadata": []}'), capsys, "the package's Occlum.json: $.metadata is an array")


def _swap(path: Path, make: Callable[[Path], None]) -> None:
    path.unlink()
    make(path)


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda p: p.symlink_to("/dev/zero"), "a symlink"),  # stat says 0 bytes; it never ends
        (lambda p: os.mkfifo(p), "a FIFO"),  # an open would block forever
        (lambda p: p.mkdir(), "a directory"),
    ],
)
@pytest.mark.parametrize("which", ["enclave.measurements.json", "enclave.cdx.json", "enclave.tar.gz"])
def test_only_regular_files_are_read(tmp_path, capsys, make, kind: str, which: str) -> None:
    package = write_set(tmp_path)
    _swap(tmp_path / which, make)
    _refused(package, capsys, which, f"is {kind}, not a regular file")


def test_a_record_is_bounded_while_it_is_read(tmp_path, capsys, monkeypatch) -> None:
    package = write_set(tmp_path)
    monkeypatch.setattr(verify, "MAX_RECORD_BYTES", 1000)
    (tmp_path / "enclave.measurements.json").write_text(json.dumps({"pad": "x" * 1000}))
    _refused(package, capsys, "enclave.measurements.json is larger than the 1000 bytes it may be")


def test_a_huge_pax_header_is_refused_before_it_is_read(tmp_path, capsys) -> None:
    """600 MB of pax header announced in a small package: refused without reading it."""
    package = write_set(tmp_path)
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 600 * 1024 * 1024
    with tarfile.open(package, "w:gz") as tf:
        tf.fileobj.write(header.tobuf(format=tarfile.USTAR_FORMAT))  # type: ignore[union-attr]
        tf.fileobj.write(b"x" * 600_000)  # type: ignore[union-attr]
    tracemalloc.start()
    try:
        _refused(package, capsys, "a pax header of 629145600 bytes, more than the 1048576")
        assert tracemalloc.get_traced_memory()[1] < 64 * 1024 * 1024
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "members, words",
    [
        ([("enclave/Occlum.json", b"{}"), ("enclave/Occlum.json", b"{}")], "member enclave/Occlum.json appears twice"),
        ([("enclave/Occlum.json", b"{}"), ("other/x", b"")], "members under both enclave/ and other/"),
        ([("enclave/../etc/passwd", b"")], "is not a plain relative path"),
        ([("/enclave/Occlum.json", b"")], "is not a plain relative path"),
        ([], "it holds no members"),
    ],
)
def test_a_package_of_the_wrong_shape(tmp_path, capsys, members, words: str) -> None:
    package = write_set(tmp_path)
    _tar(package, members)
    _refused(package, capsys, "enclave.tar.gz", words)


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _raw_tar(members: list[tuple[str, bytes]], end: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return raw if end else raw.rstrip(b"\0")


@pytest.mark.parametrize(
    "package_bytes, words",
    [
        # gzip and `tar -x` read on into a second stream; a reader that stops after the first would not.
        (
            _gz(_raw_tar([("enclave/Occlum.json", b"{}")], end=False)) + _gz(_raw_tar([("enclave/evil", b"x")])),
            "bytes after its gzip stream",
        ),
        (_gz(_raw_tar([("enclave/Occlum.json", b"{}")])) + b"garbage", "bytes after its gzip stream"),
        (
            _gz(_raw_tar([("enclave/Occlum.json", b"{}")]) + b"after the end" + bytes(1024)),
            "after the tar archive's end",
        ),
        (_gz(_raw_tar([("enclave/Occlum.json", b"{}")]))[:-8], "the file is truncated"),
    ],
)
def test_what_tar_would_read_past_is_refused(tmp_path, capsys, package_bytes: bytes, words: str) -> None:
    package = write_set(tmp_path)
    package.write_bytes(package_bytes)
    _refused(package, capsys, words)


def _with_symlink(package: Path, link: str, target: str, then: str) -> None:
    with tarfile.open(package, "w:gz") as tf:
        info = tarfile.TarInfo(link)
        info.type, info.linkname = tarfile.SYMTYPE, target
        tf.addfile(info)
        data = tarfile.TarInfo(then)
        data.size = 2
        tf.addfile(data, io.BytesIO(b"{}"))


def test_a_member_below_a_symlink_member_is_refused(tmp_path, capsys) -> None:
    """`enclave/d -> .` then `enclave/d/Occlum.json`: tar -x writes the second through the first."""
    package = write_set(tmp_path)
    _with_symlink(package, "enclave/d", ".", "enclave/d/Occlum.json")
    _refused(package, capsys, "member enclave/d/Occlum.json lies below the symlink member enclave/d")


def _header(name: str, size: int, kind: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _block(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


@pytest.mark.parametrize(
    "headers, words",
    [
        # A GNU long name, then a pax path: Python's tarfile takes the first, GNU tar the second.
        (
            [(tarfile.GNUTYPE_LONGNAME, b"enclave/zz\0"), (tarfile.XHDTYPE, b"27 path=enclave/Occlum.json\n")],
            "two name-setting headers",
        ),
        (
            [(tarfile.GNUTYPE_LONGNAME, b"enclave/zz\0"), (tarfile.GNUTYPE_LONGNAME, b"enclave/Occlum.json\0")],
            "two name-setting headers",
        ),
        ([(tarfile.XGLTYPE, b"27 path=enclave/Occlum.json\n")], "a global pax header"),
    ],
)
def test_headers_that_tar_programs_read_differently_are_refused(tmp_path, capsys, headers, words: str) -> None:
    package = write_set(tmp_path)
    raw = b"".join(_header("././@LongLink", len(body), kind) + _block(body) for kind, body in headers)
    raw += _header("enclave/x", 2, tarfile.REGTYPE) + _block(b"{}") + bytes(1024)
    package.write_bytes(_gz(raw))
    _refused(package, capsys, words)


@pytest.mark.parametrize(
    "record, text, words",
    [
        # Python keeps the last of a repeated key, cJSON (Occlum's parser) the first.
        (
            "ra_config",
            '{"verify_mr_enclave": "off", "verify_mr_enclave": "on"}',
            "the key 'verify_mr_enclave' appears twice",
        ),
        ("cdx", '{"a": "\\ud800"}', "a lone surrogate escape"),
    ],
)
def test_records_read_one_way_only(tmp_path, capsys, record: str, text: str, words: str) -> None:
    package = write_set(tmp_path)
    (tmp_path / f"enclave.{record}.json").write_text(text)
    _refused(package, capsys, words)


def test_a_package_that_is_not_a_tarball(tmp_path, capsys) -> None:
    package = write_set(tmp_path)
    package.write_bytes(b"not a tarball")
    _refused(package, capsys, "cannot read", "as a .tar.gz")


def test_a_package_without_a_signed_enclave_is_not_verified(tmp_path, capsys) -> None:
    code, out = _run(write_set(tmp_path), capsys)
    assert code == 1 and "FAIL  the package has no build/lib/libocclum-libos.signed.so" in out, out
    assert "every link below it: there is no signed enclave" in out


def test_depth_scan_is_linear_and_skips_strings() -> None:
    assert untrusted.json_depth('[{"a": "[[[[\\"]]"}]') == 2
    assert untrusted.json_depth('"unterminated [[[[') == 0  # invalid JSON: the parser reports it


def test_member_bound_while_reading() -> None:
    read = package_reader.read_bytes(10)
    assert read(io.BytesIO(b"x" * 10)) == b"x" * 10
    with pytest.raises(untrusted.Unusable, match="larger than the 10 bytes"):
        read(io.BytesIO(b"x" * 11))


def test_runs_as_a_module(tmp_path: Path) -> None:
    package = write_set(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "occlum.attestation.verify", str(package), "--mrsigner", "zz"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert r.returncode == 2 and "is not 64 hex digits" in r.stderr, r.stdout + r.stderr
