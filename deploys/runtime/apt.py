"""Vendor apt repositories done the careful way: keyring, fingerprint check, deb822 source, pins.

Why not the vendors' one-liners: ``curl | gpg --dearmor`` trusts whatever the URL served, and a
``.list`` line without ``signed-by`` lets that key sign any repository. Here the key lands in
``/etc/apt/keyrings``, its primary fingerprints must equal the pinned ones before apt ever uses it,
and the deb822 source names that keyring in ``Signed-By``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files, server

from facts.runtime import AptHolds, KeyringFingerprints, primary_fingerprints_command

KEYRING_DIR = "/etc/apt/keyrings"


def keyring_path(filename: str) -> str:
    return f"{KEYRING_DIR}/{filename}.gpg"


def fingerprint_check_command(keyring: str, fingerprints: Sequence[str], label: str) -> str:
    """Fail (and delete the keyring) unless its primary key fingerprints are exactly ``fingerprints``."""
    want = " ".join(sorted(fingerprints))
    quoted = shlex.quote(keyring)
    return (
        f"found=$({primary_fingerprints_command(quoted)} | sort | tr '\\n' ' ' | sed 's/ $//'); "
        f"if [ \"$found\" != {shlex.quote(want)} ]; then rm -f {quoted}; "
        f"echo {shlex.quote(f'{label} signing key fingerprint mismatch: got')} \"${{found:-none}}\""
        f"{shlex.quote(f', want {want}; check the key URL and the pinned key_fingerprints')} >&2; exit 1; fi"
    )


def vendor_repository(*, label: str, filename: str, key_url: str, fingerprints: Sequence[str],
                      uris: str, suites: str, components: str | None, architecture: str,
                      legacy_lists: Sequence[str] = ()) -> list[OperationMeta]:
    """Key, fingerprint check and deb822 source; returns the ops whose change needs an apt update."""
    keyring = keyring_path(filename)
    removed = [files.file(name=f"Remove the {label} one-line source {name} (replaced by deb822)",
                          path=f"/etc/apt/sources.list.d/{name}", present=False) for name in legacy_lists]
    found = host.get_fact(KeyringFingerprints, path=keyring)
    if found is not None and found != sorted(fingerprints):
        # Fetched again below when the run executes: facts are re-read after this change.
        files.file(name=f"Remove the {label} keyring (its keys are not the pinned ones)", path=keyring,
                   present=False)
    key = apt.key(name=f"Install the {label} signing key", src=key_url, dest=keyring)
    if key.will_change or found != sorted(fingerprints):
        server.shell(name=f"Check the {label} signing key fingerprint",
                     commands=[fingerprint_check_command(keyring, fingerprints, label)], _if=key.did_change)
    source = apt.sources_file(name=f"Add the {label} apt repository (deb822, Signed-By)", filename=filename,
                              types="deb", uris=uris, suites=suites, components=components,
                              architectures=architecture, signed_by=keyring)
    return [*removed, key, source]


def missing_packages(packages: Mapping[str, str | None]) -> list[str]:
    """Packages not installed at their pinned version (any version when the pin is ``None``)."""
    installed = host.get_fact(DebPackages)
    return [name for name, version in packages.items()
            if name not in installed or (version is not None and version not in installed[name])]


def install_pinned(label: str, packages: Mapping[str, str | None],
                   sources: Sequence[OperationMeta] = (), hold: bool = False) -> OperationMeta:
    """``apt-get update`` only when something must be installed or a source changed, then install pins.

    ``hold``: ``apt-mark hold`` every package with a version pin, so an unattended ``apt upgrade``
    cannot move Docker or the toolkit off the pin between runs; the install itself passes
    ``--allow-change-held-packages``, so a new pin in the settings still moves them.
    """
    if missing_packages(packages) or any(op.will_change for op in sources):
        apt.update(name=f"Update apt package lists for {label}")
    op = apt.packages(
        name=f"Install {label} at the pinned versions",
        packages=[f"{name}={version}" if version else name for name, version in packages.items()],
        allow_downgrades=True,  # a pin is a pin both ways: a newer package drifted and goes back
        extra_install_args="--allow-change-held-packages" if hold else None,
    )
    pinned = sorted(name for name, version in packages.items() if version)
    held = host.get_fact(AptHolds) or []
    if hold and [name for name in pinned if name not in held]:
        server.shell(name=f"Hold {label} at the pins (apt-mark hold)",
                     commands=[f"apt-mark hold {' '.join(shlex.quote(n) for n in pinned)} >/dev/null"])
    return op
