"""``python -m bmc``: status, media, boot, power and BIOS verbs against the box's BMC.

Credentials come only from the environment variables or the password file that the host data
names (``--username-env``/``--password-env``/``--password-file`` change *where* they are read,
never take them as values), so they stay out of shell history and process lists.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from bmc import bios, boot, media, power, status
from bmc.connection import Bmc, settings_from_data
from bmc.errors import BmcError
from bmc.rollback import default_dir
from omni.secrets import is_secret_name, redact_text

EXIT_FAILED = 1
EXIT_CONFIG = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        self.exit(EXIT_CONFIG, f"{self.prog}: {message} (see --help)\n")


def _seconds(text: str) -> float:
    """A timeout or poll interval: a finite number of seconds above 0 (no 'nan', no negative)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0, e.g. 30")
    return value


def _connection_options() -> argparse.ArgumentParser:
    opts = argparse.ArgumentParser(add_help=False)
    group = opts.add_argument_group("connection (defaults from the inventory host data and OMNI_* variables)")
    group.add_argument("--host", help="inventory host whose data to use (needs OMNI_HOST/OMNI_HOSTS_FILE)")
    group.add_argument("--url", help="BMC URL, e.g. https://192.0.2.10 (default: bmc_url / OMNI_BMC_URL)")
    group.add_argument("--system", help="system id when the BMC manages several")
    group.add_argument("--username-env", metavar="VAR", help="environment variable holding the user name")
    group.add_argument("--password-env", metavar="VAR", help="environment variable holding the password")
    group.add_argument("--password-file", metavar="PATH", help="file holding only the password (mode 0600)")
    tls = group.add_mutually_exclusive_group()
    tls.add_argument("--ca-file", metavar="PATH", help="CA bundle that signed the BMC's certificate")
    tls.add_argument("--insecure", action="store_true", help="skip TLS verification (trusted networks only)")
    group.add_argument("--connect-timeout", type=_seconds, metavar="S",
                       help="TCP connect timeout (default 5)")
    group.add_argument("--read-timeout", type=_seconds, metavar="S", help="wait for each answer (default 30)")
    group.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return opts


def build_parser() -> argparse.ArgumentParser:
    common = _connection_options()
    parser = _Parser(prog="python -m bmc", description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)

    verbs.add_parser("status", parents=[common], help="power, boot override, media, BIOS version")

    med = verbs.add_parser("media", help="virtual media by URL").add_subparsers(
        dest="media_verb", required=True, parser_class=_Parser
    )
    ins = med.add_parser("insert", parents=[common], help="mount an image URL and wait until Inserted")
    ins.add_argument("image_url", metavar="URL")
    ins.add_argument("--type", choices=sorted(media.MEDIA_TYPES), default="cd")
    ins.add_argument(
        "--timeout", type=_seconds, default=120.0, help="seconds to wait for Inserted (default 120)"
    )
    ins.add_argument("--poll", type=_seconds, default=2.0, help=argparse.SUPPRESS)
    ej = med.add_parser("eject", parents=[common], help="eject inserted images and wait until empty")
    ej.add_argument("--type", choices=sorted(media.MEDIA_TYPES))
    ej.add_argument("--timeout", type=_seconds, default=60.0)
    ej.add_argument("--poll", type=_seconds, default=2.0, help=argparse.SUPPRESS)

    bt = verbs.add_parser("boot", help="one-time boot override").add_subparsers(
        dest="boot_verb", required=True, parser_class=_Parser
    )
    once = bt.add_parser("once", parents=[common], help="boot DEVICE on the next boot only")
    once.add_argument("device", choices=list(boot.TARGETS))
    once.add_argument("--uefi", action="store_true", help="boot it in UEFI mode")

    pw = verbs.add_parser("power", parents=[common], help="power actions")
    pw.add_argument("action", choices=list(power.ACTIONS))
    pw.add_argument(
        "--wait", action="store_true", help="wait until the system reaches the action's end state"
    )
    pw.add_argument("--timeout", type=_seconds, default=300.0,
                    help="seconds to wait with --wait (default 300)")
    pw.add_argument("--poll", type=_seconds, default=2.0, help=argparse.SUPPRESS)

    bi = verbs.add_parser("bios", help="BIOS attributes").add_subparsers(dest="bios_verb", required=True,
                                                                            parser_class=_Parser)
    get = bi.add_parser("get", parents=[common], help="current values (all, named, or matching --grep)")
    get.add_argument("names", nargs="*", metavar="NAME")
    get.add_argument("--grep", metavar="TEXT", help="names or registry display names containing TEXT")
    st = bi.add_parser("set", parents=[common], help="stage NAME=VALUE as pending (saves a rollback file)")
    st.add_argument("assignments", nargs="+", metavar="NAME=VALUE")
    st.add_argument("--apply-on-reboot", action="store_true", help="ask for ApplyTime OnReset explicitly")
    st.add_argument("--rollback-dir", metavar="DIR", help="where rollback files go (default backups/bmc)")
    bi.add_parser("pending", parents=[common], help="pending values that the next boot applies")
    bi.add_parser("clear-pending", parents=[common], help="drop every pending change")
    rb = bi.add_parser("rollback", parents=[common], help="stage the values saved in a rollback file")
    rb.add_argument("file", metavar="FILE")
    rb.add_argument("--rollback-dir", metavar="DIR")
    return parser


def host_data_for(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """The reference box with OMNI_* overrides, or the named inventory host's data."""
    from omni.hostdata import InventoryError, host_data, inventory_groups

    try:
        if args.host:
            for hosts in inventory_groups(env).values():
                for name, data in hosts:
                    if name == args.host:
                        return dict(data)
            raise BmcError(
                f"host {args.host!r} is not in the inventory", "check OMNI_HOST / OMNI_HOSTS_FILE", "config"
            )
        return host_data(env)
    except InventoryError as exc:
        raise BmcError(str(exc).split(": ", 1)[0], str(exc).split(": ", 1)[-1], "config") from None


def _connect(args: argparse.Namespace, data: dict[str, Any]) -> Bmc:
    for flag, key in (
        ("username_env", "bmc_username_env"),
        ("password_env", "bmc_password_env"),
        ("password_file", "bmc_password_file"),
    ):
        if getattr(args, flag):
            data[key] = getattr(args, flag)
    settings = settings_from_data(
        data,
        os.environ,
        url=args.url,
        ca_file=args.ca_file,
        insecure=args.insecure,
        system_id=args.system,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
    )
    return Bmc(settings)


def _run(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    rollback_dir = getattr(args, "rollback_dir", None) or data.get("bmc_rollback_dir") or default_dir()
    actions: dict[tuple[str, str | None], Callable[[Bmc], dict[str, Any]]] = {
        ("status", None): status.status,
        ("media", "insert"): lambda b: media.insert(b, args.image_url, args.type, args.timeout, args.poll),
        ("media", "eject"): lambda b: media.eject(b, args.type, args.timeout, args.poll),
        ("boot", "once"): lambda b: boot.boot_once(b, args.device, args.uefi),
        ("power", None): lambda b: power.power(b, args.action, args.wait, args.timeout, args.poll),
        ("bios", "get"): lambda b: {"attributes": bios.get(b, args.names, args.grep)},
        ("bios", "set"): lambda b: bios.set_attributes(
            b, bios.parse_assignments(args.assignments), rollback_dir, args.apply_on_reboot
        ),
        ("bios", "pending"): lambda b: {"pending": bios.pending(b)},
        ("bios", "clear-pending"): bios.clear_pending,
        ("bios", "rollback"): lambda b: bios.rollback_from(b, args.file, rollback_dir),
    }
    sub = getattr(args, f"{args.verb}_verb", None)
    if args.verb == "bios" and sub == "set":
        bios.parse_assignments(args.assignments)  # bad syntax fails before we touch the network
    with _connect(args, data) as bmc:
        return actions[(args.verb, sub)](bmc)


def _text(args: argparse.Namespace, result: dict[str, Any]) -> str:
    if "message" in result:
        return result["message"]
    if "attributes" in result or "pending" in result:
        values = result.get("attributes", result.get("pending")) or {}
        if not values:
            return "nothing pending" if "pending" in result else "no attributes"
        width = max(len(k) for k in values)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in values.items())
    return _status_text(result)


def _status_text(s: dict[str, Any]) -> str:
    override = s["boot_override"]
    boot_line = f"{override['target']} ({override['enabled']}, mode {override['mode']})"
    if isinstance(s["media"], list):
        media_line = (
            "; ".join(f"{m['id']}: {m['image'] if m['inserted'] else 'empty'}" for m in s["media"]) or "none"
        )
    else:
        media_line = s["media"]["unavailable"]
    pend = s["bios_pending"]
    pend_line = (
        pend.get("unavailable")
        if "unavailable" in pend
        else (", ".join(f"{k}={v}" for k, v in pend.items()) or "none")
    )
    fw = s["bmc_firmware"]
    rows = [
        ("BMC", f"{s['bmc_url']} (firmware {fw if isinstance(fw, str) else 'unknown'})"),
        ("System", f"{s['system']} {s['manufacturer'] or ''} {s['model'] or ''}".strip()),
        ("Power", s["power_state"]),
        ("Boot", boot_line),
        ("Media", media_line),
        ("BIOS", f"version {s['bios_version'] or 'unknown'}; pending: {pend_line}"),
    ]
    return "\n".join(f"{k:<7} {v}" for k, v in rows)


def _emit(text: str, stream=None) -> None:
    """The one output boundary: whatever reaches the terminal or a --json reader has URL
    credentials and the BMC password blanked, even if a message or a BMC answer carried them."""
    secrets = tuple(value for name, value in os.environ.items() if is_secret_name(name) and value)
    print(redact_text(text, secrets), file=stream or sys.stdout)


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("sushy").setLevel(logging.CRITICAL)  # its warnings would repeat our one line
    args = build_parser().parse_args(argv)
    try:
        data = host_data_for(args, dict(os.environ))
        result = _run(args, data)
    except BmcError as exc:
        if args.json:
            _emit(json.dumps({"ok": False, **exc.as_dict()}))
        _emit(f"bmc: {exc}", sys.stderr)
        return EXIT_CONFIG if exc.kind == "config" else EXIT_FAILED
    except KeyboardInterrupt:
        print(
            "bmc: interrupted: a request may have reached the BMC; run `python -m bmc status`",
            file=sys.stderr,
        )
        return 130
    if args.json:
        _emit(json.dumps({"ok": True, **result}, default=str))
    else:
        _emit(_text(args, result))
    return 0
