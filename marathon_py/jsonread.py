"""Reading posted JSON as Marathon's RAML-generated Play readers do (reference §1.5, "JSON type errors").

A schema is a tree of small reader objects. ``read(schema, doc)`` returns the value with RAML defaults
filled in, or raises ``InvalidJson`` listing every problem under Play's path syntax (``/a/b(0)/c``) and
message keys: ``error.expected.jsstring|jsnumber|jsboolean|jsarray|jsobject``, ``error.expected.int``,
``error.path.missing``, ``error.min|max``, ``error.minLength|maxLength``, ``error.pattern``,
``error.unknown.enum.literal``. As in Play, ``null`` is the same as an absent optional field and keys the
schema does not name are ignored (Marathon has no strict mode). Sets (``uniqueItems``) drop duplicates.

Each reader also describes itself as a JSON Schema (``json_schema``, the OpenAPI 3.0 dialect), so the
served ``/openapi.json`` documents request bodies from the very readers that check them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from marathon_py.validation import Detail, InvalidJson

JsonSchema = dict[str, Any]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # no default / value could not be read
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


class Reader(Protocol):
    def read(self, value: Any, path: str, errors: list[Detail]) -> Any: ...

    def json_schema(self) -> JsonSchema: ...


def _facets(**facets: Any) -> JsonSchema:
    return {name: value for name, value in facets.items() if value is not None}


def _fail(errors: list[Detail], path: str, message: str) -> Any:
    errors.append((path, message))
    return MISSING


def _is_number(value: Any) -> bool:
    """A JSON number: not a bool, and finite (Jackson never yields NaN or infinities)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Str:
    min_len: int | None = None
    max_len: int | None = None
    pattern: str | None = None

    def read(self, value: Any, path: str, errors: list[Detail]) -> Any:
        if not isinstance(value, str):
            return _fail(errors, path, "error.expected.jsstring")
        if self.max_len is not None and len(value) > self.max_len:
            return _fail(errors, path, "error.maxLength")
        if self.min_len is not None and len(value) < self.min_len:
            return _fail(errors, path, "error.minLength")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return _fail(errors, path, "error.pattern")
        return value

    def json_schema(self) -> JsonSchema:
        return {
            "type": "string",
            **_facets(minLength=self.min_len, maxLength=self.max_len, pattern=self.pattern),
        }


@dataclass(frozen=True)
class Num:
    """A double; ints are widened so the rendering is ``1.0`` as Jackson writes a Scala Double."""

    min: float | None = None
    max: float | None = None

    def read(self, value: Any, path: str, errors: list[Detail]) -> Any:
        if not _is_number(value):
            return _fail(errors, path, "error.expected.jsnumber")
        if self.max is not None and value > self.max:
            return _fail(errors, path, "error.max")
        if self.min is not None and value < self.min:
            return _fail(errors, path, "error.min")
        return float(value)

    def json_schema(self) -> JsonSchema:
        return {"type": "number", **_facets(minimum=self.min, maximum=self.max)}


@dataclass(frozen=True)
class Int:
    min: int | None = None
    max: int | None = None
    long: bool = False

    def read(self, value: Any, path: str, errors: list[Detail]) -> Any:
        if not _is_number(value):
            return _fail(errors, path, "error.expected.jsnumber")
        low, high = INT64 if self.long else INT32
        if (isinstance(value, float) and not value.is_integer()) or not low <= value <= high:
            return _fail(errors, path, "error.expected.long" if self.long else "error.expected.int")
        if self.max is not None and value > self.max:
            return _fail(errors, path, "error.max")
        if self.min is not None and value < self.min:
            return _fail(errors, path, "error.min")
        return int(value)

    def json_schema(self) -> JsonSchema:
        low, high = INT64 if self.long else INT32
        low = low if self.min is None else max(low, self.min)
        high = high if self.max is None else min(high, self.max)
        return {
            "type": "integer",
            "format": "int64" if self.long else "int32",
            "minimum": low,
            "maximum": high,
        }


@dataclass(frozen=True)
class Bool:
    def read(self, value: Any, path: str, errors: list[Detail]) -> Any:
        return value if isinstance(value, bool) else _fail(errors, path, "error.expected.jsboolean")

    def json_schema(self) -> JsonSchema:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Enum:
    """RAML enums are matched case-insensitively and read back in their declared spelling."""

    values: tuple[str, ...]

    def read(self, value: Any, path: str, errors: list[Detail]) -> Any:
        if isinstance(value, str):
            for known in self.values:
                if known.lower() == value.lower():
                    return known
        return _fail(errors, path, "error.unknown.enum.literal")

    def json_schema(self) -> JsonSchema:
        return {"type": "string", "enum": list(self.values)}


@dataclass(frozen=True)
class Arr:
    item: Reader
    min_items: int | None = None
    max_items: int | None = None
    unique: bool = False

    def read(self, value: Any, path: str, errors: list[Detail]) -> Any:
        if not isinstance(value, list):
            return _fail(errors, path, "error.expected.jsarray")
        before = len(errors)
        items = [self.item.read(item, f"{path}({i})", errors) for i, item in enumerate(value)]
        if len(errors) > before:
            return MISSING
        if self.max_items is not None and len(items) > self.max_items:
            return _fail(errors, path, "error.maxLength")
        if self.min_items is not None and len(items) < self.min_items:
            return _fail(errors, path, "error.minLength")
        return dedupe(items) if self.unique else items

    def json_schema(self) -> JsonSchema:
        facets = _facets(minItems=self.min_items, maxItems=self.max_items, uniqueItems=self.unique or None)
        return {"type": "array", "items": self.item.json_schema(), **facets}


@dataclass(frozen=True)
class Dict:
    value: Reader

    def read(self, value: Any, path: str, errors: list[Detail]) -> Any:
        if not isinstance(value, dict):
            return _fail(errors, path, "error.expected.jsobject")
        before = len(errors)
        result = {key: self.value.read(item, f"{path}/{key}", errors) for key, item in value.items()}
        return MISSING if len(errors) > before else result

    def json_schema(self) -> JsonSchema:
        return {"type": "object", "additionalProperties": self.value.json_schema()}


@dataclass(frozen=True)
class Field:
    reader: Reader
    required: bool = False
    default: Any = MISSING  # a JSON value, copied on use


@dataclass(frozen=True)
class Obj:
    fields: Mapping[str, Field]

    def read(self, value: Any, path: str, errors: list[Detail]) -> Any:
        if not isinstance(value, dict):
            return _fail(errors, path, "error.expected.jsobject")
        result: dict[str, Any] = {}
        ok = True
        for name, spec in self.fields.items():
            raw = value.get(name)
            if raw is None and not (spec.required and name in value):
                if spec.required:
                    ok = False
                    errors.append((f"{path}/{name}", "error.path.missing"))
                elif spec.default is not MISSING:
                    result[name] = json.loads(json.dumps(spec.default))
                continue
            got = spec.reader.read(raw, f"{path}/{name}", errors)
            if got is MISSING:
                ok = False
            else:
                result[name] = got
        return result if ok else MISSING

    def json_schema(self) -> JsonSchema:
        """Unknown keys are allowed (ignored when read); a default is documented as such."""
        properties = {
            name: {
                **spec.reader.json_schema(),
                **_facets(default=None if spec.default is MISSING else spec.default),
            }
            for name, spec in self.fields.items()
        }
        required = [name for name, spec in self.fields.items() if spec.required]
        return {"type": "object", "properties": properties, **({"required": required} if required else {})}

    def as_update(self) -> Obj:
        """The generated ``…Update`` type: every top-level field optional and without default."""
        return Obj({name: Field(spec.reader) for name, spec in self.fields.items()})


@dataclass(frozen=True)
class Custom:
    """A union type or any shape the combinators above cannot express."""

    fn: Callable[[Any, str, list[Detail]], Any] = field(compare=False)
    schema: JsonSchema = field(default_factory=dict, compare=False)  # what ``fn`` accepts; {}: anything

    def read(self, value: Any, path: str, errors: list[Detail]) -> Any:
        return self.fn(value, path, errors)

    def json_schema(self) -> JsonSchema:
        return dict(self.schema)


@dataclass(frozen=True)
class AnyObj:
    """An object kept as posted (a type this rebuild passes through without interpreting)."""

    def read(self, value: Any, path: str, errors: list[Detail]) -> Any:
        return (
            json.loads(json.dumps(value))
            if isinstance(value, dict)
            else _fail(errors, path, "error.expected.jsobject")
        )

    def json_schema(self) -> JsonSchema:
        return {"type": "object"}


def dedupe(items: list[Any]) -> list[Any]:
    """Drop repeated JSON values, keeping the first occurrence (a Scala ``Set`` read in order)."""
    seen: set[str] = set()
    result = []
    for item in items:
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            result.append(item)
    return result


def read(schema: Reader, doc: Any, path: str = "") -> Any:
    """``doc`` read through ``schema``; ``InvalidJson`` with every error when it does not fit."""
    errors: list[Detail] = []
    value = schema.read(doc, path, errors)
    if errors or value is MISSING:
        raise InvalidJson(errors or [(path, "error.expected.jsobject")])
    return value
