"""The Python half of build-support/check-rule-parser (see there): run each release's rule parser."""

import importlib.util
import sys
import types
from pathlib import Path

from packaging.version import Version

repo, work, tags = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]


class AwaitableConstraints:
    """Stand-in for the type the parser builds; its arguments changed between releases
    (output, inputs, effect) -> (rule_id, output, inputs, effect) -> (rule_id, output, arity, inputs, effect)."""

    def __init__(self, *args, **kwargs):
        self.rule_id = args[0] if len(args) >= 4 else None
        self.output_type = next(a for a in args if isinstance(a, type))
        self.input_types = next(a for a in args if isinstance(a, tuple))
        ints = [a for a in args if type(a) is int]
        self.explicit_args_arity = ints[0] if ints else None


def load_visitor(tag: str) -> types.ModuleType:
    import pants.engine.internals.native_engine as native
    import pants.engine.internals.selectors as real_selectors
    import pants.util.docutil as docutil

    # Pants 2.17's own Get/MultiGet/Effect (what the Get side of pants_compat builds), and the
    # recorder above for the constraints the parser derives from them.
    selectors = types.ModuleType("pants.engine.internals.selectors")
    for name in ("Awaitable", "Effect", "MultiGet", "GetParseError"):
        setattr(selectors, name, getattr(real_selectors, name))
    selectors.AwaitableConstraints = AwaitableConstraints
    selectors.concurrently = real_concurrently
    native.RuleCallTrampoline = getattr(native, "RuleCallTrampoline", type("RuleCallTrampoline", (), {}))
    docutil.doc_url = getattr(docutil, "doc_url", lambda *a: "")
    saved = sys.modules["pants.engine.internals.selectors"]
    sys.modules["pants.engine.internals.selectors"] = selectors
    try:
        spec = importlib.util.spec_from_file_location(f"rule_visitor_{tag}", work / f"rule_visitor_{tag}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    finally:
        sys.modules["pants.engine.internals.selectors"] = saved
    return mod


def real_concurrently(*args):  # what `concurrently` is for the parser: an identity it can recognise
    raise AssertionError("not called at parse time")


def stand_in_rule(module: str, name: str, signature: str, returns: str) -> types.FunctionType:
    """An async function with a rule_id, as 2.30+'s @rule produces, whose annotations resolve."""
    ns = {}
    exec(f"async def {name}({signature}) -> {returns}: ...", vars(sys.modules["occlum.pants_compat"]), ns)
    fn = ns[name]
    fn.rule_id = f"{module}.{name}"
    return fn


def load_compat_by_name() -> types.ModuleType:
    import pants.core.goals.package
    import pants.core.util_rules.system_binaries
    import pants.engine.internals.graph
    import pants.engine.rules
    import pants.version

    pants.version.PANTS_SEMVER = Version("2.33.0")

    def implicitly(*args):
        return {}

    pants.engine.rules.implicitly = implicitly
    pants.engine.rules.concurrently = real_concurrently
    intrinsics = types.ModuleType("pants.engine.intrinsics")
    for name, sig, ret in (
        ("create_digest", "create_digest: CreateDigest", "Digest"),
        ("merge_digests", "merge_digests: MergeDigests", "Digest"),
        ("add_prefix", "add_prefix: AddPrefix", "Digest"),
        ("remove_prefix", "remove_prefix: RemovePrefix", "Digest"),
        ("digest_subset_to_digest", "digest_subset: DigestSubset", "Digest"),
        ("get_digest_contents", "digest: Digest", "DigestContents"),
        ("get_digest_entries", "digest: Digest", "DigestEntries"),
        ("digest_to_snapshot", "digest: Digest", "Snapshot"),
        ("execute_process", "process: Process, process_execution_environment: object", "FallibleProcessResult"),
    ):
        setattr(intrinsics, name, stand_in_rule("pants.engine.intrinsics", name, sig, ret))
    sys.modules["pants.engine.intrinsics"] = intrinsics
    env_vars = types.ModuleType("pants.core.util_rules.env_vars")
    env_vars.environment_vars_subset = stand_in_rule(
        "pants.core.util_rules.env_vars",
        "environment_vars_subset",
        "request: EnvironmentVarsRequest, complete_env_vars: object",
        "EnvironmentVars",
    )
    sys.modules["pants.core.util_rules.env_vars"] = env_vars
    for mod_name in ("pants.core.environments", "pants.core.environments.target_types"):
        m = types.ModuleType(mod_name)
        m.EnvironmentField = object
        sys.modules[mod_name] = m
    graph = pants.engine.internals.graph
    for name, sig, ret in (
        ("resolve_targets", "targets: UnexpandedTargets, a: object, b: object", "Targets"),
        ("resolve_unexpanded_targets", "addresses: Addresses", "UnexpandedTargets"),
        ("resolve_target", "request: WrappedTargetRequest, a: object, b: object", "WrappedTarget"),
        ("resolve_unparsed_address_inputs", "request: UnparsedAddressInputs, roots: object", "Addresses"),
        ("hydrate_sources", "request: HydrateSourcesRequest, a: object, b: object, c: object", "HydratedSources"),
        ("find_valid_field_sets", "request: FieldSetsPerTargetRequest, u: object", "FieldSetsPerTarget"),
    ):
        setattr(graph, name, stand_in_rule("pants.engine.internals.graph", name, sig, ret))
    pants.core.util_rules.system_binaries.find_binary = stand_in_rule(
        "pants.core.util_rules.system_binaries", "find_binary", "request: BinaryPathRequest, env: object", "BinaryPaths"
    )
    pants.core.goals.package.environment_aware_package = stand_in_rule(
        "pants.core.goals.package",
        "environment_aware_package",
        "request: EnvironmentAwarePackageRequest",
        "BuiltPackage",
    )
    spec = importlib.util.spec_from_file_location(
        "occlum_pants_compat_by_name", repo / "pants-plugins/occlum/pants_compat.py"
    )
    compat = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = compat
    spec.loader.exec_module(compat)
    assert compat.CALL_BY_NAME
    return compat


SAMPLE = """
from __future__ import annotations
from occlum_pants_compat_by_name import (
    add_prefix, concurrently, create_digest, digest_subset_to_digest, digest_to_snapshot,
    environment_aware_package, environment_vars_subset, execute_process, find_binary,
    find_valid_field_sets, get_digest_contents, get_digest_entries, hydrate_sources, merge_digests,
    remove_prefix, resolve_target, resolve_targets, resolve_unexpanded_targets,
    resolve_unparsed_address_inputs, rule_call, rule_call_without_request,
)
from sample_own_rules import own_rule, own_rule_without_request

get_own = rule_call(own_rule)
get_own_without_request = rule_call_without_request(own_rule_without_request)


async def sample_rule(request: int) -> str:
    d = await create_digest(request)
    contents, entries = await concurrently(get_digest_contents(d), get_digest_entries(d))
    snapshots = await concurrently(digest_to_snapshot(x) for x in (d, d))
    await merge_digests(request)
    await add_prefix(request)
    await remove_prefix(request)
    await digest_subset_to_digest(request)
    await execute_process(request)
    a = await resolve_unparsed_address_inputs(request)
    await resolve_targets(a)
    await resolve_unexpanded_targets(a)
    await resolve_target(request)
    await find_valid_field_sets(request)
    await hydrate_sources(request)
    await environment_vars_subset(request)
    await find_binary(request)
    await environment_aware_package(request)
    await get_own(request)
    return await get_own_without_request()
"""

OWN = """
async def own_rule(request: int, injected: str) -> float: ...
async def own_rule_without_request(injected: str) -> bytes: ...
own_rule.rule_id = "sample_own_rules.own_rule"
own_rule_without_request.rule_id = "sample_own_rules.own_rule_without_request"
"""

EXPECTED = {  # rule id -> (explicit positional args, implicit input types by name)
    "pants.engine.intrinsics.create_digest": (1, ()),
    "pants.engine.intrinsics.get_digest_contents": (1, ()),
    "pants.engine.intrinsics.get_digest_entries": (1, ()),
    "pants.engine.intrinsics.digest_to_snapshot": (1, ()),
    "pants.engine.intrinsics.merge_digests": (1, ()),
    "pants.engine.intrinsics.add_prefix": (1, ()),
    "pants.engine.intrinsics.remove_prefix": (1, ()),
    "pants.engine.intrinsics.digest_subset_to_digest": (1, ()),
    "pants.engine.intrinsics.execute_process": (1, ()),
    "pants.engine.internals.graph.resolve_unparsed_address_inputs": (1, ()),
    "pants.engine.internals.graph.resolve_targets": (0, ("Addresses",)),
    "pants.engine.internals.graph.resolve_unexpanded_targets": (1, ()),
    "pants.engine.internals.graph.resolve_target": (1, ()),
    "pants.engine.internals.graph.find_valid_field_sets": (1, ()),
    "pants.engine.internals.graph.hydrate_sources": (1, ()),
    "pants.core.util_rules.env_vars.environment_vars_subset": (1, ()),
    "pants.core.util_rules.system_binaries.find_binary": (1, ()),
    "pants.core.goals.package.environment_aware_package": (1, ()),
    "sample_own_rules.own_rule": (1, ()),
    "sample_own_rules.own_rule_without_request": (0, ()),
}

GET_SAMPLE = SAMPLE.replace("occlum_pants_compat_by_name", "occlum.pants_compat").replace(
    "from sample_own_rules import own_rule, own_rule_without_request\n",
    "from occlum.util_rules.occlum_config import generate_occlum_config as own_rule\n"
    "from occlum.util_rules.occlum_toolchain import find_occlum_toolchain as own_rule_without_request\n",
)
GET_EXPECTED = {  # (output, inputs) of each Get the Get side builds
    ("Digest", ("CreateDigest",)),
    ("DigestContents", ("Digest",)),
    ("DigestEntries", ("Digest",)),
    ("Snapshot", ("Digest",)),
    ("Digest", ("MergeDigests",)),
    ("Digest", ("AddPrefix",)),
    ("Digest", ("RemovePrefix",)),
    ("Digest", ("DigestSubset",)),
    ("FallibleProcessResult", ("Process",)),
    ("Addresses", ("UnparsedAddressInputs",)),
    ("Targets", ("Addresses",)),
    ("UnexpandedTargets", ("Addresses",)),
    ("WrappedTarget", ("WrappedTargetRequest",)),
    ("FieldSetsPerTarget", ("FieldSetsPerTargetRequest",)),
    ("HydratedSources", ("HydrateSourcesRequest",)),
    ("EnvironmentVars", ("EnvironmentVarsRequest",)),
    ("BinaryPaths", ("BinaryPathRequest",)),
    ("BuiltPackage", ("EnvironmentAwarePackageRequest",)),
    ("OcclumConfig", ("OcclumConfigRequest",)),
    ("MaybeOcclumToolchain", ()),
}


sys.path.insert(0, str(work))
(work / "sample_get_module.py").write_text(GET_SAMPLE)
import sample_get_module  # noqa: E402

compat = load_compat_by_name()
(work / "sample_own_rules.py").write_text(OWN)
(work / "sample_rule_module.py").write_text(SAMPLE)
import sample_rule_module  # noqa: E402

failed = False
for tag in tags:
    visitor = load_visitor(tag)
    minor = int(tag.split(".")[1])
    if minor < 30:
        found = {
            (c.output_type.__name__, tuple(t.__name__ for t in c.input_types))
            for c in visitor.collect_awaitables(sample_get_module.sample_rule)
        }
        print(f"{tag}: the Get side: {len(found)} Gets found in a rule that uses every pants_compat wrapper")
        for want in sorted(GET_EXPECTED):
            ok = want in found
            failed |= not ok
            print(f"  {'ok ' if ok else 'BAD'} Get({want[0]}, {', '.join(want[1]) or '-'})")
        extra = sorted(found - GET_EXPECTED)
        if extra:
            failed = True
            print(f"  BAD unexpected: {extra}")
        continue
    found = {
        c.rule_id: (c.explicit_args_arity, tuple(t.__name__ for t in c.input_types))
        for c in visitor.collect_awaitables(sample_rule_module.sample_rule)
    }
    print(f"{tag}: the call-by-name side: {len(found)} by-name calls found in a rule that uses every wrapper")
    for rule_id, want in EXPECTED.items():
        got = found.get(rule_id)
        ok = got == want
        failed |= not ok
        args, implicit = (got[0], list(got[1])) if got else ("-", "-")
        print(f"  {'ok ' if ok else 'BAD'} {rule_id}: args={args} implicitly={implicit}")
    extra = sorted(set(found) - set(EXPECTED))
    if extra:
        failed = True
        print(f"  BAD unexpected: {extra}")
print("FAILED" if failed else "all releases: every call found")
sys.exit(1 if failed else 0)
