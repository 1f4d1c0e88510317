"""Time unit conversions: exact for whole numbers, rounded to the nearest nanosecond for
fractions, and a clear ConfigError naming the setting for what no int64 nanosecond count
holds (negative, NaN, infinite, past 2262), whatever number comes in."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provarmor.model.errors import ConfigError
from provarmor.model.time_units import (
    MAX_NS,
    NS_PER_HOUR,
    NS_PER_MS,
    NS_PER_SECOND,
    hours_to_ns,
    ms_to_ns,
    ns_to_hours,
    ns_to_iso,
    ns_to_ms,
    ns_to_seconds,
    seconds_to_ns,
)

MAX_SECONDS = MAX_NS // NS_PER_SECOND


@pytest.mark.parametrize(
    ("seconds", "ns"),
    [
        (0, 0),
        (60, 60_000_000_000),
        (0.25, 250_000_000),
        (1.1, 1_100_000_000),
        (0.3, 300_000_000),  # 0.3 * 1e9 is 299999999.99999994 in floats: rounded, not cut
        (1e-7, 100),  # 99.99999999999999 in floats
        (4e-10, 0),
        (6e-10, 1),
        (86_400.0, 86_400 * NS_PER_SECOND),
        (MAX_SECONDS, MAX_SECONDS * NS_PER_SECOND),  # an int is exact, however large
    ],
)
def test_seconds_are_whole_nanoseconds_rounded_to_the_nearest(seconds, ns):
    converted = seconds_to_ns(seconds)
    assert converted == ns
    assert type(converted) is int


def test_milliseconds_and_hours():
    assert ms_to_ns(1000) == NS_PER_SECOND
    assert ms_to_ns(0.5) == 500_000
    assert hours_to_ns(72.0) == 72 * NS_PER_HOUR
    assert hours_to_ns(1 / 60) == 60 * NS_PER_SECOND


@pytest.mark.parametrize(
    "bad", [-1, -0.5, -5e-324, math.nan, math.inf, -math.inf, MAX_SECONDS + 1, 1e30]
)
def test_what_no_nanosecond_count_holds_is_a_config_error_naming_the_setting(bad):
    with pytest.raises(ConfigError) as caught:
        seconds_to_ns(bad, what="detection.dedup_window_seconds")
    assert caught.value.location == "detection.dedup_window_seconds"
    assert f"{bad!r} seconds is out of range (0 to {MAX_SECONDS:,} seconds)" in str(caught.value)


def test_each_unit_names_itself_and_its_own_limit():
    with pytest.raises(ConfigError, match=r"-5 milliseconds is out of range \(0 to "):
        ms_to_ns(-5)
    with pytest.raises(ConfigError, match=rf"inf hours .*\(0 to {MAX_NS // NS_PER_HOUR:,} hours"):
        hours_to_ns(math.inf, what="investigation.lookback_hours")


def test_back_to_seconds_hours_and_milliseconds():
    assert ns_to_hours(90 * 60 * NS_PER_SECOND) == 1.5
    assert ns_to_seconds(1_500_000_000) == 1.5
    assert ns_to_seconds(seconds_to_ns(0.25)) == 0.25
    assert ns_to_ms(1_999_999) == 1  # rounded down: OCSF epoch milliseconds
    assert ns_to_ms(2 * NS_PER_MS) == 2
    assert ns_to_ms(1_795_875_758_873_000_123) == 1_795_875_758_873


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers())
def test_any_number_gives_a_count_in_range_or_a_config_error(value):
    if math.isnan(value) or value < 0 or value > MAX_SECONDS + 1:
        with pytest.raises(ConfigError, match="out of range"):
            seconds_to_ns(value)
    elif value <= MAX_SECONDS:
        ns = seconds_to_ns(value)
        assert 0 <= ns <= MAX_NS
        assert abs(ns - value * NS_PER_SECOND) <= max(0.5, value * NS_PER_SECOND * 1e-15)


@given(st.integers(min_value=0, max_value=2**51))
def test_durations_up_to_26_days_survive_the_round_trip_through_seconds(ns):
    assert seconds_to_ns(ns_to_seconds(ns)) == ns


def test_iso_times_are_cut_to_the_microsecond_exactly() -> None:
    # a float of these nanoseconds rounds .158877999 up to .158878: the text must not
    assert ns_to_iso(1_796_579_171_158_877_999) == "2026-12-06T17:46:11.158877+00:00"
    assert ns_to_iso(0) == "1970-01-01T00:00:00.000000+00:00"
    assert ns_to_iso(MAX_NS).startswith("2262-04-11T23:47:16.854775")
