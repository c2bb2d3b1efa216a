from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fake_jdk  # noqa: E402
from fake_jdk import TarMember, make_fake_jdk_archive, make_tar  # noqa: E402
from occlum import image_paths  # noqa: E402
from occlum.jdk import extract_tool  # noqa: E402
from occlum.jdk.extract_tool import JdkArchiveError, Member  # noqa: E402
from occlum.toolchain import sandbox_guard  # noqa: E402
from occlum.toolchain.sandbox_guard_test import alive, assert_stops_with_parent, start_under_parent  # noqa: E402

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
    (work / "jdk/left-over").write_text("x")
    assert run_tool(archive) == 2
    assert "already exists and is not empty" in capsys.readouterr().err


def test_an_empty_out_dir_made_by_the_worker_is_replaced(tmp_path: Path, work: Path) -> None:
    # Buildbarn's workers create an action's declared output directories before it runs.
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar.gz")
    (work / "jdk").mkdir()
    assert run_tool(archive) == 0
    assert (work / "jdk/bin/java").is_file()


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
    err = assert_refused(work, archive, capsys, "dev/x", word, "devices and FIFOs have no place in a JDK archive")
    assert "--hard-dereference" not in err  # a device has nothing to dereference


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
    # Refused while decompressing, long before the 50 MB are out.
    assert_refused(work, archive, capsys, "expands more than", "ratio of 200", "decompression bomb")


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
    err = assert_refused(work, archive, capsys, "the archive is truncated or corrupt: ")
    assert not any(name in err for name in ("EOFError", "BadGzipFile", "ReadError", "zlib.error")), err


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
    shutil.copy(sandbox_guard.__file__, str(sandbox / "sandbox_guard.py"))  # as bundled_tools.py does
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


# ---------------------------------------------------------------- bounds (docs/security.md)


def run_refused(archive: Path, capsys, *words: str, expect_libc: str = "musl") -> str:
    """Refused with one short `error:` line naming what it found (for archives too big to re-check cwd)."""
    rc = run_tool(archive, expect_libc)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: " + LABEL + ": ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert len(err) < 1200, f"{len(err)}-character message"
    for w in words:
        assert w in err, (w, err)
    return err


def run_ok(archive: Path, capsys, expect_libc: str = "musl") -> dict:
    rc = run_tool(archive, expect_libc)
    assert rc == 0, capsys.readouterr().err
    return json.loads(Path("jdk-info.json").read_text())


def _nested_links(n: int) -> list[TarMember]:
    """l0 -> ., l1 -> l0/l0, l2 -> l1/l1, ...: resolving lN walks 2^N path components."""
    links = [TarMember("nest/l0", kind="symlink", linkname=".")]
    links += [TarMember(f"nest/l{i}", kind="symlink", linkname=f"l{i - 1}/l{i - 1}") for i in range(1, n + 1)]
    return links


@pytest.mark.parametrize("n", [22, 30])
def test_nested_symlink_bomb_is_refused_at_once(tmp_path: Path, work: Path, capsys, n: int) -> None:
    # Once N=22 took 17 s and N=30 over 90 s. Each link may now pass through 40 others (like Linux),
    # counted over the whole resolution, not its depth; l6 already needs 63.
    archive = hostile(tmp_path, *_nested_links(n))
    assert archive.stat().st_size < 2000
    t = time.monotonic()
    err = assert_refused(work, archive, capsys, "/nest/l", "passes through more than 40 symlinks")
    assert time.monotonic() - t < 5, err


def test_symlinks_over_the_real_link_budget_are_refused(tmp_path: Path, work: Path, capsys) -> None:
    # Each link alone is harmless (one hop, a 1000-byte target of 501 components), but 300 of them
    # walk 150,300 components: over the budget for the whole archive.
    assert extract_tool.MAX_LINK_STEPS == 100_000
    wide = [TarMember(f"wide/w{i:03}", kind="symlink", linkname="./" * 499 + "xy") for i in range(300)]
    t = time.monotonic()
    err = assert_refused(work, hostile(tmp_path, *wide), capsys, "/wide/w", "symlink bomb", "budget of 100000")
    assert time.monotonic() - t < 5, err
    assert "/wide/w199'" in err  # the link that ran out: 200 x 501 > 100,000


def test_symlinks_under_the_real_link_budget_pass(tmp_path: Path, work: Path, capsys) -> None:
    wide = [TarMember(f"wide/w{i:03}", kind="symlink", linkname="./" * 499 + "xy") for i in range(199)]
    assert run_ok(hostile(tmp_path, *wide), capsys)["files"] == 6


def _steps_used(members: list[Member], monkeypatch: pytest.MonkeyPatch) -> int:
    budgets = []

    class Spy(extract_tool._LinkBudget):
        def __init__(self, steps: int) -> None:
            super().__init__(steps)
            budgets.append(self)

    monkeypatch.setattr(extract_tool, "_LinkBudget", Spy)
    extract_tool.check_members(members)
    monkeypatch.undo()
    return budgets[0].total - budgets[0].left


def test_link_budget_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = [Member(TOP, "dir"), Member(TOP + "/nest", "dir")]
    members += [Member(f"{TOP}/{m.name}", "symlink", linkname=m.linkname) for m in _nested_links(4)]
    used = _steps_used(members, monkeypatch)
    assert 50 < used < 1000
    monkeypatch.setattr(extract_tool, "MAX_LINK_STEPS", used)
    assert extract_tool.check_members(members) == TOP  # exactly the budget: accepted
    monkeypatch.setattr(extract_tool, "MAX_LINK_STEPS", used - 1)
    with pytest.raises(JdkArchiveError, match=f"budget of {used - 1} path steps"):
        extract_tool.check_members(members)


def test_a_jdk_with_hundreds_of_legal_links_passes(tmp_path: Path, work: Path, capsys) -> None:
    # OpenJDK images link every module's legal notices to java.base's: a few hundred links.
    links = [
        TarMember(f"legal/java.mod{i}/{f}", kind="symlink", linkname=f"../java.base/{f}")
        for i in range(150)
        for f in ("LICENSE", "ASSEMBLY_EXCEPTION")
    ]
    files = [TarMember(f"legal/java.base/{f}", data=b"GPLv2 + CE\n") for f in ("LICENSE", "ASSEMBLY_EXCEPTION")]
    archive = hostile(tmp_path, *files, *links)
    assert run_ok(archive, capsys)["java_major"] == 11
    assert os.readlink(str(work / "jdk/legal/java.mod7/LICENSE")) == "../java.base/LICENSE"


def test_member_count_over_the_real_limit(tmp_path: Path, work: Path, capsys) -> None:
    n = extract_tool.MAX_MEMBERS
    assert n == 20_000
    (tmp_path / "base").mkdir()
    base = len(tarfile.open(make_fake_jdk_archive(tmp_path / "base" / "jdk.tar")).getmembers())
    shutil.rmtree(tmp_path / "base")
    many = [TarMember(f"many/f{i}") for i in range(n + 1 - base - 1)]  # - 1: the "many" folder
    archive = hostile(tmp_path, *many)
    assert len(tarfile.open(archive).getmembers()) == n + 1
    t = time.monotonic()
    assert_refused(work, archive, capsys, f"more than {n} members", f"at most {n} are allowed")
    assert time.monotonic() - t < 5


def test_member_count_boundary(tmp_path: Path, work: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = hostile(tmp_path, TarMember("extra", data=b"x"))
    count = len(tarfile.open(archive).getmembers())
    monkeypatch.setattr(extract_tool, "MAX_MEMBERS", count)
    assert run_ok(archive, capsys)["files"] == 7
    shutil.rmtree("jdk")
    os.unlink("jdk-info.json")
    monkeypatch.setattr(extract_tool, "MAX_MEMBERS", count - 1)
    assert_refused(work, archive, capsys, f"more than {count - 1} members")


def test_member_count_is_checked_while_listing(tmp_path: Path, work: Path, capsys, monkeypatch) -> None:
    archive = hostile(tmp_path, *(TarMember(f"many/f{i}") for i in range(5000)))
    monkeypatch.setattr(extract_tool, "MAX_MEMBERS", 50)
    seen = []
    real = extract_tool._member_from_tarinfo

    def spy(ti: tarfile.TarInfo) -> Member:
        seen.append(ti)
        return real(ti)

    monkeypatch.setattr(extract_tool, "_member_from_tarinfo", spy)
    assert_refused(work, archive, capsys, "more than 50 members")
    assert len(seen) == 50  # not one header more than needed


def test_zip_member_count_counts_the_records_not_the_claim(tmp_path: Path, work: Path, capsys, monkeypatch) -> None:
    archive = make_fake_jdk_archive(tmp_path / "jdk.zip", extra_members=[TarMember(f"many/f{i}") for i in range(60)])
    total = len(zipfile.ZipFile(archive).infolist())
    monkeypatch.setattr(extract_tool, "MAX_MEMBERS", 50)
    assert_refused(work, archive, capsys, f"the archive has {total} members", "at most 50")
    data = bytearray(archive.read_bytes())
    assert data[-22:-18] == b"PK\x05\x06"
    data[-14:-10] = struct.pack("<HH", 1, 1)  # the end record now claims one member
    archive.write_bytes(bytes(data))
    assert_refused(work, archive, capsys, "more than 50 members")


def _path(nbytes: int) -> str:
    """A member path of exactly nbytes, under the top folder, in components of at most 200."""
    name, rest = TOP, nbytes - len(TOP)
    while rest > 0:
        part = min(200, rest - 1)
        if rest - 1 - part == 1:  # never leave a lone "/" at the end
            part -= 1
        name += "/" + "p" * part
        rest -= part + 1
    assert len(name) == nbytes and "//" not in name and not name.endswith("/")
    return name


def test_path_length_boundary(tmp_path: Path, work: Path, capsys) -> None:
    limit = extract_tool.MAX_PATH_BYTES
    assert limit == 1024
    archive = hostile(tmp_path, TarMember(_path(limit), data=b"x", raw=True))
    assert run_ok(archive, capsys)["files"] == 7
    shutil.rmtree("jdk")
    os.unlink("jdk-info.json")
    archive = hostile(tmp_path, TarMember(_path(limit + 1), data=b"x", raw=True))
    run_refused(archive, capsys, f"has a {limit + 1}-byte path, above the limit of {limit} bytes")


def test_a_4010_byte_path_is_refused_with_a_short_message(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember(TOP + "/" + "p" * (4010 - len(TOP) - 1), data=b"x", raw=True))
    err = assert_refused(work, archive, capsys, "…(4010 bytes)", "4010-byte path")
    assert len(err) < 600


def test_component_length_boundary(tmp_path: Path, work: Path, capsys) -> None:
    limit = extract_tool.MAX_NAME_BYTES
    assert limit == 255
    archive = hostile(tmp_path, TarMember("lib/" + "c" * limit, data=b"x"))
    assert run_ok(archive, capsys)["files"] == 7
    shutil.rmtree("jdk")
    os.unlink("jdk-info.json")
    archive = hostile(tmp_path, TarMember("lib/" + "c" * (limit + 1), data=b"x"))
    run_refused(archive, capsys, f"has a {limit + 1}-byte path component", f"limit of {limit} bytes")


def test_depth_boundary(tmp_path: Path, work: Path, capsys) -> None:
    limit = extract_tool.MAX_DEPTH
    assert limit == image_paths.MAX_IMAGE_DEPTH == 16  # a deeper member could never fit in the image
    # The top folder counts as a level: TOP/d/d/.../f
    archive = hostile(tmp_path, TarMember("d/" * (limit - 2) + "f", data=b"x"))
    assert run_ok(archive, capsys)["files"] == 7
    shutil.rmtree("jdk")
    os.unlink("jdk-info.json")
    archive = hostile(tmp_path, TarMember("d/" * (limit - 1) + "f", data=b"x"))
    run_refused(archive, capsys, f"nested {limit + 1} levels deep", f"limit of {limit}")


def test_1500_levels_of_nesting_are_refused_cleanly(tmp_path: Path, work: Path, capsys) -> None:
    # This ended in a RecursionError; now its 17th level (or the path bound) refuses it before any walk.
    archive = hostile(tmp_path, TarMember("a/" * 1500 + "f", data=b"x"))
    assert_refused(work, archive, capsys, "nested 17 levels deep")
    only = make_tar(tmp_path / "jdk.tar.gz", [TarMember(TOP + "/a" * 1500, data=b"x")])  # no parents listed
    assert_refused(work, only, capsys, f"{len(TOP) + 3000}-byte path")


def test_a_megabyte_link_target_gives_a_short_message(tmp_path: Path, work: Path, capsys) -> None:
    archive = hostile(tmp_path, TarMember("lib/evil", kind="symlink", linkname="t" * 1_000_000))
    err = assert_refused(work, archive, capsys, "lib/evil", "1000000-byte target", "…(1000000 bytes)")
    assert len(err) < 900


def test_link_target_length_boundary(tmp_path: Path, work: Path, capsys) -> None:
    limit = extract_tool.MAX_PATH_BYTES
    at_limit = "./" * ((limit - 2) // 2) + "ab"  # resolves to lib/ab, inside the top folder
    assert len(at_limit) == limit
    archive = hostile(tmp_path, TarMember("lib/long", kind="symlink", linkname=at_limit))
    assert run_ok(archive, capsys)["files"] == 6
    shutil.rmtree("jdk")
    os.unlink("jdk-info.json")
    archive = hostile(tmp_path, TarMember("lib/long", kind="symlink", linkname=at_limit + "c"))
    run_refused(archive, capsys, "lib/long", f"{limit + 1}-byte target", f"limit of {limit} bytes")


def test_zip_link_target_over_the_bound_is_not_read(tmp_path: Path, work: Path, capsys) -> None:
    archive = make_fake_jdk_archive(
        tmp_path / "jdk.zip", extra_members=[TarMember("lib/evil", kind="symlink", linkname="t" * 5000)]
    )
    assert_refused(work, archive, capsys, "lib/evil", "5000-byte target")


_HUNDRED_GB = 100 * 1024**3


@pytest.mark.parametrize("flavour", ["gnu", "pax-0.1", "pax-1.0"])
def test_sparse_members_are_refused_as_such(tmp_path: Path, work: Path, capsys, flavour: str) -> None:
    name = TOP + "/lib/modules"
    pax: tuple[tuple[str, str], ...]
    if flavour == "gnu":
        archive = make_fake_jdk_archive(tmp_path / "jdk.tar.gz", raw_tail=fake_jdk.gnu_sparse_header(name, _HUNDRED_GB))
    elif flavour == "pax-0.1":
        pax = (("GNU.sparse.map", "0,0"), ("GNU.sparse.size", str(_HUNDRED_GB)))
        archive = hostile(tmp_path, TarMember("lib/modules", pax=pax))
    else:
        pax_10 = (("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", name))
        pax = (*pax_10, ("GNU.sparse.realsize", str(_HUNDRED_GB)))
        archive = hostile(tmp_path, TarMember("lib/sparse", data=b"1\n0\n0\n".ljust(512, b"\0"), pax=pax))
    err = assert_refused(work, archive, capsys, repr(name), "is a sparse file; JDK archives hold none")
    assert "truncated or corrupt" not in err


@pytest.mark.parametrize(
    "member,words",
    [
        (TarMember("lib/x", data=b"x", pax=(("path", TOP + "/lib/a\x00b"),)), ["a\\x00b", "NUL byte"]),
        (TarMember("lib/$ORIGIN.so", data=b"x"), ["$ORIGIN.so", "copy_bom expands `$VAR`"]),
        (TarMember("lib/caf\udce9.so", data=b"x"), ["caf\\udce9.so", "not valid UTF-8"]),
        (TarMember(TOP + "/lib/./x", data=b"x", raw=True), ["/lib/.", "`.` component"]),
        (TarMember("lib/../../evil", data=b"x"), ["`..` component"]),
    ],
    ids=["nul", "dollar", "non-utf8", "dot", "dotdot"],
)
def test_names_occlum_cannot_take(tmp_path: Path, work: Path, capsys, member: TarMember, words: list) -> None:
    assert_refused(work, hostile(tmp_path, member), capsys, *words)


@pytest.mark.parametrize("raw,words", [(b"caf\xe9", ["not valid UTF-8"]), (b"a\x00bc", ["NUL byte"])])
def test_zip_names_are_read_as_stored(tmp_path: Path, work: Path, capsys, raw: bytes, words: list) -> None:
    # zipfile decodes unflagged names as cp437 and cuts them at a NUL; the raw bytes decide here.
    archive = make_fake_jdk_archive(tmp_path / "jdk.zip", extra_members=[TarMember("lib/QQQQ", data=b"x")])
    data = archive.read_bytes()
    assert data.count(b"lib/QQQQ") == 2  # local header and central directory
    archive.write_bytes(data.replace(b"lib/QQQQ", b"lib/" + raw))
    assert_refused(work, archive, capsys, "lib/", *words)


@pytest.mark.parametrize(
    "interp,libc",
    [
        ("/tmp/evil/ld-musl-x86_64.so.1", "musl"),
        ("/lib/ld-musl-x86_64.so.1.evil", "musl"),
        ("/lib/ld-linux-x86-64.so.2", "glibc"),
        ("/opt/x/lib64/ld-linux-x86-64.so.2", "glibc"),
    ],
)
def test_loader_must_be_exactly_the_libcs(tmp_path: Path, work: Path, capsys, interp: str, libc: str) -> None:
    java = TarMember("bin/java", data=fake_jdk.make_elf(interpreter=interp), mode=0o755)
    archive = make_fake_jdk_archive(tmp_path / "jdk.tar.gz", omit=["bin/java"], extra_members=[java])
    loader = fake_jdk.MUSL_LOADER if libc == "musl" else fake_jdk.GLIBC_LOADER
    words = (repr(interp), "not exactly", f"libc='{libc}', whose loader is {loader}")
    assert_refused(work, archive, capsys, *words, expect_libc=libc)


def test_exact_loaders_are_the_psabi_paths() -> None:
    assert extract_tool.libc_of_interpreter("/lib/ld-musl-x86_64.so.1") == "musl"
    assert extract_tool.libc_of_interpreter("/lib64/ld-linux-x86-64.so.2") == "glibc"
    assert extract_tool.libc_of_interpreter("/lib/ld-linux-x86-64.so.2") == "unknown"
    assert extract_tool.libc_of_interpreter(None) == "static"


def _pax_header_size(tmp_path: Path, comment: str) -> int:
    """The size field of the pax header make_tar writes for one member with this comment."""
    tar = make_tar(tmp_path / "one.tar", [TarMember("t/x", data=b"x", pax=(("comment", comment),))])
    block = tar.read_bytes()[:512]
    assert block[156:157] == tarfile.XHDTYPE
    return int(block[124:136].strip(b"\0 "), 8)


def test_extended_header_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = _pax_header_size(tmp_path, "c" * 5000)
    archive = make_tar(tmp_path / "x.tar", [TarMember("t/x", data=b"x", pax=(("comment", "c" * 5000),))])
    monkeypatch.setattr(extract_tool, "MAX_EXT_HEADER_BYTES", size)
    extract_tool.open_archive(str(archive)).close()  # exactly the bound: read
    monkeypatch.setattr(extract_tool, "MAX_EXT_HEADER_BYTES", size - 1)
    with pytest.raises(JdkArchiveError, match=f"header of {size} bytes .* above the limit of {size - 1} bytes"):
        extract_tool.open_archive(str(archive))


def test_an_oversized_extended_header_is_refused_before_it_is_read(tmp_path: Path, work: Path, capsys) -> None:
    assert extract_tool.MAX_EXT_HEADER_BYTES == 1024**2
    noise = os.urandom(1024**2 // 2 + 1).hex()  # incompressible, or the ratio check would refuse it first
    archive = hostile(tmp_path, TarMember("lib/x", data=b"x", pax=(("comment", noise),)))
    assert_refused(work, archive, capsys, "extended (pax or GNU long-name) header of", "limit of 1048576 bytes")
    ok = hostile(tmp_path, TarMember("lib/x", data=b"x", pax=(("comment", "c" * 100_000),)))
    assert run_ok(ok, capsys)["files"] == 7


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyError("boom")])
def test_internal_errors_name_no_exception_class(tmp_path: Path, work: Path, capsys, monkeypatch, error) -> None:
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(extract_tool, "extract_members", fail)
    rc = run_tool(make_fake_jdk_archive(tmp_path / "jdk.tar.gz"))
    err = capsys.readouterr().err
    assert rc == 3 and err.count("\n") == 1, err
    assert "not a problem of the archive" in err and str(error.args[-1]) in err
    assert type(error).__name__ not in err


def test_extract_tool_stops_when_pants_dies(tmp_path: Path) -> None:
    # Blocked reading an archive that never comes (a FIFO nobody writes): only the guard can end it.
    sandbox = tmp_path / "sandbox"
    (sandbox / "__occlum_tools").mkdir(parents=True)
    shutil.copy(extract_tool.__file__, str(sandbox / "__occlum_tools" / "extract_tool.py"))
    shutil.copy(sandbox_guard.__file__, str(sandbox / "__occlum_tools" / "sandbox_guard.py"))
    os.mkfifo(str(sandbox / "jdk.tar.gz"))
    argv = [sys.executable, "__occlum_tools/extract_tool.py", "--archive", "jdk.tar.gz", "--out-dir", "jdk"]
    argv += ["--info-out", "info.json", "--expect-libc", "musl"]
    parent, pid = start_under_parent(argv, sandbox, tmp_path / "log")
    time.sleep(0.3)
    assert alive(pid)  # still waiting for the archive
    assert_stops_with_parent(parent, pid, tmp_path / "log")
