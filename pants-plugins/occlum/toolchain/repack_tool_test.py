import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from occlum.toolchain import repack_tool, sandbox_guard
from occlum.toolchain.repack_tool import repack


def _tar(path: Path, order: list, mtime: int, uid: int) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data, mode in order:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o775
            else:
                info.size, info.mode = len(data), mode
            info.mtime, info.uid, info.uname = mtime, uid, "builder"
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
        link = tarfile.TarInfo("pkg/link")
        link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "/opt/occlum/build/bin/occlum-run", mtime
        tf.addfile(link)


def test_same_content_gives_the_same_bytes(tmp_path: Path) -> None:
    entries = [("pkg", None, 0), ("pkg/a", b"A", 0o664), ("pkg/b", b"B", 0o775)]
    _tar(tmp_path / "1.tar.gz", entries, mtime=1_700_000_000, uid=1000)
    _tar(tmp_path / "2.tar.gz", list(reversed(entries)), mtime=1_800_000_000, uid=0)
    assert (tmp_path / "1.tar.gz").read_bytes() != (tmp_path / "2.tar.gz").read_bytes()
    repack(str(tmp_path / "1.tar.gz"), str(tmp_path / "o1.tar.gz"))
    repack(str(tmp_path / "2.tar.gz"), str(tmp_path / "o2.tar.gz"))
    assert (tmp_path / "o1.tar.gz").read_bytes() == (tmp_path / "o2.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "o1.tar.gz") as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert list(members) == sorted(members)
        assert members["pkg/a"].mode == 0o644 and members["pkg/b"].mode == 0o755 and members["pkg"].mode == 0o755
        assert members["pkg/link"].issym() and members["pkg/link"].linkname == "/opt/occlum/build/bin/occlum-run"
        b = tf.extractfile("pkg/b")
        assert b is not None and b.read() == b"B"
        assert {m.mtime for m in members.values()} == {0} and {m.uname for m in members.values()} == {""}


def test_content_change_changes_the_bytes(tmp_path: Path) -> None:
    _tar(tmp_path / "1.tar.gz", [("pkg/a", b"A", 0o644)], mtime=1, uid=0)
    _tar(tmp_path / "2.tar.gz", [("pkg/a", b"Z", 0o644)], mtime=1, uid=0)
    repack(str(tmp_path / "1.tar.gz"), str(tmp_path / "o1.tar.gz"))
    repack(str(tmp_path / "2.tar.gz"), str(tmp_path / "o2.tar.gz"))
    assert (tmp_path / "o1.tar.gz").read_bytes() != (tmp_path / "o2.tar.gz").read_bytes()


def test_an_already_normal_archive_passes_through_unchanged(tmp_path: Path) -> None:
    _tar(tmp_path / "1.tar.gz", [("pkg", None, 0), ("pkg/a", b"A", 0o664)], mtime=5, uid=1000)
    repack(str(tmp_path / "1.tar.gz"), str(tmp_path / "once.tar.gz"))
    repack(str(tmp_path / "once.tar.gz"), str(tmp_path / "twice.tar.gz"))
    # The first pass had to rewrite (mtimes, owners); the second finds nothing to change.
    assert (tmp_path / "once.tar.gz").read_bytes() != (tmp_path / "1.tar.gz").read_bytes()
    assert (tmp_path / "twice.tar.gz").read_bytes() == (tmp_path / "once.tar.gz").read_bytes()


def test_runs_as_a_script_beside_its_guard(tmp_path: Path) -> None:
    # As in the sandbox: the script and sandbox_guard.py, nothing else, under an isolated python.
    tools = tmp_path / "__occlum_tools"
    tools.mkdir()
    for module in (repack_tool, sandbox_guard):
        shutil.copy(str(module.__file__), str(tools))
    _tar(tmp_path / "in.tar.gz", [("pkg/a", b"A", 0o664)], mtime=5, uid=1000)
    argv = [sys.executable, "-I", "__occlum_tools/repack_tool.py", "in.tar.gz", "out.tar.gz"]
    done = subprocess.run(argv, cwd=str(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with tarfile.open(tmp_path / "out.tar.gz") as tf:
        assert [m.mtime for m in tf.getmembers()] == [0, 0]


def test_a_corrupt_package_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "in.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage")
    argv = [sys.executable, str(Path(repack_tool.__file__)), "in.tar.gz", "out.tar.gz"]
    done = subprocess.run(argv, cwd=str(tmp_path), capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: cannot re-pack in.tar.gz: "), done.stderr
    assert "Traceback" not in done.stderr
