"""Named kinds of components (cells, attention, encoders, decoding strategies, data readers, tasks).

Each kind is named once, where it is implemented, by registering it in the `Registry` of its config key::

    ATTENTIONS = Registry("attention", "model.decoder.attention")

    @ATTENTIONS.register("bahdanau")
    def bahdanau(units): ...

Configs name kinds by string; `Registry.get` turns the string into the component and `Registry.check`
validates a config value, both raising `ConfigError` that names the key and the allowed values. Adding a
kind is one registration, in one file; the config, the CLI choices and the docs read the names from here.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from seq2seq.errors import ConfigError

_ALL: dict[str, "Registry"] = {}
_DECORATE = object()


class Registry:
    """A mapping from kind names to components, for the config keys that name them.

    Args:
      kind: what is registered, e.g. "attention" (used in messages).
      *keys: the dotted config keys whose values name kinds here, e.g. "model.decoder.attention".

    Raises:
      ValueError: a second registry for one of the keys.
    """

    def __init__(self, kind: str, *keys: str):
        taken = [k for k in keys if k in _ALL]
        if taken:
            raise ValueError(f"a registry for {', '.join(taken)} exists already")
        self.kind = kind
        self.key = keys[0] if keys else kind
        self.keys = keys
        self._entries: dict[str, Any] = {}
        for key in keys:
            _ALL[key] = self

    def register(self, name: str, value: Any = _DECORATE) -> Callable:
        """Register `value` (may be None) under `name`; without `value`, a decorator registering what it decorates.

        Raises:
          ValueError: `name` is registered already.
        """

        def add(item):
            if name in self._entries:
                raise ValueError(f"{self.key}: {name!r} is registered already")
            self._entries[name] = item
            return item

        return add if value is _DECORATE else add(value)

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def check(self, name: str, key: str | None = None) -> str:
        """`name` when registered; else ConfigError naming `key` (default: the first key) and the allowed values."""
        if name not in self._entries:
            allowed = ", ".join(repr(n) for n in self._entries)
            raise ConfigError(f"{key or self.key}: got {name!r}; allowed values: {allowed}")
        return name

    def get(self, name: str, key: str | None = None) -> Any:
        """The component registered as `name` (ConfigError as `check` when unknown)."""
        return self._entries[self.check(name, key)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)


def registry_for(key: str) -> Registry | None:
    """The registry of config key `key`, or None (its module not imported, or the key names no kinds)."""
    return _ALL.get(key)


def registered_keys() -> tuple[str, ...]:
    """Every config key that has a registry (those of all imported modules)."""
    return tuple(_ALL)
