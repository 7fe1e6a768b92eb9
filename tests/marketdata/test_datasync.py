"""Data-sync actions on the sample data: the rows written, insert/update counts, failures, resume."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date

import pytest

from marketdata.datasync import resolve_range
from marketdata.models import DailyBar, DailyBasic, FactorValue, Stock, TradingDay
from marketdata.providers import ProviderError, SampleProvider
from scheduler_app.models import TaskExecution
from scheduler_app.runtime.runner import execution_run
from tests.executors.helpers import Runner, make_execution, make_task, request, row, run_config, wait_for

pytestmark = pytest.mark.usefixtures("fast")

CODES = ["000001.SZ", "000002.SZ", "300750.SZ", "600000.SH", "600519.SH", "601318.SH"]
OPEN_DAYS = 117


def sync(action: str, **config) -> TaskExecution:
    return run_config({"task_action": action, **config}, max_retries=0)


@pytest.mark.django_db
def test_stock_list_inserts_then_updates():
    first = sync("sync_stock_list")
    assert first.status == "success"
    assert (first.result["insert_count"], first.result["update_count"], first.result["total"]) == (6, 0, 6)
    assert first.result["message"] == "成功同步 6 条股票列表"
    assert list(Stock.objects.values_list("ts_code", flat=True)) == CODES
    assert Stock.objects.get(ts_code="600519.SH").name == "贵州茅台"
    assert Stock.objects.first().created_by == first.task.name
    second = sync("sync_stock_list")
    assert (second.result["insert_count"], second.result["update_count"]) == (0, 6)
    assert Stock.objects.count() == 6


@pytest.mark.django_db
def test_trading_calendar_with_and_without_dates():
    everything = sync("sync_trading_calendar")
    assert (everything.result["insert_count"], everything.result["update_count"]) == (182, 0)
    january = sync("sync_trading_calendar", start_date="20240101", end_date="2024-01-31")
    assert (january.result["insert_count"], january.result["update_count"]) == (0, 31)
    assert TradingDay.objects.filter(is_open=True).count() == OPEN_DAYS
    day = TradingDay.objects.get(cal_date=date(2024, 1, 3))
    assert day.pretrade_date == date(2024, 1, 2)


@pytest.mark.django_db
def test_daily_data_of_one_stock():
    execution = sync("sync_daily_data", ts_code="000001.SZ", start_date="20240101")
    assert execution.status == "success", execution.error_message
    assert execution.result["insert_count"] == OPEN_DAYS
    assert DailyBar.objects.filter(ts_code="000001.SZ").count() == OPEN_DAYS
    by_symbol = sync("sync_daily_data", symbol="600519", start_date="2024-06-01", end_date="2024-06-30")
    assert by_symbol.result["insert_count"] == 19
    assert by_symbol.result["current_item"] == "600519.SH"


@pytest.mark.django_db
def test_daily_data_defaults_to_the_latest_trading_day():
    execution = sync("sync_daily_data", ts_code="000002.SZ")
    assert execution.result["insert_count"] == 1
    assert DailyBar.objects.get().trade_date == date(2024, 6, 28)


@pytest.mark.django_db
def test_daily_data_needs_a_stock():
    execution = sync("sync_daily_data")
    assert execution.status == "failed"
    assert "ts_code (or symbol) is required" in execution.error_message
    assert sync("sync_daily_data", ts_code="999999").error_message == "Invalid config: Unknown stock '999999'."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "model"), [("sync_all_daily_data", DailyBar), ("sync_daily_basic_data", DailyBasic)]
)
def test_every_stock_in_a_range(action, model):
    sync("sync_stock_list")
    execution = sync(action, start_date="20240101", end_date="20240630")
    assert execution.status == "success", execution.error_message
    result = execution.result
    assert (result["total"], result["success_count"], result["failed_count"]) == (6, 6, 0)
    assert (result["insert_count"], result["update_count"]) == (6 * OPEN_DAYS, 0)
    assert result["checkpoint"] == {"last_item": "601318.SH", "failed_items": []}
    assert result["message"].startswith("同步完成: 成功 6/6")
    assert model.objects.count() == 6 * OPEN_DAYS
    assert (execution.processed_items, execution.total_items, execution.current_item) == (6, 6, "601318.SH")
    again = sync(action, start_date="20240601", codelist="600000.SH, 000001.SZ")
    assert (again.result["total"], again.result["insert_count"], again.result["update_count"]) == (2, 0, 2 * 19)


@pytest.mark.django_db
def test_lookback_days_sets_the_default_window():
    execution = sync("sync_all_daily_data", lookback_days=30)  # no stock list yet: the provider's
    assert execution.result["insert_count"] == 6 * 30
    assert DailyBar.objects.order_by("trade_date").first().trade_date == date(2024, 5, 17)


def test_default_dates():
    calendar = [date(2024, 1, day) for day in (2, 3, 4, 5, 8)]
    assert resolve_range(None, None, lookback_days=1, calendar=calendar, today=date(2024, 1, 7)) == (
        date(2024, 1, 5),
        date(2024, 1, 5),
    )
    assert resolve_range(None, None, lookback_days=3, calendar=calendar, today=date(2030, 1, 1)) == (
        date(2024, 1, 4),
        date(2024, 1, 8),
    )
    assert resolve_range(date(2024, 1, 3), None, lookback_days=1, calendar=[], today=date(2024, 2, 1)) == (
        date(2024, 1, 3),
        date(2024, 2, 1),
    )


class FlakyProvider(SampleProvider):
    """The sample data, except that 300750.SZ fails (until `healed`)."""

    healed = False
    calls: Counter = Counter()

    def daily(self, *, ts_code, start, end):
        FlakyProvider.calls[ts_code] += 1
        if ts_code == "300750.SZ" and not FlakyProvider.healed:
            raise ProviderError("quota exceeded")
        return super().daily(ts_code=ts_code, start=start, end=end)


@pytest.mark.django_db
def test_a_failed_stock_fails_the_run_and_resume_retries_only_it(settings):
    settings.MARKETDATA_PROVIDER = "tests.marketdata.test_datasync.FlakyProvider"
    FlakyProvider.healed, FlakyProvider.calls = False, Counter()
    failed = sync("sync_all_daily_data", start_date="20240101")
    assert failed.status == "failed"
    assert (failed.result["success_count"], failed.result["failed_count"]) == (5, 1)
    assert "300750.SZ: quota exceeded" in failed.error_message
    assert failed.result["checkpoint"] == {"last_item": "601318.SH", "failed_items": ["300750.SZ"]}
    FlakyProvider.healed, FlakyProvider.calls = True, Counter()
    resumed = make_execution(failed.task, trigger="resume", result={"resume_from_execution_id": failed.pk})
    second = execution_run(execution_id=resumed.pk)
    assert second.status == "success"
    assert FlakyProvider.calls == Counter({"300750.SZ": 1})
    assert (second.result["skipped_count"], second.result["success_count"], second.result["insert_count"]) == (
        5,
        6,
        OPEN_DAYS,
    )
    assert DailyBar.objects.count() == 6 * OPEN_DAYS


class SlowProvider(SampleProvider):
    """The sample data, a little slowly, counting the calls per stock."""

    calls: Counter = Counter()
    lock = threading.Lock()

    def _series(self, name, ts_code, start, end):
        with SlowProvider.lock:
            SlowProvider.calls[ts_code] += 1
        time.sleep(0.15)
        return super()._series(name, ts_code, start, end)


def slow_upsert(monkeypatch):
    from marketdata import factors

    original = factors.upsert

    def slow(*args, **kwargs):
        time.sleep(0.15)
        ts_code = args[1][0]["ts_code"] if args[1] else "?"
        with SlowProvider.lock:
            SlowProvider.calls[ts_code] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(factors, "upsert", slow)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("action", "model", "config"),
    [
        ("sync_all_daily_data", DailyBar, {"start_date": "20240101"}),
        ("sync_daily_basic_data", DailyBasic, {"start_date": "20240101"}),
        ("calculate_factor", FactorValue, {"start_date": "2024-06-03", "end_date": "2024-06-28"}),
    ],
)
def test_resume_after_terminate_continues_after_the_checkpoint(settings, monkeypatch, factors, action, model, config):
    settings.MARKETDATA_PROVIDER = "tests.marketdata.test_datasync.SlowProvider"
    if action == "calculate_factor":
        sync("sync_all_daily_data", start_date="20240101")
        slow_upsert(monkeypatch)
    SlowProvider.calls = Counter()
    task = make_task({"task_action": action, **config}, max_retries=0)
    first = make_execution(task)
    runner = Runner(first.pk)
    wait_for(lambda: row(first.pk).processed_items >= 2)
    request(first.pk, terminate_requested=True)
    stopped = runner.join()
    assert stopped.status == "terminated"
    done = stopped.result["checkpoint"]["last_item"]
    assert stopped.current_item == done
    finished = [code for code in CODES if code <= done]
    assert 2 <= len(finished) < 6
    assert not TaskExecution.objects.filter(parent=stopped).exists()  # terminated: no retry
    before = Counter(SlowProvider.calls)

    resumed = make_execution(task, trigger="resume", parent=stopped, result={"resume_from_execution_id": stopped.pk})
    final = execution_run(execution_id=resumed.pk)
    assert final.status == "success", final.error_message
    again = SlowProvider.calls - before
    assert set(again) == set(CODES) - set(finished)  # nothing done twice, nothing left out
    assert final.result["skipped_count"] == len(finished)
    assert final.result["success_count"] == 6
    assert final.result["resume_from_execution_id"] == stopped.pk
    if action == "calculate_factor":
        assert model.objects.values("ts_code").distinct().count() == 6
    else:
        assert model.objects.count() == 6 * OPEN_DAYS
