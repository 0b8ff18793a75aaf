"""Connecting to a BMC through sushy with timeouts and retries that are safe for power actions.

Why not sushy's defaults: its connector re-sends *every* request (POST included) up to three
times on connection errors and read timeouts, sleeping 2 s between tries, and waits up to 60 s
per try. Against an unreachable BMC that is ~27 s of silence; against a slow one it can press the
power button twice. Here sushy's own loop runs once (``server_side_retries=1``) and retries
happen in urllib3, where a request that never left (refused / connect timeout) is retried but a
request that may have reached the BMC is retried only for GET.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sushy
from requests.adapters import HTTPAdapter
from sushy import auth as sushy_auth
from sushy.connector import Connector
from urllib3.util.retry import Retry

from bmc.errors import BmcError, ErrorContext, bmc_errors
from omni.secrets import url_has_credentials

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
#: Requests retried after a timeout or reset (they cannot change state). Everything else is sent once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class BmcSettings:
    """Everything needed to talk to one BMC; the password is kept out of reprs and logs."""

    url: str
    username: str
    password: str = field(repr=False)
    verify: bool | str = True
    system_id: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    username_env: str = "OMNI_BMC_USERNAME"
    password_env: str = "OMNI_BMC_PASSWORD"

    @property
    def context(self) -> ErrorContext:
        return ErrorContext(
            self.url,
            self.username,
            self.username_env,
            self.password_env,
            self.connect_timeout,
            self.read_timeout,
        )


def settings_from_data(
    data: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    url: str | None = None,
    ca_file: str | None = None,
    insecure: bool = False,
    system_id: str | None = None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> BmcSettings:
    """Settings from host data (``omni/hostdata.py`` keys) with explicit overrides on top."""
    from omni.hostdata import InventoryError, bmc_credentials

    url = (url or data.get("bmc_url") or "").rstrip("/")
    if not url:
        raise BmcError(
            "no BMC URL configured", "set OMNI_BMC_URL=https://<bmc address> (or bmc_url, or --url)", "config"
        )
    if not url.startswith(("http://", "https://")):
        raise BmcError(
            f"BMC URL {url!r} has no http:// or https:// scheme",
            "write it as https://<bmc address>",
            "config",
        )
    if url_has_credentials(url):  # never echoed: the URL holds the password
        raise BmcError(
            "the BMC URL contains a user name or password (user:pass@host)",
            "remove them from the URL; put the user in OMNI_BMC_USERNAME and the password in a 0600 file "
            "named by OMNI_BMC_PASSWORD_FILE (or in OMNI_BMC_PASSWORD)",
            "config",
        )
    if ca_file and insecure:
        raise BmcError("--ca-file and --insecure contradict each other", "pass only one of them", "config")
    timeouts = {"connect timeout": connect_timeout, "read timeout": read_timeout,
                "bmc_connect_timeout": data.get("bmc_connect_timeout"),
                "bmc_read_timeout": data.get("bmc_read_timeout")}
    for name, value in timeouts.items():
        try:
            seconds = None if value is None else float(value)
        except (TypeError, ValueError):
            seconds = -1.0
        if seconds is not None and not 0 < seconds <= 600:
            raise BmcError(f"{name} {value!r} is not a number of seconds in (0, 600]",
                           "give a positive timeout such as 5 (connect) or 30 (read)", "config")
    try:
        username, password = bmc_credentials(data, env)
    except InventoryError as exc:
        raise BmcError(str(exc).split(": ", 1)[0], str(exc).split(": ", 1)[-1], "config") from None
    ca = ca_file or data.get("bmc_ca_file")
    if ca and not Path(str(ca)).expanduser().is_file():
        raise BmcError(f"CA file {ca} does not exist or is not a file",
                       "pass --ca-file with the PEM bundle that signed the BMC's certificate", "config")
    verify: bool | str
    if insecure:
        verify = False
    elif ca:
        verify = str(Path(str(ca)).expanduser())
    else:
        verify = bool(data.get("bmc_verify_tls", True))
    return BmcSettings(
        url=url,
        username=username,
        password=password,
        verify=verify,
        system_id=system_id or data.get("bmc_system_id"),
        connect_timeout=connect_timeout or float(data.get("bmc_connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
        read_timeout=read_timeout or float(data.get("bmc_read_timeout", DEFAULT_READ_TIMEOUT)),
        username_env=data.get("bmc_username_env", "OMNI_BMC_USERNAME"),
        password_env=data.get("bmc_password_env", "OMNI_BMC_PASSWORD"),
    )


def safe_retry() -> Retry:
    """One retry for requests that never reached the BMC; one for GETs that timed out; none else.

    The GET retry doubles the wait on a BMC that never answers (2 x the read timeout): the error
    says so (bmc/errors.py), so the wait is bounded and never silent.
    """
    return Retry(
        total=2,
        connect=1,
        read=1,
        status=0,
        other=0,
        redirect=0,
        allowed_methods=IDEMPOTENT_METHODS,
        backoff_factor=0.3,
        raise_on_status=False,
        respect_retry_after_header=False,
    )


def make_connector(settings: BmcSettings) -> Connector:
    """A sushy connector whose POST/PATCH/DELETE are sent exactly once."""
    connector = Connector(
        settings.url,
        verify=settings.verify,
        server_side_retries=1,  # sushy's transport loop runs `server_side_retries or 3` times: 1 = once
        server_side_retries_delay=1,
        default_request_timeout=settings.read_timeout,
        connect_timeout=settings.connect_timeout,
    )
    adapter = HTTPAdapter(max_retries=safe_retry())
    # sushy exposes no hook for the transport adapter; its session is the only place to mount one.
    connector._session.mount("http://", adapter)
    connector._session.mount("https://", adapter)
    return connector


class _NoInternet:
    """Registries are read from the BMC only; never fetch a PublicationUri from the Internet."""

    def get(self, *_args: Any, **_kwargs: Any) -> None:
        raise requests.exceptions.ConnectionError("registry downloads from the Internet are disabled")


class Bmc:
    """An authenticated session with one BMC and the one system it manages."""

    def __init__(self, settings: BmcSettings) -> None:
        self.settings = settings
        self.ctx = settings.context
        self._system: Any = None
        with bmc_errors(self.ctx, "GET /redfish/v1"):
            self.root = sushy.Sushy(
                settings.url,
                auth=sushy_auth.BasicAuth(settings.username, settings.password),
                connector=make_connector(settings),
                public_connector=_NoInternet(),
            )

    def errors(self, what: str):  # -> contextmanager
        """``with bmc.errors("POST Reset"):`` turns sushy failures into one-line ``BmcError``."""
        return bmc_errors(self.ctx, what)

    def system(self, refresh: bool = False) -> Any:
        """The system this BMC manages: ``--system``/``bmc_system_id``, or the only one there is."""
        if self._system is None:
            with self.errors("GET /redfish/v1/Systems"):
                members = sorted(self.root.get_system_collection().members_identities)
                wanted = self.settings.system_id
                if wanted:
                    path = next((m for m in members if m.rstrip("/").rsplit("/", 1)[-1] == wanted), None)
                    if path is None:
                        ids = ", ".join(m.rstrip("/").rsplit("/", 1)[-1] for m in members) or "none"
                        raise BmcError(
                            f"system {wanted!r} not found on {self.settings.url} (it has: {ids})",
                            "pass --system with one of those ids",
                            "not_found",
                        )
                elif len(members) == 1:
                    path = members[0]
                else:
                    ids = ", ".join(m.rstrip("/").rsplit("/", 1)[-1] for m in members) or "none"
                    raise BmcError(
                        f"the BMC at {self.settings.url} manages {len(members)} systems ({ids})",
                        "pick one with --system (or bmc_system_id)",
                        "config",
                    )
                self._system = self.root.get_system(path)
        elif refresh:
            with self.errors("GET system"):
                self._system.refresh(force=True)
        return self._system

    @property
    def conn(self) -> Connector:
        """sushy's connector, for the requests sushy has no method for (a settings object's ETag)."""
        return self.root._conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Bmc:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
