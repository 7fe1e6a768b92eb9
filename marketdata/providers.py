"""Market-data providers: where the data-sync actions read stocks, calendars and daily data from.

`MarketDataProvider` is the contract; `SampleProvider` serves the small data set bundled in
`marketdata/data/` (six stocks, the first half of 2024), so the demo pipeline works offline. A real
provider (Tushare, a vendor feed) subclasses MarketDataProvider and is selected with the setting
MARKETDATA_PROVIDER (a dotted path to the class).
"""

from __future__ import annotations

import csv
import functools
from abc import ABC, abstractmethod
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

Record = dict[str, Any]
DATA_DIR = Path(__file__).resolve().parent / "data"


class ProviderError(RuntimeError):
    """The provider could not deliver the data asked for (network, quota, unknown code)."""


class MarketDataProvider(ABC):
    """Contract of a market-data source. Records are dicts keyed like the marketdata model fields.

    Dates are `datetime.date` objects; `None` bounds mean "no bound". Every method may raise
    ProviderError; the sync actions count that item as failed and go on with the next one.
    Implementations must be safe to call from several threads (one instance per run is created).
    """

    name = "provider"

    @abstractmethod
    def stock_list(self) -> list[Record]:
        """Every listed stock: ts_code, symbol, name, area, industry, market, exchange, list_date."""

    @abstractmethod
    def trade_calendar(self, *, start: date | None, end: date | None, exchange: str = "SSE") -> list[Record]:
        """Calendar days in [start, end]: exchange, cal_date, is_open, pretrade_date; ascending."""

    @abstractmethod
    def daily(self, *, ts_code: str, start: date | None, end: date | None) -> list[Record]:
        """Daily bars of one stock in [start, end]: ts_code, trade_date, open, high, low, close, ..."""

    @abstractmethod
    def daily_basic(self, *, ts_code: str, start: date | None, end: date | None) -> list[Record]:
        """Daily indicators of one stock in [start, end]: turnover_rate, pe, pb, total_mv, ..."""


def _date(text: str) -> date | None:
    return datetime.strptime(text, "%Y%m%d").date() if text else None  # noqa: DTZ007 - a calendar date


def _float(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def _in_range(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


@functools.cache
def _read(name: str) -> tuple[dict[str, str], ...]:
    with (DATA_DIR / name).open(newline="", encoding="utf-8") as handle:
        return tuple(csv.DictReader(handle))


class SampleProvider(MarketDataProvider):
    """The bundled offline data set (read once per process, then served from memory)."""

    name = "sample"

    def stock_list(self) -> list[Record]:
        return [{**row, "list_date": _date(row["list_date"])} for row in _read("stock_basic.csv")]

    def trade_calendar(self, *, start: date | None, end: date | None, exchange: str = "SSE") -> list[Record]:
        rows = []
        for row in _read("trade_cal.csv"):
            day = _date(row["cal_date"])
            if row["exchange"] == exchange and _in_range(day, start, end):
                rows.append(
                    {
                        "exchange": exchange,
                        "cal_date": day,
                        "is_open": row["is_open"] == "1",
                        "pretrade_date": _date(row["pretrade_date"]),
                    }
                )
        return rows

    def _series(self, name: str, ts_code: str, start: date | None, end: date | None) -> list[Record]:
        rows = []
        for row in _read(name):
            if row["ts_code"] != ts_code:
                continue
            day = _date(row["trade_date"])
            if _in_range(day, start, end):
                values = {key: _float(value) for key, value in row.items() if key not in ("ts_code", "trade_date")}
                rows.append({"ts_code": ts_code, "trade_date": day, **values})
        return rows

    def daily(self, *, ts_code: str, start: date | None, end: date | None) -> list[Record]:
        return self._series("daily.csv", ts_code, start, end)

    def daily_basic(self, *, ts_code: str, start: date | None, end: date | None) -> list[Record]:
        return self._series("daily_basic.csv", ts_code, start, end)


DEFAULT_PROVIDER = "marketdata.providers.SampleProvider"


def get_provider(path: str | None = None) -> MarketDataProvider:
    """A new instance of the configured provider (the MARKETDATA_PROVIDER setting, read at each call)."""
    cls = import_string(path or getattr(settings, "MARKETDATA_PROVIDER", None) or DEFAULT_PROVIDER)
    provider = cls()
    if not isinstance(provider, MarketDataProvider):
        raise TypeError(f"{cls!r} is not a MarketDataProvider")
    return provider
