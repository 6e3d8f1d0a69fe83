"""Pure: parse and evaluate "status == 200", "response_time < 2000", "body.status == 'UP'".

Grammar: `<subject> <op> <literal>`.

- subject: `status`, `response_time` (milliseconds), `body`, `body.<dotted path>` (a part that
  is a whole number indexes a list: `body.items.0.name`), `header.<name>` (case-insensitive),
  or `len(<subject>)` (length of a string, list or object).
- op: `==`, `!=`, `<`, `<=`, `>`, `>=`.
- literal: `200`, `-1`, `0.5`, `'UP'` or `"UP"` (a backslash escapes the quote), `true`,
  `false`, `null`.

Evaluation is strict and never raises:

- A value that is absent (a missing path, a missing header, no JSON body) fails every
  comparison, `!= x` and `== null` included: a check that names a field expects it to exist.
- Types are not coerced: `true` is not `1`, `"5"` is not `5`. `==` between different types is
  false and `!=` is true; ordering (`<` …) between different types fails.
- Header values are text; compared with a number literal, a header that reads as a number is
  compared as that number (`header.x-ratelimit-remaining > 10`).
"""

from __future__ import annotations

import enum
import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Scalar = int | float | str | bool | None


class Absent(enum.Enum):
    """Markers for values a condition could not read."""

    MISSING = "missing"  # the path or header is not there
    NO_BODY = "no body"  # the response body is not JSON (or was not read)


MISSING = Absent.MISSING
NO_BODY = Absent.NO_BODY

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
OBSERVED_LIMIT = 200
EXAMPLES = 'e.g. "status == 200", "body.status == \'UP\'" or "len(body.errors) == 0"'

_SHAPE = re.compile(r"^\s*(?P<lhs>[^=!<>'\"]*?)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<rhs>.*?)\s*$")
_LEN = re.compile(r"^len\(\s*(?P<inner>.*?)\s*\)$")
_PATH_PART = re.compile(r"^[A-Za-z0-9_\-]+$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9_\-.]+$")
_NUMBER = re.compile(r"^-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?$")
_STRING = re.compile(r"""^(?P<q>['"])(?P<text>(?:\\.|(?!(?P=q))[^\\])*)(?P=q)$""")
_NUMBER_EXAMPLES = {"status": 200, "response_time": 2000}
_WORDS: dict[str, Scalar] = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, slots=True)
class Subject:
    """What a condition reads: `source` is status | response_time | body | header."""

    source: str
    path: tuple[str, ...] = ()  # body path parts, or the lowercased header name
    length: bool = False  # wrapped in len(...)


@dataclass(frozen=True, slots=True)
class Condition:
    text: str  # as written (trimmed); shown in reasons
    subject: Subject
    op: str
    expected: Scalar

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class ResponseFacts:
    """What a condition can see of one response; header names are lowercased."""

    status: int
    response_time_ms: float
    headers: Mapping[str, str]
    body: object = NO_BODY  # parsed JSON, or NO_BODY


def parse_condition(text: str) -> Condition:
    """Parse one condition; ValueError says what is wrong and gives an example."""
    match = _SHAPE.match(text)
    if not match or not match["lhs"]:
        raise ValueError(_shape_problem(text))
    subject = _parse_subject(match["lhs"])
    expected = _parse_literal(match["rhs"])
    op = match["op"]
    _check_types(subject, op, expected, match["lhs"])
    return Condition(text.strip(), subject, op, expected)


def _shape_problem(text: str) -> str:
    if not text.strip():
        return f"expected a condition, {EXAMPLES}; got an empty string"
    if re.search(r"(?<![=!<>])=(?![=<>])", text):
        return f'use "==" to compare, not "=", {EXAMPLES}; got "{text}"'
    return (
        f'expected <value> <op> <literal> with op one of == != < <= > >=, {EXAMPLES}; got "{text}"'
    )


def _parse_subject(text: str) -> Subject:
    length = _LEN.match(text)
    if length:
        inner = _parse_subject(length["inner"])
        if inner.length:
            raise ValueError(f'len() of len() makes no sense, {EXAMPLES}; got "{text}"')
        return Subject(inner.source, inner.path, length=True)
    if text in ("status", "response_time", "body"):
        return Subject(text)
    if text.startswith("body."):
        parts = tuple(text[len("body.") :].split("."))
        for part in parts:
            if not _PATH_PART.match(part):
                raise ValueError(
                    f'bad path "{text}": parts are letters, digits, "_" or "-" joined by ".", '
                    f'e.g. "body.data.available" or "body.items.0.name"'
                )
        return Subject("body", parts)
    if text.startswith("header."):
        name = text[len("header.") :]
        if not _HEADER_NAME.match(name):
            raise ValueError(f'bad header name in "{text}", e.g. "header.content-type"')
        return Subject("header", (name.lower(),))
    raise ValueError(
        f'unknown value "{text}"; expected status, response_time, body, body.<path>, '
        f"header.<name> or len(...), {EXAMPLES}"
    )


def _parse_literal(text: str) -> Scalar:
    if text in _WORDS:
        return _WORDS[text]
    if _NUMBER.match(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    string = _STRING.match(text)
    if string:
        return re.sub(r"\\(.)", r"\1", string["text"])
    if not text:
        raise ValueError(f"nothing to compare with after the operator, {EXAMPLES}")
    raise ValueError(
        f"cannot read {text} as a value; quote strings ('UP' or \"UP\") or use a number, "
        f"true, false or null, {EXAMPLES}"
    )


def _check_types(subject: Subject, op: str, expected: Scalar, lhs: str) -> None:
    number = isinstance(expected, int | float) and not isinstance(expected, bool)
    if (subject.length or subject.source in ("status", "response_time")) and not number:
        example = 0 if subject.length else _NUMBER_EXAMPLES[subject.source]
        raise ValueError(
            f'{lhs} is a number; compare it with a number, e.g. "{lhs} {op} {example}"'
        )
    if subject.source == "header" and not (number or isinstance(expected, str)):
        raise ValueError(f"headers are text; compare {lhs} with a string or a number")
    if op not in ("==", "!=") and not (number or isinstance(expected, str)):
        raise ValueError(f"{op} needs a number or a string, got {json.dumps(expected)}")


def is_body_reader(condition: Condition) -> bool:
    return condition.subject.source == "body"


def needs_json(conditions: Iterable[Condition]) -> bool:
    """Whether any condition reads the body, so the response must be parsed as JSON."""
    return any(is_body_reader(c) for c in conditions)


def evaluate(condition: Condition, facts: ResponseFacts) -> tuple[bool, object]:
    """(passed, observed value); never raises."""
    observed = _read(condition.subject, facts, condition.expected)
    if isinstance(observed, Absent):
        return False, observed
    if condition.subject.length:
        if not isinstance(observed, str | list | dict):
            return False, observed  # a number has no length; show what was there
        observed = len(observed)
    return _compare(observed, condition.op, condition.expected), observed


def first_failure(
    conditions: Iterable[Condition], facts: ResponseFacts
) -> tuple[Condition, object] | None:
    """The first condition that fails, with what was observed; None when all pass."""
    for condition in conditions:
        passed, observed = evaluate(condition, facts)
        if not passed:
            return condition, observed
    return None


def _read(subject: Subject, facts: ResponseFacts, expected: Scalar) -> object:
    value: object
    if subject.source == "status":
        value = facts.status
    elif subject.source == "response_time":
        value = facts.response_time_ms
    elif subject.source == "header":
        value = facts.headers.get(subject.path[0], MISSING)
        numeric = not subject.length and not isinstance(expected, str)
        if numeric and isinstance(value, str) and _NUMBER.match(value):
            value = float(value) if any(c in value for c in ".eE") else int(value)
    else:
        value = _walk(facts.body, subject.path)
    return value


def _walk(value: object, path: tuple[str, ...]) -> object:
    for part in path:
        if isinstance(value, dict):
            value = value.get(part, MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, Absent):
            return value
        else:
            return MISSING
    return value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _compare(observed: object, op: str, expected: Scalar) -> bool:
    if _kind(observed) != _kind(expected):
        return op == "!="  # different types are never equal and have no order
    if op not in ("==", "!=") and _kind(observed) not in ("number", "str"):
        return False
    return bool(OPERATORS[op](observed, expected))


def describe(observed: object) -> str:
    """JSON-ish text for Observation.observed, at most 200 characters."""
    if observed is MISSING:
        return "(missing)"
    if observed is NO_BODY:
        return "(no JSON body)"
    try:
        text = json.dumps(observed, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(observed)
    if len(text) > OBSERVED_LIMIT:
        return text[: OBSERVED_LIMIT - 1] + "…"
    return text
