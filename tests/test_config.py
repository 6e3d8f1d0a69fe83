"""Config: what an operator sees when the file is right, and exactly where it is wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from status.config import ConfigError, database_url, load_config, load_config_text
from status.durations import format_duration, parse_duration

VALID = """
[site]
name = "Status e-Meterai"

[[component]]
id = "emeterai-purchase"
name = "Pembelian e-Meterai"
group = "Layanan e-Meterai"

[[check]]
id = "purchase-api"
component = "emeterai-purchase"
url = "https://upstream.example/api/health"
interval = "30s"

[[branch]]
id = "kcu-medan"
name = "KCU Medan"
region = "Sumatera Utara"
hours = "Mon-Fri 07:30-16:00; Sat 08:00-12:00"
stall_after = "20m"
"""


def test_a_valid_file_gives_typed_values() -> None:
    config = load_config_text(VALID, "siaran.toml")
    assert config.site.language == "id"
    assert config.checks[0].interval == timedelta(seconds=30)
    assert config.checks[0].fail_after == 3
    assert config.branches[0].stall_after == timedelta(minutes=20)
    assert config.component_ids() == {"emeterai-purchase", "kcu-medan"}


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            VALID.replace('interval = "30s"', 'interval = "30"'),
            'siaran.toml: check[0].interval: expected a duration like "30s", "20m" or "1h30m", got "30"',
        ),
        (
            VALID.replace('component = "emeterai-purchase"', 'component = "emeterai-buy"'),
            'siaran.toml: check[0].component: unknown component "emeterai-buy"; define it in '
            "[[component]] or [[branch]]",
        ),
        (
            VALID.replace('region = "Sumatera Utara"', 'region = "Sumatera Utara"\ncolour = "red"'),
            "siaran.toml: branch[0].colour: unknown key; allowed keys are id, name, region, timezone, "
            "hours, queue_url, stall_after, queue_fields, queue_interval, queue_timeout, depends_on, "
            "description",
        ),
        (
            VALID.replace('name = "KCU Medan"', "name = 7"),
            "siaran.toml: branch[0].name: expected a string, got 7",
        ),
        (
            VALID.replace('hours = "Mon-Fri 07:30-16:00; Sat 08:00-12:00"', 'hours = "weekdays"'),
            'siaran.toml: branch[0].hours: expected hours like "Mon-Fri 07:30-16:00; Sat 08:00-12:00", '
            'got "weekdays"',
        ),
        (
            VALID.replace(
                'hours = "Mon-Fri 07:30-16:00; Sat 08:00-12:00"', 'timezone = "Asia/Medan"'
            ),
            'siaran.toml: branch[0].timezone: unknown time zone "Asia/Medan"; e.g. "Asia/Jakarta" '
            '(WIB), "Asia/Makassar" (WITA), "Asia/Jayapura" (WIT)',
        ),
        (
            VALID.replace('id = "kcu-medan"', 'id = "emeterai-purchase"'),
            'siaran.toml: branch[0].id: "emeterai-purchase" is already used by component[0]',
        ),
        (
            VALID.replace('id = "kcu-medan"', 'id = "KCU Medan"'),
            'siaran.toml: branch[0].id: expected a lowercase id like "kcu-medan" (a-z, 0-9, -), '
            'got "KCU Medan"',
        ),
        (
            VALID.replace('name = "Status e-Meterai"', 'name = "x"\nlanguage = "jv"'),
            'siaran.toml: site.language: expected "id" or "en", got "jv"',
        ),
        (
            VALID + '\n[storage]\nurl = "mysql://db"\n',
            'siaran.toml: storage.url: expected "sqlite:///file.db" or "postgresql://user@host/db", '
            'got "mysql://db"',
        ),
        (
            VALID + "\n[telegrm]\n",
            "siaran.toml: telegrm: unknown top-level key; allowed: branch, check, component, "
            "prober, site, storage",
        ),
        (
            VALID.replace('stall_after = "20m"', 'stall_after = "0s"'),
            "siaran.toml: branch[0].stall_after: must be longer than 0s",
        ),
        (
            VALID.replace('interval = "30s"', 'interval = "30s"\nfail_after = 0'),
            "siaran.toml: check[0].fail_after: must be at least 1, got 0",
        ),
        (
            VALID.replace('url = "https://upstream.example/api/health"', 'url = "upstream/health"'),
            'siaran.toml: check[0].url: expected an http/https URL like "https://host/path", '
            'got "upstream/health"',
        ),
        (
            '[[branch]]\nid = "kcu-medan"\nname = "KCU Medan"\n',
            "siaran.toml: branch[0].region: required key is missing",
        ),
    ],
)
def test_a_mistake_names_the_file_the_key_and_the_problem(broken: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(broken, "siaran.toml")
    assert str(caught.value) == expected


def test_broken_toml_syntax_names_the_file() -> None:
    with pytest.raises(ConfigError, match=r"^siaran\.toml: not valid TOML: .*line 2"):
        load_config_text('[site]\nname = "unterminated\n', "siaran.toml")


def test_a_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read config"):
        load_config(missing)


def test_broadcaster_tables_are_accepted_when_a_broadcaster_owns_them() -> None:
    config = load_config_text(
        VALID + '\n[telegram]\ntoken_env = "X"\n', "siaran.toml", extra_tables=("telegram",)
    )
    assert config.document["telegram"] == {"token_env": "X"}


def test_the_environment_database_url_wins_over_the_file() -> None:
    config = load_config_text(VALID, "siaran.toml")
    assert database_url(config, {}) == "sqlite:///siaran.db"
    assert (
        database_url(config, {"SIARAN_DATABASE_URL": "postgresql://x@h/db"})
        == "postgresql://x@h/db"
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("30s", 30), ("20m", 1200), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5)],
)
def test_durations_accept_seconds_to_days(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "-1s", "1.5s", "1s x"])
def test_durations_without_a_unit_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_durations_print_back_compactly() -> None:
    assert format_duration(timedelta(seconds=5400)) == "1h30m"
    assert format_duration(timedelta(0)) == "0s"


def test_a_condition_the_prober_cannot_read_is_refused_at_start() -> None:
    broken = VALID.replace('interval = "30s"', 'interval = "30s"\nconditions = ["status = 200"]')
    with pytest.raises(ConfigError) as caught:
        load_config_text(broken, "siaran.toml")
    assert str(caught.value).startswith(
        'siaran.toml: check[0].conditions[0]: use "==" to compare, not "="'
    )


def test_a_branch_may_only_depend_on_upstream_components() -> None:
    broken = VALID.replace(
        'stall_after = "20m"', 'stall_after = "20m"\ndepends_on = ["kcu-binjai"]'
    )
    with pytest.raises(ConfigError) as caught:
        load_config_text(broken, "siaran.toml")
    assert str(caught.value) == (
        'siaran.toml: branch[0].depends_on[0]: unknown upstream component "kcu-binjai"; '
        "list [[component]] ids"
    )
