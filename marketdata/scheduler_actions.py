"""The market-data app's scheduler actions and calendar source, found by scheduler_app when Django starts.

`sync_stock_list`, `sync_trading_calendar`, `sync_daily_data`, `sync_all_daily_data`,
`sync_daily_basic_data` (marketdata.datasync) and `calculate_factor` (marketdata.factors); the
calendar source `marketdata.trading_calendar` (marketdata.trading_calendar).
"""

from marketdata import datasync, factors, trading_calendar  # noqa: F401 - importing them registers them
