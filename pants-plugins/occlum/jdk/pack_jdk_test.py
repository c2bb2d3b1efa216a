"""pack_jdk: a JDK folder of the kind a machine has (absolute and escaping symlinks, hard links)
becomes an archive the extraction step accepts, with the same bytes every time."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest

import fake_jdk
from occlum.jdk.pack_jdk import main


@pytest.fixture
def jdk_folder(tmp_path: Path) -> Path:
    archive = fake_jdk.make_fake_jdk_archive(tmp_path / "jdk.tar.gz", libc="glibc")
    with tarfile.open(archive) as tf:
        trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        tf.extractall(tmp_path / "src", **trusted)  # type: ignore[arg-type]  # the test's own archive
    (root,) = (tmp_path / "src").iterdir()
    outside = tmp_path / "etc-java" / "cacerts"
    outside.parent.mkdir()
    outside.write_bytes(b"certificates kept outside the JDK, as Debian does")
    (root / "lib" / "security").mkdir(parents=True, exist_ok=True)
    (root / "lib" / "security" / "cacerts").symlink_to(outside)  # absolute, out of the JDK
    (root / "lib" / "java-abs").symlink_to(root / "bin" / "java")  # absolute, into the JDK
    (root / "lib" / "climbs").symlink_to("../../../etc-java/cacerts")  # relative, out of the JDK
    (root / "lib" / "dangling").symlink_to("/nonexistent/file")
    os.link(root / "release", root / "release-hardlink")
    os.mkfifo(root / "lib" / "fifo")
    return root


def test_a_machine_s_jdk_folder_packs_into_an_accepted_archive(jdk_folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "packed.tar.gz"
    assert main([str(jdk_folder), str(out)]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert (
        f'dragonwell_jdk(name="jdk", url="file://{out}", sha256="{sha}", size={out.stat().st_size}, libc="glibc")'
        in printed
    )
    assert "Occlum runs musl JDKs only" in printed
    with tarfile.open(out) as tf:
        members = {m.name.split("/", 1)[1]: m for m in tf.getmembers() if "/" in m.name}
        assert members["lib/security/cacerts"].isfile()  # copied in
        assert tf.extractfile(members["lib/climbs"]).read().startswith(b"certificates")  # type: ignore[union-attr]
        assert members["lib/java-abs"].issym() and members["lib/java-abs"].linkname == "../bin/java"
        assert members["release-hardlink"].isfile()
        assert "lib/dangling" not in members and "lib/fifo" not in members
        assert all(m.mtime == 0 and m.uid == 0 for m in members.values())
    again = tmp_path / "again.tar.gz"
    assert main([str(jdk_folder), str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()  # the same folder, the same bytes and sha256


def test_an_archive_is_packed_again(jdk_folder: Path, tmp_path: Path, capsys) -> None:
    first = tmp_path / "first.tar.gz"
    with tarfile.open(first, "w:gz") as tf:
        tf.add(jdk_folder, arcname="myjdk")  # keeps the absolute links the extraction step refuses
    out = tmp_path / "packed.tar.gz"
    assert main([str(first), str(out)]) == 0, capsys.readouterr().err
    with tarfile.open(out) as tf:
        assert tf.getnames()[0] == "myjdk" and not any(m.issym() and m.linkname.startswith("/") for m in tf)


def test_not_a_jdk_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), str(tmp_path / "out.tar.gz")]) == 1
    err = capsys.readouterr().err
    assert "has no bin/java and `release` file, so it is not a JDK folder" in err and "Traceback" not in err
