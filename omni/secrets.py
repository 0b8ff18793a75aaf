"""What counts as a secret, and the one way we blank it before anything is written or printed.

Why one home: the bench passes spec ``env`` to servers (``HF_TOKEN``...) and records every launch;
the BMC tools take a URL that a user may write as ``https://user:pass@bmc``. Both must write the
name and never the value, so both call these functions at their output boundary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

#: HF_TOKEN, OPENAI_API_KEY, GITHUB_TOKEN, OMNI_BMC_PASSWORD, AWS_SECRET_ACCESS_KEY, ...
_SECRET_NAME = re.compile(r"(^|_)KEY$|TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL", re.I)
_WHERE_NOT_WHAT = re.compile(r"_(FILE|PATH|DIR|ENV|VAR)$", re.I)  # OMNI_BMC_PASSWORD_FILE names a place
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]*)@")


def is_secret_name(name: str) -> bool:
    """An env variable whose value must never be written (``HF_TOKEN``, ``*_KEY``, ``*PASSWORD*``...)."""
    return bool(_SECRET_NAME.search(name)) and not _WHERE_NOT_WHAT.search(name)


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with every secret's value replaced by ``***`` (names kept: they say what was set)."""
    return {name: MASK if is_secret_name(name) else value for name, value in env.items()}


def has_secret(env: Mapping[str, str]) -> bool:
    return any(is_secret_name(name) and value for name, value in env.items())


def url_has_credentials(url: str) -> bool:
    """``https://user:pass@host`` (or ``user@host``): credentials that belong elsewhere."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return bool(_URL_USERINFO.search(url))
    return parts.username is not None or parts.password is not None


def redact_url(url: str) -> str:
    """The URL without its ``user:pass@`` part (``https://***@host``)."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return redact_text(url)


_KNOWN: set[str] = set()


def remember(secret: str) -> str:
    """Register a secret this process holds (a BMC password) so every later :func:`redact_text` blanks it."""
    if secret:
        _KNOWN.add(secret)
    return secret


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Any URL credentials in ``text`` blanked, and every remembered or given secret value too."""
    out = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    for secret in sorted({*secrets, *_KNOWN}, key=len, reverse=True):
        if secret and len(secret) >= 4:  # a 1-3 character "secret" would blank ordinary text
            out = out.replace(secret, MASK)
    return out
