"""One-line errors for everything that can go wrong between us and a BMC.

Why a translation layer: sushy raises a dozen exception types whose messages embed whole URLs,
JSON bodies and Python reprs. A user at 2 a.m. needs one line saying what failed and what to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import requests
from sushy import exceptions as sushy_exc


class BmcError(Exception):
    """A failure with its cause and its fix; ``kind`` is stable for ``--json`` consumers."""

    def __init__(self, cause: str, fix: str, kind: str = "error") -> None:
        self.cause, self.fix, self.kind = cause, fix, kind
        super().__init__(f"{cause}: {fix}")

    def as_dict(self) -> dict[str, str]:
        return {"error": self.kind, "cause": self.cause, "fix": self.fix, "message": str(self)}


@dataclass(frozen=True)
class ErrorContext:
    """What the translator needs to name the BMC, the user and the knobs in its messages."""

    url: str
    username: str = "?"
    username_env: str = "OMNI_BMC_USERNAME"
    password_env: str = "OMNI_BMC_PASSWORD"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0


def _root_cause(exc: BaseException) -> BaseException:
    """The requests exception behind a sushy ConnectionError (sushy keeps it only as context)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.RequestException):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _transport_error(exc: BaseException, ctx: ErrorContext, what: str) -> BmcError:
    inner = _root_cause(exc)
    text = str(inner)
    if isinstance(inner, requests.exceptions.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text:
        reason = "certificate not trusted" if "CERTIFICATE_VERIFY_FAILED" in text else _short(text, 80)
        return BmcError(
            f"TLS verification of {ctx.url} failed ({reason})",
            "pass --ca-file with the BMC's CA certificate (or --insecure on a network you trust)",
            "tls",
        )
    if isinstance(inner, requests.exceptions.ReadTimeout) or "Read timed out" in text:
        if what.split(" ", 1)[0] in ("GET", "HEAD"):  # reads are asked twice (connection.safe_retry)
            how = f"asked twice, {2 * ctx.read_timeout:g} s in all"
        else:
            how = "not re-sent; it may still take effect"
        return BmcError(
            f"the BMC at {ctx.url} did not answer {what} within {ctx.read_timeout:g} s ({how})",
            "run `python -m bmc status` before trying again, or raise --read-timeout",
            "timeout",
        )
    if isinstance(inner, requests.exceptions.ConnectTimeout) or "timed out" in text:
        return BmcError(
            f"the BMC at {ctx.url} did not accept a connection within {ctx.connect_timeout:g} s",
            "check bmc_url / OMNI_BMC_URL and that the BMC's network port is up and reachable",
            "unreachable",
        )
    reason = "connection refused" if "refused" in text.lower() else _short(text, 80)
    if "Name or service not known" in text or "Failed to resolve" in text:
        reason = "host name does not resolve"
    return BmcError(
        f"cannot reach the BMC at {ctx.url} ({reason})",
        "check bmc_url / OMNI_BMC_URL and that the BMC's network port is up and reachable",
        "unreachable",
    )


def _http_error(exc: sushy_exc.HTTPError, ctx: ErrorContext, what: str) -> BmcError:
    code = exc.status_code
    detail = _short(exc.detail or exc.code or "no details", 140)
    if code == 401:
        return BmcError(
            f"the BMC at {ctx.url} rejected user {ctx.username!r} (HTTP 401)",
            f"check the user name in ${ctx.username_env} and the password in ${ctx.password_env} "
            "or the password file",
            "auth",
        )
    if code == 403:
        return BmcError(
            f"user {ctx.username!r} may not {what} on {ctx.url} (HTTP 403: {detail})",
            "use a BMC account with the Administrator role",
            "auth",
        )
    if code == 404:
        return BmcError(
            f"the BMC at {ctx.url} has no resource for {what} (HTTP 404)",
            "check --system and that this firmware offers the feature (`python -m bmc status`)",
            "not_found",
        )
    if code == 412:
        return BmcError(
            f"the BMC refused {what}: its If-Match precondition failed (HTTP 412; the resource changed "
            "since it was read, or the firmware rejects its own ETag)",
            "run it again; if it keeps failing, use the BIOS setup screen or update the BMC firmware",
            "precondition",
        )
    if code == 428:
        return BmcError(
            f"the BMC refused {what} without an If-Match header it accepts (HTTP 428)",
            "update the BMC firmware (it rejects the ETag it hands out) or use the BIOS setup screen",
            "precondition",
        )
    if code in (400, 405, 409, 501):
        return BmcError(
            f"the BMC refused {what} (HTTP {code}: {detail})",
            "fix the request as the BMC says (see `python -m bmc status`)",
            "invalid",
        )
    if code and code >= 500:
        return BmcError(
            f"the BMC failed {what} (HTTP {code}: {detail})",
            "wait a minute and retry; reset the BMC from its web UI if this persists",
            "bmc_error",
        )
    return BmcError(
        f"the BMC answered {what} with HTTP {code} ({detail})", "check the BMC's event log", "bmc_error"
    )


def translate(exc: BaseException, ctx: ErrorContext, what: str) -> BmcError:
    """Map a sushy/requests exception raised while doing ``what`` to a one-line ``BmcError``."""
    if isinstance(exc, BmcError):
        return exc
    if isinstance(exc, sushy_exc.ConnectionError | requests.exceptions.RequestException):
        return _transport_error(exc, ctx, what)
    if isinstance(exc, sushy_exc.HTTPError):
        return _http_error(exc, ctx, what)
    if isinstance(exc, sushy_exc.MissingActionError | sushy_exc.MissingAttributeError):
        return BmcError(
            f"this BMC does not offer {what} ({_short(exc.message or str(exc), 120)})",
            "do it from the BMC web UI or update the BMC firmware",
            "unsupported",
        )
    if isinstance(exc, sushy_exc.InvalidParameterValueError):
        return BmcError(f"{what}: {_short(str(exc), 200)}", "pick one of the valid values listed", "invalid")
    if isinstance(exc, sushy_exc.SushyError):
        return BmcError(
            f"{what} failed: {_short(str(exc), 200)}", "check the BMC's answer with `python -m bmc status`"
        )
    raise exc


@contextlib.contextmanager
def bmc_errors(ctx: ErrorContext, what: str) -> Iterator[None]:
    """Run a block of sushy calls; any sushy/requests failure leaves as a ``BmcError``."""
    try:
        yield
    except (sushy_exc.SushyError, requests.exceptions.RequestException) as exc:
        raise translate(exc, ctx, what) from None
