"""Settings from one TOML file, with environment overrides and secrets kept out of sight.

Every key can be overridden by an environment variable `YOTPOSYNC_<SECTION>__<KEY>`, for
example `YOTPOSYNC_HEARTLAND__TOKEN`. Precedence is environment over file over defaults.
Array values given in the environment are JSON, e.g. `YOTPOSYNC_RULES__EXCLUDE_LOCATION_IDS=[201]`.

The three secrets (the Heartland token, the Yotpo GUID and the Yotpo API key) come either as
a value (`heartland.token`, usually from the environment) or as a file (`heartland.token_file`).
A relative file path is resolved against `$CREDENTIALS_DIRECTORY`, which systemd sets for
`LoadCredential=`, or else against the current directory. Secret values are `SecretStr`: they
never appear in `repr`, in `describe()` or in the text of a `ConfigError`.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import json
import os
import pwd
import re
import stat
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from yotposync.config_problems import format_value, problem_line, section_models
from yotposync.errors import ConfigError
from yotposync.ops.address import parse_listen_address
from yotposync.sync.amounts import AmountBasis
from yotposync.sync.rules import CustomFieldRule, ExclusionRules

ENV_PREFIX = "YOTPOSYNC_"
CONFIG_PATH_VARIABLE = "YOTPOSYNC_CONFIG"
CREDENTIALS_DIRECTORY_VARIABLE = "CREDENTIALS_DIRECTORY"

# Public test credentials that the sandbox emulators accept. They protect nothing.
SANDBOX_HEARTLAND_TOKEN = "sandbox-heartland-token"  # noqa: S105
SANDBOX_YOTPO_GUID = "sandbox-guid"
SANDBOX_YOTPO_API_KEY = "sandbox-api-key"
_SANDBOX_CREDENTIALS = frozenset(
    {SANDBOX_HEARTLAND_TOKEN, SANDBOX_YOTPO_GUID, SANDBOX_YOTPO_API_KEY}
)

_SECTION_CONFIG = ConfigDict(
    extra="forbid", frozen=True, hide_input_in_errors=True, allow_inf_nan=False
)
_ID_PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{0,19}")
_CURRENCY = re.compile(r"[A-Z]{3}")


def _is_loopback_host(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_loopback_url(url: str) -> bool:
    try:
        return _is_loopback_host(urlsplit(url).hostname)
    except ValueError:
        return False


def _check_base_url(value: str, example: str) -> str:
    """Validate an API base URL and return it without a trailing slash."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http or https URL, e.g. {example}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password: give credentials as secrets")
    # Rejected, not kept. Every caller appends a path to this URL (an API path, or /start for
    # a ping), and a query would swallow it. A token in a query belongs in a secret setting.
    if parts.query or parts.fragment:
        raise ValueError(
            "must not contain a query string or fragment: remove everything from the first ? or #"
        )
    if parts.scheme == "http" and not _is_loopback_host(parts.hostname):
        raise ValueError("must use https unless the host is loopback (127.0.0.1, ::1, localhost)")
    return value.strip().rstrip("/")


def _number_expected(annotation: Any) -> str | None:
    """Name the number a field takes ("a whole number" or "a number"), or None for others."""
    if annotation is int:
        return "a whole number"
    if annotation is float:
        return "a number"
    if annotation is bool:
        return None
    for argument in get_args(annotation):
        expected = _number_expected(argument)
        if expected is not None:
            return expected
    return None


class _Section(BaseModel):
    """Base of the configuration sections: a boolean is rejected where a number is expected."""

    model_config = _SECTION_CONFIG

    @field_validator("*", mode="before")
    @classmethod
    def _reject_boolean_number(cls, value: object, info: ValidationInfo) -> object:
        # pydantic would read true and false as 1 and 0 for int and float fields, so a
        # `page_size = true` would silently mean 1.
        field = cls.model_fields.get(info.field_name or "")
        expected = None if field is None else _number_expected(field.annotation)
        if expected is None:
            return value
        if isinstance(value, bool):
            raise ValueError(f"must be {expected}, not true or false")
        if isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, bool):
                    raise ValueError(
                        f"item [{index}] is {str(item).lower()}, but every item must be {expected}"
                    )
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _require_boolean(cls, value: object, info: ValidationInfo) -> object:
        # pydantic would read "yes", "false" and 1 as booleans, so a quoted "false" would mean
        # false but look like text. `load_settings` converts environment text beforehand.
        field = cls.model_fields.get(info.field_name or "")
        if field is None or field.annotation is not bool or isinstance(value, bool):
            return value
        raise ValueError("must be true or false, written without quotes")


class HeartlandSettings(_Section):
    """The `[heartland]` section: the Heartland Retail API account and how to call it."""

    model_config = _SECTION_CONFIG

    base_url: str
    token: SecretStr | None = None
    token_file: Path | None = None
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=600)
    read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    page_size: int = Field(default=100, ge=1, le=1000)
    requests_per_second: float = Field(default=5.0, ge=0.01)

    @field_validator("base_url")
    @classmethod
    def _validate_base_url(cls, value: str) -> str:
        return _check_base_url(value, "https://mystore.retail.heartland.us/api")


class YotpoSettings(_Section):
    """The `[yotpo]` section: the Yotpo Loyalty API account and how to call it."""

    model_config = _SECTION_CONFIG

    base_url: str = "https://loyalty.yotpo.com/api/v2"
    guid: SecretStr | None = None
    guid_file: Path | None = None
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    currency: str = "USD"
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=600)
    read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    requests_per_second: float = Field(default=10.0, ge=0.01)

    @field_validator("base_url")
    @classmethod
    def _validate_base_url(cls, value: str) -> str:
        return _check_base_url(value, "https://loyalty.yotpo.com/api/v2")

    @field_validator("currency")
    @classmethod
    def _validate_currency(cls, value: str) -> str:
        if _CURRENCY.fullmatch(value) is None:
            raise ValueError("must be three upper-case letters (an ISO 4217 code such as USD)")
        return value


class LedgerSettings(_Section):
    """The `[ledger]` section: where the SQLite ledger lives."""

    model_config = _SECTION_CONFIG

    path: Path = Path("/var/lib/yotposync/ledger.sqlite3")

    @field_validator("path", mode="before")
    @classmethod
    def _reject_empty(cls, value: object) -> object:
        # An empty path would become ".", the current folder.
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "is empty: set it to the path of the ledger file, such as "
                "/var/lib/yotposync/ledger.sqlite3, or remove the key to use that default"
            )
        return value

    @field_validator("path")
    @classmethod
    def _expand_user(cls, value: Path) -> Path:
        return value.expanduser()


_GO_LIVE_FORMS = "a date (2025-04-01) or a timestamp with an offset (2025-04-01T09:00:00-05:00)"


class SyncSettings(_Section):
    """The `[sync]` section: what the transactions job sends and how it walks Heartland."""

    model_config = _SECTION_CONFIG

    go_live: datetime | None = None
    overlap_seconds: int = Field(default=600, ge=0, le=86400)
    id_prefix: str = "hl"
    include_tax: bool = False
    include_shipping: bool = False
    include_gift_cards: bool = False

    @field_validator("go_live", mode="before")
    @classmethod
    def _parse_go_live(cls, value: object) -> object:
        """Convert a date to midnight UTC and an offset timestamp to UTC.

        A timestamp without an offset is rejected, because the store's zone is unknown here.
        """
        if value is None:
            return None
        if isinstance(value, str):
            value = _parse_go_live_text(value)
        if isinstance(value, datetime):
            if value.utcoffset() is None:
                raise ValueError(
                    "has no UTC offset: add one, e.g. 2025-04-01T09:00:00-05:00, "
                    "or give a date for midnight UTC"
                )
            return value.astimezone(UTC)
        if isinstance(value, date):
            return datetime.combine(value, time(0), tzinfo=UTC)
        raise ValueError(f"must be {_GO_LIVE_FORMS}")

    @field_validator("id_prefix")
    @classmethod
    def _validate_id_prefix(cls, value: str) -> str:
        if _ID_PREFIX.fullmatch(value) is None:
            raise ValueError(
                "must be 1 to 20 characters of a-z, 0-9 and '-', starting with a letter or digit"
            )
        return value


def _parse_go_live_text(text: str) -> date | datetime:
    stripped = text.strip()
    try:
        return date.fromisoformat(stripped)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(f"must be {_GO_LIVE_FORMS}") from None


class CustomFieldRuleSettings(_Section):
    """One custom-field exclusion: the field is present (no `equals`), or has this value."""

    model_config = _SECTION_CONFIG

    key: str = Field(min_length=1)
    equals: str | None = None


class RulesSettings(_Section):
    """The `[rules]` section: which tickets earn nothing."""

    model_config = _SECTION_CONFIG

    exclude_location_ids: tuple[int, ...] = ()
    exclude_station_ids: tuple[int, ...] = ()
    exclude_sales_reps: tuple[str, ...] = ()
    exclude_public_id_prefixes: tuple[str, ...] = ()
    exclude_customer_public_ids: tuple[str, ...] = ("CASH",)
    exclude_ticket_custom_fields: tuple[CustomFieldRuleSettings, ...] = ()
    exclude_customer_custom_fields: tuple[CustomFieldRuleSettings, ...] = ()
    minimum_amount_cents: int = Field(default=0, ge=0, le=1000000000)

    @field_validator("exclude_public_id_prefixes")
    @classmethod
    def _reject_empty_prefix(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # An empty prefix matches every ticket, which would stop all earning.
        if "" in value:
            raise ValueError("must not contain an empty prefix, which would exclude every ticket")
        return value


class ScheduleSettings(_Section):
    """The `[schedule]` section: job intervals for the scheduler, in seconds."""

    model_config = _SECTION_CONFIG

    transactions_seconds: int = Field(default=60, ge=1, le=604800)
    delivery_seconds: int = Field(default=15, ge=1, le=604800)
    misfire_grace_seconds: int = Field(default=30, ge=1, le=604800)


class DeliverySettings(_Section):
    """The `[delivery]` section: how pending pushes are sent and retried."""

    model_config = _SECTION_CONFIG

    batch_size: int = Field(default=200, ge=1, le=10000)
    max_attempts: int = Field(default=20, ge=1, le=1000)
    retry_base_seconds: int = Field(default=30, ge=1, le=86400)
    retry_ceiling_seconds: int = Field(default=3600, ge=1, le=604800)
    max_tries_per_call: int = Field(default=4, ge=1, le=100)

    @model_validator(mode="after")
    def _check_retry_ceiling(self) -> DeliverySettings:
        if self.retry_ceiling_seconds < self.retry_base_seconds:
            raise ValueError(
                f"retry_ceiling_seconds = {self.retry_ceiling_seconds} must be at least "
                f"retry_base_seconds = {self.retry_base_seconds}"
            )
        return self


class CustomersSettings(_Section):
    """The `[customers]` section: enrolment from Heartland and the cashier's loyalty fields."""

    model_config = _SECTION_CONFIG

    enrol: bool = True
    enrol_all_with_email: bool = False
    opt_in_field: str = Field(default="loyalty_opt_in", min_length=1)
    opt_in_values: tuple[str, ...] = ("yes", "y", "true", "1", "x", "on")
    default_phone_region: str = "US"
    poll_seconds: int = Field(default=120, ge=1, le=604800)
    write_fields: bool = True
    points_field: str = Field(default="loyalty_points", min_length=1)
    tier_field: str = Field(default="loyalty_tier", min_length=1)
    next_tier_field: str = Field(default="loyalty_points_to_next_tier", min_length=1)
    offers_field: str = Field(default="loyalty_offers", min_length=1)
    updated_field: str = Field(default="loyalty_updated", min_length=1)
    field_time_zone: str = "UTC"
    offers_max_length: int = Field(default=255, ge=20, le=65535)
    refresh_seconds: int = Field(default=60, ge=1, le=604800)
    refresh_active_days: int = Field(default=30, ge=0, le=3650)
    refresh_every_hours: int = Field(default=24, ge=1, le=8760)
    refresh_batch_size: int = Field(default=100, ge=1, le=10000)

    @field_validator("opt_in_values")
    @classmethod
    def _require_opt_in_value(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not [text for text in value if text.strip()]:
            raise ValueError('must name at least one value, e.g. ["yes"]')
        return value

    @field_validator("default_phone_region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        import phonenumbers

        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be a two-letter ISO 3166 country code such as US or GB")
        return region

    @field_validator("field_time_zone")
    @classmethod
    def _check_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as UTC or America/Chicago") from None
        return value

    @model_validator(mode="after")
    def _check_distinct_fields(self) -> CustomersSettings:
        keys = [
            self.opt_in_field,
            self.points_field,
            self.tier_field,
            self.next_tier_field,
            self.offers_field,
            self.updated_field,
        ]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"custom field keys must differ, but {repeated[0]!r} is used twice")
        return self


LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["auto", "console", "json"]


class LoggingSettings(_Section):
    """The `[logging]` section."""

    model_config = _SECTION_CONFIG

    level: LogLevel = "info"
    format: LogFormat = "auto"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


# A webhook secret (ops.webhook_secret and offers.webhook_secret) is a path segment of its
# receiver's URL, so it is limited to characters that need no escaping there.
# `secrets.token_urlsafe(32)` produces 43 of them.
WEBHOOK_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{24,}")
# A secret of one repeated character, digits only or a word typed twice has few distinct
# characters. 24 random ones from the 64 allowed have about 19, and fewer than 12 almost never.
WEBHOOK_SECRET_MIN_DISTINCT = 12


class OpsSettings(_Section):
    """The `[ops]` section: health and metrics endpoint, health-check pings, webhook receiver."""

    model_config = _SECTION_CONFIG

    listen: str | None = None
    ping_url: str | None = None
    ping_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    job_timeout_seconds: int = Field(default=900, ge=1, le=604800)
    stale_after_seconds: int = Field(default=3600, ge=1, le=604800)
    outbox_max_age_seconds: int = Field(default=3600, ge=1, le=604800)
    webhook_listen: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_secret_file: Path | None = None

    @field_validator("listen", "webhook_listen", "ping_url", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("listen", "webhook_listen")
    @classmethod
    def _validate_listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen_address(value)
        return value

    @field_validator("ping_url")
    @classmethod
    def _validate_ping_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _check_base_url(value, "https://hc-ping.com/<check uuid>")


class PerformanceSettings(_Section):
    """The `[performance]` section: how much of the work runs at once."""

    model_config = _SECTION_CONFIG

    delivery_workers: int = Field(default=4, ge=1, le=32)


class OffersSettings(_Section):
    """The `[offers]` section: loyalty offers as Heartland coupons, deductions and restores."""

    model_config = _SECTION_CONFIG

    enabled: bool = True
    sync_seconds: int = Field(default=300, ge=1, le=604800)
    codes_seconds: int = Field(default=60, ge=1, le=604800)
    restore_policy: Literal["proportional", "full", "never"] = "proportional"
    history_days: int = Field(default=30, ge=0, le=3650)
    history_max_customers: int = Field(default=200, ge=0, le=100000)
    # The largest fixed amount, in cents, that an offer may take off; larger ones get no coupon.
    max_discount_cents: int = Field(default=50000, ge=1, le=10_000_000)
    webhook_listen: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_secret_file: Path | None = None

    @field_validator("webhook_listen", mode="before")
    @classmethod
    def _empty_listen_is_off(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_listen")
    @classmethod
    def _validate_webhook_listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen_address(value)
        return value


@dataclass(frozen=True)
class _SecretKey:
    """A secret setting, given either as `section.key` or as a file at `section.key_file`."""

    section: str
    key: str
    required: bool = True
    # The setting of the same section that makes an optional secret required when it is set.
    required_by: str | None = None

    @property
    def label(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def file_key(self) -> str:
        return f"{self.key}_file"

    @property
    def variable(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}__{self.key.upper()}"

    def how_to_set(self) -> str:
        return (
            f"set the environment variable {self.variable}, "
            f"or {self.label}_file to the path of a file that contains it"
        )

    def is_required(self, section: Mapping[str, Any]) -> bool:
        """Tell whether this secret must be given, from its section's raw settings."""
        if self.required_by is None:
            return self.required
        switch = section.get(self.required_by)
        # An empty listen address turns the receiver off, as its own validator reads it.
        return switch is not None and not (isinstance(switch, str) and not switch.strip())

    def missing_problem(self) -> str:
        if self.required_by is not None:
            return (
                f"{self.section}: {self.required_by} is set but no webhook secret is: "
                f"{self.how_to_set()}"
            )
        return f"{self.label} is missing: {self.how_to_set()}"


_HEARTLAND_TOKEN = _SecretKey("heartland", "token")
_YOTPO_GUID = _SecretKey("yotpo", "guid")
_YOTPO_API_KEY = _SecretKey("yotpo", "api_key")
_WEBHOOK_SECRET = _SecretKey("ops", "webhook_secret", required=False, required_by="webhook_listen")
_OFFERS_WEBHOOK_SECRET = _SecretKey(
    "offers", "webhook_secret", required=False, required_by="webhook_listen"
)
_SECRET_KEYS = (
    _HEARTLAND_TOKEN,
    _YOTPO_GUID,
    _YOTPO_API_KEY,
    _WEBHOOK_SECRET,
    _OFFERS_WEBHOOK_SECRET,
)
_SECRET_LOCATIONS = frozenset((secret.section, secret.key) for secret in _SECRET_KEYS)
_SECRET_SECTIONS = frozenset(secret.section for secret in _SECRET_KEYS)
# For `check_secrets`: a command that reads only the Yotpo GUID and API key.
YOTPO_SECRETS = frozenset({"yotpo"})
# Settings whose URL path is a credential, so errors show only their scheme and host. Anyone
# who has the ping URL can send pings for its check.
_HOST_ONLY_LOCATIONS = frozenset({("ops", "ping_url")})


class Settings(BaseSettings):
    """The effective configuration of one yotposync installation.

    Build it with `load_settings()` or `sandbox_settings()`. Both validate every key and
    check that the three secrets can be read, but keep the secret values out of the object:
    the accessor methods read them again on each call.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    heartland: HeartlandSettings
    yotpo: YotpoSettings = Field(default_factory=YotpoSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    customers: CustomersSettings = Field(default_factory=CustomersSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    offers: OffersSettings = Field(default_factory=OffersSettings)
    performance: PerformanceSettings = Field(default_factory=PerformanceSettings)

    _warnings: tuple[str, ...] = PrivateAttr(default=())

    @property
    def warnings(self) -> tuple[str, ...]:
        """Problems found by `load_settings()` that do not stop a command, one sentence each.

        They never contain a secret value.
        """
        return self._warnings

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() runs the environment and TOML sources itself, so that callers can
        # pass their own environment and every error can name where its value came from.
        # The constructor therefore only validates what it is given.
        return (init_settings,)

    def heartland_token(self) -> str:
        """Read the Heartland API token from its value or its file."""
        return _read_secret(_HEARTLAND_TOKEN, self.heartland.token, self.heartland.token_file)

    def yotpo_guid(self) -> str:
        """Read the Yotpo GUID from its value or its file."""
        return _read_secret(_YOTPO_GUID, self.yotpo.guid, self.yotpo.guid_file)

    def yotpo_api_key(self) -> str:
        """Read the Yotpo API key from its value or its file."""
        return _read_secret(_YOTPO_API_KEY, self.yotpo.api_key, self.yotpo.api_key_file)

    def webhook_secret(self) -> str | None:
        """Read the Heartland webhook secret, or return None when it is not set.

        Raises ConfigError when the secret is too weak, as `_read_webhook_secret` describes.
        """
        ops = self.ops
        return _read_webhook_secret(_WEBHOOK_SECRET, ops.webhook_secret, ops.webhook_secret_file)

    def offers_webhook_secret(self) -> str | None:
        """Read the Yotpo redemption webhook secret, or return None when it is not set.

        Raises ConfigError when the secret is too weak, as `_read_webhook_secret` describes.
        """
        offers = self.offers
        return _read_webhook_secret(
            _OFFERS_WEBHOOK_SECRET, offers.webhook_secret, offers.webhook_secret_file
        )

    @property
    def uses_sandbox(self) -> bool:
        """True when both APIs are on a loopback address, as the local sandbox is."""
        return _is_loopback_url(self.heartland.base_url) and _is_loopback_url(self.yotpo.base_url)

    @property
    def verify_tls(self) -> bool:
        """Whether HTTP clients verify TLS certificates: always, except against the sandbox."""
        return not self.uses_sandbox

    def exclusion_rules(self) -> ExclusionRules:
        """Build the exclusion rules that `decide()` applies to each ticket."""
        rules = self.rules
        return ExclusionRules(
            location_ids=frozenset(rules.exclude_location_ids),
            station_ids=frozenset(rules.exclude_station_ids),
            sales_reps=frozenset(rules.exclude_sales_reps),
            public_id_prefixes=rules.exclude_public_id_prefixes,
            customer_public_ids=frozenset(rules.exclude_customer_public_ids),
            ticket_custom=_custom_field_rules(rules.exclude_ticket_custom_fields),
            customer_custom=_custom_field_rules(rules.exclude_customer_custom_fields),
            minimum_amount_cents=rules.minimum_amount_cents,
            go_live=self.sync.go_live,
        )

    def amount_basis(self) -> AmountBasis:
        """Build the choice of ticket lines that count towards the points-eligible amount."""
        return AmountBasis(
            include_tax=self.sync.include_tax,
            include_shipping=self.sync.include_shipping,
            include_gift_cards=self.sync.include_gift_cards,
        )

    def secret_files(self) -> list[tuple[str, Path]]:
        """List each secret file that is set, as (its key such as "heartland.token_file", path)."""
        files = []
        for secret in _SECRET_KEYS:
            path = getattr(getattr(self, secret.section), secret.file_key)
            if path is not None:
                files.append((f"{secret.label}_file", path))
        return files

    def describe(self) -> dict[str, Any]:
        """Return the effective settings as JSON-ready data, secrets shown as set or missing.

        A secret counts as "(set)" when its value or its file is configured. The file path is
        shown, the secret value never.
        """
        data = self.model_dump(mode="json")
        for secret in _SECRET_KEYS:
            section = data[secret.section]
            configured = section[secret.key] is not None or section[secret.file_key] is not None
            unset = "(missing)" if secret.required else "(not set)"
            section[secret.key] = "(set)" if configured else unset
        return data


def _custom_field_rules(
    rules: tuple[CustomFieldRuleSettings, ...],
) -> tuple[CustomFieldRule, ...]:
    return tuple(CustomFieldRule(rule.key, rule.equals) for rule in rules)


# A line break or another control character inside a secret: no HTTP header can carry it.
_INSIDE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _header_problem(text: str) -> str | None:
    """Return why a secret cannot be sent as an HTTP header value, or None when it can.

    http.client encodes header values as Latin-1, so any other character fails every request.
    The reason never quotes the secret.
    """
    if _INSIDE_CONTROL.search(text):
        return (
            "contains a line break or another control character, which no HTTP header can "
            "carry: keep the secret on one line"
        )
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return (
            "contains a character outside Latin-1, which no HTTP header can carry: copy the "
            "secret again from where it was issued"
        )
    return None


def _read_secret(secret: _SecretKey, value: SecretStr | None, path: Path | None) -> str:
    if value is not None and value.get_secret_value().strip():
        return value.get_secret_value().strip()
    if path is not None:
        return _read_secret_file(secret, path)
    raise ConfigError([secret.missing_problem()])


def _read_webhook_secret(
    secret: _SecretKey, value: SecretStr | None, path: Path | None
) -> str | None:
    """Read the shared secret of a webhook receiver, or return None when it is not set.

    Raises ConfigError unless the secret is at least 24 characters of A-Z, a-z, 0-9, `-` and
    `_`, with at least 12 different ones. Both receivers accept it as a URL path segment, and
    anyone who guesses it can post to them: a forged Yotpo redemption becomes a real
    Heartland coupon.
    """
    if value is None and path is None:
        return None
    text = _read_secret(secret, value, path)
    if (
        WEBHOOK_SECRET_PATTERN.fullmatch(text) is None
        or len(set(text)) < WEBHOOK_SECRET_MIN_DISTINCT
    ):
        raise ConfigError(
            [
                f"{secret.label} must be at least 24 characters of A-Z, a-z, 0-9, '-' and '_', "
                f"with at least {WEBHOOK_SECRET_MIN_DISTINCT} different ones: make one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            ]
        )
    return text


def _read_secret_file(secret: _SecretKey, path: Path) -> str:
    """Read a secret file, stripped of surrounding whitespace such as the final newline.

    A UTF-8 byte order mark, which some Windows editors write, is dropped too. Raises
    ConfigError naming the file, what is wrong and the fix.
    """
    contains = f"write the value of {secret.label} in it, on one line"
    reason: str
    try:
        data = _read_regular_file(path)
    except _NotRegularFileError as exc:
        reason = str(exc)
    except FileNotFoundError:
        reason = "file not found"
    except PermissionError:
        user = _current_user_name()
        reason = (
            f"permission denied: the user that runs yotposync ({user}) needs read access to "
            f"the file and to the folders above it, such as with chown {user} {path} and "
            f"chmod 600 {path}"
        )
    except OSError as exc:
        reason = f"cannot be read: {exc.strerror or type(exc).__name__}"
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = None
            reason = f"is not UTF-8 text: save it as UTF-8 or plain ASCII text, and {contains}"
        if text is None:
            pass
        elif not text.strip():
            spaces = " (it contains only spaces)" if text.strip("\r\n") else ""
            reason = f"file is empty{spaces}: {contains}"
        elif (problem := _header_problem(text.strip())) is not None:
            reason = problem
        else:
            return text.strip()
    raise ConfigError([f"{secret.label}_file = {json.dumps(str(path))}: {reason}"])


class _NotRegularFileError(OSError):
    """A secret file path that names a folder, a FIFO, a device or a socket."""


def _read_regular_file(path: Path) -> bytes:
    """Read the regular file at `path`, following symbolic links, or raise OSError.

    Anything else is rejected before it is opened, because reading a FIFO waits for a writer
    and reading a device may never end. The file is opened with O_NONBLOCK and checked again,
    in case the path was replaced between the two steps.
    """
    _reject_not_regular(path.stat().st_mode, path)
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as file:
        _reject_not_regular(os.fstat(file.fileno()).st_mode, path)
        return file.read()


def _reject_not_regular(mode: int, path: Path) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise _NotRegularFileError("is a directory, not a file")
    if stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a special file"
    raise _NotRegularFileError(
        f"is {kind}, not a regular file: point it at a regular file that contains the secret"
    )


def _current_user_name() -> str:
    """Return the name of the user this process runs as, or its uid when it has no name."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    require_secrets: bool = True,
    check_secrets: bool | frozenset[str] = True,
) -> Settings:
    """Load the settings from a TOML file and `YOTPOSYNC_...` environment variables.

    The file is `path`, or else the one named by `YOTPOSYNC_CONFIG`. `environ` replaces
    `os.environ` when given. Raises ConfigError listing every problem found, one per line,
    each naming the key, the value (never for a secret) and what is allowed. Commands that
    read only the ledger pass `require_secrets=False`, so a missing secret is not a problem
    for them (a secret given in a bad way still is). A command that never reads a secret
    also passes `check_secrets=False`, and then a secret given in a bad way becomes one of
    the settings' `warnings`. A command that reads the secrets of some sections only passes
    their names, such as `frozenset({"yotpo"})`. A secret value written in the file is
    always a warning.
    """
    environment = os.environ if environ is None else environ
    config_path = _config_path(path, environment)
    file_data = _read_config_file(config_path)

    clean_environment, problems = _check_environment(environment)
    environment_data = _EnvironmentSource(Settings, clean_environment)()
    problems += _parse_environment_booleans(environment_data)

    data = _merge(file_data, environment_data)
    credentials_directory = environment.get(CREDENTIALS_DIRECTORY_VARIABLE) or None
    used_names = frozenset(name for name, value in clean_environment.items() if value)
    return _build_settings(
        data,
        problems,
        used_names,
        credentials_directory,
        require_secrets=require_secrets,
        check_secrets=check_secrets,
        warnings=_secrets_in_file(file_data),
    )


def sandbox_settings(
    heartland_url: str,
    yotpo_url: str,
    ledger_path: Path | str,
    **overrides: Mapping[str, Any],
) -> Settings:
    """Build the settings for the local sandbox, used by `yotposync demo` and by tests.

    The result uses the sandbox's public test credentials and the exclusion rules that the
    sandbox's generated store is built for. `overrides` are sections whose keys replace the
    defaults, e.g. `sync={"overlap_seconds": 0}`. The environment is not read.
    """
    data: dict[str, Any] = {
        "heartland": {"base_url": heartland_url, "token": SANDBOX_HEARTLAND_TOKEN},
        "yotpo": {
            "base_url": yotpo_url,
            "guid": SANDBOX_YOTPO_GUID,
            "api_key": SANDBOX_YOTPO_API_KEY,
        },
        "ledger": {"path": str(ledger_path)},
        "rules": {
            "exclude_customer_public_ids": ["CASH"],
            "exclude_ticket_custom_fields": [{"key": "web_order_no"}],
            "exclude_customer_custom_fields": [{"key": "staff", "equals": "yes"}],
        },
    }
    return _build_settings(_merge(data, overrides), [], frozenset(), None)


def _config_path(path: Path | None, environment: Mapping[str, str]) -> Path:
    if path is not None:
        return Path(path).expanduser()
    named = environment.get(CONFIG_PATH_VARIABLE)
    if named:
        return Path(named).expanduser()
    raise ConfigError(
        [f"no configuration file given: pass --config PATH or set {CONFIG_PATH_VARIABLE}"]
    )


def _read_config_file(path: Path) -> dict[str, Any]:
    """Parse the TOML file, turning every way it can fail into one ConfigError line."""
    subject = f"configuration file {path}"
    if not path.exists():
        raise ConfigError(
            [f"{subject} not found: pass --config PATH or set {CONFIG_PATH_VARIABLE} to its path"]
        )
    if not path.is_file():
        raise ConfigError([f"{subject} is not a regular file: give the path of a TOML file"])
    try:
        source = TomlConfigSettingsSource(Settings, toml_file=path)
    except PermissionError:
        raise ConfigError([f"{subject} cannot be read: permission denied"]) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([f"{subject} cannot be read: {reason}"]) from None
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message names the line and column, and never quotes the file's text.
        raise ConfigError([f"{subject} is not valid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{subject} is not valid UTF-8 text"]) from None
    return dict(source())


class _EnvironmentSource(EnvSettingsSource):
    """The pydantic-settings environment source, reading a given mapping, not `os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environment: Mapping[str, str]) -> None:
        self._environment = environment
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Names match case-insensitively, as in pydantic-settings' default. An empty variable
        # counts as unset, so `YOTPOSYNC_HEARTLAND__TOKEN=` does not hide a token file.
        return {name.lower(): value for name, value in self._environment.items() if value != ""}


def _check_environment(environment: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Drop and report `YOTPOSYNC_...` variables that name no setting or carry invalid JSON.

    pydantic-settings parses array and section variables as JSON and stops at the first
    failure with a message that names only the section. Checking first lets every other
    variable still be validated and reported.
    """
    sections = section_models(Settings)
    clean: dict[str, str] = {}
    problems: list[str] = []
    for name, value in environment.items():
        problem = _environment_json_problem(name, value, sections)
        if problem is None:
            clean[name] = value
        else:
            problems.append(problem)
    return clean, problems


def _environment_json_problem(
    name: str, value: str, sections: Mapping[str, type[BaseModel]]
) -> str | None:
    lower = name.lower()
    if not lower.startswith(ENV_PREFIX.lower()) or value == "":
        return None
    parts = lower.removeprefix(ENV_PREFIX.lower()).split("__")
    if parts[0] not in sections:
        if len(parts) == 1:
            return _single_underscore_problem(name, parts[0], sections)
        close = difflib.get_close_matches(parts[0], list(sections), n=1)
        hint = f"did you mean {ENV_PREFIX}{close[0].upper()}__...?" if close else ""
        known = ", ".join(sorted(sections))
        return f"{name.upper()}: there is no section {parts[0]!r} (sections: {known}); " + (
            hint or "remove the variable or fix its name"
        )

    if len(parts) > 2:
        return _nested_key_problem(name, parts, sections[parts[0]])
    if len(parts) == 1:
        # A whole section may contain secrets, so the value is not shown. The JSON error
        # names only a position.
        try:
            section = json.loads(value)
        except ValueError as exc:
            return (
                f"{name.upper()} is not valid JSON ({exc}); it must be a JSON object of "
                f"{parts[0]} keys, or set one key with {name.upper()}__<KEY>"
            )
        if not isinstance(section, dict):
            return (
                f"{name.upper()} must be a JSON object of {parts[0]} keys, not a JSON "
                f"{_json_type_name(section)}"
            )
    is_array = len(parts) == 2 and _expects_array(sections[parts[0]], parts[1])
    if is_array and not isinstance(_json_or_none(value), list):
        return f"{name.upper()} = {format_value(value)}: must be a JSON array, e.g. [1, 2]"
    return None


# Environment variables are text, so a true/false setting read from one accepts the words
# that pydantic's lax mode accepts: true/false, 1/0, yes/no, on/off, t/f and y/n.
_LAX_BOOLEAN = TypeAdapter(bool)


def _parse_environment_booleans(data: dict[str, Any]) -> list[str]:
    """Convert the text of true/false settings from the environment to booleans, in place.

    A value that is not one of the accepted words is removed and reported, naming its variable.
    """
    problems = []
    for section, model in section_models(Settings).items():
        values = data.get(section)
        if not isinstance(values, dict):
            continue
        for key, value in list(values.items()):
            field = model.model_fields.get(key)
            if field is None or field.annotation is not bool or not isinstance(value, str):
                continue
            try:
                values[key] = _LAX_BOOLEAN.validate_python(value)
            except ValidationError:
                del values[key]
                variable = f"{ENV_PREFIX}{section}__{key}".upper()
                problems.append(
                    f"{variable} = {format_value(value)}: must be true or false "
                    "(1 or 0, yes or no, on or off are accepted too)"
                )
    return problems


def _single_underscore_problem(
    name: str, rest: str, sections: Mapping[str, type[BaseModel]]
) -> str | None:
    """Report a `YOTPOSYNC_` variable without `__` that is neither a section nor the config path.

    Such a variable would be ignored, and with it a go-live date or an exclusion rule.
    """
    if name.upper() == CONFIG_PATH_VARIABLE:
        return None
    longest_first = sorted(sections, key=len, reverse=True)
    section = next((known for known in longest_first if rest.startswith(known + "_")), None)
    if section is not None:
        key = rest.removeprefix(section + "_")
        hint = f"Did you mean {ENV_PREFIX}{section.upper()}__{key.upper()}?"
    else:
        hint = f"Name a setting {ENV_PREFIX}<SECTION>__<KEY>, e.g. {ENV_PREFIX}SYNC__GO_LIVE."
    return (
        f"{name.upper()} is not a setting, because a section and its key are joined by two "
        f"underscores. {hint}"
    )


def _nested_key_problem(name: str, parts: list[str], model: type[BaseModel]) -> str:
    """Report a `YOTPOSYNC_` variable with a second `__`, such as `..._SYNC__OVERLAP__SECONDS`.

    No key of a section is a table (arrays of tables are given whole, as JSON), so
    pydantic-settings would read such a variable as an unknown table, and its error would
    name the key `sync.overlap` but not the variable.
    """
    section = parts[0]
    key = "_".join(part for part in parts[1:] if part)
    close = key if key in model.model_fields else None
    if close is None:
        matches = difflib.get_close_matches(key, list(model.model_fields), n=1)
        close = matches[0] if matches else None
    if close is not None:
        hint = f"Did you mean {ENV_PREFIX}{section.upper()}__{close.upper()}?"
    else:
        hint = f"The {section} keys are {', '.join(model.model_fields)}."
    return (
        f"{name.upper()} is not a setting, because two underscores separate only the section "
        f"from its key, and the key itself has single underscores. {hint}"
    )


def _json_type_name(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _expects_array(model: type[BaseModel], key: str) -> bool:
    field = model.model_fields.get(key)
    return field is not None and get_origin(field.annotation) is tuple


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` updated by `override`, merging tables key by key and replacing arrays."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _build_settings(
    data: dict[str, Any],
    problems: list[str],
    environment_names: frozenset[str],
    credentials_directory: str | None,
    *,
    require_secrets: bool = True,
    check_secrets: bool | frozenset[str] = True,
    warnings: list[str] | None = None,
) -> Settings:
    """Validate merged raw settings, raising one ConfigError with every problem found.

    `warnings` and, when `check_secrets` is False, the problems with how secrets are given
    become the settings' `warnings`.
    """
    warnings = list(warnings or [])
    problems = problems + _pop_unknown_sections(data)
    data.setdefault("heartland", {})
    from_current_folder = _resolve_secret_files(data, credentials_directory)

    lower_names = frozenset(name.lower() for name in environment_names)
    settings: Settings | None = None
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        problems.extend(
            problem_line(
                error,
                lower_names,
                root=Settings,
                secret_locations=_SECRET_LOCATIONS,
                host_only_locations=_HOST_ONLY_LOCATIONS,
                environment_prefix=ENV_PREFIX,
            )
            for error in exc.errors()
        )
    # `check_secrets` may name the sections whose secrets the command reads; the problems of
    # the others are warnings, as for a command that reads no secret.
    checked = _SECRET_SECTIONS if check_secrets is True else frozenset(check_secrets or ())
    for sections, found in (
        (checked, problems),
        (_SECRET_SECTIONS - checked, warnings),
    ):
        found.extend(
            _secret_problems(
                data,
                lower_names,
                require_secrets=require_secrets and sections is checked,
                sections=sections,
                from_current_folder=from_current_folder,
            )
        )

    if problems or settings is None:
        raise ConfigError(problems)
    warnings.extend(_open_listen_warnings(settings.ops.listen))
    settings._warnings = tuple(warnings)
    return settings


def _open_listen_warnings(listen: str | None) -> list[str]:
    """Warn when the health and metrics endpoints listen on every interface or a public address.

    They have no authentication. A private network address is left alone.
    """
    if not listen:
        return []
    host = listen.rpartition(":")[0].strip("[]")
    try:
        address = ipaddress.ip_address(host) if host else None
    except ValueError:
        return []  # a host name: where it points is not known here
    if address is not None and not address.is_unspecified and not address.is_global:
        return []
    return [
        f'ops.listen = "{listen}" serves /healthz and /metrics without authentication to '
        "other hosts. Use 127.0.0.1, or a private network address behind a firewall."
    ]


def _pop_unknown_sections(data: dict[str, Any]) -> list[str]:
    """Remove and report top-level names that are not sections.

    They are removed before validation because BaseSettings reads keyword arguments that
    start with an underscore as options of its own.
    """
    sections = section_models(Settings)
    problems = []
    for name in [name for name in data if name not in sections]:
        value = data.pop(name)
        if isinstance(value, Mapping):
            close = difflib.get_close_matches(name, list(sections), n=1)
            if close:
                problems.append(f"unknown section {name}; did you mean {close[0]}?")
            else:
                problems.append(f"unknown section {name}: sections are {', '.join(sections)}")
            continue
        owners = [section for section, model in sections.items() if name in model.model_fields]
        if owners:
            problems.append(
                f"unknown key {name}; did you mean {owners[0]}.{name}? Keys belong in a section"
            )
        else:
            problems.append(f"unknown key {name}: every key belongs in a section such as heartland")
    return problems


def _secrets_in_file(file_data: Mapping[str, Any]) -> list[str]:
    """Warn about each secret whose value is written in the configuration file itself.

    The sandbox's public test credentials protect nothing, so they are not reported.
    """
    warnings = []
    for secret in _SECRET_KEYS:
        section = file_data.get(secret.section)
        value = section.get(secret.key) if isinstance(section, Mapping) else None
        if not isinstance(value, str) or value.strip() in ("", *_SANDBOX_CREDENTIALS):
            continue
        warnings.append(
            f"{secret.label} is written in the configuration file, which should contain no "
            f"secrets. It still works, but move it to the environment variable "
            f"{secret.variable} or to a file named by {secret.label}_file, then delete it "
            "from the configuration file."
        )
    return warnings


def _resolve_secret_files(data: dict[str, Any], credentials_directory: str | None) -> set[Path]:
    """Make secret file paths absolute, relative ones against `$CREDENTIALS_DIRECTORY`.

    Returns the paths that were relative and resolved against the current folder, because
    `$CREDENTIALS_DIRECTORY` was not set, so that the error for a missing file names it.
    """
    base = Path(credentials_directory) if credentials_directory else Path.cwd()
    from_current_folder: set[Path] = set()
    for secret in _SECRET_KEYS:
        section = data.get(secret.section)
        if not isinstance(section, dict):
            continue
        value = section.get(secret.file_key)
        if isinstance(value, str | Path) and str(value) != "":
            path = Path(value).expanduser()
            if not path.is_absolute():
                path = base / path
                if not credentials_directory:
                    from_current_folder.add(path)
            section[secret.file_key] = path
    return from_current_folder


def _secret_problems(
    data: Mapping[str, Any],
    environment_names: frozenset[str] = frozenset(),
    *,
    require_secrets: bool = True,
    sections: Collection[str] | None = None,
    from_current_folder: Collection[Path] = (),
) -> list[str]:
    """Check that each secret is given exactly one way and, for a file, can be read.

    `environment_names` are the lower-case names of the variables that were set, so that a
    problem names the variable a value came from. `sections`, when given, limits the check
    to the secrets of those sections. A missing file in `from_current_folder` was a relative
    path read without `$CREDENTIALS_DIRECTORY`, and its problem names that variable.
    """
    problems: list[str] = []
    for secret in _SECRET_KEYS:
        if sections is not None and secret.section not in sections:
            continue
        section = data.get(secret.section, {})
        if not isinstance(section, Mapping):
            continue  # the section's own type error is reported by validation
        value = section.get(secret.key)
        path = section.get(secret.file_key)
        variables = {
            key: f"{ENV_PREFIX}{secret.section}__{key}".upper()
            for key in (secret.key, secret.file_key)
        }
        origin = {
            key: f" (from {name})" if name.lower() in environment_names else ""
            for key, name in variables.items()
        }
        if value is not None and path is not None:
            problems.append(
                f"{secret.label}{origin[secret.key]} and {secret.label}_file"
                f"{origin[secret.file_key]} are both set: keep only one of them"
            )
        elif value is not None:
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if isinstance(text, str) and not text.strip():
                problems.append(f"{secret.label} is empty: {secret.how_to_set()}")
            elif isinstance(text, str) and (problem := _header_problem(text.strip())):
                problems.append(f"{secret.label}{origin[secret.key]} {problem}")
        elif path is not None:
            if isinstance(path, Path):
                try:
                    _read_secret_file(secret, path)
                except ConfigError as exc:
                    problems.extend(exc.problems)
                    if path in from_current_folder and not path.exists():
                        problems[-1] += (
                            f". A relative path is read from ${CREDENTIALS_DIRECTORY_VARIABLE}, "
                            "which is not set, so it was looked for in the current folder: "
                            f"set {CREDENTIALS_DIRECTORY_VARIABLE} to the folder of the secret "
                            "files, such as /etc/yotposync/credentials"
                        )
            elif path == "":
                problems.append(f"{secret.label}_file is empty: give the path of a file")
        elif require_secrets and secret.is_required(section):
            problems.append(secret.missing_problem())
    return problems
