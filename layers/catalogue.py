"""Layer specs: what a layer's table holds, how it validates and how it may change."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

GeometryType = Literal["Point", "MultiPoint", "LineString", "MultiLineString", "MultiPolygon"]
AttrType = Literal["text", "integer", "real", "boolean", "date", "text_list"]
ChangeMode = Literal["editable", "read-only", "workflow"]

GEOMETRY_TYPES: tuple[str, ...] = ("Point", "MultiPoint", "LineString", "MultiLineString", "MultiPolygon")
ATTR_TYPES: tuple[str, ...] = ("text", "integer", "real", "boolean", "date", "text_list")
CHANGE_MODES: tuple[str, ...] = ("editable", "read-only", "workflow")
STORAGE_SRID = 4490
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# Columns every layer table has, in table order, before the spec's attributes.
# (name, SQL type, udt_name as information_schema reports it, nullable)
COMMON_COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("id", "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "int8", False),
    ("code", "text NOT NULL", "text", False),
    ("district_code", "text NOT NULL", "text", False),
    ("version", "integer NOT NULL DEFAULT 1", "int4", False),
    ("created_at", "timestamptz NOT NULL DEFAULT now()", "timestamptz", False),
    ("updated_at", "timestamptz NOT NULL DEFAULT now()", "timestamptz", False),
    # The import batch a feature came in with. Not a foreign key on purpose: a
    # million-row COPY would fire a million FK checks (seconds), and batch_id is
    # only ever written by the importer, in the transaction that creates the batch.
    ("batch_id", "bigint", "int8", True),
)

SQL_TYPES: dict[str, tuple[str, str]] = {
    # attribute type: (SQL type, information_schema udt_name)
    "text": ("text", "text"),
    "integer": ("integer", "int4"),
    "real": ("double precision", "float8"),
    "boolean": ("boolean", "bool"),
    "date": ("date", "date"),
    "text_list": ("text[]", "_text"),
}

# Geometry types a file may carry for a layer of each type; singles are promoted.
ACCEPTED_GEOMETRIES: dict[str, tuple[str, ...]] = {
    "Point": ("Point",),
    "MultiPoint": ("Point", "MultiPoint"),
    "LineString": ("LineString",),
    "MultiLineString": ("LineString", "MultiLineString"),
    "MultiPolygon": ("Polygon", "MultiPolygon"),
}


class SpecError(ValueError):
    """A spec file is malformed; the message names the file and the key."""


TEXT_MAX = 200  # a layer's text attribute, unless its spec says max_length (names ≤ 200)


@dataclass(frozen=True)
class Attribute:
    """One typed attribute of a layer."""

    name: str
    type: AttrType
    title_zh: str
    title_en: str
    required: bool = False
    default: Any = None
    values: Mapping[str, str] | None = None  # allowed key -> Chinese label
    vocabulary: str | None = None  # the vocabulary (vocabulary.toml) the values come from
    # "units": must name an existing unit code (a foreign key); "zones": an existing zone code
    # (checked on write, no foreign key: a line's zone is computed, see migration 0012)
    references: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    # a date that may lie ahead (a contract's end); every other date has happened: not after today
    future: bool = False
    # the longest text (each item of a text_list); held by a CHECK constraint (migration 0010)
    max_length: int = TEXT_MAX

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type][0]

    @property
    def udt_name(self) -> str:
        return SQL_TYPES[self.type][1]

    def label(self, key: str, lang: str = "zh") -> str:
        """The label of an allowed value in ``lang`` (zh, or en from its vocabulary); the key if unknown."""
        if lang == "en" and self.vocabulary is not None:
            return vocabulary(self.vocabulary).label(key, "en")
        return (self.values or {}).get(key, key)


@dataclass(frozen=True)
class Parent:
    """A layer whose features must lie inside a feature of another layer."""

    layer: str
    attribute: str


@dataclass(frozen=True)
class LayerSpec:
    """Everything the system knows about one layer."""

    name: str
    title_zh: str
    title_en: str
    geometry: GeometryType
    attributes: tuple[Attribute, ...]
    change: ChangeMode = "editable"
    order: int = 100
    srid: int = STORAGE_SRID
    no_overlap: bool = False
    parent: Parent | None = None
    facility: bool = False
    description_zh: str = ""
    style: Mapping[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return self.name

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    def attribute(self, name: str) -> Attribute:
        """The attribute called ``name``; KeyError if the layer has none."""
        for a in self.attributes:
            if a.name == name:
                return a
        raise KeyError(name)

    @property
    def accepted_geometries(self) -> tuple[str, ...]:
        return ACCEPTED_GEOMETRIES[self.geometry]

    @property
    def is_polygonal(self) -> bool:
        return self.geometry == "MultiPolygon"

    @property
    def is_linear(self) -> bool:
        return self.geometry in ("LineString", "MultiLineString")

    @property
    def zone_attribute(self) -> str | None:
        """The attribute holding the feature's one zone (line layers: the zone holding most of its
        length, computed on write unless a planner sets it; migration 0012), if the layer has one."""
        return "zone_code" if "zone_code" in self.attribute_names else None


class Catalogue(Mapping[str, LayerSpec]):
    """The layers of this deployment, in migration order."""

    def __init__(self, specs: list[LayerSpec]) -> None:
        ordered = sorted(specs, key=lambda s: (s.order, s.name))
        self._specs = {s.name: s for s in ordered}
        if len(self._specs) != len(specs):
            raise SpecError("two specs share a layer name")

    def __getitem__(self, name: str) -> LayerSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def with_layer(self, spec: LayerSpec) -> Catalogue:
        """A new catalogue with ``spec`` added (or replacing one of the same name)."""
        specs = {**self._specs, spec.name: spec}
        return Catalogue(list(specs.values()))


@dataclass(frozen=True)
class Term:
    """One coded value of a vocabulary: its stored key, its labels and its flags."""

    key: str
    zh: str
    en: str
    closed: bool = False  # case states: terminal
    month: int | None = None  # phases: month of the programme year by which it is due

    def label(self, lang: str = "zh") -> str:
        """The label in ``lang`` (``en``, else Chinese)."""
        return self.en if lang == "en" else self.zh


_TERM_KEYS = {"key", "zh", "en", "closed", "month"}


class Vocabulary(Mapping[str, Term]):
    """The terms of one vocabulary (``vocabulary.toml``) by key, in display order."""

    def __init__(self, name: str, terms: list[Term]) -> None:
        self.name = name
        self._terms = {t.key: t for t in terms}
        if len(self._terms) != len(terms):
            raise SpecError(f"vocabulary.toml: '{name}' has a key twice")
        if len({t.zh for t in terms}) != len(terms):
            raise SpecError(f"vocabulary.toml: '{name}' has a Chinese label twice")

    def __getitem__(self, key: str) -> Term:
        return self._terms[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._terms)

    def __len__(self) -> int:
        return len(self._terms)

    def labels(self, lang: str = "zh") -> dict[str, str]:
        """key -> label in ``lang`` (zh or en), in display order."""
        return {k: t.label(lang) for k, t in self._terms.items()}

    @property
    def zh(self) -> dict[str, str]:
        """key -> Chinese label, in display order."""
        return self.labels("zh")

    @property
    def en(self) -> dict[str, str]:
        """key -> English label, in display order."""
        return self.labels("en")

    def label(self, key: str, lang: str = "zh") -> str:
        """The label of ``key`` in ``lang``; the key itself when it is not in the vocabulary."""
        term = self._terms.get(key)
        return term.label(lang) if term else key

    def key_of(self, value: str) -> str | None:
        """The key that ``value`` names, given as the key or its Chinese label; None if neither."""
        if value in self._terms:
            return value
        return next((t.key for t in self._terms.values() if t.zh == value), None)


def _term(raw: Any, where: str) -> Term:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: each entry must be a table {{ key, zh, en }}")
    unknown = set(raw) - _TERM_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown fields {sorted(unknown)}")
    for k in ("key", "zh", "en"):
        if not isinstance(raw.get(k), str) or not raw[k]:
            raise SpecError(f"{where}: missing '{k}'")
    month = raw.get("month")
    return Term(key=raw["key"], zh=raw["zh"], en=raw["en"], closed=bool(raw.get("closed", False)), month=month)


@cache
def vocabularies() -> dict[str, Vocabulary]:
    """Every vocabulary of ``layers/vocabulary.toml`` by name."""
    text = resources.files("layers").joinpath("vocabulary.toml").read_text(encoding="utf-8")
    out = {}
    for name, entries in tomllib.loads(text).items():
        where = f"vocabulary.toml: '{name}'"
        if not isinstance(entries, list):
            raise SpecError(f"{where} must be a list of {{ key, zh, en }} entries")
        out[name] = Vocabulary(name, [_term(e, f"{where} entry {i + 1}") for i, e in enumerate(entries)])
    return out


def vocabulary(name: str) -> Vocabulary:
    """One vocabulary (``case_states``, ``conditions``, ``roles``, …); KeyError naming it if unknown."""
    found = vocabularies().get(name)
    if found is None:
        raise KeyError(f"no vocabulary '{name}' in layers/vocabulary.toml")
    return found


# The case workflow's states: open ones can still move, closed ones are terminal. Here, below geo/,
# because cases, statistics and acceptance all count by them.
OPEN_CASE_STATES: tuple[str, ...] = tuple(k for k, t in vocabulary("case_states").items() if not t.closed)
CLOSED_CASE_STATES: tuple[str, ...] = tuple(k for k, t in vocabulary("case_states").items() if t.closed)


def _require(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise SpecError(f"{where}: missing key '{key}'")
    return raw[key]


def _attribute(raw: dict[str, Any], where: str) -> Attribute:
    name = _require(raw, "name", where)
    where = f"{where}: attribute '{name}'"
    if not _NAME.match(name):
        raise SpecError(f"{where}: name must be lower-case ASCII (a-z, 0-9, _)")
    kind = _require(raw, "type", where)
    if kind not in ATTR_TYPES:
        raise SpecError(f"{where}: type '{kind}' is not one of {', '.join(ATTR_TYPES)}")
    values = raw.get("values")
    if "vocabulary" in raw:
        vocab = vocabularies().get(raw["vocabulary"])
        if vocab is None:
            raise SpecError(f"{where}: unknown vocabulary '{raw['vocabulary']}'")
        values = vocab.zh
    if values is not None and kind not in ("text", "text_list"):
        raise SpecError(f"{where}: allowed values need type text or text_list")
    if raw.get("references") not in (None, "units", "zones"):
        raise SpecError(f"{where}: references must be 'units' or 'zones'")
    return Attribute(
        name=name,
        type=kind,
        title_zh=raw.get("title_zh", name),
        title_en=raw.get("title_en", name),
        required=bool(raw.get("required", False)),
        default=raw.get("default"),
        values=dict(values) if values is not None else None,
        vocabulary=raw.get("vocabulary"),
        references=raw.get("references"),
        minimum=raw.get("minimum"),
        maximum=raw.get("maximum"),
        max_length=int(raw.get("max_length", TEXT_MAX)),
        future=bool(raw.get("future", False)),
    )


def spec_from_dict(raw: dict[str, Any], where: str = "spec") -> LayerSpec:
    """Build and check a :class:`LayerSpec` from parsed TOML (or any dict)."""
    name = _require(raw, "name", where)
    where = f"{where} (layer '{name}')"
    if not _NAME.match(name):
        raise SpecError(f"{where}: name must be lower-case ASCII (a-z, 0-9, _)")
    geometry = _require(raw, "geometry", where)
    if geometry not in GEOMETRY_TYPES:
        raise SpecError(f"{where}: geometry '{geometry}' is not one of {', '.join(GEOMETRY_TYPES)}")
    change = raw.get("change", "editable")
    if change not in CHANGE_MODES:
        raise SpecError(f"{where}: change '{change}' is not one of {', '.join(CHANGE_MODES)}")
    attributes = tuple(_attribute(a, where) for a in raw.get("attributes", []))
    reserved = {c[0] for c in COMMON_COLUMNS} | {"geom"}
    clash = [a.name for a in attributes if a.name in reserved]
    if clash:
        raise SpecError(f"{where}: attribute names {clash} are reserved")
    parent = raw.get("parent")
    return LayerSpec(
        name=name,
        title_zh=_require(raw, "title_zh", where),
        title_en=raw.get("title_en", name),
        geometry=geometry,
        attributes=attributes,
        change=change,
        order=int(raw.get("order", 100)),
        srid=int(raw.get("srid", STORAGE_SRID)),
        no_overlap=bool(raw.get("no_overlap", False)),
        parent=Parent(layer=parent["layer"], attribute=parent["attribute"]) if parent else None,
        facility=bool(raw.get("facility", False)),
        description_zh=raw.get("description_zh", ""),
        style=dict(raw.get("style", {})),
    )


def load_spec(path: Path) -> LayerSpec:
    """Read one ``*.toml`` spec file."""
    with path.open("rb") as fh:
        return spec_from_dict(tomllib.load(fh), where=path.name)


@cache
def load_catalogue() -> Catalogue:
    """The catalogue shipped in ``layers/specs/``."""
    specs_dir = resources.files("layers").joinpath("specs")
    specs = []
    for entry in sorted(specs_dir.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            with entry.open("rb") as fh:
                specs.append(spec_from_dict(tomllib.load(fh), where=entry.name))
    return Catalogue(specs)
