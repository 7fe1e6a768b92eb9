"""calculate_factor: real values from the synced bars, invalid values without history."""

from __future__ import annotations

import statistics
from datetime import date

import pytest

from marketdata.models import DailyBar, FactorValue
from tests.executors.helpers import run_config

pytestmark = pytest.mark.usefixtures("fast")


@pytest.fixture
def bars(db):
    assert run_config({"task_action": "sync_all_daily_data", "start_date": "20240101"}).status == "success"


def closes(ts_code: str, until: date) -> list[float]:
    return list(
        DailyBar.objects.filter(ts_code=ts_code, trade_date__lte=until)
        .order_by("trade_date")
        .values_list("close", flat=True)
    )


@pytest.mark.django_db
def test_factor_values_match_their_formulas(bars, factors):
    execution = run_config({"task_action": "calculate_factor", "start_date": "2024-06-28", "end_date": "2024-06-28"})
    assert execution.status == "success", execution.error_message
    assert (execution.result["calculated_count"], execution.result["invalid_count"]) == (18, 0)
    series = closes("600519.SH", date(2024, 6, 28))
    value = {
        row.factor.code: row.value
        for row in FactorValue.objects.filter(ts_code="600519.SH", trade_date=date(2024, 6, 28)).select_related(
            "factor"
        )
    }
    assert value["momentum_20"] == pytest.approx(series[-1] / series[-21] - 1)
    assert value["ma_ratio_5_20"] == pytest.approx((sum(series[-5:]) / 5) / (sum(series[-20:]) / 20) - 1)
    returns = [b / a - 1 for a, b in zip(series[-21:-1], series[-20:], strict=True)]
    assert value["volatility_20"] == pytest.approx(statistics.stdev(returns))


@pytest.mark.django_db
def test_values_without_enough_history_are_invalid(bars, factors):
    execution = run_config(
        {"task_action": "calculate_factor", "factor_id": factors["momentum_20"].pk, "codes": "600000.SH"}
        | {"start_date": "20240102", "end_date": "20240131"}
    )
    assert execution.status == "success"
    # January 2024 has 22 trading days; momentum over 20 days needs 21 closes
    assert (execution.result["calculated_count"], execution.result["invalid_count"]) == (2, 20)
    assert execution.result["total"] == 1


@pytest.mark.django_db
def test_defaults_to_the_latest_trading_day_and_rerun_updates(bars, factors):
    first = run_config({"task_action": "calculate_factor"})
    assert first.result["calculated_count"] == 18
    assert set(FactorValue.objects.values_list("trade_date", flat=True)) == {date(2024, 6, 28)}
    second = run_config({"task_action": "calculate_factor"})
    assert second.result["calculated_count"] == 18
    assert FactorValue.objects.count() == 18


@pytest.mark.django_db
def test_an_unknown_factor_fails_cleanly(factors):
    execution = run_config({"task_action": "calculate_factor", "factor_id": 999}, max_retries=0)
    assert execution.status == "failed"
    assert execution.error_message == "Invalid config: Factor 999 does not exist."
