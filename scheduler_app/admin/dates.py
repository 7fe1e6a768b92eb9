"""A date drill-down for the execution list that needs no time zone support in the database.

Django's date_hierarchy lists the years, months and days that have rows with `QuerySet.dates()`, which
on MySQL/MariaDB needs the server's time zone tables (CONVERT_TZ). The filtering itself does not (Django
turns the chosen day into an aware range), so the list keeps `date_hierarchy` for filtering and this
module builds the links from the first and last row's times, converted in Python.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

from django.db.models import Max, Min, Model
from django.http import HttpRequest
from django.utils import formats, timezone


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def date_drilldown(request: HttpRequest, model: type[Model], field: str) -> dict[str, Any]:
    """Context for admin/date_hierarchy.html: `show`, `back` and `choices` (title, link)."""
    bounds = model._default_manager.aggregate(first=Min(field), last=Max(field))
    if bounds["first"] is None:
        return {"show": False}
    first, last = (timezone.localtime(bounds[key]).date() for key in ("first", "last"))
    params = request.GET.copy()
    for key in ("p", f"{field}__year", f"{field}__month", f"{field}__day"):
        params.pop(key, None)

    def link(**parts: int) -> str:
        query = params.copy()
        for name, value in parts.items():
            query[f"{field}__{name}"] = str(value)
        return "?" + query.urlencode()

    year = _int(request.GET.get(f"{field}__year"))
    month = _int(request.GET.get(f"{field}__month"))
    day = _int(request.GET.get(f"{field}__day"))
    back = None
    if year and month and day:
        back = {
            "link": link(year=year, month=month),
            "title": formats.date_format(date(year, month, 1), "YEAR_MONTH_FORMAT"),
        }
        choices = [{"title": formats.date_format(date(year, month, day), "MONTH_DAY_FORMAT"), "link": ""}]
    elif year and month and 1 <= month <= 12:
        back = {"link": link(year=year), "title": str(year)}
        days = range(1, calendar.monthrange(year, month)[1] + 1)
        choices = [
            {
                "title": formats.date_format(date(year, month, d), "MONTH_DAY_FORMAT"),
                "link": link(year=year, month=month, day=d),
            }
            for d in days
            if first <= date(year, month, d) <= last
        ]
    elif year:
        back = {"link": "?" + params.urlencode(), "title": "‹"}
        choices = [
            {"title": formats.date_format(date(year, m, 1), "YEAR_MONTH_FORMAT"), "link": link(year=year, month=m)}
            for m in range(1, 13)
            if (first.year, first.month) <= (year, m) <= (last.year, last.month)
        ]
    else:
        choices = [{"title": str(y), "link": link(year=y)} for y in range(first.year, last.year + 1)]
    return {"show": True, "back": back, "choices": choices}
