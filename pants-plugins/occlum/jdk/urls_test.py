"""URL checks that are not a field's: credentials are refused everywhere and never echoed."""

from __future__ import annotations

import pytest

from occlum.jdk.urls import MAX_URL_LENGTH, UrlError, archive_file_name, check_mirror_template, redacted


@pytest.mark.parametrize(
    "url",
    ["https://u:p@h/jdk.tar.gz", "http://token@h/jdk.tar.gz", "file://u@localhost/x/jdk.tar.gz"],
)
def test_credentials_in_a_url_are_refused(url: str) -> None:
    with pytest.raises(UrlError, match="has credentials"):
        archive_file_name(url)


def test_a_mirror_template_with_credentials_is_refused() -> None:
    with pytest.raises(UrlError, match="has credentials"):
        check_mirror_template("https://ci:s3cret@mirror.internal/{filename}")


def test_an_at_sign_in_the_path_is_not_a_credential() -> None:
    assert archive_file_name("https://h/releases/@v11/jdk.tar.gz") == "jdk.tar.gz"


def test_redacted_hides_userinfo_only() -> None:
    line = "11.0.16|standard|musl|linux_x86_64|abc||https://ci:s3cret@m.internal/a/jdk.tar.gz"
    assert redacted(line) == "11.0.16|standard|musl|linux_x86_64|abc||https://***@m.internal/a/jdk.tar.gz"
    assert redacted("https://h/@v11/jdk.tar.gz") == "https://h/@v11/jdk.tar.gz"


def test_url_length_bound() -> None:
    base = "https://h/"
    at = base + "d" * (MAX_URL_LENGTH - len(base) - len("/j.tar.gz")) + "/j.tar.gz"
    assert len(at) == MAX_URL_LENGTH and archive_file_name(at) == "j.tar.gz"
    with pytest.raises(UrlError, match=f"is not a URL of at most {MAX_URL_LENGTH} characters"):
        archive_file_name(at[:-9] + "d/j.tar.gz")
