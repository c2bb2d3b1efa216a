"""docs/reference.md is what build-support/gen-reference makes from `pants help-all` today."""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_reference_docs_are_up_to_date(tmp_path: Path) -> None:
    fresh = tmp_path / "reference.md"
    proc = subprocess.run(
        [str(REPO / "build-support/gen-reference"), str(fresh)], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    committed = REPO / "docs/reference.md"
    assert committed.is_file(), "docs/reference.md is missing: run build-support/gen-reference"
    new, old = fresh.read_text(encoding="utf-8"), committed.read_text(encoding="utf-8")
    if new != old:
        diff = "".join(
            list(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "docs/reference.md", "generated"))[
                :60
            ]
        )
        raise AssertionError(
            "docs/reference.md is out of date with the targets, fields and options: "
            "run build-support/gen-reference and commit the result.\n" + diff
        )
    text = new
    for name in (
        "### dragonwell_jdk",
        "### occlum_java_image",
        "### occlum",
        "### dragonwell",
        "### enclave-memory",
        "#### `occlum_java_image.jvm_options`",
        "#### `stage_only`",
        "#### `known_versions` (advanced)",
    ):
        assert name in text, name
