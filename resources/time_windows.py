"""Day-of-week time windows of policy conditions (domain.md §2.13): parsing `"M/09:00-17:00/UTC"`
style values, merging ranges, and when the window an instant falls in ends (a flow's expiry).
Pure functions, used by the condition evaluator (`resources.conditions`) and the policy form."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Final
from zoneinfo import ZoneInfo, available_timezones

DAYS_OF_WEEK: Final = ("M", "T", "W", "R", "F", "S", "U")  # Monday (weekday() 0) … Sunday
ALL_DAY: Final = (time(0, 0, 0), time(23, 59, 59))

MSG_INVALID_DAY: Final = "invalid day of the week, must be one of M, T, W, R, F, S, U"
MSG_TIMEZONE_REQUIRED: Final = "timezone is required"
MSG_INVALID_TIMEZONE: Final = "invalid timezone"
MSG_RANGE_ORDER: Final = "start of the time range must be less than or equal to the end of it"


class ConditionValueError(ValueError):
    """A malformed condition value; `message` is the user-facing text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class DayTimeRanges:
    """A parsed `"<D>/<ranges>/<timezone>"` value: inclusive local-time ranges on one weekday."""

    day: str
    ranges: tuple[tuple[time, time], ...]
    timezone: str


@cache
def _known_timezones() -> frozenset[str]:
    # "localtime" is the host's zone file, not an IANA name.
    return frozenset(available_timezones() - {"localtime"})


def is_valid_timezone(name: str) -> bool:
    return name in _known_timezones()


def _parse_time(text: str) -> time:
    text = text.strip().split(".", 1)[0]  # fractions of a second are ignored
    parts = text.split(":")
    if not 1 <= len(parts) <= 3:
        raise ValueError(text)
    parts += ["0"] * (3 - len(parts))
    if not all(p.isascii() and p.isdigit() and 1 <= len(p) <= 2 for p in parts):
        raise ValueError(text)
    hour, minute, second = (int(p) for p in parts)
    return time(hour, minute, second)  # raises ValueError when out of range


def parse_time_range(text: str) -> tuple[time, time]:
    """`"true"` (all day) or `"start-end"` with times `H`, `H:M` or `H:M:S`, inclusive."""
    if text == "true":
        return ALL_DAY
    start_text, dash, end_text = text.partition("-")
    if not dash or not start_text.strip() or not end_text.strip():
        raise ConditionValueError(f"invalid time range: {text}")
    try:
        start, end = _parse_time(start_text), _parse_time(end_text)
    except ValueError:
        raise ConditionValueError(f"invalid time range: {text}") from None
    if start > end:
        raise ConditionValueError(MSG_RANGE_ORDER)
    return start, end


def parse_day_of_week_time_ranges(value: str) -> DayTimeRanges:
    """Parse `"<D>/<ranges>/<timezone>"`, splitting on the first two `/` only (so zones such as
    `US/Pacific` keep theirs). Empty `<ranges>` means no time on that day."""
    parts = value.split("/", 2)
    if len(parts) == 2:
        raise ConditionValueError(MSG_TIMEZONE_REQUIRED)
    if len(parts) != 3 or parts[0] not in DAYS_OF_WEEK:
        raise ConditionValueError(MSG_INVALID_DAY)
    day, ranges_text, timezone = parts
    if not is_valid_timezone(timezone):
        raise ConditionValueError(MSG_INVALID_TIMEZONE)
    ranges = tuple(
        parse_time_range(item.strip()) for item in ranges_text.split(",") if item.strip()
    )
    return DayTimeRanges(day=day, ranges=ranges, timezone=timezone)


def merge_time_ranges(ranges: Iterable[tuple[time, time]]) -> list[tuple[time, time]]:
    """Merge overlapping or touching ranges (4-11 and 11-22 become 4-22), sorted by start."""
    merged: list[tuple[time, time]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _local_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _end_of_window_utc(day: date, end: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the local clock in `zone` on `day` passes `end`."""
    wall = datetime.combine(day, end)
    earlier = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    later = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if _local_wall(earlier, zone) == wall:
        # Exists (twice when the clock goes back: the first occurrence ends the window).
        return min(earlier, later)
    # `end` falls in a gap (clock jumps forward): the window ends at the transition itself.
    low, high = min(earlier, later), max(earlier, later)
    while high - low > timedelta(seconds=1):
        middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
        if _local_wall(middle, zone) > wall:
            high = middle
        else:
            low = middle
    return high


def time_window_expiry(values: Iterable[str], now: datetime) -> datetime | None:
    """Evaluate `current_utc_datetime is_in_day_of_week_time_ranges`.

    Returns the UTC end of the matching range (the latest one if several match), or None when
    `now` is in no range. Raises ConditionValueError if any value is malformed.
    """
    grouped: dict[tuple[str, str], list[tuple[time, time]]] = {}
    for value in values:
        parsed = parse_day_of_week_time_ranges(value)
        grouped.setdefault((parsed.day, parsed.timezone), []).extend(parsed.ranges)
    expiries: list[datetime] = []
    for (day, timezone), ranges in grouped.items():
        zone = ZoneInfo(timezone)
        local = now.astimezone(zone)
        if DAYS_OF_WEEK[local.weekday()] != day:
            continue
        local_time = local.time()
        for start, end in merge_time_ranges(ranges):
            if start <= local_time <= end:
                expiries.append(_end_of_window_utc(local.date(), end, zone))
    return max(expiries) if expiries else None
