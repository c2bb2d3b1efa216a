from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fake_jdk  # noqa: E402
from fake_jdk import TarMember, make_fake_jdk_archive, make_tar  # noqa: E402
from occlum.jdk import extract_tool  # noqa: E402
from occlum.jdk.extract_tool import JdkArchiveError, Member  # noqa: E402

TOP = "dragonwell-11.0.16.12+8-GA"
LABEL = "//3rdparty/jdk:dragonwell@11.0.16.12.8"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cwd (the 'sandbox'); archives are built next to it in tmp_path."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def run_tool(archive: Path, expect_libc: str = "musl", extra: Sequence[str] = ()) -> int:
    argv = [
        "--archive",
        str(archive),
        "--out-dir",
        "jdk",
        "--info-out",
        "jdk-info.json",
        "--expect-libc",
        expect_libc,
        "--label",
        LABEL,
        *extra,
    ]
    return extract_tool.main(argv)


def assert_refused(work: Path, archive: Path, capsys, *words: str, expect_libc: str = "musl") -> str:
    rc = run_tool(archive, expect_libc)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: " + LABEL + ": "), err
    assert err.count("\n") == 1 and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    # Nothing written: no out dir, no info, no temp leftovers, nothing next to cwd.
    assert os.listdir(work) == []
    assert sorted(p.name for p in work.parent.iterdir()) == sorted(["work", archive.name])
    return err


def hostile(tmp_path: Path, *extra: TarMember) -> Path:
    return make_fake_jdk_archive(tmp_path / "jdk.tar.gz", extra_members=extra)


# ---------------------------------------------------------------- good archives


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar", ".zip"])
def test_good_musl_archive(tmp_path: Path, work: Path, capsys, suffix: str) -> None:
    archive = make_fake_jdk_archive(tmp_path / ("jdk" + suffix))
    assert run_tool(archive) == 0, capsys.readouterr().err
    info = json.loads((work / "jdk-info.json").read_text())
    assert info == {
        "java_version": "11.0.16",
        "java_major": 11,
        "implementor": "Alibaba",
        "runtime_version": "11.0.16+8-GA",
        "libc": "musl",
        "interpreter": "/lib/ld-musl-x86_64.so.1",
        "top_folder": TOP,
        "files": 6,
        "bytes": info["bytes"],
    }
    jdk = work / "jdk"
    assert info["bytes"] == sum(p.stat().st_size for p in jdk.rglob("*") if p.is_file() and not p.is_symlink())
    assert (jdk / "bin" / "java").stat().st_mode & 0o777 == 0o755
    assert (jdk / "release").stat().st_mode & 0o777 == 0o644
    assert (jdk / "lib").stat().st_mode & 0o777 == 0o755
    assert jdk.stat().st_mode & 0o777 == 0o755
    assert os.readlink(str(jdk / "lib" / "libjsig.so")) == "server/libjsig.so"
    assert sorted(os.listdir(work)) == ["jdk", "jdk-info.json"]


def test_archive_bytes_are_deterministic(tmp_path: Path) -> None:
    a = make_fake_jdk_archive(tmp_path / "a.tar.gz").read_bytes()
    b = make_fake_jdk_archive(tmp_path / "b.tar.gz").read_bytes()
    assert a == b


def test_glibc_jdk(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar.gz", libc="glibc")
    err = assert_refused(
        work,
        archive,
        capsys,
        "is a glibc build (PT_INTERP /lib64/ld-linux-x86-64.so.2)",
        "declares libc='musl'",
        "Occlum runs musl JDKs",
        "set libc='glibc'",
        "_alpine-linux",
        "JAVA_VERSION=11.0.16",
    )
    assert "Traceback" not in err
    assert run_tool(archive, expect_libc="glibc") == 0
    assert json.loads((work / "jdk-info.json").read_text())["libc"] == "glibc"


def test_static_java_with_musl_expected(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar.gz", libc="static")
    assert_refused(work, archive, capsys, "no PT_INTERP", "JAVA_VERSION=11.0.16")


def test_out_dir_may_be_nested_and_existing_is_refused(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar.gz")
    (work / "jdk").mkdir()
    assert run_tool(archive) == 2
    assert "already exists" in capsys.readouterr().err


# ---------------------------------------------------------------- hostile archives


def test_dotdot_member(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember(TOP + "/../evil", data=b"x", raw=True))
    assert_refused(work, archive, capsys, "../evil", "`..`")


def test_absolute_member(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember("/tmp/evil", data=b"x", raw=True))
    assert_refused(work, archive, capsys, "/tmp/evil", "absolute path")


def test_symlink_escaping(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember("lib/evil", kind="symlink", linkname="../../etc/passwd"))
    assert_refused(work, archive, capsys, "lib/evil", "symlink", "../../etc/passwd", "outside")


def test_symlink_escaping_through_another_symlink(tmp_path: Path, work: Path, capsys) -> None:
    # Lexically "b/c/../.." stays inside; really b/c -> . makes it climb out.
    archive = hostile(
        tmp_path,
        TarMember("b/c", kind="symlink", linkname="."),
        TarMember("a", kind="symlink", linkname="b/c/../../.."),
    )
    assert_refused(work, archive, capsys, "/a'", "symlink", "outside")


def test_absolute_symlink(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember("lib/evil", kind="symlink", linkname="/etc/passwd"))
    assert_refused(work, archive, capsys, "lib/evil", "absolute target '/etc/passwd'")


def test_member_under_symlink(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(
        tmp_path,
        TarMember("lnk", kind="symlink", linkname="lib"),
        TarMember("lnk/x", data=b"x"),
    )
    assert_refused(work, archive, capsys, "lnk/x", "not a directory")


def test_hard_link(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember("bin/java2", kind="hardlink", linkname=TOP + "/bin/java"))
    assert_refused(work, archive, capsys, "bin/java2", "hard link")


@pytest.mark.parametrize("kind,word", [("chr", "device"), ("blk", "device"), ("fifo", "FIFO")])
def test_special_files(tmp_path: Path, work: Path, capsys, kind: str, word: str) -> None:
    archive = hostile(tmp_path, TarMember("dev/x", kind=kind))
    assert_refused(work, archive, capsys, "dev/x", word)


def test_duplicate_member(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember("release", data=b'JAVA_VERSION="17"\n'))
    assert_refused(work, archive, capsys, TOP + "/release", "more than once")


def test_two_top_folders(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember("other/x", data=b"x", raw=True))
    assert_refused(work, archive, capsys, "2 top-level entries", TOP, "other", "exactly one top folder")


def test_no_top_folder(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar.gz", top="")
    assert_refused(work, archive, capsys, "top-level entries", "bin", "release", "exactly one top folder")


def test_empty_archive(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_tar(tmp_path / "jdk.tar.gz", [])
    assert_refused(work, archive, capsys, "empty")


def test_ratio_bomb(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember("lib/modules", data=bytes(50 * 1024 * 1024)))
    assert_refused(work, archive, capsys, "expands", "ratio of 200", "decompression bomb")


def test_size_limit(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember("lib/modules", data=os.urandom(200_000)))
    rc = run_tool(archive, extra=["--max-bytes", "100000"])
    err = capsys.readouterr().err
    assert rc == 2 and "more than 100000 bytes" in err
    assert os.listdir(work) == []


def test_header_size_limit_on_plain_tar(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar", extra_members=[TarMember("lib/m", data=bytes(5000))])
    rc = run_tool(archive, extra=["--max-bytes", "4000"])
    err = capsys.readouterr().err
    assert rc == 2 and "above the limit of 4000 bytes" in err, err


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_gzip(tmp_path: Path, work: Path, capsys, fraction: float) -> None:
    archive = hostile(tmp_path, TarMember("lib/modules", data=os.urandom(100_000)))
    data = archive.read_bytes()
    archive.write_bytes(data[: int(len(data) * fraction)])
    assert_refused(work, archive, capsys, "the archive is truncated or corrupt: ")


def test_truncated_plain_tar(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar", extra_members=[TarMember("lib/zz", data=os.urandom(100_000))])
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    assert_refused(work, archive, capsys, "truncated or corrupt")


def test_not_an_archive(tmp_path: Path, work: Path, capsys) -> None:
    archive = tmp_path / "jdk.tar.gz"
    archive.write_bytes(b"<html>rate limited</html>")
    assert_refused(work, archive, capsys, "not a .tar.gz", "<html>")


def test_zip_symlink_escape(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_fake_jdk_archive(
        tmp_path / "jdk.zip", extra_members=[TarMember("lib/evil", kind="symlink", linkname="../../x")]
    )
    assert_refused(work, archive, capsys, "lib/evil", "outside")


# ---------------------------------------------------------------- bad JDKs


@pytest.mark.parametrize(
    "omit,words",
    [
        (["bin/java"], ["no bin/java", "JAVA_VERSION=11.0.16"]),
        (["lib/server/libjvm.so"], ["lib/server/libjvm.so", "JAVA_VERSION=11.0.16"]),
        (["release"], ["no `release` file"]),
    ],
)
def test_missing_jdk_parts(tmp_path: Path, work: Path, capsys, omit: list[str], words: list[str]) -> None:
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar.gz", omit=omit)
    assert_refused(work, archive, capsys, *words)


def test_missing_java_version(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar.gz", java_version=None)
    assert_refused(work, archive, capsys, "no JAVA_VERSION", "IMPLEMENTOR")


def test_non_elf_java(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_fake_jdk_archive(
        tmp_path / "jdk.tar.gz",
        omit=["bin/java"],
        extra_members=[TarMember("bin/java", data=b'#!/bin/sh\nexec java17 "$@"\n', mode=0o755)],
    )
    assert_refused(work, archive, capsys, "bin/java is not a usable executable", "not an ELF", "JAVA_VERSION=11.0.16")


def test_aarch64_java(tmp_path: Path, work: Path, capsys) -> None:
    elf = fake_jdk.make_elf(machine=183)
    archive = make_fake_jdk_archive(
        tmp_path / "jdk.tar.gz", omit=["bin/java"], extra_members=[TarMember("bin/java", data=elf, mode=0o755)]
    )
    assert_refused(work, archive, capsys, "machine 183", "x86-64")


# ---------------------------------------------------------------- pure helpers


def test_read_elf_interpreter() -> None:
    assert extract_tool.read_elf_interpreter(fake_jdk.make_elf()) == fake_jdk.MUSL_LOADER
    assert (
        extract_tool.read_elf_interpreter(fake_jdk.make_elf(interpreter=fake_jdk.GLIBC_LOADER)) == fake_jdk.GLIBC_LOADER
    )
    assert extract_tool.read_elf_interpreter(fake_jdk.make_elf(interpreter=None)) is None
    with pytest.raises(JdkArchiveError, match="not an ELF"):
        extract_tool.read_elf_interpreter(b"MZ\x90\x00")
    with pytest.raises(JdkArchiveError, match="truncated"):
        extract_tool.read_elf_interpreter(fake_jdk.make_elf()[:100])


def test_read_elf_interpreter_of_a_real_binary() -> None:
    real = os.path.realpath(sys.executable)
    with open(real, "rb") as f:
        if f.read(4) != b"\x7fELF":
            pytest.skip("interpreter is not an ELF file")
    interp = extract_tool.read_elf_interpreter(real)
    assert interp is None or interp.startswith("/")


def test_parse_release_and_java_major() -> None:
    text = 'IMPLEMENTOR="Alibaba"\nJAVA_VERSION=1.8.0_292\n# comment\n\nMODULES="a b"\nodd line\n'
    rel = extract_tool.parse_release(text)
    assert rel == {"IMPLEMENTOR": "Alibaba", "JAVA_VERSION": "1.8.0_292", "MODULES": "a b"}
    assert extract_tool.java_major(rel["JAVA_VERSION"]) == 8
    assert extract_tool.java_major("11.0.16") == 11
    assert extract_tool.java_major("17") == 17
    assert extract_tool.java_major("21-ea") == 21
    with pytest.raises(JdkArchiveError):
        extract_tool.java_major("unknown")


def test_check_members_returns_top() -> None:
    members = [
        Member(TOP, "dir"),
        Member(TOP + "/bin/java", "file", 10, 0o755),
        Member("./" + TOP + "/jre", "symlink", linkname="."),
    ]
    assert extract_tool.check_members(members) == TOP


_names = st.lists(
    st.text(alphabet="ab./\\\x00", min_size=0, max_size=8).map(
        lambda s: "t/" + s if not s.startswith(("/", ".")) else s
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(_names, st.lists(st.text(alphabet="ab./", max_size=8), max_size=3))
def test_check_members_never_crashes(names: list[str], targets: list[str]) -> None:
    members = [Member(n, "file", 1) for n in names]
    members += [Member(f"t/l{i}", "symlink", linkname=t) for i, t in enumerate(targets)]
    try:
        top = extract_tool.check_members(members)
    except JdkArchiveError:
        return
    # Whatever passes must stay inside the top folder.
    assert top and all(".." not in extract_tool.split_member_name(m.name) for m in members)


# ---------------------------------------------------------------- self-contained script


def test_script_runs_standalone(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    shutil.copy(extract_tool.__file__, str(sandbox / "extract_tool.py"))
    make_fake_jdk_archive(sandbox / "jdk.tgz")
    glibc = make_fake_jdk_archive(sandbox / "glibc.tgz", libc="glibc")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONNOUSERSITE": "1"}
    base = [
        sys.executable,
        "-I",
        "extract_tool.py",
        "--info-out",
        "info.json",
        "--expect-libc",
        "musl",
        "--label",
        LABEL,
    ]
    ok = subprocess.run(
        base + ["--archive", "jdk.tgz", "--out-dir", "jdk"],
        cwd=str(sandbox),
        env=env,
        capture_output=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads((sandbox / "info.json").read_text())["java_major"] == 11
    bad = subprocess.run(
        base + ["--archive", glibc.name, "--out-dir", "jdk2"],
        cwd=str(sandbox),
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: " + LABEL) and "Traceback" not in bad.stderr
    assert not (sandbox / "jdk2").exists()


def test_gzip_helper_is_really_gzip(tmp_path: Path) -> None:
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar.gz")
    assert gzip.decompress(archive.read_bytes())[257:262] == b"ustar"
