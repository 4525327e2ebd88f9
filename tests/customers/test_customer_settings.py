"""The `[customers]` settings: defaults and the checks on their values."""

from __future__ import annotations

import pytest

from yotposync.config import CustomersSettings, sandbox_settings
from yotposync.errors import ConfigError


def settings_with(**customers: object) -> CustomersSettings:
    built = sandbox_settings(
        "http://127.0.0.1:8701/api",
        "http://127.0.0.1:8702/api/v2",
        "/tmp/unused-ledger.sqlite3",
        customers=customers,
    )
    return built.customers


def test_defaults_name_sandbox_fields() -> None:
    options = CustomersSettings()
    assert options.opt_in_field == "loyalty_opt_in"
    assert options.points_field == "loyalty_points"
    assert options.enrol_all_with_email is False


def test_region_upper_cased() -> None:
    assert settings_with(default_phone_region=" gb ").default_phone_region == "GB"


def test_unknown_region_rejected() -> None:
    with pytest.raises(ConfigError, match=r"customers\.default_phone_region"):
        settings_with(default_phone_region="XX")


def test_unknown_time_zone_rejected() -> None:
    with pytest.raises(ConfigError, match="IANA time zone"):
        settings_with(field_time_zone="Mars/Olympus")


def test_repeated_field_key_rejected() -> None:
    with pytest.raises(ConfigError, match="'loyalty_points' is used twice"):
        settings_with(tier_field="loyalty_points")


def test_blank_opt_in_values_rejected() -> None:
    with pytest.raises(ConfigError, match="at least one value"):
        settings_with(opt_in_values=[" "])


def test_short_offers_length_rejected() -> None:
    with pytest.raises(ConfigError, match=r"customers\.offers_max_length"):
        settings_with(offers_max_length=5)
