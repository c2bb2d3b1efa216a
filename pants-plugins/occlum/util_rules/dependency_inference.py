"""Make `jdk`, `jar` and `files` real dependency edges, so `--changed-dependents` rebuilds images."""

from __future__ import annotations

from pants.build_graph.address import ResolveError
from pants.engine.addresses import UnparsedAddressInputs
from pants.engine.rules import collect_rules, rule
from pants.engine.target import InferDependenciesRequest, InferredDependencies
from pants.engine.unions import UnionRule

from occlum.pants_compat import resolve_unparsed_address_inputs
from occlum.target_types import AddressFieldError, OcclumJavaImageReferencesFieldSet
from occlum.util_rules.image_files import first_unresolved_entry


class InferOcclumImageReferences(InferDependenciesRequest):
    infer_from = OcclumJavaImageReferencesFieldSet


@rule(desc="Inferring the dependencies of an occlum_java_image")
async def infer_occlum_image_references(request: InferOcclumImageReferences) -> InferredDependencies:
    fs = request.field_set
    found: list = []
    for field in (fs.jdk, fs.jar):
        try:
            found += await resolve_unparsed_address_inputs(field.to_unparsed_address_inputs())
        except ResolveError:
            raise AddressFieldError(field.unresolved()) from None
    items = sorted((fs.files.value or {}).items())
    if items:
        # All the entries in one resolution (linear); one by one only to name a bad entry.
        specs = [spec for _, spec in items]
        try:
            found += await resolve_unparsed_address_inputs(
                UnparsedAddressInputs(specs, owning_address=fs.address, description_of_origin="`files`")
            )
        except ResolveError:
            raise AddressFieldError(await first_unresolved_entry(fs.address, items)) from None
    return InferredDependencies(found)


def rules():
    return [*collect_rules(), UnionRule(InferDependenciesRequest, InferOcclumImageReferences)]
