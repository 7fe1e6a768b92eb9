"""`calculate_factor`: compute factor values from the synced daily bars, per stock, resumable.

Config (zquant's): `factor_id` (one FactorDefinition id; absent = every enabled factor), `codes` (a
list or comma-separated string; absent = every listed stock), `start_date` / `end_date` (YYYY-MM-DD
or YYYYMMDD; absent = the latest trading day). Formulas (FactorDefinition.kind): momentum =
close / close N days earlier - 1; ma_ratio = MA(short) / MA(N) - 1; volatility = standard deviation of
the last N daily returns. A value that lacks history is counted in `invalid_count`, not written.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.utils import timezone

from marketdata.datasync import upsert
from marketdata.models import DailyBar, FactorDefinition, FactorValue, Stock, TradingDay
from scheduler_app.actions import CODES, DATE, INTEGER, ConfigError, ConfigReader, Param, RunContext, action
from scheduler_app.actions.items import run_items

AUTHOR = "calculate_factor"


@dataclass(frozen=True)
class FactorParams:
    factor_id: int | None
    codes: list[str] | None
    start: date | None
    end: date | None


def parse_factor(config: dict[str, Any]) -> FactorParams:
    reader = ConfigReader(config)
    factor_id = reader.integer("factor_id", default=0, minimum=1) or None
    codes = reader.codes("codes")
    start, end = reader.date_range()
    reader.raise_if_errors()
    return FactorParams(factor_id=factor_id, codes=codes, start=start, end=end)


def factor_value(definition: FactorDefinition, closes: list[float]) -> float | None:
    """The factor at the last close of `closes` (oldest first), or None without enough history."""
    window = definition.window
    if definition.kind == FactorDefinition.Kind.MOMENTUM:
        if len(closes) <= window or closes[-1 - window] == 0:
            return None
        return closes[-1] / closes[-1 - window] - 1
    if definition.kind == FactorDefinition.Kind.MA_RATIO:
        short = definition.short_window or 5
        if len(closes) < window or short > window:
            return None
        long_ma = sum(closes[-window:]) / window
        return (sum(closes[-short:]) / short) / long_ma - 1 if long_ma else None
    if definition.kind == FactorDefinition.Kind.VOLATILITY:
        if len(closes) <= window or window < 2:
            return None
        recent = closes[-1 - window :]
        returns = [b / a - 1 for a, b in itertools.pairwise(recent) if a]
        return statistics.stdev(returns) if len(returns) >= 2 else None
    return None


def latest_trading_day(today: date | None = None) -> date:
    today = today or timezone.localdate()
    day = (
        TradingDay.objects.filter(is_open=True, cal_date__lte=today)
        .order_by("-cal_date")
        .values_list("cal_date", flat=True)
        .first()
    )
    day = (
        day
        or DailyBar.objects.filter(trade_date__lte=today)
        .order_by("-trade_date")
        .values_list("trade_date", flat=True)
        .first()
    )
    return day or today


FACTOR_PARAMETERS = (
    Param("factor_id", INTEGER, minimum=1, help="One factor definition; default: every enabled factor."),
    Param("codes", CODES, help="Only these stocks (a list or comma-separated); default: every stock."),
    Param("start_date", DATE, help="First day (YYYY-MM-DD or YYYYMMDD); default: end_date."),
    Param("end_date", DATE, help="Last day; default: the latest trading day."),
)


@action(
    "calculate_factor",
    params=parse_factor,
    description="Factor values from daily bars; resumable per stock.",
    parameters=FACTOR_PARAMETERS,
)
def calculate_factor(ctx: RunContext, params: FactorParams) -> dict[str, Any]:
    definitions = FactorDefinition.objects.filter(enabled=True)
    if params.factor_id is not None:
        definitions = FactorDefinition.objects.filter(pk=params.factor_id)
    definitions = list(definitions)
    if not definitions:
        raise ConfigError(f"Factor {params.factor_id} does not exist." if params.factor_id else "No factor is enabled.")
    end = params.end or latest_trading_day()
    start = params.start or end
    if start > end:
        raise ConfigError("start_date is after end_date.")
    codes = params.codes or list(Stock.objects.filter(is_active=True).values_list("ts_code", flat=True))
    codes = codes or list(DailyBar.objects.values_list("ts_code", flat=True).distinct())
    # Calendar days of history to read before `start`: twice the longest window, plus holidays.
    history = timedelta(days=max(d.window for d in definitions) * 2 + 15)

    def work(ts_code: str) -> dict[str, int]:
        bars = list(
            DailyBar.objects.filter(ts_code=ts_code, trade_date__gte=start - history, trade_date__lte=end)
            .order_by("trade_date")
            .values_list("trade_date", "close")
        )
        closes = [close for _, close in bars]
        rows, invalid = [], 0
        for index, (trade_date, _close) in enumerate(bars):
            if trade_date < start:
                continue
            for definition in definitions:
                value = factor_value(definition, closes[: index + 1])
                if value is None:
                    invalid += 1
                else:
                    rows.append(
                        {"factor_id": definition.pk, "ts_code": ts_code, "trade_date": trade_date, "value": value}
                    )
        upsert(FactorValue, rows, keys=("factor_id", "ts_code", "trade_date"), author=AUTHOR)
        return {"calculated_count": len(rows), "invalid_count": invalid}

    summary = run_items(ctx, codes, work, label="因子计算")
    result = summary.as_result()
    result.setdefault("calculated_count", 0)
    result.setdefault("invalid_count", 0)
    result["message"] = (
        f"因子计算完成: {len(definitions)} 个因子, {start.isoformat()} 至 {end.isoformat()}, "
        f"股票 {summary.success_count}/{summary.total}, 计算 {result['calculated_count']} 个值, "
        f"无效 {result['invalid_count']}, 失败 {len(summary.failed)}"
    )
    return result
