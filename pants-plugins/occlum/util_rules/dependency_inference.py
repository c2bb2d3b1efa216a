"""Make `jdk`, `jar` and `files` real dependency edges, so `--changed-dependents` rebuilds images."""

from __future__ import annotations

from pants.engine.addresses import UnparsedAddressInputs
from pants.engine.rules import collect_rules, rule
from pants.engine.target import InferDependenciesRequest, InferredDependencies
from pants.engine.unions import UnionRule

from occlum.pants_compat import concurrently, resolve_unparsed_address_inputs
from occlum.target_types import OcclumJavaImageReferencesFieldSet


class InferOcclumImageReferences(InferDependenciesRequest):
    infer_from = OcclumJavaImageReferencesFieldSet


@rule(desc="Inferring the dependencies of an occlum_java_image")
async def infer_occlum_image_references(request: InferOcclumImageReferences) -> InferredDependencies:
    fs = request.field_set
    inputs: list[UnparsedAddressInputs] = [
        fs.jdk.to_unparsed_address_inputs(),
        fs.jar.to_unparsed_address_inputs(),
        fs.files.to_unparsed_address_inputs(),
    ]
    resolved = await concurrently(resolve_unparsed_address_inputs(i) for i in inputs)
    return InferredDependencies([a for addrs in resolved for a in addrs])


def rules():
    return [*collect_rules(), UnionRule(InferDependenciesRequest, InferOcclumImageReferences)]
