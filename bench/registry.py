"""One small registry type, used for methods, metrics, datasets, encoders and decoders.

Names are typed once: the decorator takes the name and the registry stores the object under it.
An unknown name is an error that lists the closest registered names.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no registry entry has; the message suggests the closest ones."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name = kind, name
        self.suggestions = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, self.suggestions))}?" if self.suggestions else ""
        super().__init__(f"unknown {kind} {name!r}{hint} (known: {', '.join(sorted(known))})")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._loaders: list[Callable[[], object]] = []  # lazy discovery (submissions, plug-ins)
        self._resolvers: list[tuple[str, Callable[[str], T]]] = []  # "prefix:" -> builds an entry from its name

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        existing = self._entries.get(name)
        if existing is not None and _origin(existing) != _origin(obj):
            raise ValueError(f"{self.kind} {name!r} is registered twice: {_origin(existing)} and {_origin(obj)}")
        self._entries[name] = obj

    def registered(self, name: str) -> T | None:
        """The entry registered under `name` so far, without discovering anything; None when there is none."""
        return self._entries.get(name)

    def loaded(self) -> dict[str, T]:
        """Every entry registered so far (name -> entry, a copy), without discovering anything."""
        return dict(self._entries)

    def update(self, name: str, **changes: object) -> T:
        """Set attributes of the entry registered under `name` (e.g. a plug-in's card); returns it."""
        entry = self._entries[name]
        for attribute, value in changes.items():
            setattr(entry, attribute, value)
        return entry

    def add_loader(self, loader: Callable[[], object]) -> None:
        self._loaders.append(loader)

    def add_resolver(self, prefix: str, build: Callable[[str], T]) -> None:
        """Names starting with `prefix` (e.g. "hf:") are built on first use, e.g. "hf:<model id>"."""
        self._resolvers.append((prefix, build))

    def _resolve(self, name: str) -> bool:
        for prefix, build in self._resolvers:
            if name.startswith(prefix) and name not in self._entries:
                self._entries[name] = build(name)
        return name in self._entries

    def _load(self) -> None:
        while self._loaders:
            self._loaders.pop(0)()

    def get(self, name: str) -> T:
        self._load()
        if not self._resolve(name):
            raise UnknownNameError(self.kind, name, list(self._entries))
        return self._entries[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load()
        try:
            return self._resolve(name)
        except Exception:  # a prefixed name whose model cannot be built is not a known name
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _origin(obj: object) -> str:
    """Where an entry was defined; entries that wrap a class or function say so with `.origin`."""
    origin = getattr(obj, "origin", None)
    if isinstance(origin, str):
        return origin
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
