"""The URLs a JDK archive is fetched from, checked where they are written (a `url` field, a
`[dragonwell].known_versions` entry, a `[dragonwell].mirrors` template).

Pure: stdlib only. Errors are UrlError, whose message is the tail of a sentence the caller starts
("The `url` field in target //x:jdk is '...', which <tail>").
"""

from __future__ import annotations

import posixpath
import re
import string
from urllib.parse import unquote, urlsplit

SCHEMES = ("https", "http", "file")
MIRROR_PLACEHOLDERS = ("filename", "version")
MAX_URL_LENGTH = 2048
# The archive is saved under its own name in the sandbox: plain file-name characters only.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}")


class UrlError(ValueError):
    pass


def archive_file_name(url: str) -> str:
    """The archive's file name, from a URL that must name one file: `https://h/a/x.tar.gz` -> `x.tar.gz`."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise UrlError(f"is not a URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise UrlError(f"is not a valid URL ({e})") from None
    if parts.scheme not in SCHEMES:
        raise UrlError("is not an https://, http:// or file:// URL")
    if "@" in parts.netloc:
        # Credentials in a URL would be in the download step's command line (its cache key, which a
        # remote cache stores), in the SBOM and in messages.
        raise UrlError(
            "has credentials (`user@` or `user:password@`) in it; they would be stored in the cache key, "
            "the SBOM and the logs. Serve the archive from a URL that needs none (a mirror inside the "
            "network, or a file:// path)"
        )
    if parts.fragment or url.endswith("#"):
        raise UrlError("has a `#` fragment, which a download cannot use; remove it")
    if parts.scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path.startswith("/")):
        raise UrlError("is not a local file URL; write file:///absolute/path/to/archive.tar.gz")
    name = posixpath.basename(unquote(parts.path))
    if not _FILE_NAME.fullmatch(name):
        shown = repr(name) if name else "nothing"
        raise UrlError(
            f"does not end in an archive's file name (its last path segment is {shown}); point it at the "
            "archive itself, e.g. https://host/path/Alibaba_Dragonwell_..._x64_alpine-linux.tar.gz"
        )
    return name


def redacted(text: str) -> str:
    """`text` with the credentials of any URL in it replaced by `***`, for error messages."""
    return re.sub(r"(?i)\b((?:https?|file)://)[^/@\s'\"]*@", r"\1***@", text)


def check_mirror_template(template: str) -> None:
    """A `[dragonwell].mirrors` entry: a URL with only `{filename}` and `{version}` placeholders."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as e:
        raise UrlError(f"is not a valid template ({e}); braces go only around {_ALLOWED}") from None
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in MIRROR_PLACEHOLDERS or spec or conversion:
            whole = "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
            raise UrlError(
                f"has the placeholder {whole!r}; only {_ALLOWED} are replaced (a literal brace is `{{{{` or `}}}}`)"
            )
    # With the placeholders filled in it must be a URL of one archive, like any pin.
    archive_file_name(template.format(filename="Alibaba_Dragonwell_x.tar.gz", version="11.0.16.12.8"))


_ALLOWED = " and ".join("{" + p + "}" for p in MIRROR_PLACEHOLDERS)
