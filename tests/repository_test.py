"""The repository stands on its own: no tracked file reads or names anything outside it.

A clone must pass its tests in an empty folder, so no file may point at a folder beside the clone,
at a path of the machine it was written on, or at a document the repository does not hold.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(REPO).as_posix()

# Paths of the machines this was built on, and folders beside a clone.
OUTSIDE = re.compile(
    r"\.\./shared"
    r"|(?<![\w./-])shared/(?:docs|vectors|hooks)\b"
    r"|(?<![\w.-])/(?:work|root|home/\w+)/"
    r"|/opt/(?:wheels|pypi)"
    r"|/tmp/pytest-of-"
    # The reference notes this project was written from, cited by name and section.
    r"|\b(?:pants-2\.17-notes|pants-versions|dragonwell|peers|design|style)(?:\.md)? §"
)
# A file name ending in .md, as prose or code mentions one. Occlum's own files are cited as
# `<tag>:<path>` (e.g. `v0.31.0:docs/resource_config_guide.md`) and are not ours to hold.
MD_NAME = re.compile(r"(?<![\w/.:-])([\w./-]*[\w-]+\.md)\b")
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked_files() -> list[str]:
    if (REPO / ".git").exists():
        out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
        return [f for f in out.splitlines() if (REPO / f).is_file()]
    return [p.relative_to(REPO).as_posix() for p in REPO.rglob("*") if p.is_file() and ".git" not in p.parts]


def text_of(path: str) -> str | None:
    data = (REPO / path).read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", "replace")


FILES = [f for f in tracked_files() if f != THIS]
MARKDOWN_NAMES = {Path(f).name for f in FILES if f.endswith(".md")}


def test_the_scan_sees_the_repository() -> None:
    assert len(FILES) > 100 and "README.md" in FILES and "docs/occlum-contract.md" in FILES


@pytest.mark.parametrize("path", FILES)
def test_no_file_refers_outside_the_repository(path: str) -> None:
    text = text_of(path)
    if text is None:
        return
    bad = [f"{path}:{n}: {line.strip()[:160]}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", [f for f in FILES if f.endswith((".md", ".py", ".toml")) or "/" not in f])
def test_every_markdown_document_named_is_in_the_repository(path: str) -> None:
    text = text_of(path)
    if text is None:
        return
    missing = sorted({name for name in MD_NAME.findall(text) if Path(name).name not in MARKDOWN_NAMES})
    assert not missing, f"{path} names documents the repository does not hold: {missing}"


@pytest.mark.parametrize("path", [f for f in FILES if f.endswith(".md")])
def test_markdown_links_resolve(path: str) -> None:
    text = text_of(path) or ""
    base = (REPO / path).parent
    broken = [
        target
        for target in MD_LINK.findall(text)
        if "://" not in target and not target.startswith("mailto:") and not (base / target).exists()
    ]
    assert not broken, f"{path} links to files that do not exist: {broken}"


def test_the_checks_fail_on_what_they_look_for() -> None:
    assert OUTSIDE.search("see ../shared/docs/x") and OUTSIDE.search("cites shared/vectors/occlum/cases")
    assert OUTSIDE.search("--find-links /opt/wheels") and OUTSIDE.search("PATH=/work/main/bin")
    assert OUTSIDE.search("a gotcha (pants-2.17-notes §4)") and OUTSIDE.search("see peers.md §2")
    assert not OUTSIDE.search("docs/occlum-contract.md §3.2")  # the project's own contract
    assert not OUTSIDE.search("tests/data/occlum/cases and /opt/occlum/build/bin and /usr/lib/jvm")
    assert MD_NAME.findall("as peers.md 4.1 says") == ["peers.md"] and "peers.md" not in MARKDOWN_NAMES
    assert MD_NAME.findall("Occlum's `v0.31.0:docs/resource_config_guide.md`") == []
    assert MD_NAME.findall("Occlum's `v0.31.0:docs/resource_config_guide.md`") == []


def test_the_backend_names_its_own_version() -> None:
    # SBOMs name the tool that wrote them; the version must be the distribution's.
    import occlum

    pyproject = (REPO / "pants-plugins" / "pyproject.toml").read_text()
    assert f'\nversion = "{occlum.__version__}"\n' in pyproject
