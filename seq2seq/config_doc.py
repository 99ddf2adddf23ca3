"""The reference rows of docs/options.md, derived from the config dataclasses so the table cannot drift."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from seq2seq.config import Config
from seq2seq.registry import registry_for


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


def _kinds(key: str) -> str | None:
    """`'a' \\| 'b'` for a config key whose values name registered kinds (None otherwise)."""
    if key == "data.format":  # each task's readers
        tasks = registry_for("task")
        names = dict.fromkeys(name for task in tasks for name in tasks.get(task).readers)
    else:
        registry = registry_for(key)
        if registry is None:
            return None
        names = registry.names()
    return " \\| ".join(f"`{name}`" for name in names)


def _data_fields() -> list[tuple[dataclasses.Field, dict, str]]:
    """(field, type hints, task names) of the data sections of every task: shared keys first."""
    tasks = registry_for("task")
    sections = {name: tasks.get(name).data_config for name in tasks}
    fields: dict[str, list] = {}
    for task, section in sections.items():
        hints = typing.get_type_hints(section)
        for f in dataclasses.fields(section):
            fields.setdefault(f.name, [f, hints, []])[2].append(task)
    return [(f, hints, names) for f, hints, names in fields.values()]


def _default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def option_rows(cls=Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, type, default) of every leaf field of the config dataclass `cls`, in declaration order.

    The `data` section lists the keys of every task's section; a key that only one task has, or whose default
    differs per task, says so in its default column.
    """
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], f"{prefix}{f.name}"
        if cls is Config and f.name == "data":
            tasks = registry_for("task")
            for field, field_hints, names in _data_fields():
                defaults = {
                    name: _default(
                        next(x for x in dataclasses.fields(tasks.get(name).data_config) if x.name == field.name)
                    )
                    for name in names
                }
                if len(set(map(repr, defaults.values()))) == 1 and len(names) == len(tasks.names()):
                    default = describe_default(next(iter(defaults.values())))
                else:
                    default = ", ".join(f"{describe_default(v)} ({name})" for name, v in defaults.items())
                data_key = f"data.{field.name}"
                rows.append((data_key, _kinds(data_key) or describe_type(field_hints[field.name]), default))
        elif dataclasses.is_dataclass(tp):
            rows += option_rows(tp, key + ".")
        else:
            rows.append((key, _kinds(key) or describe_type(tp), describe_default(_default(f))))
    return rows
