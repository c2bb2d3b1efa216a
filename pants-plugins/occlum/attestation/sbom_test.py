"""The SBOM: valid CycloneDX 1.7, complete, bound to the measurement, and reproducible."""

from __future__ import annotations

import dataclasses
import json

import pytest

from attestation_samples import JDK_DIR, MRENCLAVE, MRSIGNER, URL, enclave_facts, sbom_inputs
from cyclonedx_schema import schema_errors
from occlum.attestation.sbom import enclave_property, purl, render_sbom
from occlum.jar.identity import MavenCoordinates, identify
from occlum.jar.inspect_jar import NestedJar
from occlum.records import dump_json


def _by_ref(doc: dict) -> dict:
    return {c["bom-ref"]: c for c in doc["components"]}


def _identity(component: dict) -> dict:
    """field -> (concluded value, technique, confidence), from evidence.identity."""
    return {
        i["field"]: (i["concludedValue"], i["methods"][0]["technique"], i["confidence"])
        for i in component["evidence"]["identity"]
    }


def test_a_built_enclave_is_valid_cyclonedx_and_names_its_measurement() -> None:
    doc = render_sbom(sbom_inputs(enclave_facts()))
    assert schema_errors(doc) == []
    assert doc["specVersion"] == "1.7" and doc["bomFormat"] == "CycloneDX"
    assert enclave_property(doc, "measured") == "true"
    assert enclave_property(doc, "mrenclave") == MRENCLAVE and enclave_property(doc, "mrsigner") == MRSIGNER
    assert enclave_property(doc, "package_sha256") == "c" * 64
    assert enclave_property(doc, "signed_enclave_sha256") == "d" * 64
    assert (enclave_property(doc, "isv_prod_id"), enclave_property(doc, "isv_svn")) == ("7", "3")
    assert doc["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": "c" * 64}]
    assert doc["metadata"]["tools"]["components"][0]["name"] == "occlum-pants-backend"
    assert "timestamp" not in doc["metadata"]


def test_what_the_image_is_made_of() -> None:
    doc = render_sbom(sbom_inputs(enclave_facts()))
    c = _by_ref(doc)
    jdk = c["jdk"]
    assert (jdk["name"], jdk["version"], jdk["hashes"][0]["content"]) == ("dragonwell", "11.0.16.12.8", "f" * 64)
    assert jdk["externalReferences"] == [
        {"type": "distribution", "url": URL, "hashes": [{"alg": "SHA-256", "content": "f" * 64}]}
    ]
    assert jdk["purl"].startswith("pkg:generic/alibaba/dragonwell@11.0.16.12.8?checksum=sha256:ffff")
    props = {p["name"]: p["value"] for p in jdk["properties"]}
    assert props["occlum:jdk:libc"] == "musl" and props["occlum:jdk:edition"] == "extended"
    jar = c["jar"]
    assert jar["purl"] == "pkg:maven/com.example/svc@2.3.4-SNAPSHOT" and jar["hashes"][0]["content"] == "1" * 64
    assert {p["name"]: p["value"] for p in jar["properties"]}["occlum:jar:start_class"] == "com.example.Svc"
    nested = {n["bom-ref"]: n for n in jar["components"]}
    jackson = nested["jar:BOOT-INF/lib/jackson-core-2.13.5.jar"]
    assert jackson["purl"] == "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.13.5"
    assert _identity(jackson)["group"] == ("com.fasterxml.jackson.core", "manifest-analysis", 1.0)
    # No pom.properties: named from the manifest's version and the file name, and no Maven purl (no group).
    spring = nested["jar:BOOT-INF/lib/spring-core-5.3.23.jar"]
    assert (spring["name"], spring["version"], "purl" in spring) == ("spring-core", "5.3.23", False)
    assert _identity(spring) == {
        "name": ("spring-core", "filename", 0.8),
        "version": ("5.3.23", "manifest-analysis", 0.9),
    }
    internal = nested["jar:BOOT-INF/lib/internal.jar"]
    assert "purl" not in internal and "version" not in internal and internal["name"] == "internal"
    assert _identity(internal) == {"name": ("internal", "filename", 0.3)}
    assert c["occlum"]["version"] == "0.31.0" and c["occlum"]["purl"] == "pkg:github/occlum/occlum@v0.31.0"
    assert c["runtime-lib:libz.so.1"]["hashes"][0]["content"] == "6" * 64
    assert c[f"file:{JDK_DIR}/bin/java"]["hashes"][0]["content"] == "4" * 64
    link = c[f"file:{JDK_DIR}/lib/libjsig.so"]
    assert "hashes" not in link and link["properties"] == [
        {"name": "occlum:symlink_target", "value": "server/libjsig.so"}
    ]
    assert doc["dependencies"][0] == {"ref": "enclave", "dependsOn": ["jdk", "jar", "occlum", "runtime-lib:libz.so.1"]}
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs))


def test_a_staged_image_says_it_was_not_measured() -> None:
    doc = render_sbom(sbom_inputs(None))
    assert schema_errors(doc) == []
    assert enclave_property(doc, "measured") == "false"
    assert enclave_property(doc, "mrenclave") is None and "hashes" not in doc["metadata"]["component"]
    assert "no MRENCLAVE" in (enclave_property(doc, "note") or "")


def test_identical_inputs_give_identical_bytes_and_any_change_shows() -> None:
    one = dump_json(render_sbom(sbom_inputs(enclave_facts())))
    assert one == dump_json(render_sbom(sbom_inputs(enclave_facts())))
    other = render_sbom(sbom_inputs(enclave_facts(mrenclave="9" * 64)))
    assert json.loads(one)["serialNumber"] != other["serialNumber"]
    base = sbom_inputs(enclave_facts())
    moved = dataclasses.replace(base, files=base.files[:-1])
    assert render_sbom(moved)["serialNumber"] != json.loads(one)["serialNumber"]


def test_a_shaded_jar_lists_what_it_absorbed() -> None:
    poms = [
        (
            "META-INF/maven/com.nimbusds/nimbus-jose-jwt/pom.properties",
            MavenCoordinates("com.nimbusds", "nimbus-jose-jwt", "9.22"),
        ),
        (
            "META-INF/maven/net.minidev/json-smart/pom.properties",
            MavenCoordinates("net.minidev", "json-smart", "2.4.8"),
        ),
    ]
    shaded = NestedJar(
        "BOOT-INF/lib/nimbus-jose-jwt-9.22.jar", "8" * 64, identify("BOOT-INF/lib/nimbus-jose-jwt-9.22.jar", poms, {})
    )
    base = sbom_inputs(enclave_facts())
    doc = render_sbom(dataclasses.replace(base, jar=dataclasses.replace(base.jar, nested=(shaded,))))
    assert schema_errors(doc) == []
    (component,) = _by_ref(doc)["jar"]["components"]
    assert component["purl"] == "pkg:maven/com.nimbusds/nimbus-jose-jwt@9.22"
    assert [c["purl"] for c in component["components"]] == ["pkg:maven/net.minidev/json-smart@2.4.8"]


@pytest.mark.parametrize(
    "implementor, name, supplier, version",
    [
        ("Alibaba", "dragonwell", "Alibaba", "11.0.16.12.8"),
        ("Eclipse Adoptium", "temurin", "Eclipse Adoptium", "11.0.16"),
        ("Some Vendor", "openjdk", "Some Vendor", "11.0.16"),
        (None, "openjdk", None, "11.0.16"),
    ],
)
def test_the_jdk_is_named_by_its_implementor(implementor, name, supplier, version) -> None:
    base = sbom_inputs(enclave_facts())
    doc = render_sbom(dataclasses.replace(base, jdk=dataclasses.replace(base.jdk, implementor=implementor)))
    assert schema_errors(doc) == []
    jdk = _by_ref(doc)["jdk"]
    assert (jdk["name"], jdk.get("supplier", {}).get("name"), jdk["version"]) == (name, supplier, version)
    assert jdk["purl"].startswith(f"pkg:generic/{(supplier or 'unknown').lower().replace(' ', '-')}/{name}@{version}?")


def test_purl_encodes_each_part() -> None:
    assert purl("maven", "org.example", "a b", "1.0+build") == "pkg:maven/org.example/a%20b@1.0%2Bbuild"
    assert purl("generic", "", "x", "1", {"download_url": "https://h/p?q=1"}) == (
        "pkg:generic/x@1?download_url=https://h/p%3Fq%3D1"
    )


def test_the_schema_check_can_fail() -> None:
    doc = render_sbom(sbom_inputs(enclave_facts()))
    doc["components"][0]["type"] = "enclave"  # not a CycloneDX component type
    doc["components"][0]["hashes"] = [{"alg": "SHA-256", "content": "xyz"}]  # not a sha256
    errors = schema_errors(doc)
    assert any("'enclave' is not one of" in e for e in errors), errors
    assert any("does not match" in e for e in errors), errors
