"""The bundled sample data set and its provider."""

from __future__ import annotations

from datetime import date

import pytest

from marketdata.providers import DATA_DIR, MarketDataProvider, SampleProvider, get_provider


def test_the_data_set_is_small_and_complete():
    files = sorted(path.name for path in DATA_DIR.glob("*.csv"))
    assert files == ["daily.csv", "daily_basic.csv", "stock_basic.csv", "trade_cal.csv"]
    assert sum(path.stat().st_size for path in DATA_DIR.glob("*.csv")) < 500_000


def test_sample_provider_serves_stocks_calendar_and_bars():
    provider = SampleProvider()
    stocks = provider.stock_list()
    assert [stock["ts_code"] for stock in stocks] == [
        "000001.SZ",
        "000002.SZ",
        "300750.SZ",
        "600000.SH",
        "600519.SH",
        "601318.SH",
    ]
    assert stocks[0]["list_date"] == date(1991, 4, 3)
    calendar = provider.trade_calendar(start=None, end=None)
    assert (calendar[0]["cal_date"], calendar[-1]["cal_date"], len(calendar)) == (
        date(2024, 1, 1),
        date(2024, 6, 30),
        182,
    )
    assert sum(day["is_open"] for day in calendar) == 117
    assert not next(day for day in calendar if day["cal_date"] == date(2024, 2, 12))["is_open"]  # Spring Festival
    bars = provider.daily(ts_code="600519.SH", start=date(2024, 3, 1), end=date(2024, 3, 31))
    assert len(bars) == 21
    assert all(bar["low"] <= bar["close"] <= bar["high"] for bar in bars)
    assert bars[1]["pre_close"] == bars[0]["close"]
    basics = provider.daily_basic(ts_code="600519.SH", start=date(2024, 3, 1), end=date(2024, 3, 1))
    assert basics[0]["close"] == bars[0]["close"]
    assert basics[0]["pe"] > 0


def test_the_provider_comes_from_the_setting(settings):
    assert isinstance(get_provider(), SampleProvider)
    settings.MARKETDATA_PROVIDER = "tests.marketdata.test_provider.EmptyProvider"
    assert isinstance(get_provider(), EmptyProvider)
    settings.MARKETDATA_PROVIDER = "datetime.date"
    with pytest.raises(TypeError):
        get_provider()


class EmptyProvider(MarketDataProvider):
    def stock_list(self):
        return []

    def trade_calendar(self, *, start, end, exchange="SSE"):
        return []

    def daily(self, *, ts_code, start, end):
        return []

    def daily_basic(self, *, ts_code, start, end):
        return []
