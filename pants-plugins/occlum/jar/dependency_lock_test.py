"""The lock's format and the check of a jar's nested jars against it (pure)."""

from __future__ import annotations

import hashlib

import pytest

from occlum.jar.dependency_lock import MAX_LOCK_BYTES, DependencyLockError, LockMismatch, check_lock, parse_lock
from occlum.jar.identity import JarIdentity
from occlum.jar.inspect_jar import MAX_NESTED_JARS, NestedJar

A, B = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()
WHERE = "The `dependency_lock` of svc:enclave (svc/maven.lock)"


def nested(path: str, sha: str) -> NestedJar:
    return NestedJar(path, sha, JarIdentity(path.rsplit("/", 1)[-1], None, None, "file name", ()))


def test_sha256sum_output_in_text_and_binary_mode_with_blank_and_comment_lines() -> None:
    text = f"# reviewed 2026-12-07\n{A}  a-1.0.jar\n\n{B.upper()} *b 2.0.jar\n"
    assert parse_lock(text.encode(), WHERE) == {"a-1.0.jar": A, "b 2.0.jar": B}


@pytest.mark.parametrize(
    "text, said",
    [
        (f"{A} a.jar\n{A[:-1]}  b.jar\n", "line 2 is"),
        ("a.jar\n", "line 1 is 'a.jar', not `<sha256>  <jar name>`"),
        (f"{A}  a.jar\n{B}  a.jar\n", "pins a.jar twice, with two different sha256 (line 2)"),
    ],
    ids=["short digest", "no digest", "two digests for one jar"],
)
def test_a_line_that_is_not_a_pin_is_named(text: str, said: str) -> None:
    with pytest.raises(DependencyLockError) as e:
        parse_lock(text.encode(), WHERE)
    assert WHERE in str(e.value) and said in str(e.value)


def test_the_same_pin_twice_is_accepted() -> None:
    assert parse_lock(f"{A}  a.jar\n{A}  a.jar\n".encode(), WHERE) == {"a.jar": A}


def test_size_entry_count_and_encoding_are_bounded() -> None:
    with pytest.raises(DependencyLockError, match=f"more than the {MAX_LOCK_BYTES}"):
        parse_lock(b"#" * (MAX_LOCK_BYTES + 1), WHERE)
    many = "".join(f"{A}  j{i}.jar\n" for i in range(MAX_NESTED_JARS + 1))
    with pytest.raises(DependencyLockError, match=f"more than {MAX_NESTED_JARS} jars"):
        parse_lock(many.encode(), WHERE)
    with pytest.raises(DependencyLockError, match="not UTF-8 text"):
        parse_lock(b"\xff\xfe", WHERE)


def test_the_jar_agrees_with_its_lock() -> None:
    jars = [nested("BOOT-INF/lib/a.jar", A), nested("BOOT-INF/lib/b.jar", B)]
    assert check_lock({"a.jar": A, "b.jar": B}, jars) == []


def test_each_difference_is_named() -> None:
    jars = [nested("BOOT-INF/lib/a.jar", B), nested("BOOT-INF/lib/new.jar", A)]
    assert check_lock({"a.jar": A, "gone.jar": B}, jars) == [
        LockMismatch("BOOT-INF/lib/a.jar", f"sha256 {B} in the jar, {A} in the lock"),
        LockMismatch("BOOT-INF/lib/new.jar", "in the jar, not in the lock"),
        LockMismatch("gone.jar", "in the lock, not in the jar"),
    ]


def test_a_path_in_the_lock_tells_apart_jars_of_the_same_name() -> None:
    jars = [nested("WEB-INF/lib/x.jar", A), nested("WEB-INF/lib-provided/x.jar", B)]
    assert check_lock({"WEB-INF/lib/x.jar": A, "WEB-INF/lib-provided/x.jar": B}, jars) == []
    assert check_lock({"x.jar": A}, jars) == [
        LockMismatch("WEB-INF/lib-provided/x.jar", f"sha256 {B} in the jar, {A} in the lock")
    ]
