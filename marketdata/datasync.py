"""Data-sync strategies (zquant's action names) writing the marketdata tables from a provider.

Actions: `sync_stock_list`, `sync_trading_calendar` (also publishes the exchange's calendar to the
scheduler, marketdata.trading_calendar), `sync_daily_data` (one stock),
`sync_all_daily_data` and `sync_daily_basic_data` (every stock, checkpointed per stock, resumable).
Rows are upserted on their natural key; results count `insert_count` and `update_count`. Dates may be
written YYYYMMDD or YYYY-MM-DD. The provider comes from MARKETDATA_PROVIDER.

Default dates (zquant's rules, adapted to a calendar that is not today's): `end_date` = the latest
open day of the trading calendar on or before today; `start_date` = `lookback_days` open days back
from the end, counting the end (default 1: only the end day).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from django.db import connection, models, transaction
from django.utils import timezone

from marketdata.models import DailyBar, DailyBasic, Stock, TradingDay
from marketdata.providers import MarketDataProvider, Record, get_provider
from marketdata.trading_calendar import publish_trading_calendar
from scheduler_app.actions import (
    CODES,
    DATE,
    INTEGER,
    STRING,
    ConfigError,
    ConfigReader,
    ExecutionFailed,
    Param,
    RunContext,
    action,
)
from scheduler_app.actions.items import run_items
from scheduler_app.calendars import CalendarPublished

# --------------------------------------------------------------------------- writing rows


def upsert(
    model: type[models.Model], rows: list[Record], *, keys: tuple[str, ...], author: str = ""
) -> tuple[int, int]:
    """Insert or update `rows` on their natural key (the unique `keys`); returns (inserted, updated)."""
    if not rows:
        return 0, 0
    wanted = {tuple(row[key] for key in keys) for row in rows}
    lookup = {f"{key}__in": {values[index] for values in wanted} for index, key in enumerate(keys)}
    existing = set(model.objects.filter(**lookup).values_list(*keys)) & wanted
    concrete = {field.attname for field in model._meta.concrete_fields}
    value_fields = sorted({name for row in rows for name in row if name in concrete} - set(keys))
    objects = [
        model(**{name: value for name, value in row.items() if name in concrete}, created_by=author, updated_by=author)
        for row in rows
    ]
    options: dict[str, Any] = {"update_conflicts": True, "update_fields": [*value_fields, "updated_by", "updated_at"]}
    if connection.features.supports_update_conflicts_with_target:
        options["unique_fields"] = list(keys)  # MySQL's ON DUPLICATE KEY takes no target
    with transaction.atomic():
        model.objects.bulk_create(objects, batch_size=500, **options)
    return len(wanted - existing), len(existing)


def author_of(ctx: RunContext) -> str:
    return ctx.task.name[:100]


def store_fetched(
    ctx: RunContext,
    model: type[models.Model],
    rows: list[Record],
    *,
    keys: tuple[str, ...],
    message: str,
    **extra: Any,
) -> dict[str, Any]:
    """Upsert what a one-request sync fetched, report it as done and return the run's result."""
    ctx.check()
    inserted, updated = upsert(model, rows, keys=keys, author=author_of(ctx))
    ctx.progress(processed=1, total=1, message=message, check=False)
    return {
        "success": True,
        "total": len(rows),
        "insert_count": inserted,
        "update_count": updated,
        "同步记录数": len(rows),
        **extra,
        "message": message,
    }


# --------------------------------------------------------------------------- dates


def open_days(provider: MarketDataProvider, exchange: str = "SSE") -> list[date]:
    """Open days of the calendar: the synced table when it has any, else the provider's calendar."""
    days = list(
        TradingDay.objects.filter(exchange=exchange, is_open=True)
        .order_by("cal_date")
        .values_list("cal_date", flat=True)
    )
    if not days:
        calendar = provider.trade_calendar(start=None, end=None, exchange=exchange)
        days = sorted(row["cal_date"] for row in calendar if row["is_open"])
    return days


def resolve_range(
    start: date | None, end: date | None, *, lookback_days: int, calendar: list[date], today: date | None = None
) -> tuple[date, date]:
    """Apply the default dates (see the module docstring)."""
    today = today or timezone.localdate()
    if end is None:
        past = [day for day in calendar if day <= today]
        end = past[-1] if past else today
    if start is None:
        upto = [day for day in calendar if day <= end]
        start = upto[-lookback_days] if len(upto) >= lookback_days else (upto[0] if upto else end)
    return start, end


@dataclass(frozen=True)
class RangeParams:
    start: date | None
    end: date | None
    lookback_days: int
    codes: list[str] | None = None
    ts_code: str = ""
    exchange: str = "SSE"


def _read_range(reader: ConfigReader) -> tuple[date | None, date | None, int]:
    start, end = reader.date_range()
    lookback = reader.integer("lookback_days", default=1, minimum=1, maximum=10_000)
    return start, end, lookback


START_DATE = Param("start_date", DATE, help="First day (YYYYMMDD or YYYY-MM-DD); default: lookback_days back.")
END_DATE = Param("end_date", DATE, help="Last day; default: the latest open day.")
LOOKBACK_DAYS = Param(
    "lookback_days", INTEGER, default=1, minimum=1, maximum=10_000, help="Open days before end_date when no start."
)
CODELIST = Param("codelist", CODES, help="Only these stocks (a list or comma-separated); default: every stock.")
RANGE_PARAMETERS = (START_DATE, END_DATE, LOOKBACK_DAYS)

# --------------------------------------------------------------------------- strategies


class SyncStrategy(ABC):
    """One data-sync action: parse its config, then sync from the provider into the tables."""

    action: ClassVar[str]
    description: ClassVar[str] = ""
    parameters: ClassVar[tuple[Param, ...]] = (*RANGE_PARAMETERS, CODELIST)

    def parse(self, config: dict[str, Any]) -> RangeParams:
        reader = ConfigReader(config)
        start, end, lookback = _read_range(reader)
        codes = reader.codes("codelist")
        reader.raise_if_errors()
        return RangeParams(start=start, end=end, lookback_days=lookback, codes=codes)

    @abstractmethod
    def sync(self, ctx: RunContext, params: RangeParams, provider: MarketDataProvider) -> dict[str, Any]:
        """Write the data and return the result (success, counts, message)."""


_strategies: dict[str, SyncStrategy] = {}


def register_strategy(cls: type[SyncStrategy]) -> type[SyncStrategy]:
    """Register a strategy and expose it as the action of the same name."""
    strategy = cls()
    _strategies[cls.action] = strategy

    def run(ctx: RunContext, params: RangeParams) -> dict[str, Any]:
        return strategy.sync(ctx, params, get_provider())

    action(cls.action, params=strategy.parse, description=cls.description, parameters=cls.parameters)(run)
    return cls


def get_strategy(name: str) -> SyncStrategy:
    try:
        return _strategies[name]
    except KeyError:
        raise ConfigError(f"Unsupported sync action {name!r}; supported: {', '.join(supported_actions())}.") from None


def supported_actions() -> list[str]:
    return sorted(_strategies)


@register_strategy
class StockListSync(SyncStrategy):
    action = "sync_stock_list"
    description = "Stock list: every listed stock of the provider."
    parameters = ()

    def parse(self, config: dict[str, Any]) -> RangeParams:
        return RangeParams(start=None, end=None, lookback_days=1)

    def sync(self, ctx: RunContext, params: RangeParams, provider: MarketDataProvider) -> dict[str, Any]:
        ctx.progress(processed=0, total=1, message="正在获取股票列表", force=True)
        rows = provider.stock_list()
        return store_fetched(ctx, Stock, rows, keys=("ts_code",), message=f"成功同步 {len(rows)} 条股票列表")


@register_strategy
class TradingCalendarSync(SyncStrategy):
    action = "sync_trading_calendar"
    description = "Trading calendar in [start_date, end_date] (default: everything the provider has)."
    parameters = (
        Param("start_date", DATE, help="First day; default: the provider's first."),
        Param("end_date", DATE, help="Last day; default: the provider's last."),
        Param("exchange", STRING, default="SSE", max_length=10, help="The exchange whose calendar to sync."),
    )

    def parse(self, config: dict[str, Any]) -> RangeParams:
        reader = ConfigReader(config)
        start, end = reader.date_range()
        exchange = reader.text("exchange", default="SSE", max_length=10).upper()
        reader.raise_if_errors()
        return RangeParams(start=start, end=end, lookback_days=1, exchange=exchange)

    def sync(self, ctx: RunContext, params: RangeParams, provider: MarketDataProvider) -> dict[str, Any]:
        ctx.progress(processed=0, total=1, message="正在获取交易日历", force=True)
        rows = provider.trade_calendar(start=params.start, end=params.end, exchange=params.exchange)
        message = f"成功同步 {len(rows)} 条交易日历"
        result = store_fetched(ctx, TradingDay, rows, keys=("exchange", "cal_date"), message=message)
        # The scheduler's calendar of the exchange follows the synced days (tasks on trading days only).
        try:
            changed = publish_trading_calendar(params.exchange)
        except CalendarPublished as error:
            raise ExecutionFailed(f"{message}; {error.message}", result={**result, "success": False}) from error
        published = "已更新调度日历" if changed else "调度日历无变化"
        result["message"] = f"{message}，{published} {params.exchange}"
        return result


@register_strategy
class DailyDataSync(SyncStrategy):
    action = "sync_daily_data"
    description = "Daily bars of one stock (ts_code, or its symbol) in a date range."
    parameters = (
        Param("ts_code", STRING, max_length=20, help="The stock, e.g. 000001.SZ (or give symbol)."),
        Param("symbol", STRING, max_length=20, help="The stock's symbol, e.g. 000001, when no ts_code."),
        *RANGE_PARAMETERS,
    )

    def parse(self, config: dict[str, Any]) -> RangeParams:
        reader = ConfigReader(config)
        start, end, lookback = _read_range(reader)
        ts_code = reader.text("ts_code", max_length=20) or reader.text("symbol", max_length=20)
        if not ts_code:
            reader.error("ts_code (or symbol) is required for sync_daily_data.")
        reader.raise_if_errors()
        return RangeParams(start=start, end=end, lookback_days=lookback, ts_code=ts_code.upper())

    def sync(self, ctx: RunContext, params: RangeParams, provider: MarketDataProvider) -> dict[str, Any]:
        ts_code = params.ts_code
        if "." not in ts_code:  # a bare symbol such as 000001
            found = Stock.objects.filter(symbol=ts_code).values_list("ts_code", flat=True).first()
            found = found or next((row["ts_code"] for row in provider.stock_list() if row["symbol"] == ts_code), None)
            if found is None:
                raise ConfigError(f"Unknown stock {ts_code!r}.")
            ts_code = found
        start, end = resolve_range(
            params.start, params.end, lookback_days=params.lookback_days, calendar=open_days(provider)
        )
        ctx.progress(processed=0, total=1, current_item=ts_code, message=f"正在同步 {ts_code}", force=True)
        rows = provider.daily(ts_code=ts_code, start=start, end=end)
        message = f"成功同步 {ts_code} {len(rows)} 条日线数据 ({start:%Y%m%d}-{end:%Y%m%d})"
        return store_fetched(ctx, DailyBar, rows, keys=("ts_code", "trade_date"), message=message, current_item=ts_code)


class PerStockSync(SyncStrategy):
    """Every stock (or `codelist`), one at a time in code order, checkpointed after each."""

    model: ClassVar[type[models.Model]]
    label: ClassVar[str]

    @abstractmethod
    def fetch(self, provider: MarketDataProvider, ts_code: str, start: date, end: date) -> list[Record]: ...

    def sync(self, ctx: RunContext, params: RangeParams, provider: MarketDataProvider) -> dict[str, Any]:
        start, end = resolve_range(
            params.start, params.end, lookback_days=params.lookback_days, calendar=open_days(provider)
        )
        codes = params.codes or list(Stock.objects.filter(is_active=True).values_list("ts_code", flat=True))
        if not codes:
            codes = [row["ts_code"] for row in provider.stock_list()]
        author = author_of(ctx)

        def work(ts_code: str) -> dict[str, int]:
            rows = self.fetch(provider, ts_code, start, end)
            inserted, updated = upsert(self.model, rows, keys=("ts_code", "trade_date"), author=author)
            return {"insert_count": inserted, "update_count": updated}

        summary = run_items(ctx, codes, work, label=self.label)
        result = summary.as_result()
        result.setdefault("insert_count", 0)
        result.setdefault("update_count", 0)
        result["总股票数"] = summary.total
        result["成功"] = summary.success_count
        result["失败"] = len(summary.failed)
        result["message"] = (
            f"同步完成: 成功 {summary.success_count}/{summary.total} ({start:%Y%m%d}-{end:%Y%m%d}), "
            f"新增 {result['insert_count']}, 更新 {result['update_count']}"
        )
        if summary.failed:
            details = "; ".join(f"{code}: {summary.errors.get(code, 'failed earlier')}" for code in summary.failed[:20])
            result["message"] += f", 失败 {len(summary.failed)}: {details}"
        return result


@register_strategy
class AllDailyDataSync(PerStockSync):
    action = "sync_all_daily_data"
    description = "Daily bars of every stock (or codelist) in a date range; resumable per stock."
    model = DailyBar
    label = "同步日线数据"

    def fetch(self, provider: MarketDataProvider, ts_code: str, start: date, end: date) -> list[Record]:
        return provider.daily(ts_code=ts_code, start=start, end=end)


@register_strategy
class DailyBasicSync(PerStockSync):
    action = "sync_daily_basic_data"
    description = "Daily indicators (turnover, P/E, P/B, market value) of every stock; resumable per stock."
    model = DailyBasic
    label = "同步每日指标数据"

    def fetch(self, provider: MarketDataProvider, ts_code: str, start: date, end: date) -> list[Record]:
        return provider.daily_basic(ts_code=ts_code, start=start, end=end)
