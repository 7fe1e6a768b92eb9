"""Read-mostly admin pages, so operators can see what the data-sync actions wrote."""

from django.contrib import admin

from marketdata.models import DailyBar, DailyBasic, FactorDefinition, FactorValue, Stock, TradingDay


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["ts_code", "name", "industry", "market", "exchange", "list_date", "is_active", "updated_at"]
    list_filter = ["exchange", "market", "is_active"]
    search_fields = ["ts_code", "symbol", "name"]


@admin.register(TradingDay)
class TradingDayAdmin(admin.ModelAdmin):
    list_display = ["exchange", "cal_date", "is_open", "pretrade_date"]
    list_filter = ["exchange", "is_open"]
    date_hierarchy = "cal_date"


@admin.register(DailyBar)
class DailyBarAdmin(admin.ModelAdmin):
    list_display = ["ts_code", "trade_date", "open", "high", "low", "close", "pct_chg", "vol"]
    list_filter = ["trade_date"]
    search_fields = ["ts_code"]
    date_hierarchy = "trade_date"


@admin.register(DailyBasic)
class DailyBasicAdmin(admin.ModelAdmin):
    list_display = ["ts_code", "trade_date", "close", "turnover_rate", "pe", "pb", "total_mv"]
    search_fields = ["ts_code"]
    date_hierarchy = "trade_date"


@admin.register(FactorDefinition)
class FactorDefinitionAdmin(admin.ModelAdmin):
    list_display = ["id", "code", "name", "kind", "window", "short_window", "enabled"]
    list_filter = ["kind", "enabled"]


@admin.register(FactorValue)
class FactorValueAdmin(admin.ModelAdmin):
    list_display = ["factor", "ts_code", "trade_date", "value"]
    list_filter = ["factor"]
    search_fields = ["ts_code"]
    date_hierarchy = "trade_date"
    list_select_related = ["factor"]
