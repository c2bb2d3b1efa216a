"""occlum.pants_compat: the only door to the engine, and both of its sides.

The Get side runs in every other test (Pants 2.17.1 is what is installed). The call-by-name side
(Pants 2.30+) cannot be installed here, so it is checked two ways: statically (every branch defines
the same functions, and each call-by-name wrapper calls the Pants function of its own name), and by
importing the module as Pants 2.33 would, with the 2.30+ entry points replaced by recorders, to see
what each wrapper passes on.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from occlum import pants_compat

PACKAGE = Path(__file__).resolve().parent
SOURCE = PACKAGE / "pants_compat.py"

# Names that only pants_compat may import or call.
ENGINE_CALL_NAMES = {"Get", "MultiGet", "implicitly", "concurrently", "Effect"}
# Modules that moved or appeared between 2.17 and 2.33 (docs/compatibility.md).
MOVED_MODULES = (
    "pants.core.util_rules.environments",
    "pants.core.environments",
    "pants.core.util_rules.env_vars",
    "pants.engine.intrinsics",
    "pants.engine.internals.graph",
    "pants.engine.internals.selectors",
)


def _backend_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if not p.name.endswith("_test.py") and p != SOURCE)


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(MOVED_MODULES):
                out.append(f"{path.name}:{node.lineno}: imports {node.module}")
            if node.module.startswith("pants."):
                engine = [a.name for a in node.names if a.name in ENGINE_CALL_NAMES]
                out += [f"{path.name}:{node.lineno}: imports {name}" for name in engine]
        elif isinstance(node, ast.Import):
            moved = [a.name for a in node.names if a.name.startswith(MOVED_MODULES)]
            out += [f"{path.name}:{node.lineno}: imports {name}" for name in moved]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"Get", "MultiGet"}:
            out.append(f"{path.name}:{node.lineno}: calls {node.func.id}")
        elif isinstance(node, ast.Attribute) and node.attr in {"Get", "MultiGet", "implicitly", "Effect"}:
            # `rules.Get(...)`, `import pants.engine.rules as r; r.MultiGet(...)`
            out.append(f"{path.name}:{node.lineno}: uses {ast.unparse(node)}")
    return out


def test_no_other_module_makes_engine_calls_of_its_own() -> None:
    modules = _backend_modules()
    assert len(modules) >= 30, modules
    assert [v for m in modules for v in _violations(m)] == []


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from pants.engine.rules import Get, collect_rules\n"
        "from pants.core.util_rules.environments import EnvironmentField\n"
        "async def r():\n    return await Get(int, str, '')\n"
        "import pants.engine.rules as rules\n"
        "import pants.core.util_rules.environments\n"
        "async def s():\n    return await rules.MultiGet(rules.Get(int, str, ''))\n"
    )
    assert len(_violations(bad)) == 6, _violations(bad)


# --- the branches agree -------------------------------------------------------------------------


def _if_branches() -> tuple[list[ast.stmt], list[ast.stmt], list[ast.stmt]]:
    """The statements of `if TYPE_CHECKING: ... elif not CALL_BY_NAME: ... else: ...`."""
    tree = ast.parse(SOURCE.read_text())
    (node,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    (elif_node,) = node.orelse
    assert isinstance(elif_node, ast.If) and ast.unparse(elif_node.test) == "not CALL_BY_NAME"
    return node.body, elif_node.body, elif_node.orelse


def _branches() -> dict[str, set[str]]:
    """Names each branch defines."""
    typing_branch, get_branch, by_name_branch = _if_branches()

    def defined(stmts: list[ast.stmt]) -> set[str]:
        names = set()
        for s in stmts:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and not s.name.startswith("_"):
                names.add(s.name)
            elif isinstance(s, (ast.Assign, ast.AnnAssign)):
                targets = s.targets if isinstance(s, ast.Assign) else [s.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
            elif isinstance(s, ast.ImportFrom):
                names |= {a.asname or a.name for a in s.names if not (a.asname or a.name).startswith("_")}
        return names - {"Get", "MultiGet", "implicitly"}

    return {"typing": defined(typing_branch), "get": defined(get_branch), "by_name": defined(by_name_branch)}


def test_every_branch_defines_the_same_functions() -> None:
    branches = _branches()
    exported = set(pants_compat.__all__) - {"CALL_BY_NAME", "EnvironmentField"}
    for name, defined in branches.items():
        assert defined == exported, (name, sorted(defined ^ exported))


def test_each_call_by_name_wrapper_calls_the_pants_function_of_its_name() -> None:
    _, _, by_name = _if_branches()
    imported = {a.asname: (s.module, a.name) for s in by_name if isinstance(s, ast.ImportFrom) for a in s.names}
    wrappers = [s for s in by_name if isinstance(s, ast.AsyncFunctionDef)]
    assert len(wrappers) == 20
    for w in wrappers:
        calls = [c.func.id for c in ast.walk(w) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
        target = f"_{w.name}"
        assert target in calls, (w.name, calls)
        assert imported[target][1] == w.name, (w.name, imported[target])


# --- the Get side, as it runs here --------------------------------------------------------------


def test_the_side_that_runs_is_the_one_for_this_pants() -> None:
    # Parametrized by the Pants the suite runs on (build-support/run-tests, OCCLUM_TEST_PANTS_PYTHON):
    # below 2.30 each wrapper returns a Get; from 2.30 it is a coroutine calling Pants by name.
    from pants.engine.fs import CreateDigest, Digest
    from pants.version import PANTS_SEMVER

    assert pants_compat.CALL_BY_NAME is (PANTS_SEMVER >= Version("2.30.0.dev0"))
    made = pants_compat.create_digest(CreateDigest([]))
    if not pants_compat.CALL_BY_NAME:
        from pants.engine.rules import Get

        assert isinstance(made, Get) and made.output_type is Digest and list(made.input_types) == [CreateDigest]
    else:
        from pants.engine.intrinsics import create_digest  # type: ignore[import-not-found,unused-ignore]

        assert asyncio.iscoroutine(made)
        made.close()
        # The wrapper's body awaits Pants' own intrinsic, which is what the 2.30+ parser records.
        assert "_create_digest" in pants_compat.create_digest.__code__.co_names
        assert pants_compat._create_digest is create_digest  # type: ignore[attr-defined]


def test_rule_call_names_the_rules_output_and_request() -> None:
    from occlum.util_rules.occlum_config import (
        OcclumConfig,
        OcclumConfigRequest,
        generate_occlum_config,
        get_occlum_config,
    )
    from occlum.util_rules.occlum_toolchain import MaybeOcclumToolchain, find_occlum_toolchain, get_maybe_toolchain

    request = OcclumConfigRequest(None, "0.31.0", None)  # type: ignore[arg-type]
    get = get_occlum_config(request)
    no_request: Any = get_maybe_toolchain()
    if not pants_compat.CALL_BY_NAME:
        from pants.engine.rules import Get

        assert isinstance(get, Get)
        assert get.output_type is OcclumConfig and list(get.input_types) == [OcclumConfigRequest]
        assert list(get.inputs) == [request]
        assert no_request.output_type is MaybeOcclumToolchain and list(no_request.inputs) == []
    else:
        # From 2.30 each call is a coroutine whose closure holds the backend's own rule, which the
        # 2.30+ parser records as a by-name call.
        assert asyncio.iscoroutine(get) and asyncio.iscoroutine(no_request)
        get.close()
        no_request.close()
        assert get_occlum_config.__closure__[0].cell_contents is generate_occlum_config  # type: ignore[attr-defined,index,unused-ignore]
        assert get_maybe_toolchain.__closure__[0].cell_contents is find_occlum_toolchain  # type: ignore[attr-defined,index,unused-ignore]


# --- the call-by-name side, imported as Pants 2.33 would -----------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def rule(self, name: str):
        async def fake(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return f"<{name}>"

        fake.__name__ = name
        return fake


@pytest.fixture
def by_name(monkeypatch: pytest.MonkeyPatch) -> tuple[types.ModuleType, _Recorder]:
    """pants_compat loaded with PANTS_SEMVER 2.33.0 and recorders at the 2.30+ paths."""
    import pants.core.goals.package
    import pants.core.util_rules.adhoc_binaries
    import pants.core.util_rules.system_binaries
    import pants.engine.internals.graph
    import pants.engine.rules
    import pants.version

    rec = _Recorder()
    monkeypatch.setattr(pants.version, "PANTS_SEMVER", Version("2.33.0"))
    monkeypatch.setattr(pants.engine.rules, "implicitly", lambda *a: {"__implicitly__": a}, raising=False)
    monkeypatch.setattr(pants.engine.rules, "concurrently", "<pants concurrently>", raising=False)
    intrinsics = types.ModuleType("pants.engine.intrinsics")
    for name in (
        "create_digest",
        "merge_digests",
        "add_prefix",
        "remove_prefix",
        "digest_subset_to_digest",
        "get_digest_contents",
        "get_digest_entries",
        "digest_to_snapshot",
        "execute_process",
    ):
        setattr(intrinsics, name, rec.rule(name))
    env_vars = types.ModuleType("pants.core.util_rules.env_vars")
    env_vars.environment_vars_subset = rec.rule("environment_vars_subset")  # type: ignore[attr-defined]
    environments = types.ModuleType("pants.core.environments")
    env_targets = types.ModuleType("pants.core.environments.target_types")
    env_targets.EnvironmentField = "<2.28 EnvironmentField>"  # type: ignore[attr-defined]
    env_rules = types.ModuleType("pants.core.environments.rules")
    env_rules.determine_local_environment = rec.rule("determine_local_environment")  # type: ignore[attr-defined]
    for mod in (intrinsics, env_vars, environments, env_targets, env_rules):
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    for module, names in (
        (
            pants.engine.internals.graph,
            (
                "resolve_targets",
                "resolve_unexpanded_targets",
                "resolve_target",
                "resolve_unparsed_address_inputs",
                "hydrate_sources",
                "find_valid_field_sets",
            ),
        ),
        (pants.core.util_rules.system_binaries, ("find_binary",)),
        (pants.core.util_rules.adhoc_binaries, ("get_python_for_scripts",)),
        (pants.core.goals.package, ("environment_aware_package",)),
    ):
        for name in names:
            monkeypatch.setattr(module, name, rec.rule(name), raising=False)
    spec = importlib.util.spec_from_file_location("occlum_pants_compat_2_33", SOURCE)
    assert spec is not None and spec.loader is not None
    compat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compat)
    return compat, rec


def _run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_the_call_by_name_side_calls_each_entry_point_with_what_it_needs(by_name) -> None:
    from pants.engine.addresses import Addresses

    compat, rec = by_name
    assert compat.CALL_BY_NAME is True and compat.ENVIRONMENTS_MOVED is True
    assert compat.EnvironmentField == "<2.28 EnvironmentField>"
    assert compat.concurrently == "<pants concurrently>"
    # Intrinsics: the request alone.
    assert _run(compat.create_digest("req")) == "<create_digest>"
    assert rec.calls[-1] == ("create_digest", ("req",), {})
    # Rules with injected parameters: the request, and the rest from the engine.
    assert _run(compat.execute_process("proc")) == "<execute_process>"
    assert rec.calls[-1] == ("execute_process", ("proc",), {"__implicitly__": ()})
    _run(compat.find_binary("bin"))
    assert rec.calls[-1] == ("find_binary", ("bin",), {"__implicitly__": ()})
    # resolve_targets takes UnexpandedTargets: the Addresses go in through implicitly.
    addresses = Addresses([])
    _run(compat.resolve_targets(addresses))
    assert rec.calls[-1] == ("resolve_targets", (), {"__implicitly__": ({addresses: Addresses},)})
    # The backend's own rules: by name, with the request and nothing else explicit.
    own = rec.rule("stage_occlum_instance")
    _run(compat.rule_call(own)("field set"))
    assert rec.calls[-1] == ("stage_occlum_instance", ("field set",), {"__implicitly__": ()})
    _run(compat.rule_call_without_request(rec.rule("find_occlum_toolchain"))())
    assert rec.calls[-1] == ("find_occlum_toolchain", (), {"__implicitly__": ()})
    # In another environment: the request, and the environment's name for the engine to use.
    from pants.engine.environment import EnvironmentName

    local = EnvironmentName("local")
    _run(compat.rule_call_in_environment(rec.rule("occlum_build"))("request", local))
    assert rec.calls[-1] == ("occlum_build", ("request",), {"__implicitly__": ({local: EnvironmentName},)})
    # Every wrapper reached its own entry point.
    for name in sorted(set(compat.__all__) - {"CALL_BY_NAME", "EnvironmentField", "concurrently"}):
        if name.startswith("rule_call"):
            continue
        wrapper = getattr(compat, name)
        takes_request = bool(inspect.signature(wrapper).parameters)
        _run(wrapper(addresses) if takes_request else wrapper())
        assert rec.calls[-1][0] == name


def test_a_missing_jsonschema_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import occlum.register

    monkeypatch.setitem(sys.modules, "jsonschema", None)  # type: ignore[misc]  # `import jsonschema` now fails
    with pytest.raises(ImportError, match=r"needs the `jsonschema` package.*\[GLOBAL\]\.plugins"):
        importlib.reload(occlum.register)
    monkeypatch.undo()
    importlib.reload(occlum.register)


def test_requirements_txt_beside_register_matches_the_wheel() -> None:
    wanted = [line for line in (PACKAGE / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    start = pyproject.index("dependencies = [")
    declared = pyproject[start : pyproject.index("]", start)]
    for requirement in wanted:
        assert repr(requirement).replace('"', "'") in declared.replace('"', "'"), requirement
    assert any("jsonschema" in r for r in wanted)
