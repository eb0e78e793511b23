"""Snapshot and restore of an indicator's slots as plain JSON values."""

from __future__ import annotations

from typing import Any, ClassVar, Self


class Stateful:
    """Indicators keep their whole state in `__slots__` of JSON values (or nested indicators)."""

    __slots__ = ()
    _NESTED: ClassVar[tuple[str, ...]] = ()

    def _slot_names(self) -> list[str]:
        names: list[str] = []
        for klass in type(self).__mro__:
            names.extend(getattr(klass, "__slots__", ()))
        return names

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state; `restore` continues exactly where this left off."""
        state: dict[str, Any] = {}
        for name in self._slot_names():
            value = getattr(self, name)
            if name in self._NESTED:
                state[name] = value.snapshot()
            elif isinstance(value, list):
                state[name] = list(value)
            else:
                state[name] = value
        return state

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Self:
        """The indicator a `snapshot` described."""
        indicator = cls.__new__(cls)
        for name in indicator._slot_names():
            if name not in state:
                raise ValueError(f"{cls.__name__} state lacks {name!r}")
            value = state[name]
            if name in cls._NESTED:
                nested_type = type(getattr(cls._prototype(), name))
                value = nested_type.restore(value)
            elif isinstance(value, list):
                value = list(value)
            setattr(indicator, name, value)
        return indicator

    @classmethod
    def _prototype(cls) -> Stateful:
        return cls()
