"""Every engine call the backend makes, for Pants 2.17.1 to 2.33, chosen once by Pants' version.

Rule code awaits these functions and reads the same on every version:

    digest = await create_digest(CreateDigest([...]))
    staged, jdk = await concurrently(stage_instance(field_set), dragonwell_jdk(request))

- Pants < 2.30 (2.17.1 .. 2.29): each function returns a `Get`. The 2.17 rule parser follows a plain
  helper annotated with a bare `-> Get` and reads its `Get(...)` against this module's globals, or,
  for `rule_call`, against the helper's closure. `concurrently` is `MultiGet`, which 2.17-2.18 let
  take only `Get`s, hence plain helpers rather than `async def`s on this side.
- Pants >= 2.30: `Get`/`MultiGet` warn on every use (2.30, 2.31) and are gone (2.32). Each function
  is an `async def` that calls the rule or intrinsic by name with `**implicitly(...)`; the 2.30+
  parser follows `async def` helpers (closures included) and records those by-name calls.
  `concurrently` is Pants' own.

No other module of the backend may import `Get`, `MultiGet`, `implicitly`, `concurrently` or a module
that moved between releases (pants-plugins/occlum/pants_compat_test.py checks it). docs/compatibility.md holds the
evidence, release by release, for each path taken here.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Callable, TypeVar, get_type_hints

from packaging.version import Version
from pants.core.goals.package import BuiltPackage, EnvironmentAwarePackageRequest
from pants.core.util_rules.adhoc_binaries import PythonBuildStandaloneBinary
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths
from pants.engine.addresses import Addresses, UnparsedAddressInputs
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.environment import ChosenLocalEnvironmentName, EnvironmentName
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    DigestSubset,
    MergeDigests,
    RemovePrefix,
    Snapshot,
)
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.target import (
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    HydratedSources,
    HydrateSourcesRequest,
    Targets,
    UnexpandedTargets,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.version import PANTS_SEMVER

# Get/MultiGet deprecated in 2.30 (a warning per use) and removed in 2.32: call by name from 2.30.
CALL_BY_NAME = PANTS_SEMVER >= Version("2.30.0.dev0")
# pants.core.util_rules.environments was split into pants.core.environments.* in 2.28, with no shim.
ENVIRONMENTS_MOVED = PANTS_SEMVER >= Version("2.28.0.dev0")

if TYPE_CHECKING or not ENVIRONMENTS_MOVED:
    from pants.core.util_rules.environments import EnvironmentField
else:
    from pants.core.environments.target_types import EnvironmentField

_Out = TypeVar("_Out")

__all__ = [
    "CALL_BY_NAME",
    "EnvironmentField",
    "add_prefix",
    "concurrently",
    "create_digest",
    "digest_subset_to_digest",
    "digest_to_snapshot",
    "environment_aware_package",
    "environment_vars_subset",
    "execute_process",
    "find_binary",
    "find_valid_field_sets",
    "get_digest_contents",
    "get_digest_entries",
    "hydrate_sources",
    "merge_digests",
    "remove_prefix",
    "resolve_target",
    "resolve_targets",
    "resolve_unexpanded_targets",
    "resolve_unparsed_address_inputs",
    "determine_local_environment",
    "get_python_for_scripts",
    "rule_call",
    "rule_call_in_environment",
    "rule_call_without_request",
]

if TYPE_CHECKING:
    # What rule code sees, for mypy: the precise types of both runtime branches below.
    concurrently: Any

    async def create_digest(request: CreateDigest) -> Digest: ...
    async def merge_digests(request: MergeDigests) -> Digest: ...
    async def add_prefix(request: AddPrefix) -> Digest: ...
    async def remove_prefix(request: RemovePrefix) -> Digest: ...
    async def digest_subset_to_digest(request: DigestSubset) -> Digest: ...
    async def get_digest_contents(digest: Digest) -> DigestContents: ...
    async def get_digest_entries(digest: Digest) -> DigestEntries: ...
    async def digest_to_snapshot(digest: Digest) -> Snapshot: ...
    async def execute_process(process: Process) -> FallibleProcessResult: ...
    async def resolve_unparsed_address_inputs(request: UnparsedAddressInputs) -> Addresses: ...
    async def resolve_targets(addresses: Addresses) -> Targets: ...
    async def resolve_unexpanded_targets(addresses: Addresses) -> UnexpandedTargets: ...
    async def resolve_target(request: WrappedTargetRequest) -> WrappedTarget: ...
    async def find_valid_field_sets(request: FieldSetsPerTargetRequest) -> FieldSetsPerTarget: ...
    async def hydrate_sources(request: HydrateSourcesRequest) -> HydratedSources: ...
    async def environment_vars_subset(request: EnvironmentVarsRequest) -> EnvironmentVars: ...
    async def find_binary(request: BinaryPathRequest) -> BinaryPaths: ...
    async def get_python_for_scripts() -> PythonBuildStandaloneBinary: ...
    async def environment_aware_package(request: EnvironmentAwarePackageRequest) -> BuiltPackage: ...
    def rule_call(rule: Callable[..., Awaitable[_Out]]) -> Callable[[Any], Awaitable[_Out]]: ...
    def rule_call_without_request(rule: Callable[..., Awaitable[_Out]]) -> Callable[[], Awaitable[_Out]]: ...
    def rule_call_in_environment(
        rule: Callable[..., Awaitable[_Out]],
    ) -> Callable[[Any, EnvironmentName], Awaitable[_Out]]: ...
    async def determine_local_environment() -> ChosenLocalEnvironmentName: ...

elif not CALL_BY_NAME:
    # Pants 2.17.1 .. 2.29: the Get API.
    from pants.engine.rules import Get, MultiGet

    concurrently = MultiGet

    def create_digest(request: CreateDigest) -> Get:
        return Get(Digest, CreateDigest, request)

    def merge_digests(request: MergeDigests) -> Get:
        return Get(Digest, MergeDigests, request)

    def add_prefix(request: AddPrefix) -> Get:
        return Get(Digest, AddPrefix, request)

    def remove_prefix(request: RemovePrefix) -> Get:
        return Get(Digest, RemovePrefix, request)

    def digest_subset_to_digest(request: DigestSubset) -> Get:
        return Get(Digest, DigestSubset, request)

    def get_digest_contents(digest: Digest) -> Get:
        return Get(DigestContents, Digest, digest)

    def get_digest_entries(digest: Digest) -> Get:
        return Get(DigestEntries, Digest, digest)

    def digest_to_snapshot(digest: Digest) -> Get:
        return Get(Snapshot, Digest, digest)

    def execute_process(process: Process) -> Get:
        return Get(FallibleProcessResult, Process, process)

    def resolve_unparsed_address_inputs(request: UnparsedAddressInputs) -> Get:
        return Get(Addresses, UnparsedAddressInputs, request)

    def resolve_targets(addresses: Addresses) -> Get:
        return Get(Targets, Addresses, addresses)

    def resolve_unexpanded_targets(addresses: Addresses) -> Get:
        return Get(UnexpandedTargets, Addresses, addresses)

    def resolve_target(request: WrappedTargetRequest) -> Get:
        return Get(WrappedTarget, WrappedTargetRequest, request)

    def find_valid_field_sets(request: FieldSetsPerTargetRequest) -> Get:
        return Get(FieldSetsPerTarget, FieldSetsPerTargetRequest, request)

    def hydrate_sources(request: HydrateSourcesRequest) -> Get:
        return Get(HydratedSources, HydrateSourcesRequest, request)

    def environment_vars_subset(request: EnvironmentVarsRequest) -> Get:
        return Get(EnvironmentVars, EnvironmentVarsRequest, request)

    def find_binary(request: BinaryPathRequest) -> Get:
        return Get(BinaryPaths, BinaryPathRequest, request)

    def get_python_for_scripts() -> Get:
        return Get(PythonBuildStandaloneBinary)

    def environment_aware_package(request: EnvironmentAwarePackageRequest) -> Get:
        return Get(BuiltPackage, EnvironmentAwarePackageRequest, request)

    def _rule_types(rule: Callable[..., Any]) -> tuple[type, list[type]]:
        hints = get_type_hints(rule)
        params = [hints[name] for name in inspect.signature(rule).parameters]
        return hints["return"], params

    def rule_call(rule: Callable[..., Any]) -> Callable[[Any], Any]:
        """Call one of the backend's own rules with its request (the rule's first parameter)."""
        output_type, params = _rule_types(rule)
        input_type = params[0]

        def call(request: Any) -> Get:
            # The parser reads these two names from this closure.
            return Get(output_type, input_type, request)

        return call

    def rule_call_without_request(rule: Callable[..., Any]) -> Callable[[], Any]:
        """Call one of the backend's own rules that takes no request (only injected params)."""
        output_type, _ = _rule_types(rule)

        def call() -> Get:
            return Get(output_type)

        return call

    def rule_call_in_environment(rule: Callable[..., Any]) -> Callable[[Any, EnvironmentName], Any]:
        """Call one of the backend's own rules with its request, in another environment."""
        output_type, params = _rule_types(rule)
        input_type = params[0]

        def call(request: Any, environment: EnvironmentName) -> Get:
            return Get(output_type, {request: input_type, environment: EnvironmentName})

        return call

    def determine_local_environment() -> Get:
        return Get(ChosenLocalEnvironmentName)

else:
    # Pants 2.30 .. 2.33: call by name. pants.engine.intrinsics appeared in 2.22 and its functions got
    # these names in 2.23; environment_vars_subset is in core.util_rules.env_vars from 2.29. Plain
    # @rules taking the backend's union members (package, run, dependency inference) are still
    # dispatched by the polymorphic rules of 2.28/2.29+ (docs/compatibility.md §4).
    from pants.core.environments.rules import determine_local_environment as _determine_local_environment
    from pants.core.goals.package import environment_aware_package as _environment_aware_package
    from pants.core.util_rules.adhoc_binaries import get_python_for_scripts as _get_python_for_scripts
    from pants.core.util_rules.env_vars import environment_vars_subset as _environment_vars_subset
    from pants.core.util_rules.system_binaries import find_binary as _find_binary
    from pants.engine.internals.graph import find_valid_field_sets as _find_valid_field_sets
    from pants.engine.internals.graph import hydrate_sources as _hydrate_sources
    from pants.engine.internals.graph import resolve_target as _resolve_target
    from pants.engine.internals.graph import resolve_targets as _resolve_targets
    from pants.engine.internals.graph import resolve_unexpanded_targets as _resolve_unexpanded_targets
    from pants.engine.internals.graph import resolve_unparsed_address_inputs as _resolve_unparsed_address_inputs
    from pants.engine.intrinsics import add_prefix as _add_prefix
    from pants.engine.intrinsics import create_digest as _create_digest
    from pants.engine.intrinsics import digest_subset_to_digest as _digest_subset_to_digest
    from pants.engine.intrinsics import digest_to_snapshot as _digest_to_snapshot
    from pants.engine.intrinsics import execute_process as _execute_process
    from pants.engine.intrinsics import get_digest_contents as _get_digest_contents
    from pants.engine.intrinsics import get_digest_entries as _get_digest_entries
    from pants.engine.intrinsics import merge_digests as _merge_digests
    from pants.engine.intrinsics import remove_prefix as _remove_prefix
    from pants.engine.rules import concurrently, implicitly

    async def create_digest(request: CreateDigest) -> Digest:
        return await _create_digest(request)

    async def merge_digests(request: MergeDigests) -> Digest:
        return await _merge_digests(request)

    async def add_prefix(request: AddPrefix) -> Digest:
        return await _add_prefix(request)

    async def remove_prefix(request: RemovePrefix) -> Digest:
        return await _remove_prefix(request)

    async def digest_subset_to_digest(request: DigestSubset) -> Digest:
        return await _digest_subset_to_digest(request)

    async def get_digest_contents(digest: Digest) -> DigestContents:
        return await _get_digest_contents(digest)

    async def get_digest_entries(digest: Digest) -> DigestEntries:
        return await _get_digest_entries(digest)

    async def digest_to_snapshot(digest: Digest) -> Snapshot:
        return await _digest_to_snapshot(digest)

    async def execute_process(process: Process) -> FallibleProcessResult:
        # The environment to run in (ProcessExecutionEnvironment) comes from the calling rule's.
        return await _execute_process(process, **implicitly())

    async def resolve_unparsed_address_inputs(request: UnparsedAddressInputs) -> Addresses:
        return await _resolve_unparsed_address_inputs(request, **implicitly())

    async def resolve_targets(addresses: Addresses) -> Targets:
        # resolve_targets takes UnexpandedTargets; the engine gets them from the Addresses.
        return await _resolve_targets(**implicitly({addresses: Addresses}))

    async def resolve_unexpanded_targets(addresses: Addresses) -> UnexpandedTargets:
        return await _resolve_unexpanded_targets(addresses)

    async def resolve_target(request: WrappedTargetRequest) -> WrappedTarget:
        return await _resolve_target(request, **implicitly())

    async def find_valid_field_sets(request: FieldSetsPerTargetRequest) -> FieldSetsPerTarget:
        return await _find_valid_field_sets(request, **implicitly())

    async def hydrate_sources(request: HydrateSourcesRequest) -> HydratedSources:
        return await _hydrate_sources(request, **implicitly())

    async def environment_vars_subset(request: EnvironmentVarsRequest) -> EnvironmentVars:
        return await _environment_vars_subset(request, **implicitly())

    async def find_binary(request: BinaryPathRequest) -> BinaryPaths:
        return await _find_binary(request, **implicitly())

    async def get_python_for_scripts() -> PythonBuildStandaloneBinary:
        return await _get_python_for_scripts(**implicitly())

    async def environment_aware_package(request: EnvironmentAwarePackageRequest) -> BuiltPackage:
        return await _environment_aware_package(request)

    def rule_call(rule: Callable[..., Any]) -> Callable[[Any], Any]:
        """Call one of the backend's own rules with its request (the rule's first parameter)."""

        async def call(request: Any) -> Any:
            # The parser finds `rule` in this closure and records a by-name call with 1 argument.
            return await rule(request, **implicitly())

        return call

    def rule_call_without_request(rule: Callable[..., Any]) -> Callable[[], Any]:
        """Call one of the backend's own rules that takes no request (only injected params)."""

        async def call() -> Any:
            return await rule(**implicitly())

        return call

    def rule_call_in_environment(rule: Callable[..., Any]) -> Callable[[Any, EnvironmentName], Any]:
        """Call one of the backend's own rules with its request, in another environment."""

        async def call(request: Any, environment: EnvironmentName) -> Any:
            return await rule(request, **implicitly({environment: EnvironmentName}))

        return call

    async def determine_local_environment() -> ChosenLocalEnvironmentName:
        return await _determine_local_environment(**implicitly())
