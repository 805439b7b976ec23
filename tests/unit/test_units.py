"""The byte-size parser refuses what it cannot read exactly."""

import pytest

from lmbench.units import format_bytes, parse_bytes


@pytest.mark.parametrize(("text", "expected"), [
    ("12GB", 12 * 10**9), ("12gb", 12 * 10**9), ("12G", 12 * 10**9), ("1.5 GiB", 3 * 2**29),
    ("512M", 512 * 10**6), ("100B", 100), (" 2 TiB ", 2 * 2**40), ("0.5KB", 500),
])
def test_sizes_with_units(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["12", "12XB", "twelve", "", "GB", "1.2.3GB", "-1GB"])
def test_unitless_or_unknown_sizes_are_refused(text):
    with pytest.raises(ValueError, match="unit"):
        parse_bytes(text)


def test_format_bytes():
    assert format_bytes(12e9) == "12.00 GB"
    assert format_bytes(999) == "999 B"
    assert format_bytes(float("nan")) == "–"


def test_limits_cli_refuses_a_unitless_budget_with_a_usage_error(capsys):
    from lmbench.limits.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--budget", "12"])
    assert stop.value.code == 2
    assert "write a number and a unit" in capsys.readouterr().err
