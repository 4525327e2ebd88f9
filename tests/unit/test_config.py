import errno
import json
import os
import pwd
import threading
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from yotposync.config import (
    YOTPO_SECRETS,
    CustomersSettings,
    DeliverySettings,
    HeartlandSettings,
    LedgerSettings,
    LoggingSettings,
    OffersSettings,
    OpsSettings,
    PerformanceSettings,
    RulesSettings,
    ScheduleSettings,
    Settings,
    SyncSettings,
    YotpoSettings,
    load_settings,
    sandbox_settings,
)
from yotposync.errors import ConfigError
from yotposync.sync.amounts import AmountBasis
from yotposync.sync.rules import CustomFieldRule, ExclusionRules

EXAMPLE = Path(__file__).resolve().parents[2] / "yotposync.toml.example"

TOKEN = "hl-token-7f3a9c51"
GUID = "guid-2b8e41d0"
API_KEY = "key-c09d55e3"
SECRETS_ENV = {
    "YOTPOSYNC_HEARTLAND__TOKEN": TOKEN,
    "YOTPOSYNC_YOTPO__GUID": GUID,
    "YOTPOSYNC_YOTPO__API_KEY": API_KEY,
}

MINIMAL = """
[heartland]
base_url = "https://mystore.retail.heartland.us/api"
"""


def write(tmp_path: Path, text: str, name: str = "yotposync.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    return load_settings(path, environ=SECRETS_ENV if env is None else env)


def problems_of(path: Path, env: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path, env)
    return caught.value.problems


# --- loading ---------------------------------------------------------------------------


def test_valid_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[heartland]
base_url = "https://mystore.retail.heartland.us/api/"
page_size = 250

[yotpo]
currency = "CAD"

[ledger]
path = "/srv/yotposync/ledger.sqlite3"

[sync]
go_live = 2025-04-01T09:00:00-05:00
id_prefix = "store-2"
include_tax = true

[rules]
exclude_location_ids = [201, 202]
exclude_ticket_custom_fields = [{key = "web_order_no"}, {key = "channel", equals = "web"}]

[logging]
level = "debug"
format = "json"
""",
    )
    settings = load(path)
    assert settings.heartland.base_url == "https://mystore.retail.heartland.us/api"
    assert settings.heartland.page_size == 250
    assert settings.yotpo.currency == "CAD"
    assert settings.ledger.path == Path("/srv/yotposync/ledger.sqlite3")
    assert settings.sync.go_live == datetime(2025, 4, 1, 14, 0, tzinfo=UTC)
    assert settings.sync.id_prefix == "store-2"
    assert settings.sync.include_tax is True
    assert settings.rules.exclude_location_ids == (201, 202)
    assert settings.rules.exclude_ticket_custom_fields[1].equals == "web"
    assert settings.logging.level == "debug"
    assert settings.logging.format == "json"


def test_absent_keys_take_defaults(tmp_path: Path) -> None:
    settings = load(write(tmp_path, MINIMAL))
    assert settings.heartland.page_size == 100
    assert settings.yotpo.base_url == "https://loyalty.yotpo.com/api/v2"
    assert settings.sync.overlap_seconds == 600
    assert settings.sync.go_live is None
    assert settings.rules.exclude_customer_public_ids == ("CASH",)
    assert settings.delivery.max_tries_per_call == 4
    assert settings.logging.format == "auto"


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    settings = load_settings(environ={**SECRETS_ENV, "YOTPOSYNC_CONFIG": str(path)})
    assert settings.heartland.base_url == "https://mystore.retail.heartland.us/api"


def test_config_path_argument_wins(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    env = {**SECRETS_ENV, "YOTPOSYNC_CONFIG": str(tmp_path / "absent.toml")}
    assert load(path, env).heartland.page_size == 100


def test_no_config_path_given() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=SECRETS_ENV)
    assert caught.value.problems == [
        "no configuration file given: pass --config PATH or set YOTPOSYNC_CONFIG"
    ]


def test_missing_file_one_line(tmp_path: Path) -> None:
    problems = problems_of(tmp_path / "absent.toml")
    assert len(problems) == 1
    assert str(tmp_path / "absent.toml") in problems[0]
    assert "not found" in problems[0]


def test_directory_as_config_file(tmp_path: Path) -> None:
    problems = problems_of(tmp_path)
    assert problems == [
        f"configuration file {tmp_path} is not a regular file: give the path of a TOML file"
    ]


def test_invalid_toml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[heartland]\nbase_url = "https://x.example/api"\npage_size 100\n')
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"configuration file {path} is not valid TOML: ")
    assert "line 3" in problems[0]


def test_non_utf8_config_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[heartland]\nbase_url = "https://caf\xe9.example/api"\n')
    assert problems_of(path) == [f"configuration file {path} is not valid UTF-8 text"]


# --- environment overrides -------------------------------------------------------------


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL + "page_size = 50\n[rules]\nexclude_location_ids = [1]\nminimum_amount_cents = 5\n",
    )
    env = {
        **SECRETS_ENV,
        "YOTPOSYNC_HEARTLAND__PAGE_SIZE": "75",
        "YOTPOSYNC_RULES__EXCLUDE_LOCATION_IDS": "[201, 202]",
        "YOTPOSYNC_SYNC__INCLUDE_SHIPPING": "true",
    }
    settings = load(path, env)
    assert settings.heartland.page_size == 75
    assert settings.rules.exclude_location_ids == (201, 202)
    assert settings.rules.minimum_amount_cents == 5
    assert settings.sync.include_shipping is True


def test_environment_names_case_insensitive(tmp_path: Path) -> None:
    env = {**SECRETS_ENV, "yotposync_sync__overlap_seconds": "30"}
    assert load(write(tmp_path, MINIMAL), env).sync.overlap_seconds == 30


def test_empty_environment_variable_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "page_size = 50\n")
    env = {**SECRETS_ENV, "YOTPOSYNC_HEARTLAND__PAGE_SIZE": ""}
    assert load(path, env).heartland.page_size == 50


def test_given_environ_replaces_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOTPOSYNC_SYNC__OVERLAP_SECONDS", "5")
    assert load(write(tmp_path, MINIMAL)).sync.overlap_seconds == 600


def test_os_environ_read_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("YOTPOSYNC_SYNC__OVERLAP_SECONDS", "5")
    assert load_settings(write(tmp_path, MINIMAL)).sync.overlap_seconds == 5


def test_environment_array_must_be_json(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "page_size = 0\n")
    env = {**SECRETS_ENV, "YOTPOSYNC_RULES__EXCLUDE_STATION_IDS": "1,2"}
    problems = problems_of(path, env)
    assert (
        'YOTPOSYNC_RULES__EXCLUDE_STATION_IDS = "1,2": must be a JSON array, e.g. [1, 2]'
        in problems
    )
    assert "heartland.page_size = 0: must be between 1 and 1000" in problems


def test_environment_section_must_be_json_object(tmp_path: Path) -> None:
    env = {**SECRETS_ENV, "YOTPOSYNC_YOTPO": f'["guid", "{GUID}"]'}
    problems = problems_of(write(tmp_path, MINIMAL), env)
    assert problems == ["YOTPOSYNC_YOTPO must be a JSON object of yotpo keys, not a JSON array"]


def test_environment_section_invalid_json_hidden(tmp_path: Path) -> None:
    env = {**SECRETS_ENV, "YOTPOSYNC_YOTPO": f"guid={GUID}"}
    problems = problems_of(write(tmp_path, MINIMAL), env)
    assert problems == [
        "YOTPOSYNC_YOTPO is not valid JSON (Expecting value: line 1 column 1 (char 0)); it "
        "must be a JSON object of yotpo keys, or set one key with YOTPOSYNC_YOTPO__<KEY>"
    ]
    assert GUID not in problems[0]


def test_environment_value_problem_names_variable(tmp_path: Path) -> None:
    env = {**SECRETS_ENV, "YOTPOSYNC_SYNC__OVERLAP_SECONDS": "-5"}
    problems = problems_of(write(tmp_path, MINIMAL), env)
    assert problems == [
        'sync.overlap_seconds = "-5" (from YOTPOSYNC_SYNC__OVERLAP_SECONDS): '
        "must be between 0 and 86400"
    ]


# --- problems --------------------------------------------------------------------------


def test_several_problems_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[heartland]
page_size = 0

[yotpo]
currency = "usd"

[sync]
id_prefix = "-hl"
""",
    )
    env = {"YOTPOSYNC_YOTPO__GUID": GUID, "YOTPOSYNC_YOTPO__API_KEY": API_KEY}
    problems = problems_of(path, env)
    assert "heartland.page_size = 0: must be between 1 and 1000" in problems
    assert (
        "heartland.base_url is missing: set it to your account's API address, "
        "e.g. https://mystore.retail.heartland.us/api"
    ) in problems
    assert (
        'yotpo.currency = "usd": must be three upper-case letters (an ISO 4217 code such as USD)'
        in problems
    )
    assert (
        "sync.id_prefix = \"-hl\": must be 1 to 20 characters of a-z, 0-9 and '-', "
        "starting with a letter or digit"
    ) in problems
    assert (
        "heartland.token is missing: set the environment variable YOTPOSYNC_HEARTLAND__TOKEN, "
        "or heartland.token_file to the path of a file that contains it"
    ) in problems
    assert len(problems) == 5


def test_error_text_lists_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "page_size = 0\nread_timeout_seconds = 0\n")
    text = str(_config_error(path))
    assert text.startswith("invalid configuration:\n")
    assert "  - heartland.page_size = 0: must be between 1 and 1000" in text
    assert "  - heartland.read_timeout_seconds = 0: must be greater than 0 and at most 600" in text


def _config_error(path: Path, env: Mapping[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(path, env)
    return caught.value


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "[sync]\noverlap_seconds = 90000",
            "sync.overlap_seconds = 90000: must be between 0 and 86400",
        ),
        (
            "[rules]\nminimum_amount_cents = -1",
            "rules.minimum_amount_cents = -1: must be between 0 and 1000000000",
        ),
        (
            "[yotpo]\nrequests_per_second = 0",
            "yotpo.requests_per_second = 0: must be at least 0.01",
        ),
        (
            "[yotpo]\nrequests_per_second = inf",
            "yotpo.requests_per_second = inf: must be a finite number, at least 0.01",
        ),
        (
            "[yotpo]\nread_timeout_seconds = inf",
            "yotpo.read_timeout_seconds = inf: must be a finite number, greater than 0 and at "
            "most 600",
        ),
        (
            "[yotpo]\nconnect_timeout_seconds = 1e308",
            "yotpo.connect_timeout_seconds = 1e+308: must be greater than 0 and at most 600",
        ),
        (
            "[schedule]\ntransactions_seconds = 1e308",
            "schedule.transactions_seconds = 1e+308: must be a whole number, between 1 and 604800",
        ),
        (
            "[schedule]\ntransactions_seconds = 99999999999999999999",
            "schedule.transactions_seconds = 99999999999999999999: must be between 1 and 604800",
        ),
        ("[delivery]\nbatch_size = 0", "delivery.batch_size = 0: must be between 1 and 10000"),
        (
            "[schedule]\ndelivery_seconds = 0",
            "schedule.delivery_seconds = 0: must be between 1 and 604800",
        ),
        ('[sync]\noverlap_seconds = "ten"', 'sync.overlap_seconds = "ten": must be a whole number'),
        ("[sync]\noverlap_seconds = 1.5", "sync.overlap_seconds = 1.5: must be a whole number"),
        (
            '[sync]\ninclude_tax = "maybe"',
            'sync.include_tax = "maybe": must be true or false, written without quotes',
        ),
        (
            "[rules]\nexclude_location_ids = 201",
            "rules.exclude_location_ids = 201: must be an array, e.g. [1, 2]",
        ),
        (
            '[rules]\nexclude_customer_public_ids = "CASH"',
            'rules.exclude_customer_public_ids = "CASH": must be an array of quoted strings, '
            'e.g. ["CASH", "HOUSE"]',
        ),
        (
            '[rules]\nexclude_location_ids = [201, "main"]',
            'rules.exclude_location_ids[1] = "main": must be a whole number',
        ),
        (
            '[rules]\nexclude_public_id_prefixes = [""]',
            'rules.exclude_public_id_prefixes = [""]: must not contain an empty prefix, '
            "which would exclude every ticket",
        ),
        (
            '[rules]\nexclude_ticket_custom_fields = [{equals = "web"}]',
            "rules.exclude_ticket_custom_fields[0].key is missing: "
            'name the custom field, e.g. {key = "web_order_no"}',
        ),
        (
            '[logging]\nlevel = "loud"',
            "logging.level = \"loud\": must be one of 'debug', 'info', 'warning' or 'error'",
        ),
        (
            "[delivery]\nretry_base_seconds = 60\nretry_ceiling_seconds = 30",
            "delivery: retry_ceiling_seconds = 30 must be at least retry_base_seconds = 60",
        ),
    ],
)
def test_invalid_value_problem(tmp_path: Path, line: str, problem: str) -> None:
    assert problems_of(write(tmp_path, MINIMAL + line + "\n")) == [problem]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "read_timeout_seconds = true",
            "heartland.read_timeout_seconds = true: must be a number, not true or false",
        ),
        (
            "page_size = true",
            "heartland.page_size = true: must be a whole number, not true or false",
        ),
        (
            "page_size = false",
            "heartland.page_size = false: must be a whole number, not true or false",
        ),
        (
            "requests_per_second = true",
            "heartland.requests_per_second = true: must be a number, not true or false",
        ),
        (
            "[schedule]\ntransactions_seconds = true",
            "schedule.transactions_seconds = true: must be a whole number, not true or false",
        ),
        (
            "[rules]\nexclude_location_ids = [201, true]",
            "rules.exclude_location_ids = [201, true]: item [1] is true, "
            "but every item must be a whole number",
        ),
    ],
)
def test_boolean_number_problem(tmp_path: Path, line: str, problem: str) -> None:
    assert problems_of(write(tmp_path, MINIMAL + line + "\n")) == [problem]


def number_keys() -> list[tuple[str, str]]:
    """Every section key whose value is an int or a float, as (section, key)."""
    keys = []
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for key, inner in model.model_fields.items():
            if inner.annotation in (int, float):
                keys.append((section, key))
    return keys


def test_every_number_key_rejects_boolean(tmp_path: Path) -> None:
    keys = number_keys()
    assert ("heartland", "page_size") in keys
    by_section: dict[str, list[str]] = {
        "heartland": ['base_url = "https://mystore.retail.heartland.us/api"']
    }
    text = ""
    for section, key in keys:
        by_section.setdefault(section, []).append(f"{key} = true")
    for section, lines in by_section.items():
        text += f"[{section}]\n" + "\n".join(lines) + "\n"

    problems = problems_of(write(tmp_path, text))

    for section, key in keys:
        assert any(p.startswith(f"{section}.{key} = true: must be") for p in problems), key
    assert len(problems) == len(keys)


def test_number_from_environment_text(tmp_path: Path) -> None:
    env = {
        **SECRETS_ENV,
        "YOTPOSYNC_HEARTLAND__PAGE_SIZE": "5",
        "YOTPOSYNC_HEARTLAND__REQUESTS_PER_SECOND": "2.5",
        "YOTPOSYNC_SCHEDULE__TRANSACTIONS_SECONDS": "30",
    }

    settings = load(write(tmp_path, MINIMAL), env)

    assert settings.heartland.page_size == 5
    assert settings.heartland.requests_per_second == 2.5
    assert settings.schedule.transactions_seconds == 30


def test_section_not_a_table(tmp_path: Path) -> None:
    env = {"YOTPOSYNC_HEARTLAND__TOKEN": TOKEN}
    problems = problems_of(write(tmp_path, "yotpo = 5\n" + MINIMAL), env)
    assert problems == ["yotpo: must be a table"]


def test_log_level_any_case(tmp_path: Path) -> None:
    settings = load(write(tmp_path, MINIMAL + '[logging]\nlevel = "WARNING"\n'))
    assert settings.logging.level == "warning"


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load(write(tmp_path, MINIMAL))
    with pytest.raises(ValidationError):
        settings.sync.overlap_seconds = 0


# --- unknown keys ----------------------------------------------------------------------


def test_unknown_key_suggests_close_match(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[rules]\nexclude_locations = [201]\n")
    assert problems_of(path) == [
        "unknown key rules.exclude_locations; did you mean exclude_location_ids?"
    ]


def test_unknown_key_in_wrong_section(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[sync]\ncurrency = "EUR"\n')
    assert problems_of(path) == ["unknown key sync.currency; did you mean yotpo.currency?"]


def test_unknown_key_lists_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[ledger]\nwal = "on"\n')
    assert problems_of(path) == ["unknown key ledger.wal: allowed keys are path"]


def test_unknown_section_suggests_close_match(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[schedules]\ndelivery_seconds = 5\n")
    assert problems_of(path) == ["unknown section schedules; did you mean schedule?"]


def test_top_level_key_suggests_section(tmp_path: Path) -> None:
    path = write(tmp_path, "page_size = 50\n" + MINIMAL)
    assert problems_of(path) == [
        "unknown key page_size; did you mean heartland.page_size? Keys belong in a section"
    ]


def test_settings_option_name_rejected(tmp_path: Path) -> None:
    # BaseSettings reads keyword arguments such as _cli_parse_args as options of its own.
    path = write(tmp_path, "_cli_parse_args = true\n" + MINIMAL)
    assert problems_of(path) == [
        "unknown key _cli_parse_args: every key belongs in a section such as heartland"
    ]


def test_unknown_custom_field_rule_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL + '[rules]\nexclude_customer_custom_fields = [{key = "staff", equal = "yes"}]\n',
    )
    assert problems_of(path) == [
        "unknown key rules.exclude_customer_custom_fields[0].equal; did you mean equals?"
    ]


def test_unknown_environment_key_names_variable(tmp_path: Path) -> None:
    env = {**SECRETS_ENV, "YOTPOSYNC_RULES__EXCLUDE_LOCATIONS": "[201]"}
    assert problems_of(write(tmp_path, MINIMAL), env) == [
        "unknown key rules.exclude_locations (from YOTPOSYNC_RULES__EXCLUDE_LOCATIONS); "
        "did you mean exclude_location_ids?"
    ]


# --- secrets ---------------------------------------------------------------------------


def test_secrets_from_environment(tmp_path: Path) -> None:
    settings = load(write(tmp_path, MINIMAL))
    assert settings.heartland_token() == TOKEN
    assert settings.yotpo_guid() == GUID
    assert settings.yotpo_api_key() == API_KEY


def test_secret_from_file_strips_newline(tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    assert load(path, env).heartland_token() == TOKEN


def test_secret_file_read_on_each_call(tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text("first-token\n", encoding="utf-8")
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    settings = load(path, env)
    token_file.write_text("rotated-token\n", encoding="utf-8")
    assert settings.heartland_token() == "rotated-token"


def test_secret_files_relative_to_credentials_directory(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "heartland-token").write_text(TOKEN + "\n", encoding="utf-8")
    (credentials / "yotpo-guid").write_text(GUID, encoding="utf-8")
    (credentials / "yotpo-api-key").write_text(API_KEY + "\r\n", encoding="utf-8")
    path = write(
        tmp_path,
        MINIMAL
        + 'token_file = "heartland-token"\n'
        + '[yotpo]\nguid_file = "yotpo-guid"\napi_key_file = "yotpo-api-key"\n',
    )
    settings = load(path, {"CREDENTIALS_DIRECTORY": str(credentials)})
    assert settings.heartland.token_file == credentials / "heartland-token"
    assert settings.heartland_token() == TOKEN
    assert settings.yotpo_guid() == GUID
    assert settings.yotpo_api_key() == API_KEY


def test_relative_secret_file_without_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "heartland-token").write_text(TOKEN, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, MINIMAL + 'token_file = "heartland-token"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    settings = load(path, env)
    assert settings.heartland.token_file == tmp_path / "heartland-token"
    assert settings.heartland_token() == TOKEN


def test_secret_file_from_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text(TOKEN, encoding="utf-8")
    env = {
        "YOTPOSYNC_HEARTLAND__TOKEN_FILE": str(token_file),
        "YOTPOSYNC_YOTPO__GUID": GUID,
        "YOTPOSYNC_YOTPO__API_KEY": API_KEY,
    }
    assert load(write(tmp_path, MINIMAL), env).heartland_token() == TOKEN


def test_missing_secret_file_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "heartland-token"
    path = write(tmp_path, MINIMAL + f'token_file = "{missing}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    assert problems_of(path, env) == [f'heartland.token_file = "{missing}": file not found']


def test_missing_relative_secret_file_names_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run by hand outside the service, a relative path is looked for in the current folder.
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, MINIMAL + 'token_file = "heartland-token"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}

    assert problems_of(path, env) == [
        f'heartland.token_file = "{tmp_path / "heartland-token"}": file not found. A relative '
        "path is read from $CREDENTIALS_DIRECTORY, which is not set, so it was looked for in "
        "the current folder: set CREDENTIALS_DIRECTORY to the folder of the secret files, such "
        "as /etc/yotposync/credentials"
    ]

    folder = tmp_path / "credentials"
    folder.mkdir()
    with_folder = {**env, "CREDENTIALS_DIRECTORY": str(folder)}
    assert problems_of(path, with_folder) == [
        f'heartland.token_file = "{folder / "heartland-token"}": file not found'
    ]


def test_yotpo_only_check_warns_of_heartland_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "heartland-token"
    path = write(tmp_path, MINIMAL + f'token_file = "{missing}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}

    settings = load_settings(path, environ=env, check_secrets=YOTPO_SECRETS)

    assert settings.warnings == (f'heartland.token_file = "{missing}": file not found',)
    assert settings.yotpo_api_key() == API_KEY


def test_directory_as_secret_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + f'token_file = "{tmp_path}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    assert problems_of(path, env) == [
        f'heartland.token_file = "{tmp_path}": is a directory, not a file'
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of their mode")
def test_unreadable_secret_file(tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text(TOKEN, encoding="utf-8")
    token_file.chmod(0)
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    user = pwd.getpwuid(os.geteuid()).pw_name
    assert problems_of(path, env) == [
        f'heartland.token_file = "{token_file}": permission denied: the user that runs '
        f"yotposync ({user}) needs read access to the file and to the folders above it, such as "
        f"with chown {user} {token_file} and chmod 600 {token_file}"
    ]


def test_denied_secret_file_names_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root reads any file, so the denial comes from a stand-in for the system call.
    token_file = tmp_path / "heartland-token"
    token_file.write_text(TOKEN, encoding="utf-8")
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}

    def deny(*args: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("yotposync.config.os.open", deny)
    problems = problems_of(path, env)

    user = pwd.getpwuid(os.geteuid()).pw_name
    assert problems == [
        f'heartland.token_file = "{token_file}": permission denied: the user that runs '
        f"yotposync ({user}) needs read access to the file and to the folders above it, such as "
        f"with chown {user} {token_file} and chmod 600 {token_file}"
    ]


def test_secret_file_under_a_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("not a directory", encoding="utf-8")
    token_file = plain / "heartland-token"
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    assert problems_of(path, env) == [
        f'heartland.token_file = "{token_file}": cannot be read: Not a directory'
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            b"\n",
            "file is empty: write the value of heartland.token in it, on one line",
        ),
        (
            b"   \n",
            "file is empty (it contains only spaces): write the value of heartland.token in "
            "it, on one line",
        ),
        (
            TOKEN.encode("utf-16"),
            "is not UTF-8 text: save it as UTF-8 or plain ASCII text, and write the value of "
            "heartland.token in it, on one line",
        ),
    ],
    ids=["empty", "spaces only", "utf-16"],
)
def test_unusable_secret_file_content(tmp_path: Path, content: bytes, problem: str) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_bytes(content)
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    assert problems_of(path, env) == [f'heartland.token_file = "{token_file}": {problem}']


@pytest.mark.parametrize("through_link", [False, True], ids=["fifo", "link to fifo"])
def test_fifo_secret_file_rejected(tmp_path: Path, through_link: bool) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    token_file = fifo
    if through_link:
        token_file = tmp_path / "heartland-token"
        token_file.symlink_to(fifo)
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}

    # Without the check, opening the FIFO would wait for a writer: a thread times the load out.
    outcome: list[list[str]] = []
    loader = threading.Thread(target=lambda: outcome.append(problems_of(path, env)), daemon=True)
    loader.start()
    loader.join(timeout=10)
    if loader.is_alive():
        with open(fifo, "w"):  # a writer lets the blocked open return, and the thread end
            pass
        loader.join(timeout=10)
        pytest.fail("loading the settings waited on the FIFO")

    assert outcome == [
        [
            f'heartland.token_file = "{token_file}": is a named pipe (FIFO), not a regular '
            "file: point it at a regular file that contains the secret"
        ]
    ]


def test_device_secret_file_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + 'token_file = "/dev/null"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    assert problems_of(path, env) == [
        'heartland.token_file = "/dev/null": is a device, not a regular file: point it at a '
        "regular file that contains the secret"
    ]


def test_missing_secrets_name_both_ways(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, MINIMAL + "page_size = 0\n"), {})
    assert problems == [
        "heartland.page_size = 0: must be between 1 and 1000",
        "heartland.token is missing: set the environment variable YOTPOSYNC_HEARTLAND__TOKEN, "
        "or heartland.token_file to the path of a file that contains it",
        "yotpo.guid is missing: set the environment variable YOTPOSYNC_YOTPO__GUID, "
        "or yotpo.guid_file to the path of a file that contains it",
        "yotpo.api_key is missing: set the environment variable YOTPOSYNC_YOTPO__API_KEY, "
        "or yotpo.api_key_file to the path of a file that contains it",
    ]


def test_empty_secret_value(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + 'token = "  "\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    assert problems_of(path, env) == [
        "heartland.token is empty: set the environment variable YOTPOSYNC_HEARTLAND__TOKEN, "
        "or heartland.token_file to the path of a file that contains it"
    ]


def test_secret_given_both_ways(tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text(TOKEN, encoding="utf-8")
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    assert problems_of(path) == [
        "heartland.token (from YOTPOSYNC_HEARTLAND__TOKEN) and heartland.token_file are both "
        "set: keep only one of them"
    ]


def test_secret_given_twice_in_the_file(tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text(TOKEN, encoding="utf-8")
    path = write(tmp_path, MINIMAL + f'token = "{TOKEN}"\ntoken_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    assert problems_of(path, env) == [
        "heartland.token and heartland.token_file are both set: keep only one of them"
    ]


def test_secret_file_with_two_lines(tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text(f"{TOKEN}\nsecond-line\n", encoding="utf-8")
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    problems = problems_of(path, env)
    assert problems == [
        f'heartland.token_file = "{token_file}": contains a line break or another control '
        "character, which no HTTP header can carry: keep the secret on one line"
    ]
    assert TOKEN not in str(problems)


def test_secret_file_with_byte_order_mark(tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text(f"\ufeff{TOKEN}\r\n", encoding="utf-8")
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    assert load(path, env).heartland_token() == TOKEN


@pytest.mark.parametrize("where", ["file", "environment"])
def test_secret_outside_latin1(tmp_path: Path, where: str) -> None:
    secret = f"{TOKEN}\u20ac"
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    if where == "file":
        token_file = tmp_path / "heartland-token"
        token_file.write_text(secret + "\n", encoding="utf-8")
        path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
        label = f'heartland.token_file = "{token_file}":'
    else:
        path = write(tmp_path, MINIMAL)
        env["YOTPOSYNC_HEARTLAND__TOKEN"] = secret
        label = "heartland.token (from YOTPOSYNC_HEARTLAND__TOKEN)"
    [problem] = problems_of(path, env)
    assert problem.startswith(f"{label} contains a character outside Latin-1")
    assert TOKEN not in problem


def test_secret_variable_with_control_character(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    env = {**SECRETS_ENV, "YOTPOSYNC_YOTPO__API_KEY": f"{API_KEY}\tx"}
    problems = problems_of(path, env)
    assert problems == [
        "yotpo.api_key (from YOTPOSYNC_YOTPO__API_KEY) contains a line break or another "
        "control character, which no HTTP header can carry: keep the secret on one line"
    ]
    assert API_KEY not in str(problems)


def test_secrets_never_in_error_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[heartland]
base_url = "https://admin:{API_KEY}@mystore.retail.heartland.us/api"
token = "{TOKEN}"
tokn = "{GUID}"
token_file = "/run/credentials/heartland-token"

[yotpo]
guid = 41
""",
    )
    error = _config_error(path, {"YOTPOSYNC_YOTPO__API_KEY": API_KEY})
    text = str(error) + repr(error)
    for secret in (TOKEN, GUID, API_KEY):
        assert secret not in text
    assert (
        'heartland.base_url = "https://***@mystore.retail.heartland.us/api": '
        "must not contain a user name or password: give credentials as secrets"
    ) in error.problems
    assert "yotpo.guid: must be a quoted string" in error.problems
    assert "unknown key heartland.tokn; did you mean token?" in error.problems


@pytest.mark.parametrize(
    "url",
    ["https://admin:pa/ss@mystore.example/api", "https://admin:pa@ss@mystore.example/api"],
)
def test_url_password_hidden_whole(tmp_path: Path, url: str) -> None:
    problems = problems_of(write(tmp_path, f'[heartland]\nbase_url = "{url}"\n'))
    assert len(problems) == 1
    assert "pa" not in problems[0].split(": ", 1)[0].removeprefix("heartland.base_url = ")
    assert problems[0].startswith('heartland.base_url = "https://***@')


def test_error_not_chained_to_validation_error(tmp_path: Path) -> None:
    # A chained pydantic error would be printed with its input values in a traceback.
    error = _config_error(write(tmp_path, MINIMAL + "page_size = 0\n"))
    assert error.__cause__ is None
    assert error.__context__ is None


def test_secrets_never_in_repr(tmp_path: Path) -> None:
    settings = load(write(tmp_path, MINIMAL))
    text = repr(settings) + str(settings) + repr(settings.model_dump(mode="json"))
    for secret in (TOKEN, GUID, API_KEY):
        assert secret not in text


def test_describe_hides_secrets(tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text(TOKEN, encoding="utf-8")
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    described = load(path, env).describe()
    assert described["heartland"]["token"] == "(set)"
    assert described["heartland"]["token_file"] == str(token_file)
    assert described["yotpo"]["guid"] == "(set)"
    assert described["yotpo"]["api_key"] == "(set)"
    assert described["sync"]["overlap_seconds"] == 600
    text = json.dumps(described)
    for secret in (TOKEN, GUID, API_KEY):
        assert secret not in text


def test_describe_marks_missing_secret() -> None:
    settings = Settings(
        heartland=HeartlandSettings(base_url="https://mystore.retail.heartland.us/api")
    )
    assert settings.describe()["heartland"]["token"] == "(missing)"


def test_missing_secret_accessor_raises() -> None:
    settings = Settings(
        heartland=HeartlandSettings(base_url="https://mystore.retail.heartland.us/api")
    )
    with pytest.raises(ConfigError) as caught:
        settings.yotpo_api_key()
    assert caught.value.problems == [
        "yotpo.api_key is missing: set the environment variable YOTPOSYNC_YOTPO__API_KEY, "
        "or yotpo.api_key_file to the path of a file that contains it"
    ]


def test_secret_file_removed_after_load(tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text(TOKEN, encoding="utf-8")
    path = write(tmp_path, MINIMAL + f'token_file = "{token_file}"\n')
    env = {key: value for key, value in SECRETS_ENV.items() if "HEARTLAND" not in key}
    settings = load(path, env)
    token_file.unlink()
    with pytest.raises(ConfigError) as caught:
        settings.heartland_token()
    assert caught.value.problems == [f'heartland.token_file = "{token_file}": file not found']


# --- go_live ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-04-01", datetime(2025, 4, 1, tzinfo=UTC)),
        ("2025-04-01T09:00:00-05:00", datetime(2025, 4, 1, 14, 0, tzinfo=UTC)),
        ("2025-04-01T09:00:00Z", datetime(2025, 4, 1, 9, 0, tzinfo=UTC)),
        ("2025-04-01 09:00:00+02:00", datetime(2025, 4, 1, 7, 0, tzinfo=UTC)),
    ],
)
def test_go_live_toml_forms(tmp_path: Path, value: str, expected: datetime) -> None:
    settings = load(write(tmp_path, MINIMAL + f"[sync]\ngo_live = {value}\n"))
    assert settings.sync.go_live == expected


def test_go_live_date_is_midnight_utc(tmp_path: Path) -> None:
    settings = load(write(tmp_path, MINIMAL + "[sync]\ngo_live = 2025-04-01\n"))
    assert settings.sync.go_live is not None
    assert settings.sync.go_live.tzinfo is UTC


def test_go_live_naive_timestamp_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[sync]\ngo_live = 2025-04-01T09:00:00\n")
    assert problems_of(path) == [
        "sync.go_live = 2025-04-01T09:00:00: has no UTC offset: add one, "
        "e.g. 2025-04-01T09:00:00-05:00, or give a date for midnight UTC"
    ]


def test_go_live_time_of_day_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[sync]\ngo_live = 09:00:00\n")
    assert problems_of(path) == [
        "sync.go_live = 09:00:00: must be a date (2025-04-01) "
        "or a timestamp with an offset (2025-04-01T09:00:00-05:00)"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-04-01", datetime(2025, 4, 1, tzinfo=UTC)),
        ("2025-04-01T09:00:00-05:00", datetime(2025, 4, 1, 14, 0, tzinfo=UTC)),
        ("2025-04-01T09:00:00Z", datetime(2025, 4, 1, 9, 0, tzinfo=UTC)),
    ],
)
def test_go_live_from_environment(tmp_path: Path, value: str, expected: datetime) -> None:
    env = {**SECRETS_ENV, "YOTPOSYNC_SYNC__GO_LIVE": value}
    assert load(write(tmp_path, MINIMAL), env).sync.go_live == expected


def test_go_live_naive_from_environment_rejected(tmp_path: Path) -> None:
    env = {**SECRETS_ENV, "YOTPOSYNC_SYNC__GO_LIVE": "2025-04-01T09:00:00"}
    problems = problems_of(write(tmp_path, MINIMAL), env)
    assert len(problems) == 1
    assert problems[0].startswith(
        'sync.go_live = "2025-04-01T09:00:00" (from YOTPOSYNC_SYNC__GO_LIVE): has no UTC offset'
    )


def test_go_live_unparsable_from_environment(tmp_path: Path) -> None:
    env = {**SECRETS_ENV, "YOTPOSYNC_SYNC__GO_LIVE": "April 1st"}
    problems = problems_of(write(tmp_path, MINIMAL), env)
    assert problems == [
        'sync.go_live = "April 1st" (from YOTPOSYNC_SYNC__GO_LIVE): must be a date (2025-04-01) '
        "or a timestamp with an offset (2025-04-01T09:00:00-05:00)"
    ]


# --- individual keys -------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["hl", "a", "store-2", "0x", "abcdefghij0123456789"])
def test_id_prefix_accepted(tmp_path: Path, prefix: str) -> None:
    settings = load(write(tmp_path, MINIMAL + f'[sync]\nid_prefix = "{prefix}"\n'))
    assert settings.sync.id_prefix == prefix


@pytest.mark.parametrize("prefix", ["", "-hl", "HL", "h_l", "abcdefghij01234567890", "hl\n"])
def test_id_prefix_rejected(tmp_path: Path, prefix: str) -> None:
    path = write(tmp_path, MINIMAL + f"[sync]\nid_prefix = {json.dumps(prefix)}\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith("sync.id_prefix = ")


@pytest.mark.parametrize("currency", ["usd", "US", "USDT", "U5D"])
def test_currency_rejected(tmp_path: Path, currency: str) -> None:
    path = write(tmp_path, MINIMAL + f'[yotpo]\ncurrency = "{currency}"\n')
    assert problems_of(path) == [
        f'yotpo.currency = "{currency}": must be three upper-case letters '
        "(an ISO 4217 code such as USD)"
    ]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mystore.retail.heartland.us/api", "must be an http or https URL"),
        ("ftp://mystore.retail.heartland.us/api", "must be an http or https URL"),
        ("https://mystore.retail.heartland.us:port/api", "must be an http or https URL"),
        ("http://mystore.retail.heartland.us/api", "must use https unless the host is loopback"),
        ("https://mystore.retail.heartland.us/api?per_page=5", "must not contain a query string"),
    ],
)
def test_base_url_rejected(tmp_path: Path, url: str, reason: str) -> None:
    path = write(tmp_path, f'[heartland]\nbase_url = "{url}"\n')
    problems = problems_of(path)
    shown = url.replace("?per_page=5", "?***")
    assert len(problems) == 1
    assert problems[0].startswith(f'heartland.base_url = "{shown}": {reason}')


@pytest.mark.parametrize(
    ("heartland_url", "yotpo_url", "expected"),
    [
        ("http://127.0.0.1:8001/api", "http://127.0.0.1:8002/api/v2", True),
        ("http://localhost:8001/api", "http://[::1]:8002/api/v2", True),
        ("http://127.0.0.1:8001/api", "https://loyalty.yotpo.com/api/v2", False),
        ("https://mystore.retail.heartland.us/api", "http://127.0.0.1:8002/api/v2", False),
        ("https://localhost.example.com/api", "http://127.0.0.1:8002/api/v2", False),
    ],
)
def test_uses_sandbox_needs_both_loopback(
    tmp_path: Path, heartland_url: str, yotpo_url: str, expected: bool
) -> None:
    path = write(
        tmp_path, f'[heartland]\nbase_url = "{heartland_url}"\n[yotpo]\nbase_url = "{yotpo_url}"\n'
    )
    settings = load(path)
    assert settings.uses_sandbox is expected
    assert settings.verify_tls is not expected


def test_exclusion_rules_built(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + """
[sync]
go_live = 2025-04-01

[rules]
exclude_location_ids = [201, 201, 202]
exclude_station_ids = [7]
exclude_sales_reps = ["Web Orders"]
exclude_public_id_prefixes = ["WEB-"]
exclude_customer_public_ids = ["CASH", "HOUSE"]
exclude_ticket_custom_fields = [{key = "web_order_no"}]
exclude_customer_custom_fields = [{key = "staff", equals = "yes"}]
minimum_amount_cents = 500
""",
    )
    assert load(path).exclusion_rules() == ExclusionRules(
        location_ids=frozenset({201, 202}),
        station_ids=frozenset({7}),
        sales_reps=frozenset({"Web Orders"}),
        public_id_prefixes=("WEB-",),
        customer_public_ids=frozenset({"CASH", "HOUSE"}),
        ticket_custom=(CustomFieldRule("web_order_no"),),
        customer_custom=(CustomFieldRule("staff", "yes"),),
        minimum_amount_cents=500,
        go_live=datetime(2025, 4, 1, tzinfo=UTC),
    )


def test_amount_basis_built(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[sync]\ninclude_tax = true\ninclude_gift_cards = true\n")
    assert load(path).amount_basis() == AmountBasis(
        include_tax=True, include_shipping=False, include_gift_cards=True
    )


def test_ledger_path_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load(write(tmp_path, MINIMAL + '[ledger]\npath = "~/ledger.sqlite3"\n'))
    assert settings.ledger.path == tmp_path / "ledger.sqlite3"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ('[sync]\ninclude_tax = "yes"', 'sync.include_tax = "yes"'),
        ("[sync]\ninclude_tax = 1", "sync.include_tax = 1"),
        ('[offers]\nenabled = "false"', 'offers.enabled = "false"'),
        ('[customers]\nenrol = "true"', 'customers.enrol = "true"'),
        ("[customers]\nwrite_fields = 0.0", "customers.write_fields = 0.0"),
    ],
)
def test_boolean_setting_must_be_boolean(tmp_path: Path, line: str, shown: str) -> None:
    path = write(tmp_path, MINIMAL + line + "\n")
    assert problems_of(path, SECRETS_ENV) == [
        f"{shown}: must be true or false, written without quotes"
    ]


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("0", False), ("YES", True), ("off", False)]
)
def test_boolean_text_only_from_environment(tmp_path: Path, text: str, expected: bool) -> None:
    # The same text that the file must not quote is what an environment variable holds.
    in_file = write(tmp_path, MINIMAL + f'[sync]\ninclude_tax = "{text}"\n', name="file.toml")
    env = {**SECRETS_ENV, "YOTPOSYNC_SYNC__INCLUDE_TAX": text, "YOTPOSYNC_OFFERS__ENABLED": text}

    settings = load(write(tmp_path, MINIMAL), env)

    assert settings.sync.include_tax is expected
    assert settings.offers.enabled is expected
    assert problems_of(in_file, SECRETS_ENV) == [
        f'sync.include_tax = "{text}": must be true or false, written without quotes'
    ]


def test_invalid_boolean_from_environment(tmp_path: Path) -> None:
    env = {**SECRETS_ENV, "YOTPOSYNC_SYNC__INCLUDE_TAX": "maybe"}
    assert problems_of(write(tmp_path, MINIMAL), env) == [
        'YOTPOSYNC_SYNC__INCLUDE_TAX = "maybe": must be true or false (1 or 0, yes or no, on '
        "or off are accepted too)"
    ]


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_ledger_path_named(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, MINIMAL + f'[ledger]\npath = "{value}"\n')
    assert problems_of(path, SECRETS_ENV) == [
        f'ledger.path = "{value}": is empty: set it to the path of the ledger file, such as '
        "/var/lib/yotposync/ledger.sqlite3, or remove the key to use that default"
    ]


# --- sandbox ---------------------------------------------------------------------------


def test_sandbox_settings_defaults(tmp_path: Path) -> None:
    settings = sandbox_settings(
        "http://127.0.0.1:8001/api", "http://127.0.0.1:8002/api/v2", tmp_path / "ledger.sqlite3"
    )
    assert settings.heartland_token() == "sandbox-heartland-token"
    assert settings.yotpo_guid() == "sandbox-guid"
    assert settings.yotpo_api_key() == "sandbox-api-key"
    assert settings.ledger.path == tmp_path / "ledger.sqlite3"
    assert settings.uses_sandbox is True
    assert settings.verify_tls is False
    rules = settings.exclusion_rules()
    assert rules.ticket_custom == (CustomFieldRule("web_order_no"),)
    assert rules.customer_custom == (CustomFieldRule("staff", "yes"),)
    assert rules.customer_public_ids == frozenset({"CASH"})


def test_sandbox_settings_overrides_merge(tmp_path: Path) -> None:
    settings = sandbox_settings(
        "http://127.0.0.1:8001/api",
        "http://127.0.0.1:8002/api/v2",
        tmp_path / "ledger.sqlite3",
        sync={"overlap_seconds": 0},
        rules={"minimum_amount_cents": 100},
    )
    assert settings.sync.overlap_seconds == 0
    assert settings.rules.minimum_amount_cents == 100
    assert settings.rules.exclude_ticket_custom_fields[0].key == "web_order_no"


def test_sandbox_settings_ignore_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YOTPOSYNC_SYNC__OVERLAP_SECONDS", "5")
    monkeypatch.setenv("YOTPOSYNC_HEARTLAND__TOKEN", TOKEN)
    settings = sandbox_settings(
        "http://127.0.0.1:8001/api", "http://127.0.0.1:8002/api/v2", tmp_path / "ledger.sqlite3"
    )
    assert settings.sync.overlap_seconds == 600
    assert settings.heartland_token() == "sandbox-heartland-token"


def test_sandbox_settings_invalid_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        sandbox_settings(
            "http://127.0.0.1:8001/api",
            "http://127.0.0.1:8002/api/v2",
            tmp_path / "ledger.sqlite3",
            delivery={"max_attempts": 0},
        )
    assert caught.value.problems == ["delivery.max_attempts = 0: must be between 1 and 1000"]


# --- the example file ------------------------------------------------------------------


def test_example_file_loads() -> None:
    settings = load_settings(EXAMPLE, environ=SECRETS_ENV)
    assert settings.heartland.base_url == "https://mystore.retail.heartland.us/api"
    assert settings.heartland_token() == TOKEN


SECTIONS: dict[str, type[BaseModel]] = {
    "heartland": HeartlandSettings,
    "yotpo": YotpoSettings,
    "ledger": LedgerSettings,
    "sync": SyncSettings,
    "rules": RulesSettings,
    "schedule": ScheduleSettings,
    "delivery": DeliverySettings,
    "logging": LoggingSettings,
    "customers": CustomersSettings,
    "performance": PerformanceSettings,
    "offers": OffersSettings,
    "ops": OpsSettings,
}
# Keys the example leaves commented out because they have no default.
COMMENTED_KEYS = {
    ("heartland", "token"),
    ("heartland", "token_file"),
    ("yotpo", "guid"),
    ("yotpo", "guid_file"),
    ("yotpo", "api_key"),
    ("yotpo", "api_key_file"),
    ("sync", "go_live"),
    ("offers", "webhook_listen"),
    ("offers", "webhook_secret"),
    ("offers", "webhook_secret_file"),
    ("ops", "listen"),
    ("ops", "ping_url"),
    ("ops", "webhook_listen"),
    ("ops", "webhook_secret"),
    ("ops", "webhook_secret_file"),
}


def test_sections_table_covers_settings() -> None:
    assert set(SECTIONS) == set(Settings.model_fields)


@pytest.mark.parametrize("section", list(SECTIONS))
def test_example_file_sets_every_key(section: str) -> None:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    expected = {
        key for key in SECTIONS[section].model_fields if (section, key) not in COMMENTED_KEYS
    }
    assert set(example[section]) == expected


@pytest.mark.parametrize(("section", "key"), sorted(COMMENTED_KEYS))
def test_example_file_documents_commented_key(section: str, key: str) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    section_text = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
    assert f"# {key} = " in section_text


@pytest.mark.parametrize("section", [name for name in SECTIONS if name != "heartland"])
def test_example_file_values_are_defaults(section: str) -> None:
    settings = load_settings(EXAMPLE, environ=SECRETS_ENV)
    loaded = getattr(settings, section).model_dump()
    defaults = SECTIONS[section]().model_dump()
    for secret in ("guid", "api_key"):
        loaded.pop(secret, None)
        defaults.pop(secret, None)
    assert loaded == defaults


def test_example_heartland_values_are_defaults() -> None:
    settings = load_settings(EXAMPLE, environ=SECRETS_ENV)
    loaded = settings.heartland.model_dump(exclude={"base_url", "token"})
    defaults = HeartlandSettings(base_url="https://x.example/api").model_dump(
        exclude={"base_url", "token"}
    )
    assert loaded == defaults


def test_sandbox_config_file_loads() -> None:
    settings = load_settings(Path(__file__).parents[2] / "config" / "sandbox.toml", environ={})
    assert settings.uses_sandbox
    assert settings.heartland_token() == "sandbox-heartland-token"


def test_ledger_only_load_skips_missing_secrets(tmp_path: Path) -> None:
    path = tmp_path / "yotposync.toml"
    path.write_text('[heartland]\nbase_url = "https://mystore.retail.heartland.us/api"\n')
    with pytest.raises(ConfigError):
        load_settings(path, environ={})
    settings = load_settings(path, environ={}, require_secrets=False)
    assert settings.heartland.base_url.startswith("https://mystore")


def test_environment_variable_of_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    env = {**SECRETS_ENV, "YOTPOSYNC_SYNCC__OVERLAP_SECONDS": "300"}
    [problem] = problems_of(path, env)
    assert problem.startswith("YOTPOSYNC_SYNCC__OVERLAP_SECONDS: there is no section 'syncc'")
    assert problem.endswith("did you mean YOTPOSYNC_SYNC__...?")


def test_environment_variable_with_one_underscore(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    env = {**SECRETS_ENV, "YOTPOSYNC_SYNC_GO_LIVE": "2030-01-01", "YOTPOSYNC_CONFIGG": "x"}
    problems = problems_of(path, env)
    assert problems == [
        "YOTPOSYNC_SYNC_GO_LIVE is not a setting, because a section and its key are joined by "
        "two underscores. Did you mean YOTPOSYNC_SYNC__GO_LIVE?",
        "YOTPOSYNC_CONFIGG is not a setting, because a section and its key are joined by two "
        "underscores. Name a setting YOTPOSYNC_<SECTION>__<KEY>, e.g. YOTPOSYNC_SYNC__GO_LIVE.",
    ]


def test_config_path_variable_is_no_setting_problem(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    settings = load(path, {**SECRETS_ENV, "YOTPOSYNC_CONFIG": str(path)})
    assert settings.heartland.base_url == "https://mystore.retail.heartland.us/api"


def test_environment_variable_nested_too_deep(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    env = {
        **SECRETS_ENV,
        "YOTPOSYNC_SYNC__OVERLAP__SECONDS": "300",
        "yotposync_schedule__delivery__secs": "5",
        "YOTPOSYNC_LEDGER__FILE__NAME": "x",
    }
    problems = problems_of(path, env)
    assert problems == [
        "YOTPOSYNC_SYNC__OVERLAP__SECONDS is not a setting, because two underscores separate "
        "only the section from its key, and the key itself has single underscores. "
        "Did you mean YOTPOSYNC_SYNC__OVERLAP_SECONDS?",
        "YOTPOSYNC_SCHEDULE__DELIVERY__SECS is not a setting, because two underscores separate "
        "only the section from its key, and the key itself has single underscores. "
        "Did you mean YOTPOSYNC_SCHEDULE__DELIVERY_SECONDS?",
        "YOTPOSYNC_LEDGER__FILE__NAME is not a setting, because two underscores separate "
        "only the section from its key, and the key itself has single underscores. "
        "The ledger keys are path.",
    ]


def test_no_section_key_is_a_table() -> None:
    # A `YOTPOSYNC_<SECTION>__<KEY>__<NAME>` variable is rejected because no key is a table.
    for section, model in SECTIONS.items():
        for key, field in model.model_fields.items():
            annotation = field.annotation
            is_table = isinstance(annotation, type) and issubclass(annotation, BaseModel)
            assert not is_table, f"{section}.{key}"


# --- warnings ----------------------------------------------------------------------------


def test_secrets_in_file_warn_by_name(tmp_path: Path) -> None:
    webhook_secret = "file-webhook-secret-0123456789abcdef"
    path = write(
        tmp_path,
        f"""
[heartland]
base_url = "https://mystore.retail.heartland.us/api"
token = "{TOKEN}"

[yotpo]
api_key = "{API_KEY}"

[ops]
webhook_secret = "{webhook_secret}"
""",
    )
    settings = load(path, {"YOTPOSYNC_YOTPO__GUID": GUID, "YOTPOSYNC_YOTPO__API_KEY": API_KEY})
    assert settings.warnings == (
        "heartland.token is written in the configuration file, which should contain no "
        "secrets. It still works, but move it to the environment variable "
        "YOTPOSYNC_HEARTLAND__TOKEN or to a file named by heartland.token_file, then delete "
        "it from the configuration file.",
        "yotpo.api_key is written in the configuration file, which should contain no "
        "secrets. It still works, but move it to the environment variable "
        "YOTPOSYNC_YOTPO__API_KEY or to a file named by yotpo.api_key_file, then delete it "
        "from the configuration file.",
        "ops.webhook_secret is written in the configuration file, which should contain no "
        "secrets. It still works, but move it to the environment variable "
        "YOTPOSYNC_OPS__WEBHOOK_SECRET or to a file named by ops.webhook_secret_file, then "
        "delete it from the configuration file.",
    )
    for secret in (TOKEN, API_KEY, webhook_secret):
        assert secret not in str(settings.warnings)


def test_secrets_from_environment_no_warning(tmp_path: Path) -> None:
    assert load(write(tmp_path, MINIMAL)).warnings == ()


def test_sandbox_credentials_in_file_no_warning() -> None:
    settings = load_settings(Path(__file__).parents[2] / "config" / "sandbox.toml", environ={})
    assert settings.warnings == ()


def test_unchecked_secrets_load_with_warning(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    env = {"YOTPOSYNC_YOTPO__API_KEY": f"{API_KEY}\nx"}
    settings = load_settings(path, environ=env, require_secrets=False, check_secrets=False)
    assert settings.warnings == (
        "yotpo.api_key (from YOTPOSYNC_YOTPO__API_KEY) contains a line break or another "
        "control character, which no HTTP header can carry: keep the secret on one line",
    )
    assert API_KEY not in str(settings.warnings)
    with pytest.raises(ConfigError):
        load_settings(path, environ=env, require_secrets=False)


@pytest.mark.parametrize("listen", ["0.0.0.0:9395", "[::]:9395"])
def test_open_ops_listen_warns(tmp_path: Path, listen: str) -> None:
    settings = load(write(tmp_path, MINIMAL + f'[ops]\nlisten = "{listen}"\n'))

    assert settings.warnings == (
        f'ops.listen = "{listen}" serves /healthz and /metrics without authentication to '
        "other hosts. Use 127.0.0.1, or a private network address behind a firewall.",
    )


@pytest.mark.parametrize("listen", ["127.0.0.1:9395", "[::1]:9395", "10.1.2.3:9395"])
def test_private_ops_listen_no_warning(tmp_path: Path, listen: str) -> None:
    settings = load(write(tmp_path, MINIMAL + f'[ops]\nlisten = "{listen}"\n'))

    assert settings.warnings == ()
