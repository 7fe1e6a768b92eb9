"""Differential test: our fire times against cronsim's, for thousands of random expressions.

cronsim follows Debian's day-field rule (OR when both day fields are restricted, AND when either
starts with "*") and is a good oracle away from daylight-saving changes, where its rules differ from
Debian's. So every fire time within a day of an offset change, by either engine, is left out of the
comparison; the DST days themselves are checked against Debian's main loop in test_dst.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler_app.schedules import InvalidSchedule, parse_cron
from tests.schedules.walk import fires_between

cronsim = pytest.importorskip("cronsim", reason="cronsim (the dev extra) is the reference engine")

ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Santiago",
]
EXPRESSIONS = 3000
FIRES = 12
# Wider than any DST change, so an instant this far from an offset change is untouched by one.
CLEAR_OF_CHANGES = timedelta(hours=26)

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def random_item(rng: random.Random, low: int, high: int, names: list[str] | None, star_weight: float) -> str:
    if rng.random() < star_weight:
        return "*"

    def value() -> str:
        number = rng.randint(low, high)
        if names and rng.random() < 0.3 and number - low < len(names):
            return names[number - low]
        return str(number)

    size = high - low + 1
    kind = rng.choice(["value", "range", "range_step", "star_step", "start_step", "list"])
    if kind == "value":
        return value()
    if kind in ("range", "range_step"):
        first = rng.randint(low, high - 1)
        # cronsim reads a one-value range with a step ("1-1/10") as "1/10"; Debian as the one value.
        last = rng.randint(first + 1, high)
        text = f"{first}-{last}"
        return text + (f"/{rng.randint(1, size)}" if kind == "range_step" else "")
    if kind == "star_step":
        return f"*/{rng.randint(1, size)}"
    if kind == "start_step":
        return f"{rng.randint(low, high)}/{rng.randint(1, size)}"
    return ",".join(value() for _ in range(rng.randint(2, 4)))


def random_expression(rng: random.Random) -> str:
    return " ".join(
        [
            random_item(rng, 0, 59, None, 0.3),
            random_item(rng, 0, 23, None, 0.3),
            random_item(rng, 1, 31, None, 0.6),
            random_item(rng, 1, 12, _MONTHS, 0.6),
            random_item(rng, 0, 7, _WEEKDAYS, 0.6),
        ]
    )


def clear_of_changes(zone: ZoneInfo, instant: datetime) -> bool:
    offset = instant.astimezone(zone).utcoffset()
    return all(
        (instant + delta).astimezone(zone).utcoffset() == offset
        for delta in (-CLEAR_OF_CHANGES, -CLEAR_OF_CHANGES / 2, CLEAR_OF_CHANGES / 2, CLEAR_OF_CHANGES)
    )


def test_fire_times_match_cronsim_away_from_dst_changes():
    rng = random.Random(20240310)
    compared = refused = 0
    for index in range(EXPRESSIONS):
        expression = random_expression(rng)
        zone = ZoneInfo(ZONES[index % len(ZONES)])
        start = datetime(rng.randint(1995, 2035), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23))
        start = start.replace(minute=rng.randint(0, 59), tzinfo=zone)
        try:
            parse_cron(expression)
        except InvalidSchedule:
            # We refuse only what can never fire; cronsim refuses the impossible dates too.
            refused += 1
            with pytest.raises(cronsim.CronSimError):
                cronsim.CronSim(expression, start)
            continue
        theirs = []
        for fire in cronsim.CronSim(expression, start):
            theirs.append(fire.astimezone(UTC))
            if len(theirs) == FIRES:
                break
        # cronsim starts strictly after `start`; a trigger asked at `start` includes it.
        ours = [t.astimezone(UTC) for t in fires_between(expression, zone, start, theirs[-1] + timedelta(seconds=1))]
        ours = [t for t in ours if t > start]
        kept_ours = [t for t in ours if clear_of_changes(zone, t)]
        kept_theirs = [t for t in theirs if clear_of_changes(zone, t)]
        assert kept_ours == kept_theirs, (expression, str(zone), start.isoformat())
        compared += len(kept_theirs)
    # Not vacuous: most fire times are compared, and the generator reaches the refusal path.
    assert compared > EXPRESSIONS * FIRES * 0.8
    assert refused > 0
