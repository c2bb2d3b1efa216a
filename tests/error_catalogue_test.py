"""Every catalogued bad input gets exactly the message recorded in docs/error-catalogue.md."""

from __future__ import annotations

import re
import shutil

import pytest

from error_catalogue import CASES, Case, parse_doc, run_case
from occlum_testutil import REPO_ROOT

DOC = REPO_ROOT / "docs" / "error-catalogue.md"


def test_catalogue_is_large_and_documented() -> None:
    recorded = parse_doc(DOC.read_text())
    assert len(CASES) >= 30
    assert set(recorded) == {c.id for c in CASES}, "run build-support/gen-error-catalogue"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_gives_its_catalogued_message(case: Case) -> None:
    if case.setup == "boot_jar_java17_dependency" and shutil.which("javac") is None:
        pytest.skip("needs a host javac to build the Spring Boot jar")
    message = run_case(case)
    expected = parse_doc(DOC.read_text()).get(case.id)
    assert message == expected, f"message changed; run build-support/gen-error-catalogue\n{message}"
    assert "Traceback" not in message and 'File "' not in message
    # Names where to look: the target, or the option.
    assert re.search(r"svc:\w+|\[(occlum|dragonwell)\]", message), message
    for text in case.mentions:
        assert text in message, (text, message)
