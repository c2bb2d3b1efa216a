from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from occlum.config.model import OcclumConfigInputs, render_occlum_json
from occlum.config.sizes import MB

PLUGINS = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^(?P<file>.+?): (?P<path>\$\S*): (?P<value>.+?): (?P<rule>.+)$")


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PLUGINS)}
    return subprocess.run(
        [sys.executable, "-m", "occlum.validate", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture
def good(tmp_path: Path) -> Path:
    inputs = OcclumConfigInputs(
        user_space_size=1680 * MB,
        kernel_space_heap_size=64 * MB,
        kernel_space_stack_size=1 * MB,
        max_num_of_threads=64,
        default_heap_size=256 * MB,
        default_stack_size=4 * MB,
        default_mmap_size=1400 * MB,
        entry_points=("/bin",),
    )
    path = tmp_path / "good.json"
    path.write_text(json.dumps(render_occlum_json("0.31.0", inputs)))
    return path


@pytest.fixture
def bad(good: Path, tmp_path: Path) -> Path:
    doc = json.loads(good.read_text())
    doc["resource_limits"]["user_space_size"] = "256mb"
    doc["entry_points"] = ["bin"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


def _no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout


def test_valid_file_exits_0(good: Path) -> None:
    proc = _run("--release", "0.31.0", str(good))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{good}: ok\n"


def test_invalid_file_exits_1_with_one_line_per_problem(good: Path, bad: Path) -> None:
    proc = _run("--release", "v0.31.0", str(good), str(bad))
    assert proc.returncode == 1
    lines: list[str] = proc.stdout.splitlines()
    assert lines[0] == f"{good}: ok"
    problems = [LINE.match(line) for line in lines[1:]]
    assert all(problems) and len(problems) == 2
    assert [m["file"] for m in problems] == [str(bad)] * 2  # type: ignore[index]
    assert [m["path"] for m in problems] == ["$.entry_points[0]", "$.resource_limits.user_space_size"]  # type: ignore[index]
    assert problems[1]["value"] == "'256mb'" and "case-sensitive" in problems[1]["rule"]  # type: ignore[index]


def test_template_of_other_release_is_rejected(good: Path) -> None:
    proc = _run("--release", "0.20.0", str(good))
    assert proc.returncode == 1
    assert f"{good}: $.feature: " in proc.stdout


def test_unknown_release_exits_2(good: Path) -> None:
    proc = _run("--release", "0.99.0", str(good))
    assert proc.returncode == 2 and proc.stdout == ""
    assert "unknown Occlum release '0.99.0'" in proc.stderr and "0.20.0" in proc.stderr and "0.31.0" in proc.stderr
    _no_traceback(proc)


def test_unreadable_or_invalid_json_exits_2(tmp_path: Path, good: Path) -> None:
    missing = tmp_path / "nope.json"
    proc = _run("--release", "0.31.0", str(good), str(missing))
    assert proc.returncode == 2 and f"{missing}: cannot read" in proc.stderr
    _no_traceback(proc)
    commented = tmp_path / "c.json"
    commented.write_text('{\n  // comment\n  "a": 1\n}')
    proc = _run("--release", "0.31.0", str(commented))
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and "line 2" in proc.stderr
    _no_traceback(proc)
    dup = tmp_path / "d.json"
    dup.write_text('{"env": 1, "env": 2}')
    proc = _run("--release", "0.31.0", str(dup))
    assert proc.returncode == 2 and "duplicate key 'env'" in proc.stderr
    _no_traceback(proc)


def test_usage() -> None:
    proc = _run("--help")
    assert proc.returncode == 0 and "--release" in proc.stdout and "Exit status" in proc.stdout
    proc = _run("--release", "0.31.0")
    assert proc.returncode == 2 and "FILE" in proc.stderr
    proc = _run("x.json")
    assert proc.returncode == 2 and "--release" in proc.stderr


def test_does_not_import_pants() -> None:
    code = "import sys, occlum.validate; print(sorted(m for m in sys.modules if m.split('.')[0] == 'pants'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PLUGINS)},
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "[]"
