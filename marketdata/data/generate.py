"""Generate the bundled sample market data (run once; the CSV files beside this script are committed).

Deterministic: a fixed seed and fixed dates, so a re-run writes byte-identical files.
Usage: python marketdata/data/generate.py
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
START, END = date(2024, 1, 1), date(2024, 6, 30)
HOLIDAYS = {
    date(2024, 1, 1),
    *(date(2024, 2, day) for day in range(9, 17)),
    date(2024, 4, 4),
    date(2024, 4, 5),
    date(2024, 5, 1),
    date(2024, 5, 2),
    date(2024, 5, 3),
    date(2024, 6, 10),
}
STOCKS = [
    # ts_code, symbol, name, area, industry, market, exchange, list_date, first close, shares (100 million)
    ("000001.SZ", "000001", "平安银行", "深圳", "银行", "主板", "SZSE", "19910403", 9.40, 194.06),
    ("000002.SZ", "000002", "万科A", "深圳", "全国地产", "主板", "SZSE", "19910129", 9.90, 119.31),
    ("300750.SZ", "300750", "宁德时代", "福建", "电气设备", "创业板", "SZSE", "20180611", 163.00, 43.99),
    ("600000.SH", "600000", "浦发银行", "上海", "银行", "主板", "SSE", "19991110", 6.60, 293.52),
    ("600519.SH", "600519", "贵州茅台", "贵州", "白酒", "主板", "SSE", "20010827", 1720.00, 12.56),
    ("601318.SH", "601318", "中国平安", "深圳", "保险", "主板", "SSE", "20070301", 40.50, 182.10),
]


def fmt(day: date) -> str:
    return day.strftime("%Y%m%d")


def main() -> None:
    rng = random.Random(20240101)
    days = [START + timedelta(n) for n in range((END - START).days + 1)]
    open_days = [day for day in days if day.weekday() < 5 and day not in HOLIDAYS]

    with (HERE / "stock_basic.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["ts_code", "symbol", "name", "area", "industry", "market", "exchange", "list_date"])
        for row in STOCKS:
            writer.writerow(row[:8])

    with (HERE / "trade_cal.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["exchange", "cal_date", "is_open", "pretrade_date"])
        previous = ""
        for day in days:
            writer.writerow(["SSE", fmt(day), int(day in open_days), previous])
            if day in open_days:
                previous = fmt(day)

    daily = open(HERE / "daily.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
    basic = open(HERE / "daily_basic.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
    with daily, basic:
        daily_writer = csv.writer(daily, lineterminator="\n")
        basic_writer = csv.writer(basic, lineterminator="\n")
        daily_writer.writerow(
            ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount"]
        )
        basic_writer.writerow(
            ["ts_code", "trade_date", "close", "turnover_rate", "volume_ratio", "pe", "pb", "total_mv", "circ_mv"]
        )
        for ts_code, *_, first_close, shares in STOCKS:
            close = first_close
            eps = first_close / rng.uniform(8, 30)
            bps = first_close / rng.uniform(0.6, 5)
            base_volume = rng.uniform(2e5, 1.5e6)
            for day in open_days:
                pre_close = close
                close = round(max(0.5, pre_close * (1 + rng.gauss(0.0005, 0.018))), 2)
                open_ = round(pre_close * (1 + rng.gauss(0, 0.006)), 2)
                high = round(max(open_, close) * (1 + abs(rng.gauss(0, 0.006))), 2)
                low = round(min(open_, close) * (1 - abs(rng.gauss(0, 0.006))), 2)
                volume = round(base_volume * rng.uniform(0.5, 1.8), 2)
                amount = round(volume * (open_ + close) / 2 / 10, 3)  # vol in lots of 100, amount in 1000 CNY
                change = round(close - pre_close, 2)
                daily_writer.writerow(
                    [
                        ts_code,
                        fmt(day),
                        open_,
                        high,
                        low,
                        close,
                        pre_close,
                        change,
                        round(change / pre_close * 100, 4),
                        volume,
                        amount,
                    ]
                )
                total_mv = round(close * shares * 1e4, 2)  # in 10,000 CNY
                basic_writer.writerow(
                    [
                        ts_code,
                        fmt(day),
                        close,
                        round(volume * 100 / (shares * 1e8) * 100, 4),
                        round(rng.uniform(0.5, 2.0), 2),
                        round(close / eps, 4),
                        round(close / bps, 4),
                        total_mv,
                        round(total_mv * 0.92, 2),
                    ]
                )


if __name__ == "__main__":
    main()
