"""Conditions: what parses, what a config author is told when it doesn't, and how they judge."""

from __future__ import annotations

import pytest

from status.checks.conditions import (
    MISSING,
    NO_BODY,
    Condition,
    ResponseFacts,
    Subject,
    describe,
    evaluate,
    first_failure,
    needs_json,
    parse_condition,
)

EXAMPLES = 'e.g. "status == 200", "body.status == \'UP\'" or "len(body.errors) == 0"'


@pytest.mark.parametrize(
    ("text", "subject", "op", "expected"),
    [
        ("status == 200", Subject("status"), "==", 200),
        ("response_time < 2000", Subject("response_time"), "<", 2000),
        ("body.status == 'UP'", Subject("body", ("status",)), "==", "UP"),
        ("body.data.available == true", Subject("body", ("data", "available")), "==", True),
        ("body.stock > 0", Subject("body", ("stock",)), ">", 0),
        ("len(body.errors) == 0", Subject("body", ("errors",), length=True), "==", 0),
        ('body.items.0.name == "Medan"', Subject("body", ("items", "0", "name")), "==", "Medan"),
        (
            "header.Content-Type != 'text/html'",
            Subject("header", ("content-type",)),
            "!=",
            "text/html",
        ),
        ("len(header.etag) >= 3", Subject("header", ("etag",), length=True), ">=", 3),
        ("len(body) > 0", Subject("body", (), length=True), ">", 0),
        ("body == null", Subject("body"), "==", None),
        ("body.maintenance == false", Subject("body", ("maintenance",)), "==", False),
        ("body.ratio <= 0.75", Subject("body", ("ratio",)), "<=", 0.75),
        ("body.delta >= -5", Subject("body", ("delta",)), ">=", -5),
        ("body.big < 1e3", Subject("body", ("big",)), "<", 1000.0),
        ("status>=200", Subject("status"), ">=", 200),
        ("  status  !=  500  ", Subject("status"), "!=", 500),
        ("body.note == 'a == b < c'", Subject("body", ("note",)), "==", "a == b < c"),
        ("body.name == 'Jum\\'at'", Subject("body", ("name",)), "==", "Jum'at"),
        ('body.name == "say \\"hi\\""', Subject("body", ("name",)), "==", 'say "hi"'),
        ("body.name == ''", Subject("body", ("name",)), "==", ""),
        ("body.kcu-medan.open == true", Subject("body", ("kcu-medan", "open")), "==", True),
        ("len( body.errors ) == 0", Subject("body", ("errors",), length=True), "==", 0),
    ],
)
def test_conditions_parse(text, subject, op, expected):
    condition = parse_condition(text)
    assert condition == Condition(text.strip(), subject, op, expected)
    assert type(condition.expected) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"expected a condition, {EXAMPLES}; got an empty string"),
        ("status = 200", f'use "==" to compare, not "=", {EXAMPLES}; got "status = 200"'),
        (
            "status 200",
            "expected <value> <op> <literal> with op one of == != < <= > >=, "
            f'{EXAMPLES}; got "status 200"',
        ),
        (
            "== 200",
            "expected <value> <op> <literal> with op one of == != < <= > >=, "
            f'{EXAMPLES}; got "== 200"',
        ),
        (
            "stat == 200",
            'unknown value "stat"; expected status, response_time, body, body.<path>, '
            f"header.<name> or len(...), {EXAMPLES}",
        ),
        ("status == 'UP'", 'status is a number; compare it with a number, e.g. "status == 200"'),
        (
            "response_time < '2s'",
            'response_time is a number; compare it with a number, e.g. "response_time < 2000"',
        ),
        (
            "len(body.errors) == 'none'",
            'len(body.errors) is a number; compare it with a number, e.g. "len(body.errors) == 0"',
        ),
        (
            "body.status == UP",
            "cannot read UP as a value; quote strings ('UP' or \"UP\") or use a number, "
            f"true, false or null, {EXAMPLES}",
        ),
        (
            "body.status == 'UP",
            "cannot read 'UP as a value; quote strings ('UP' or \"UP\") or use a number, "
            f"true, false or null, {EXAMPLES}",
        ),
        ("body.stock >", f"nothing to compare with after the operator, {EXAMPLES}"),
        (
            "body..stock > 0",
            'bad path "body..stock": parts are letters, digits, "_" or "-" joined by ".", '
            'e.g. "body.data.available" or "body.items.0.name"',
        ),
        (
            "body.items[0] == 1",
            'bad path "body.items[0]": parts are letters, digits, "_" or "-" joined by ".", '
            'e.g. "body.data.available" or "body.items.0.name"',
        ),
        ("header. == 'x'", 'bad header name in "header.", e.g. "header.content-type"'),
        ("header.x-up == true", "headers are text; compare header.x-up with a string or a number"),
        ("body.x < null", "< needs a number or a string, got null"),
        ("body.x >= false", ">= needs a number or a string, got false"),
        ("len(len(body)) == 1", f'len() of len() makes no sense, {EXAMPLES}; got "len(len(body))"'),
    ],
)
def test_bad_conditions_are_explained_with_an_example(text, message):
    with pytest.raises(ValueError, match=r".") as caught:
        parse_condition(text)
    assert str(caught.value) == message


DATA = {"available": True, "stock": 0, "ratio": 0.5, "note": None}
HEALTHY = ResponseFacts(
    status=200,
    response_time_ms=312.5,
    headers={"content-type": "application/json", "x-ratelimit-remaining": "42", "etag": '"v7"'},
    body={
        "status": "UP",
        "data": DATA,
        "items": [{"name": "KCU Medan"}, {"name": "KCU Denpasar"}],
        "errors": ["quota exceeded", "upstream slow"],
        "count": "5",
    },
)


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("status == 200", (True, 200)),
        ("status != 200", (False, 200)),
        ("status >= 500", (False, 200)),
        ("response_time < 2000", (True, 312.5)),
        ("response_time < 300", (False, 312.5)),
        ("body.status == 'UP'", (True, "UP")),
        ('body.status == "DOWN"', (False, "UP")),
        ("body.status != 'DOWN'", (True, "UP")),
        ("body.data.available == true", (True, True)),
        ("body.data.available == 1", (False, True)),  # no coercion: true is not 1
        ("body.data.stock > 0", (False, 0)),
        ("body.data.stock == false", (False, 0)),  # nor is 0 false
        ("body.data.ratio == 0.5", (True, 0.5)),
        ("body.data.stock == 0.0", (True, 0)),  # numbers are numbers, int or float
        ("body.data.note == null", (True, None)),
        ("body.data.note != null", (False, None)),
        ("body.items.1.name == 'KCU Denpasar'", (True, "KCU Denpasar")),
        ("body.items.2.name == 'KCU Denpasar'", (False, MISSING)),  # past the end
        ("body.items.first == 1", (False, MISSING)),  # a list has no keys
        ("body.status.code == 1", (False, MISSING)),  # a string has no fields
        ("len(body.errors) == 0", (False, 2)),
        ("len(body.items) == 2", (True, 2)),
        ("len(body.status) == 2", (True, 2)),
        ("len(body.data) > 3", (True, 4)),
        ("len(body.data.stock) == 0", (False, 0)),  # a number has no length: fails, shows it
        ("len(body.nothing) == 0", (False, MISSING)),
        ("body.count > 3", (False, "5")),  # a string is not a number
        ("body.count == 5", (False, "5")),
        ("body.count != 5", (True, "5")),  # different types are indeed unequal
        ("body.status < 5", (False, "UP")),
        ("body.status > 'A'", (True, "UP")),  # strings order as text
        ("body.missing == null", (False, MISSING)),  # missing fails every comparison...
        ("body.missing != 'x'", (False, MISSING)),  # ...including !=
        ("body.data == 'x'", (False, DATA)),
        ("header.content-type == 'application/json'", (True, "application/json")),
        ("header.Content-Type == 'application/json'", (True, "application/json")),
        ("header.x-ratelimit-remaining > 10", (True, 42)),  # numeric header vs number
        ("header.x-ratelimit-remaining == '42'", (True, "42")),  # as text vs text
        ("header.content-type > 10", (False, "application/json")),
        ("len(header.x-ratelimit-remaining) == 2", (True, 2)),
        ("header.retry-after == '5'", (False, MISSING)),
    ],
)
def test_conditions_judge_a_response(text, result):
    assert evaluate(parse_condition(text), HEALTHY) == result


@pytest.mark.parametrize(
    ("body", "text", "result"),
    [
        (NO_BODY, "body.status == 'UP'", (False, NO_BODY)),
        (NO_BODY, "body == null", (False, NO_BODY)),
        (NO_BODY, "len(body) == 0", (False, NO_BODY)),
        (NO_BODY, "status == 200", (True, 200)),
        (None, "body == null", (True, None)),
        ("pong", "body == 'pong'", (True, "pong")),
        ([1, 2, 3], "body.2 == 3", (True, 3)),
        ([1, 2, 3], "len(body) == 3", (True, 3)),
        ({"0": "zero"}, "body.0 == 'zero'", (True, "zero")),  # digits are keys in an object
    ],
)
def test_conditions_judge_unusual_bodies(body, text, result):
    facts = ResponseFacts(200, 1.0, {}, body)
    assert evaluate(parse_condition(text), facts) == result


def test_first_failure_is_the_first_condition_in_config_order():
    conditions = [
        parse_condition(text)
        for text in ("status == 200", "body.data.stock > 0", "len(body.errors) == 0")
    ]
    assert first_failure(conditions, HEALTHY) == (conditions[1], 0)
    assert first_failure(conditions[:1], HEALTHY) is None
    assert first_failure([], HEALTHY) is None


@pytest.mark.parametrize(
    ("texts", "needed"),
    [
        (("status == 200", "response_time < 2000"), False),
        (("status == 200", "body.status == 'UP'"), True),
        (("len(body) > 0",), True),
        (("header.content-type == 'application/json'",), False),
        ((), False),
    ],
)
def test_only_body_conditions_need_json(texts, needed):
    assert needs_json(parse_condition(t) for t in texts) is needed


@pytest.mark.parametrize(
    ("observed", "text"),
    [
        (503, "503"),
        (312.5, "312.5"),
        ("DOWN", '"DOWN"'),
        ('Layanan <b>gangguan</b> & "antre"', '"Layanan <b>gangguan</b> & \\"antre\\""'),
        ("Jum'at — ditutup", '"Jum\'at — ditutup"'),
        (True, "true"),
        (None, "null"),
        ([1, "a"], '[1, "a"]'),
        ({"errors": []}, '{"errors": []}'),
        (MISSING, "(missing)"),
        (NO_BODY, "(no JSON body)"),
        ("x" * 198, '"' + "x" * 198 + '"'),
        ("x" * 199, '"' + "x" * 198 + "…"),
        (list(range(100)), "[" + ", ".join(str(i) for i in range(100))[:198] + "…"),
    ],
)
def test_observed_values_are_described_in_at_most_200_characters(observed, text):
    assert describe(observed) == text
    assert len(describe(observed)) <= 200
