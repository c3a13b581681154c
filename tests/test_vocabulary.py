"""One vocabulary: every coded value people see has its labels in layers/vocabulary.toml, and only there."""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path

import pytest

from geo.access import scope
from geo.cases import workflow
from geo.programme import remediation
from layers.catalogue import (
    CLOSED_CASE_STATES,
    OPEN_CASE_STATES,
    SpecError,
    Vocabulary,
    load_catalogue,
    vocabularies,
    vocabulary,
)

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "layers" / "migrations"

# Columns with a CHECK (col IN (...)) in the migrations, and the vocabulary labelling their values.
CHECKED: dict[tuple[str, str], str] = {
    ("users", "role"): "roles",
    ("case_notices", "kind"): "notice_kinds",
    ("case_notices", "webhook_state"): "webhook_states",
    ("remediation_tasks", "state"): "remediation_states",
    ("inspections", "condition"): "conditions",
    ("remediation_photos", "stage"): "photo_stages",
    ("survey_rounds", "kind"): "round_kinds",
    ("survey_answer_events", "action"): "survey_corrections",
    ("redo_items", "state"): "redo_states",
    ("redo_evidence", "kind"): "redo_evidence_kinds",
    ("publicity_records", "kind"): "publicity_kinds",
    ("households", "fee_category"): "fee_categories",
    ("fee_standards", "basis"): "fee_bases",
}
# CHECKed columns that are bookkeeping, never shown to people as words.
INTERNAL: set[tuple[str, str]] = {
    ("import_batches", "mode"),
    ("feature_history", "operation"),
    ("login_failures", "kind"),
    ("fee_payments", "source"),
    ("patrol_rounds", "source"),  # api | import, as inspections.source
    ("patrol_rounds", "track_coord_sys"),  # the coordinate system the client sent its track in
}
# Coded columns without a CHECK whose values the code writes: (table, column) -> vocabulary.
UNCHECKED: dict[tuple[str, str], str] = {
    ("cases", "state"): "case_states",
    ("remediation_tasks", "item"): "remediation_items",
    ("zone_phase_deadlines", "phase"): "phases",
}

_CHECK_IN = re.compile(r"\b(\w+)\b[^,]*?CHECK\s*\(\s*(\w+)\s+IN\s*\(([^)]*)\)", re.S)
_TABLE = re.compile(r"(?:CREATE|ALTER) TABLE (?:IF NOT EXISTS )?(\w+)")
_SCORE = re.compile(r"\bscore_(\w+)\s+smallint")


def _checks() -> list[tuple[str, str, list[str], str]]:
    """(table, column, allowed values, file) of every CHECK (column IN (...)) in the migrations."""
    out = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        for m in _CHECK_IN.finditer(text):
            tables = _TABLE.findall(text[: m.start(2)])  # the last table named before the column
            values = re.findall(r"'([^']*)'", m.group(3))
            out.append((tables[-1] if tables else "?", m.group(2), values, path.name))
    return out


def test_every_vocabulary_is_well_formed() -> None:
    assert set(vocabularies()) >= {
        "service_kinds",
        "unit_kinds",
        "conditions",
        "case_states",
        "remediation_items",
        "remediation_states",
        "photo_stages",
        "phases",
        "zone_kinds",
        "vegetation",
        "roles",
        "verdicts",
    }
    for name, vocab in vocabularies().items():
        assert isinstance(vocab, Vocabulary) and len(vocab) > 0, name
        for key, term in vocab.items():
            assert re.fullmatch(r"[a-z][a-z0-9_]*", key), (name, key)
            assert re.search(r"[\u4e00-\u9fff]", term.zh), (name, key, term.zh)
            assert term.en and term.en.isascii() and not re.search(r"[\u4e00-\u9fff]", term.en), (name, key)
    months = [t.month for t in vocabulary("phases").values()]
    assert all(m is not None and 1 <= m <= 12 for m in months) and months == sorted(months)


def test_vocabulary_api_gives_ordered_entries_labels_and_flags() -> None:
    states = vocabulary("case_states")
    assert list(states)[:2] == ["reported", "registered"]
    assert states["closed"].zh == "已结案" and states["closed"].en == "closed" and states["closed"].closed
    assert not states["reported"].closed
    assert states.labels("en")["in_progress"] == "in progress"
    assert states.label("nope") == "nope"
    assert states.key_of("已结案") == "closed" and states.key_of("closed") == "closed" and states.key_of("x") is None
    # The workflow's open and closed states are the vocabulary's, in its order.
    assert tuple(states) == OPEN_CASE_STATES + CLOSED_CASE_STATES
    assert set(CLOSED_CASE_STATES) == {"closed", "rejected", "duplicate"}
    with pytest.raises(KeyError, match="no vocabulary 'nope'"):
        vocabulary("nope")


def test_a_malformed_vocabulary_is_refused() -> None:
    from layers.catalogue import _term

    with pytest.raises(SpecError, match="missing 'en'"):
        _term({"key": "a", "zh": "甲"}, "x")
    with pytest.raises(SpecError, match="unknown fields"):
        _term({"key": "a", "zh": "甲", "en": "a", "colour": "red"}, "x")
    with pytest.raises(SpecError, match="Chinese label twice"):
        Vocabulary("v", [_term({"key": k, "zh": "甲", "en": k}, "x") for k in ("a", "b")])


def test_every_checked_value_in_the_migrations_has_a_label() -> None:
    checks = _checks()
    assert {(t, c) for t, c, _, _ in checks} >= set(CHECKED)  # the parser finds them
    for table, column, values, file in checks:
        if (table, column) in INTERNAL:
            continue
        assert (table, column) in CHECKED, (
            f"{file}: {table}.{column} has CHECK values {values}: give them labels in layers/vocabulary.toml "
            "and name the vocabulary in tests/test_vocabulary.py CHECKED (or INTERNAL if nobody reads them)"
        )
        missing = set(values) - set(vocabulary(CHECKED[(table, column)]))
        assert not missing, f"{file}: {table}.{column} values {missing} have no label"
    # The CHECK in force (a later migration may replace a column's CHECK) and the vocabulary list the
    # same values (no label for a value that cannot be stored).
    latest = {(t, c): values for t, c, values, _ in checks if (t, c) not in INTERNAL}
    for (table, column), values in latest.items():
        assert set(values) == set(vocabulary(CHECKED[(table, column)])) - {"anonymous"}, (table, column)


def test_every_survey_score_column_is_a_service_kind() -> None:
    scores = {m for p in MIGRATIONS.glob("*.sql") for m in _SCORE.findall(p.read_text(encoding="utf-8"))}
    assert scores == set(vocabulary("service_kinds"))


def test_every_state_the_code_moves_to_has_a_label() -> None:
    for move in workflow.MOVES.values():
        assert set(move.sources) | ({move.target} - {None}) <= set(vocabulary("case_states"))
    for move in remediation.MOVES.values():
        assert set(move.sources) | {move.target} <= set(vocabulary("remediation_states"))
    assert set(typing.get_args(scope.Role)) == set(vocabulary("roles"))
    assert {"reported", "planned"} <= set(vocabulary("case_states")) | set(vocabulary("remediation_states"))
    for (_table, _column), name in UNCHECKED.items():
        assert len(vocabulary(name)) > 0


def test_every_spec_value_comes_from_a_vocabulary() -> None:
    """The shipped specs name a vocabulary instead of listing their own labels."""
    for path in sorted((ROOT / "layers" / "specs").glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        for attr in raw.get("attributes", []):
            assert "values" not in attr, f"{path.name}: '{attr['name']}' lists values; use vocabulary = '…'"
    for spec in load_catalogue().values():
        for attr in spec.attributes:
            if attr.values is not None:
                assert attr.vocabulary is not None
                assert dict(attr.values) == vocabulary(attr.vocabulary).zh, (spec.name, attr.name)
                assert attr.label(next(iter(attr.values)), "en") == next(iter(vocabulary(attr.vocabulary).en.values()))


def _labels() -> dict[str, str]:
    """Every label people read for a coded value: the vocabularies' and the case categories'."""
    out = {t.zh: f"{name}.{k}" for name, v in vocabularies().items() for k, t in v.items()}
    raw = tomllib.loads((ROOT / "layers" / "categories.toml").read_text(encoding="utf-8"))
    out |= {c["name"]: f"categories.{k}" for k, c in raw["categories"].items()}
    out |= {t.en: f"{name}.{k}" for name, v in vocabularies().items() for k, t in v.items() if " " in t.en}
    return out


def _sources() -> list[Path]:
    files = []
    for top in ("api", "geo", "maps", "bench"):
        for path in (ROOT / top).rglob("*"):
            if {"node_modules", "vendor", "__pycache__", "results"} & set(path.parts):
                continue
            if path.suffix in (".py", ".js", ".html", ".sql", ".css", ".toml"):
                files.append(path)
    return files


def test_no_copy_of_the_labels_outside_layers() -> None:
    """A label written as a string literal (or an element's whole text) outside layers/ is a second copy."""
    labels = _labels()
    pattern = re.compile(
        "[\"'`>](" + "|".join(re.escape(k) for k in sorted(labels, key=len, reverse=True)) + ")[\"'`<]"
    )
    found = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        for m in pattern.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.append(f"{path.relative_to(ROOT)}:{line}: {m.group(1)} ({labels[m.group(1)]})")
    assert not found, "labels copied outside layers/vocabulary.toml:\n" + "\n".join(found)


def test_the_known_copies_are_gone() -> None:
    """The modules that used to keep their own tables now hold the vocabulary's."""
    from geo.programme import acceptance, inspections, surveys
    from maps import styles

    assert vocabulary("case_states").zh == workflow.STATE_NAMES
    assert vocabulary("roles").zh == scope.ROLES
    assert vocabulary("remediation_items").zh == remediation.ITEMS
    assert vocabulary("remediation_states").zh == remediation.STATES
    assert {k: (t.zh, t.month) for k, t in vocabulary("phases").items()} == remediation.PHASES
    assert vocabulary("conditions").zh == inspections.CONDITIONS
    assert vocabulary("service_kinds").zh == surveys.SERVICE_KINDS
    assert acceptance.VERDICTS == {"pass": "通过", "redo": "补课", None: "无调查答卷，不作结论"}
    assert not any(hasattr(styles, n) for n in ("STATE_EN", "CONDITION_EN", "PHASE_EN"))


def test_every_case_category_has_a_chinese_and_an_english_label():
    from geo.cases.categories import categories

    cats = categories()
    assert len(cats) >= 17
    for c in cats.values():
        assert c.name and c.name_en, c.code
        assert c.name != c.name_en
    assert len({c.name_en for c in cats.values()}) == len(cats)  # no two categories read alike
