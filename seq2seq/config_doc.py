"""The reference rows of docs/options.md, derived from the config dataclasses so the table cannot drift."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from seq2seq.config import Config


def describe_type(tp) -> str:
    """Readable type of a config annotation: `int`, `float or null`, `'gru' | 'lstm'`, `any`."""
    if tp is Any:
        return "any"
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(tp))
        return " or ".join(describe_type(a) for a in args) + (" or null" if nullable else "")
    return getattr(tp, "__name__", str(tp))


def describe_default(value) -> str:
    """YAML spelling of a default value: `null`, `true`, `0.05`, `gru`."""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def option_rows(cls=Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, type, default) of every leaf field of the config dataclass `cls`, in declaration order."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            rows += option_rows(tp, key + ".")
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append((key, describe_type(tp), describe_default(default)))
    return rows
