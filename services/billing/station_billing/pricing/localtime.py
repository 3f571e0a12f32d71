"""The station's local time, as tariff restrictions see it (rule 2 of ``docs/pricing.md``).

Restrictions are evaluated in the station's IANA time zone (a setting for the service,
``--tz`` for the CLI), so a time band keeps its wall-clock meaning across midnight and
daylight-saving changes. Instants are whole microseconds since the Unix epoch (UTC): exact
integers, compared and shifted without any float.

A session's local offset is looked up at its start and at its end; when both are the same
and the session is shorter than :data:`STEADY_SPAN_US`, no daylight-saving change can lie
in between (no zone changes its offset twice within two days), so every period uses that
one offset. Otherwise each period's offset is looked up on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
SECOND_US = 1_000_000
HOUR_US = 3_600 * SECOND_US
DAY_US = 24 * HOUR_US
STEADY_SPAN_US = 2 * DAY_US
EPOCH_WEEKDAY = 3
"""1970-01-01 was a Thursday (Monday is 0)."""


class UnknownZone(ValueError):
    """Not an IANA time zone name."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownZone(f"unknown IANA time zone {name!r}") from exc


def to_us(instant: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is UTC, as OCPI reads one."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return (instant - EPOCH) // ONE_US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def offset_us(tz: ZoneInfo, us: int) -> int:
    """The zone's UTC offset at instant ``us``, in microseconds."""
    offset = from_us(us).astimezone(tz).utcoffset()
    assert offset is not None
    return offset // ONE_US


def steady_offset(tz: ZoneInfo, start_us: int, end_us: int) -> int | None:
    """One offset for the whole span, or ``None`` if it may change within it."""
    if end_us - start_us > STEADY_SPAN_US:
        return None
    first = offset_us(tz, start_us)
    return first if first == offset_us(tz, end_us) else None


MINUTE_US = 60 * SECOND_US
CACHE_LIMIT = 100_000


class StationZone:
    """The station's zone with its offsets remembered, for pricing many sessions.

    A UTC day whose first and last microsecond have the same offset has that offset
    throughout (no zone changes its offset twice within a day), so one look-up serves the
    whole day; a day with a change is remembered minute by minute (offsets change on whole
    minutes UTC in every zone since 1970). The memo is bounded and belongs to this object
    (one per service or CLI run), not to the module.
    """

    __slots__ = ("_days", "_minutes", "tz")

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._days: dict[int, int | None] = {}
        self._minutes: dict[int, int] = {}

    @classmethod
    def named(cls, name: str) -> StationZone:
        return cls(zone(name))

    @property
    def name(self) -> str:
        return self.tz.key

    def offset(self, us: int) -> int:
        day = us // DAY_US
        if day in self._days:
            steady = self._days[day]
        else:
            if len(self._days) >= CACHE_LIMIT:
                self._days.clear()
            first = offset_us(self.tz, day * DAY_US)
            steady = first if first == offset_us(self.tz, (day + 1) * DAY_US - 1) else None
            self._days[day] = steady
        if steady is not None:
            return steady
        minute = us // MINUTE_US
        found = self._minutes.get(minute)
        if found is None:
            if len(self._minutes) >= CACHE_LIMIT:
                self._minutes.clear()
            found = self._minutes[minute] = offset_us(self.tz, minute * MINUTE_US)
        return found

    def steady_offset(self, start_us: int, end_us: int) -> int | None:
        """One offset for the whole span, or ``None`` if it may change within it."""
        if end_us - start_us > STEADY_SPAN_US:
            return None
        first = self.offset(start_us)
        return first if first == self.offset(end_us) else None

    def local(self, us: int) -> int:
        return us + self.offset(us)


def local_us_function(tz: ZoneInfo, start_us: int, end_us: int) -> Callable[[int], int]:
    """Instant -> local wall-clock microseconds since the epoch (as if the zone were UTC)."""
    steady = steady_offset(tz, start_us, end_us)
    if steady is not None:
        return lambda us: us + steady
    return lambda us: us + offset_us(tz, us)


def weekday(local_day: int) -> int:
    """Monday 0 .. Sunday 6 of a local day number (days since 1970-01-01)."""
    return (local_day + EPOCH_WEEKDAY) % 7


def day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def time_of_day_us(moment: time) -> int:
    return (
        moment.hour * 3600 + moment.minute * 60 + moment.second
    ) * SECOND_US + moment.microsecond


def wall_time(us: int) -> time:
    """A local time of day from microseconds since midnight."""
    seconds, micro = divmod(us, SECOND_US)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return time(hour, minute, second, micro)


def instants_of_wall_time(tz: ZoneInfo, day: date, moment: time) -> set[int]:
    """Every instant at which the local clock reads ``moment`` on ``day`` (0, 1 or 2 of them).

    In an overlap (clocks turned back) the wall time happens twice; in a gap (clocks turned
    forward) it never does, and both folds name instants on either side of the gap, which
    callers combine with :func:`offset_changes` to find the jump itself.
    """
    found = set()
    for fold in (0, 1):
        local = datetime.combine(day, moment, tzinfo=tz).replace(fold=fold)
        found.add(to_us(local))
    return found


def offset_changes(tz: ZoneInfo, start_us: int, end_us: int) -> list[int]:
    """The instants in ``(start_us, end_us]`` where the zone's offset changes.

    Found by bisection within each hour whose ends have different offsets (an offset
    changes at most once an hour in any zone), to the microsecond.
    """
    changes = []
    step = HOUR_US
    left = start_us
    left_offset = offset_us(tz, left)
    while left < end_us:
        right = min(left + step, end_us)
        right_offset = offset_us(tz, right)
        if right_offset != left_offset:
            low, high = left, right
            while high - low > 1:
                middle = (low + high) // 2
                if offset_us(tz, middle) == left_offset:
                    low = middle
                else:
                    high = middle
            changes.append(high)
        left, left_offset = right, right_offset
    return changes
