"""Settings: deploy defaults merged with host data, and a run's ``--data`` flags validated in one line.

Why: hostdata.py describes the machine; each deploy module owns its own knobs (paths, URLs,
layouts) as ``DEFAULTS`` and lets a hosts-file table of the same name override any of them
(``settings(DEFAULTS, host_data, "storage")``). The per-run flags an entry point reads from the top
of the host data (``pyinfra ... --data install_ssh_port=2222`` or a hosts-file key) are declared as a
pydantic model and read with :func:`flags`, so a bad value stops the run with one line naming the
key and the fix instead of a traceback from a bare ``int()`` deep in a deploy file.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError

from omni.errors import one_line

M = TypeVar("M", bound=BaseModel)

#: The words that mean yes / no in a flag (pyinfra's ``--data`` turns ``true``/``1`` into True/1).
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "off", ""})


class SettingsError(ValueError):
    """A bad setting; the message is one line naming the key and the fix."""


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def settings(defaults: Mapping[str, Any], data: Mapping[str, Any] | Any, key: str) -> dict[str, Any]:
    """``defaults`` overridden by ``data[key]`` (a dict, or pyinfra ``HostData``)."""
    override = data.get(key) if hasattr(data, "get") else None
    return deep_merge(copy.deepcopy(dict(defaults)), override or {})


def yes_no(value: Any) -> bool:
    """``yes``/``true``/``1``/``on`` or ``no``/``false``/``0``/``off``, any case; anything else is refused."""
    if value is None or isinstance(value, bool):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{str(value)[:40]!r} is not yes or no")


def comma_list(value: Any) -> Any:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (how a list is typed on the command line); lists pass as given."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


#: A yes/no flag: ``confirm_install: YesNo = False``.
YesNo = Annotated[bool, BeforeValidator(yes_no)]


def table(model: type[M], data: Mapping[str, Any] | Any, key: str) -> M:
    """The host data's ``key`` table merged over the ``model``'s defaults, validated.

    Why: a module's knobs were a ``DEFAULTS`` dict merged with :func:`settings` and read raw, so
    ``[hosts.box.storage] min_size_gib = "abc"`` became a traceback deep in a deploy. The model is
    the one home of the defaults and the types; a bad value or an unknown key (with
    ``extra="forbid"``) raises :class:`SettingsError` naming ``key.sub``.
    """
    override = data.get(key) if hasattr(data, "get") else None
    if override is not None and not isinstance(override, Mapping):
        raise SettingsError(f"{key}: is a {type(override).__name__}, not a table: write it as "
                            f"[hosts.<name>.{key}] in your hosts file (OMNI_HOSTS_FILE)")
    merged = deep_merge(model().model_dump(), override or {})
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise SettingsError(one_line(exc, root=(key,), show_input=True,
                                     fix="fix it in your hosts file (OMNI_HOSTS_FILE)")) from None


def flags(model: type[M], data: Mapping[str, Any] | Any) -> M:
    """The ``model``'s fields read from the top of the host data; unset, None or "" keeps the default.

    The field's ``description`` is the value the fix asks for: ``install_ssh_port: Input should be a
    valid integer ... (got 'abc'): pass --data install_ssh_port=<SSH port 1-65535> or set it in ...``.
    """
    values = {name: data.get(name) for name in model.model_fields}
    values = {name: value for name, value in values.items() if value is not None and value != ""}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        name = str(loc[0]) if loc else ""
        field = model.model_fields.get(name)
        hint = field.description if field and field.description else "<a valid value>"
        fix = f"pass --data {name}={hint} or set it in the hosts file (OMNI_HOSTS_FILE)"
        raise SettingsError(one_line(exc, fix=fix, show_input=True)) from None
