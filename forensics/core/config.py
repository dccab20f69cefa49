"""Typed configurations: one frozen dataclass per thing that runs.

A config is a value: built from defaults, a named preset constructor (``GanConfig.tiny(...)``),
a JSON file or CLI flags, and written as JSON beside the results it produced so the run can be
repeated with ``--config FILE``. ``replace`` gives a changed copy, ``fingerprint`` a stable key
for caches (chained with the upstream stage's key, see :func:`chain`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C", bound="Config")


def _jsonable(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return v.to_dict() if isinstance(v, Config) else dataclasses.asdict(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, Path):
        return str(v)
    return v


def fingerprint(value) -> str:
    """A short stable hash of any JSON-able value (dict keys sorted)."""
    return hashlib.sha256(json.dumps(_jsonable(value), sort_keys=True, default=str).encode()).hexdigest()[:16]


def chain(upstream: str | None, own, produced=None) -> str:
    """A stage's cache key: its own settings, its upstream stage's key and what it actually produced
    (e.g. the step a checkpoint reached). Changing anything upstream changes every key below it."""
    return fingerprint({"upstream": upstream, "own": own, "produced": produced})


def _coerce(tp, v, where: str):
    """``v`` read from JSON as the annotated type ``tp`` (tuples from lists, nested configs from dicts)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if v is None:
            return None
        return _coerce(args[0], v, where) if len(args) == 1 else v
    if v is None:
        return v
    if isinstance(tp, type) and issubclass(tp, Config):
        if not isinstance(v, dict):
            raise ValueError(f"{where}: expected an object, got {type(v).__name__}")
        return tp.from_dict(v)
    if origin is tuple or tp is tuple:
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {type(v).__name__}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return tuple(_coerce(inner, x, where) for x in v)
    if origin is dict or tp is dict:
        if not isinstance(v, dict):
            raise ValueError(f"{where}: expected an object, got {type(v).__name__}")
        return dict(v)
    if tp is float and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if tp in (int, float, str, bool) and not isinstance(v, tp) or (tp is int and isinstance(v, bool)):
        raise ValueError(f"{where}: expected {tp.__name__}, got {v!r}")
    return v


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every configuration. Subclasses are ``@dataclass(frozen=True)`` with typed fields
    and may define ``validate(self)`` (raise ``ValueError`` with a message about the values)."""

    def __post_init__(self):
        for name, tp in typing.get_type_hints(type(self)).items():  # lists given for tuple fields
            v = getattr(self, name, None)
            if isinstance(v, list) and (typing.get_origin(tp) is tuple or tp is tuple):
                object.__setattr__(self, name, tuple(v))
        self.validate()

    def validate(self) -> None:  # overridden by subclasses
        pass

    # ------------------------------------------------------------------ JSON in and out
    def to_dict(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[C], d: dict, **overrides) -> C:
        """Build from a dict (e.g. a ``config.json``); unknown keys are an error, ``overrides`` that are
        not ``None`` win over ``d``."""
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(d).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}")
        merged = {**d, **{k: v for k, v in overrides.items() if v is not None}}
        kw = {k: _coerce(hints[k], v, f"{cls.__name__}.{k}") for k, v in merged.items() if k in names}
        try:
            return cls(**kw)
        except TypeError as e:  # a required field missing
            raise ValueError(f"{cls.__name__}: {e}") from None

    @classmethod
    def load(cls: type[C], path, **overrides) -> C:
        """Read a config JSON file (a toolkit ``config.json`` may hold it under the key ``"config"``)."""
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a readable JSON config ({e})") from None
        if isinstance(d, dict) and isinstance(d.get("config"), dict):
            d = d["config"]
        try:
            return cls.from_dict(d, **overrides)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def replace(self: C, **changes) -> C:
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        return fingerprint(self.to_dict())
