"""Every target, field and option of the backend explains itself in `pants help`."""

from __future__ import annotations

import pytest
from pants.engine.target import COMMON_TARGET_FIELDS

from occlum.register import target_types
from occlum.subsystems.dragonwell import DragonwellSubsystem
from occlum.subsystems.occlum import OcclumSubsystem


def _text(help_value) -> str:
    return help_value() if callable(help_value) else help_value


@pytest.mark.parametrize("target", target_types(), ids=lambda t: t.alias)
def test_targets_and_fields_have_help(target) -> None:
    assert len(_text(target.help)) > 40
    own = [f for f in target.core_fields if f not in COMMON_TARGET_FIELDS]
    for field in own:
        text = _text(field.help)
        assert text and len(text) > 20, f"{target.alias}.{field.alias} needs help text"


@pytest.mark.parametrize("subsystem", [DragonwellSubsystem, OcclumSubsystem], ids=lambda s: s.options_scope)
def test_options_have_help(subsystem) -> None:
    options = [v for v in vars(subsystem).values() if hasattr(v, "_help")]
    assert options, subsystem
    for opt in options:
        text = _text(opt._help) if not callable(opt._help) else opt._help(subsystem)
        assert text and len(text) > 30, f"[{subsystem.options_scope}] option needs help"
