"""How many of a fat jar's nested jars the SBOM names, and how: run on a real Spring Boot jar.

    PYTHONPATH=pants-plugins python3 bench/sbom_coverage.py path/to/service.jar

"before" is the rule of the backend's releases up to 0.1 (a purl and version only from a jar with
exactly one pom.properties, nothing else); "now" is `occlum.jar.identity`.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

from occlum.jar.inspect_jar import inspect_jar


def main(path: str) -> None:
    info = inspect_jar(Path(path).read_bytes(), Path(path).name)
    nested = info.nested
    total = len(nested)
    single_pom = sum(1 for n in nested if n.identity.method == "pom.properties" and not n.identity.contains)
    by_method = collections.Counter(n.identity.method for n in nested)
    with_version = sum(1 for n in nested if n.identity.version)
    with_purl = sum(1 for n in nested if n.identity.maven)
    shaded = [n for n in nested if n.identity.contains]
    print(f"{path}: {total} nested jars")
    print(f"  before: purl and version for {single_pom} of {total}; neither for {total - single_pom}")
    print(f"  now:    a version for {with_version} of {total}; a Maven purl for {with_purl} of {total}")
    for method in ("pom.properties", "manifest", "file name"):
        print(f"          identified by {method}: {by_method.get(method, 0)}")
    print(f"          shaded jars listing what they absorbed: {len(shaded)}", end="")
    print(f" ({', '.join(n.path.rsplit('/', 1)[-1] for n in shaded)})" if shaded else "")
    missing = [n.path for n in nested if not n.identity.version]
    if missing:
        print(f"  no version: {', '.join(missing)}")


if __name__ == "__main__":
    main(sys.argv[1])
