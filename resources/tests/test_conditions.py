"""Policy conditions: evaluation, expiry algebra and input validation (domain.md §2.13)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from firezone.errors import ValidationFailed
from resources import conditions as c
from resources import time_windows as tw
from resources.conditions import (
    Condition,
    ConditionValueError,
    RequestContext,
    Result,
)

PROVIDER = uuid.UUID("6a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d")
OTHER_PROVIDER = uuid.UUID("11111111-2222-4333-8444-555555555555")
# Friday 2021-01-01 10:00 UTC.
NOW = datetime(2021, 1, 1, 10, 0, tzinfo=UTC)


def ctx(**kwargs: Any) -> RequestContext:
    defaults: dict[str, Any] = {
        "now": NOW,
        "remote_ip": "189.172.0.9",
        "remote_ip_location_region": "US",
        "provider_id": PROVIDER,
        "client_verified": True,
    }
    defaults.update(kwargs)
    return RequestContext(**defaults)


def cond(prop: str, operator: str, *values: str) -> dict[str, object]:
    return {"property": prop, "operator": operator, "values": list(values)}


# --- single properties --------------------------------------------------------------------------


def test_no_conditions_conform_without_expiry() -> None:
    assert c.evaluate([], ctx()) == Result(allowed=True, expires_at=None)
    assert c.evaluate(None, ctx()) == Result(allowed=True, expires_at=None)


@pytest.mark.parametrize(
    ("operator", "values", "region", "allowed"),
    [
        ("is_in", ["US", "CA"], "US", True),
        ("is_in", ["CA"], "US", False),
        ("is_in", ["us"], "US", True),
        ("is_not_in", ["CA"], "US", True),
        ("is_not_in", ["US"], "US", False),
        ("is_in", ["US"], None, False),
        ("is_not_in", ["US"], None, True),
    ],
)
def test_region(operator: str, values: list[str], region: str | None, allowed: bool) -> None:
    result = c.evaluate(
        [cond("remote_ip_location_region", operator, *values)],
        ctx(remote_ip_location_region=region),
    )
    assert result.allowed is allowed
    if not allowed:
        assert result.violated_properties == ("remote_ip_location_region",)


@pytest.mark.parametrize(
    ("operator", "values", "ip", "allowed"),
    [
        ("is_in_cidr", ["189.172.0.0/24"], "189.172.0.9", True),
        ("is_in_cidr", ["10.10.10.1", "189.172.0.9"], "189.172.0.9", True),
        ("is_in_cidr", ["189.172.0.1/24"], "189.172.0.200", True),  # host bits allowed
        ("is_in_cidr", ["189.172.1.0/24"], "189.172.0.9", False),
        ("is_in_cidr", ["189.172.0.0/24"], "::ffff:189.172.0.9", True),
        ("is_in_cidr", ["2001:db8::/32"], "2001:db8::5", True),
        ("is_in_cidr", ["2001:db8::5"], "2001:db8::6", False),  # bare IPv6 is /128
        ("is_in_cidr", ["2001:db8::5"], "2001:db8::5", True),
        ("is_in_cidr", ["0.0.0.0/0"], "2001:db8::5", False),
        ("is_not_in_cidr", ["189.172.1.0/24"], "189.172.0.9", True),
        ("is_not_in_cidr", ["189.172.0.0/16"], "189.172.0.9", False),
        ("is_in_cidr", ["not-an-ip"], "189.172.0.9", False),
        ("is_not_in_cidr", ["not-an-ip"], "189.172.0.9", False),  # malformed fails closed
        ("is_in_cidr", ["189.172.0.0/24"], None, False),
        ("is_not_in_cidr", ["189.172.0.0/24"], None, False),
    ],
)
def test_remote_ip(operator: str, values: list[str], ip: str | None, allowed: bool) -> None:
    result = c.evaluate([cond("remote_ip", operator, *values)], ctx(remote_ip=ip))
    assert result.allowed is allowed


@pytest.mark.parametrize(
    ("operator", "values", "provider", "allowed"),
    [
        ("is_in", [str(PROVIDER)], PROVIDER, True),
        ("is_in", [str(PROVIDER).upper()], str(PROVIDER), True),
        ("is_in", [str(OTHER_PROVIDER)], PROVIDER, False),
        ("is_not_in", [str(OTHER_PROVIDER)], PROVIDER, True),
        ("is_not_in", [str(PROVIDER)], PROVIDER, False),
        # Service accounts have no identity, hence no provider (§8 item 7).
        ("is_in", [str(PROVIDER)], None, False),
        ("is_not_in", [str(PROVIDER)], None, True),
    ],
)
def test_provider_id(
    operator: str, values: list[str], provider: uuid.UUID | str | None, allowed: bool
) -> None:
    result = c.evaluate([cond("provider_id", operator, *values)], ctx(provider_id=provider))
    assert result.allowed is allowed


@pytest.mark.parametrize(
    ("values", "verified", "allowed"),
    [
        (["true"], True, True),
        (["true"], False, False),
        (["false"], False, True),
        ([], False, True),
    ],
)
def test_client_verified(values: list[str], verified: bool, allowed: bool) -> None:
    result = c.evaluate([cond("client_verified", "is", *values)], ctx(client_verified=verified))
    assert result.allowed is allowed


def test_unknown_property_or_operator_fails() -> None:
    result = c.evaluate(
        [cond("remote_ip_location_region", "contains", "US"), cond("shoe_size", "is", "42")],
        ctx(),
    )
    assert result == Result.forbidden(["remote_ip_location_region", "shoe_size"])


# --- time windows -------------------------------------------------------------------------------


def test_time_window_spec_example_merges_ranges() -> None:
    result = c.evaluate(
        [
            cond(
                "current_utc_datetime",
                "is_in_day_of_week_time_ranges",
                "F/09:00-11:00,11-15,14-22/UTC",
            )
        ],
        ctx(),
    )
    assert result == Result.conforms(datetime(2021, 1, 1, 22, 0, tzinfo=UTC))


def test_time_window_spec_example_with_zone() -> None:
    # 2021-01-01T01:00Z is Thursday 17:00 in US/Pacific.
    now = datetime(2021, 1, 1, 1, 0, tzinfo=UTC)
    result = c.evaluate(
        [cond("current_utc_datetime", "is_in_day_of_week_time_ranges", "R/true/US/Pacific")],
        ctx(now=now),
    )
    assert result == Result.conforms(datetime(2021, 1, 1, 7, 59, 59, tzinfo=UTC))


def test_time_window_uses_local_weekday_across_midnight() -> None:
    # Monday 23:30 UTC is Tuesday 08:30 in Tokyo.
    now = datetime(2024, 1, 1, 23, 30, tzinfo=UTC)
    tuesday = tw.time_window_expiry(["T/08:00-09:00/Asia/Tokyo"], now)
    assert tuesday == datetime(2024, 1, 2, 0, 0, tzinfo=UTC)
    assert tw.time_window_expiry(["M/08:00-09:00/Asia/Tokyo"], now) is None
    assert tw.time_window_expiry(["M/23-23:59:59/UTC"], now) == datetime(
        2024, 1, 1, 23, 59, 59, tzinfo=UTC
    )


def test_time_window_bounds_are_inclusive() -> None:
    friday_9 = datetime(2021, 1, 1, 9, 0, tzinfo=UTC)
    assert tw.time_window_expiry(["F/09:00-11:00/UTC"], friday_9) is not None
    friday_11 = datetime(2021, 1, 1, 11, 0, tzinfo=UTC)
    assert tw.time_window_expiry(["F/09:00-11:00/UTC"], friday_11) == friday_11
    just_after = friday_11 + timedelta(microseconds=1)
    assert tw.time_window_expiry(["F/09:00-11:00/UTC"], just_after) is None


def test_time_window_picks_latest_matching_entry() -> None:
    values = ["F/08-12/UTC", "F/09-17/Europe/London", "F//UTC"]
    assert tw.time_window_expiry(values, NOW) == datetime(2021, 1, 1, 17, 0, tzinfo=UTC)


def test_time_window_same_day_values_are_concatenated() -> None:
    values = ["F/04-11/UTC", "F/11-22/UTC"]
    assert tw.time_window_expiry(values, NOW) == datetime(2021, 1, 1, 22, 0, tzinfo=UTC)


def test_time_window_malformed_entry_fails_condition() -> None:
    values = ["F/true/UTC", "X/true/UTC"]
    result = c.evaluate(
        [cond("current_utc_datetime", "is_in_day_of_week_time_ranges", *values)], ctx()
    )
    assert result == Result.forbidden(["current_utc_datetime"])


def test_time_window_end_in_dst_gap_ends_at_transition() -> None:
    # New York springs forward on 2024-03-10 at 02:00 EST (07:00Z) straight to 03:00 EDT.
    now = datetime(2024, 3, 10, 6, 30, tzinfo=UTC)  # 01:30 EST, a Sunday
    expiry = tw.time_window_expiry(["U/00:00-02:30/America/New_York"], now)
    assert expiry == datetime(2024, 3, 10, 7, 0, tzinfo=UTC)


def test_time_window_end_in_repeated_hour_uses_first_occurrence() -> None:
    # New York falls back on 2024-11-03: 01:00-02:00 EDT then again 01:00-02:00 EST.
    now = datetime(2024, 11, 3, 4, 30, tzinfo=UTC)  # 00:30 EDT, a Sunday
    expiry = tw.time_window_expiry(["U/00:00-01:30/America/New_York"], now)
    assert expiry == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)  # 01:30 EDT


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("X/08:00:00-17:00:00/UTC", tw.MSG_INVALID_DAY),
        ("Mon/08:00-17:00/UTC", tw.MSG_INVALID_DAY),
        ("M", tw.MSG_INVALID_DAY),
        ("M/08:00-17:00", tw.MSG_TIMEZONE_REQUIRED),
        ("M/08:00-17:00/Mars/Olympus", tw.MSG_INVALID_TIMEZONE),
        ("M/08:00-17:00/localtime", tw.MSG_INVALID_TIMEZONE),
        ("M/08:00-17:00/../../etc/passwd", tw.MSG_INVALID_TIMEZONE),
        ("M/08:00:00-17:00:00-/UTC", "invalid time range: 08:00:00-17:00:00-"),
        ("M/25-17:00:00/UTC", "invalid time range: 25-17:00:00"),
        ("M/08:00:00-25/UTC", "invalid time range: 08:00:00-25"),
        ("M/08:60-09/UTC", "invalid time range: 08:60-09"),
        ("M/8/UTC", "invalid time range: 8"),
        ("M/17:00:00-08:00:00/UTC", tw.MSG_RANGE_ORDER),
    ],
)
def test_time_range_parse_errors(value: str, message: str) -> None:
    with pytest.raises(ConditionValueError) as info:
        tw.parse_day_of_week_time_ranges(value)
    assert info.value.message == message


def test_time_range_parsing() -> None:
    parsed = tw.parse_day_of_week_time_ranges("U/8-17:30,9:5:7.123-9:6, true/US/Pacific")
    assert parsed.day == "U"
    assert parsed.timezone == "US/Pacific"
    assert parsed.ranges == (
        (time(8), time(17, 30)),
        (time(9, 5, 7), time(9, 6)),
        (time(0), time(23, 59, 59)),
    )
    assert tw.parse_day_of_week_time_ranges("M//UTC").ranges == ()
    assert tw.merge_time_ranges(
        [(time(11), time(22)), (time(4), time(11)), (time(23), time(23))]
    ) == [
        (time(4), time(22)),
        (time(23), time(23)),
    ]


# --- combining conditions -----------------------------------------------------------------------


def test_policy_expiry_is_min_over_time_conditions_with_non_expiring_ones_after() -> None:
    # §8 item 4: a non-expiring condition after a passing time condition used to crash.
    conditions = [
        cond("client_verified", "is", "true"),
        cond("current_utc_datetime", "is_in_day_of_week_time_ranges", "F/true/UTC"),
        cond("current_utc_datetime", "is_in_day_of_week_time_ranges", "F/09-12/UTC"),
        cond("provider_id", "is_in", str(PROVIDER)),
        cond("remote_ip", "is_in_cidr", "189.172.0.0/24"),
        cond("remote_ip_location_region", "is_in", "US"),
    ]
    assert c.evaluate(conditions, ctx()) == Result.conforms(datetime(2021, 1, 1, 12, tzinfo=UTC))


def test_violations_are_distinct_in_first_failure_order_and_skip_failed_property() -> None:
    conditions = [
        cond("remote_ip", "is_in_cidr", "10.0.0.0/8"),
        cond("client_verified", "is", "true"),
        cond("remote_ip", "is_in_cidr", "189.172.0.0/24"),  # skipped: remote_ip already failed
        cond("remote_ip_location_region", "is_in", "CA"),
        cond("client_verified", "is", "true"),
    ]
    result = c.evaluate(conditions, ctx(client_verified=False))
    assert result == Result.forbidden(["remote_ip", "client_verified", "remote_ip_location_region"])
    assert result.expires_at is None


def test_condition_objects_and_dicts_are_interchangeable() -> None:
    as_dict = cond("remote_ip_location_region", "is_in", " US ")
    as_obj = Condition.from_dict(as_dict)
    assert as_obj == Condition("remote_ip_location_region", "is_in", ("US",))
    assert as_obj.to_dict() == {
        "property": "remote_ip_location_region",
        "operator": "is_in",
        "values": ["US"],
    }
    assert c.evaluate([as_obj], ctx()) == c.evaluate([as_dict], ctx())
    assert Condition.from_dict({"values": ["US"]}) == as_obj


def test_request_context_requires_aware_now() -> None:
    with pytest.raises(ValueError):
        RequestContext(now=datetime(2021, 1, 1))


# --- choosing among policies and the authorization expiry ---------------------------------------

T1 = datetime(2030, 1, 1, tzinfo=UTC)
T2 = datetime(2030, 6, 1, tzinfo=UTC)


def test_longest_conforming_is_chronological_with_none_as_infinity() -> None:
    results = [
        ("a", Result.conforms(T2)),
        ("b", Result.forbidden(["remote_ip"])),
        ("c", Result.conforms(T1)),
    ]
    assert c.longest_conforming(results) == ("a", Result.conforms(T2))
    assert c.longest_conforming([*results, ("d", Result.conforms(None))]) == (
        "d",
        Result.conforms(None),
    )
    # The first non-expiring policy wins ties.
    assert c.longest_conforming([("x", Result.conforms()), ("y", Result.conforms())])[0] == "x"


def test_longest_conforming_collects_violations_when_none_conform() -> None:
    results = [
        ("a", Result.forbidden(["remote_ip", "client_verified"])),
        ("b", Result.forbidden(["client_verified", "provider_id"])),
    ]
    assert c.longest_conforming(results) == (
        None,
        Result.forbidden(["remote_ip", "client_verified", "provider_id"]),
    )
    assert c.longest_conforming([]) == (None, Result.forbidden([]))


def test_evaluate_policies() -> None:
    policies = [
        ("p1", [cond("remote_ip_location_region", "is_in", "CA")]),
        ("p2", [cond("current_utc_datetime", "is_in_day_of_week_time_ranges", "F/9-12/UTC")]),
        ("p3", [cond("current_utc_datetime", "is_in_day_of_week_time_ranges", "F/9-18/UTC")]),
    ]
    policy, result = c.evaluate_policies(policies, ctx())
    assert policy == "p3"
    assert result.expires_at == datetime(2021, 1, 1, 18, tzinfo=UTC)


def test_authorization_expiry() -> None:
    assert c.authorization_expiry(T1, T2) == T1
    assert c.authorization_expiry(T2, T1) == T1
    assert c.authorization_expiry(None, T1) == T1
    assert c.authorization_expiry(T1, None) == T1  # §8 item 6: null token expiry = +infinity
    assert c.authorization_expiry(None, None) is None


# --- validation ---------------------------------------------------------------------------------


def test_clean_conditions_normalises() -> None:
    cleaned = c.clean_conditions(
        [
            {"values": [" us ", "CA"]},
            cond("remote_ip", "is_not_in_cidr", "10.0.0.0/8", " 2001:db8::1 "),
            cond("provider_id", "is_in", str(PROVIDER).upper()),
            cond("client_verified", "is", "TRUE"),
            cond("current_utc_datetime", "is_in_day_of_week_time_ranges", "M/9-17/Europe/Berlin"),
        ]
    )
    assert [x.to_dict() for x in cleaned] == [
        cond("remote_ip_location_region", "is_in", "US", "CA"),
        cond("remote_ip", "is_not_in_cidr", "10.0.0.0/8", "2001:db8::1"),
        cond("provider_id", "is_in", str(PROVIDER)),
        cond("client_verified", "is", "true"),
        cond("current_utc_datetime", "is_in_day_of_week_time_ranges", "M/9-17/Europe/Berlin"),
    ]
    assert c.clean_conditions(None) == []


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (cond("shoe_size", "is", "42"), {"property": ["is not supported"]}),
        (
            cond("remote_ip", "is_in", "10.0.0.0/8"),
            {"operator": ["must be one of: is_in_cidr, is_not_in_cidr"]},
        ),
        (
            cond("remote_ip_location_region", "contains", "US"),
            {"operator": ["must be one of: is_in, is_not_in"]},
        ),
        (
            cond("remote_ip_location_region", "is_in", "ZZ"),
            {"values": ["ZZ is not a valid country code"]},
        ),
        (
            cond("remote_ip", "is_in_cidr", "10.0.0.0/33", "nope"),
            {
                "values": [
                    "10.0.0.0/33 is not a valid IP address or CIDR range",
                    "nope is not a valid IP address or CIDR range",
                ]
            },
        ),
        (cond("provider_id", "is_in", "abc"), {"values": ["abc is not a valid provider ID"]}),
        (cond("client_verified", "is"), {"values": ["must have exactly one value"]}),
        (
            cond("client_verified", "is", "true", "true"),
            {"values": ["must have exactly one value"]},
        ),
        (cond("client_verified", "is", "yes"), {"values": ["must be true or false"]}),
        (
            cond("current_utc_datetime", "is_in_day_of_week_time_ranges", "M/9-17/Nowhere"),
            {"values": ["invalid timezone"]},
        ),
        (
            cond("current_utc_datetime", "is_in_day_of_week_time_ranges", "M/9-x/UTC"),
            {"values": ["invalid time range: 9-x"]},
        ),
        (
            {"property": "remote_ip", "operator": "is_in_cidr", "values": "10.0.0.0/8"},
            {"values": ["is invalid"]},
        ),
    ],
)
def test_clean_condition_errors(data: dict[str, object], errors: dict[str, list[str]]) -> None:
    with pytest.raises(ValidationFailed) as info:
        c.clean_condition(data)
    assert info.value.errors == errors


def test_time_condition_refused_for_internet_resource() -> None:
    data = cond("current_utc_datetime", "is_in_day_of_week_time_ranges", "M/true/UTC")
    with pytest.raises(ValidationFailed) as info:
        c.clean_condition(data, resource_type="internet")
    assert info.value.errors == {"property": [c.MSG_PROPERTY_NOT_FOR_INTERNET]}
    assert c.clean_condition(data, resource_type="dns").values == ("M/true/UTC",)


def test_clean_conditions_reports_by_index() -> None:
    with pytest.raises(ValidationFailed) as info:
        c.clean_conditions([{"values": ["US"]}, cond("provider_id", "is_in", "x"), "junk"])  # type: ignore[list-item]  # bad input on purpose
    assert info.value.errors == {
        "conditions.1.values": ["x is not a valid provider ID"],
        "conditions.2.condition": ["is invalid"],
    }


# --- properties ---------------------------------------------------------------------------------

ZONES = sorted(z for z in available_timezones() if z != "localtime")
TIMES = st.times().map(lambda t: t.replace(microsecond=0))


def _aware(naive: datetime, zone: ZoneInfo) -> datetime | None:
    """`naive` in `zone` if that wall time exists exactly once, else None."""
    aware = naive.replace(tzinfo=zone)
    back = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    other = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if back != naive or other != aware.astimezone(UTC):
        return None
    return aware


@given(
    zone_name=st.sampled_from(ZONES),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31)),
    bounds=st.tuples(TIMES, TIMES).map(sorted),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_time_inside_range_is_allowed_until_its_end(
    zone_name: str, day: date, bounds: list[time], fraction: float
) -> None:
    start, end = bounds
    assume(start < end)
    zone = ZoneInfo(zone_name)
    start_dt, end_dt = datetime.combine(day, start), datetime.combine(day, end)
    local = start_dt + (end_dt - start_dt) * fraction
    assume(local < end_dt)  # timedelta rounding can land exactly on the end
    aware = _aware(local, zone)
    assume(aware is not None)
    assert aware is not None
    now = aware.astimezone(UTC)
    letter = tw.DAYS_OF_WEEK[day.weekday()]
    value = f"{letter}/{start.isoformat()}-{end.isoformat()}/{zone_name}"

    result = c.evaluate(
        [cond("current_utc_datetime", "is_in_day_of_week_time_ranges", value)], ctx(now=now)
    )

    assert result.allowed
    assert result.expires_at is not None
    assert result.expires_at.tzinfo is not None
    assert now < result.expires_at <= now + timedelta(hours=26)
    local_expiry = result.expires_at.astimezone(zone).replace(tzinfo=None)
    assert local_expiry >= end_dt  # == end, or the end of a DST gap that swallowed it
    # Progress: right after the expiry access is refused, or granted again for later.
    later = tw.time_window_expiry([value], result.expires_at + timedelta(seconds=1))
    assert later is None or later > result.expires_at


@given(
    zone_name=st.sampled_from(ZONES),
    now=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    day_letter=st.sampled_from(tw.DAYS_OF_WEEK),
    bounds=st.tuples(TIMES, TIMES).map(sorted),
)
def test_time_outside_range_is_refused(
    zone_name: str, now: datetime, day_letter: str, bounds: list[time]
) -> None:
    start, end = bounds
    local = now.astimezone(ZoneInfo(zone_name))
    inside = tw.DAYS_OF_WEEK[local.weekday()] == day_letter and start <= local.time() <= end
    value = f"{day_letter}/{start.isoformat()}-{end.isoformat()}/{zone_name}"
    result = c.evaluate(
        [cond("current_utc_datetime", "is_in_day_of_week_time_ranges", value)], ctx(now=now)
    )
    assert result.allowed is inside
    if not inside:
        assert result.violated_properties == ("current_utc_datetime",)


EXPIRIES = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)


@given(st.lists(EXPIRIES, max_size=6))
def test_min_expiry_algebra(expiries: list[datetime | None]) -> None:
    present = [e for e in expiries if e is not None]
    low = c.min_expiry(*expiries)
    assert low == (min(present) if present else None)
    assert c.min_expiry(*reversed(expiries)) == low
    for e in present:
        assert low is not None and low <= e


@given(EXPIRIES, EXPIRIES)
def test_authorization_expiry_is_min_with_none_as_infinity(
    policy: datetime | None, token: datetime | None
) -> None:
    result = c.authorization_expiry(policy, token)
    assert result == c.authorization_expiry(token, policy)
    if policy is None and token is None:
        assert result is None
    else:
        assert result is not None
        assert all(result <= e for e in (policy, token) if e is not None)
        assert result in (policy, token)


@given(st.lists(st.tuples(st.booleans(), EXPIRIES), max_size=6))
def test_longest_conforming_maximises_expiry(entries: list[tuple[bool, datetime | None]]) -> None:
    results = [
        (i, Result.conforms(exp) if ok else Result.forbidden(["remote_ip"]))
        for i, (ok, exp) in enumerate(entries)
    ]
    chosen, result = c.longest_conforming(results)
    allowed = [exp for ok, exp in entries if ok]
    if not allowed:
        assert chosen is None and not result.allowed
        return
    assert result.allowed
    expiries = [exp for exp in allowed if exp is not None]
    # None: no expiry
    assert result.expires_at == (None if len(expiries) < len(allowed) else max(expiries))
    assert chosen is not None and entries[chosen][1] == result.expires_at
