"""Market data tables written by the data-sync actions and read by the factor calculation.

Field names follow Tushare's (the provider zquant used), so a real provider maps one to one. Rows
are keyed by their natural key (ts_code, trade_date, ...) with a unique constraint, which is what the
sync actions upsert on; `created_by` / `updated_by` name the task that wrote the row, as in zquant.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditedModel(models.Model):
    created_by = models.CharField(_("created by"), max_length=100, blank=True, default="")
    updated_by = models.CharField(_("updated by"), max_length=100, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class Stock(AuditedModel):
    ts_code = models.CharField(_("ts code"), max_length=20, unique=True, help_text=_("Example: 000001.SZ"))
    symbol = models.CharField(_("symbol"), max_length=20)
    name = models.CharField(_("name"), max_length=100)
    area = models.CharField(_("area"), max_length=50, blank=True, default="")
    industry = models.CharField(_("industry"), max_length=50, blank=True, default="")
    market = models.CharField(_("market"), max_length=20, blank=True, default="")
    exchange = models.CharField(_("exchange"), max_length=10, blank=True, default="")
    list_date = models.DateField(_("list date"), null=True, blank=True)
    is_active = models.BooleanField(_("listed"), default=True)

    class Meta:
        db_table = "zq_data_stock"
        ordering = ["ts_code"]
        verbose_name = _("stock")
        verbose_name_plural = _("stocks")

    def __str__(self) -> str:
        return f"{self.ts_code} {self.name}"


class TradingDay(AuditedModel):
    exchange = models.CharField(_("exchange"), max_length=10, default="SSE")
    cal_date = models.DateField(_("date"))
    is_open = models.BooleanField(_("open"))
    pretrade_date = models.DateField(_("previous trading day"), null=True, blank=True)

    class Meta:
        db_table = "zq_data_trading_calendar"
        ordering = ["exchange", "cal_date"]
        verbose_name = _("calendar day")
        verbose_name_plural = _("trading calendar")
        constraints = [models.UniqueConstraint(fields=["exchange", "cal_date"], name="zq_data_cal_one_per_day")]

    def __str__(self) -> str:
        return f"{self.exchange} {self.cal_date} {'open' if self.is_open else 'closed'}"


class DailyBar(AuditedModel):
    ts_code = models.CharField(_("ts code"), max_length=20)
    trade_date = models.DateField(_("trade date"))
    open = models.FloatField(_("open"))
    high = models.FloatField(_("high"))
    low = models.FloatField(_("low"))
    close = models.FloatField(_("close"))
    pre_close = models.FloatField(_("previous close"), null=True, blank=True)
    change = models.FloatField(_("change"), null=True, blank=True)
    pct_chg = models.FloatField(_("change (%)"), null=True, blank=True)
    vol = models.FloatField(_("volume (lots)"), null=True, blank=True)
    amount = models.FloatField(_("amount (1,000 CNY)"), null=True, blank=True)

    class Meta:
        db_table = "zq_data_daily"
        ordering = ["ts_code", "trade_date"]
        verbose_name = _("daily bar")
        verbose_name_plural = _("daily bars")
        constraints = [models.UniqueConstraint(fields=["ts_code", "trade_date"], name="zq_data_daily_one_per_day")]
        indexes = [models.Index(fields=["trade_date"], name="zq_data_daily_date_idx")]

    def __str__(self) -> str:
        return f"{self.ts_code} {self.trade_date} {self.close}"


class DailyBasic(AuditedModel):
    ts_code = models.CharField(_("ts code"), max_length=20)
    trade_date = models.DateField(_("trade date"))
    close = models.FloatField(_("close"), null=True, blank=True)
    turnover_rate = models.FloatField(_("turnover rate (%)"), null=True, blank=True)
    volume_ratio = models.FloatField(_("volume ratio"), null=True, blank=True)
    pe = models.FloatField(_("P/E"), null=True, blank=True)
    pb = models.FloatField(_("P/B"), null=True, blank=True)
    total_mv = models.FloatField(_("market value (10,000 CNY)"), null=True, blank=True)
    circ_mv = models.FloatField(_("float market value (10,000 CNY)"), null=True, blank=True)

    class Meta:
        db_table = "zq_data_daily_basic"
        ordering = ["ts_code", "trade_date"]
        verbose_name = _("daily indicator")
        verbose_name_plural = _("daily indicators")
        constraints = [models.UniqueConstraint(fields=["ts_code", "trade_date"], name="zq_data_basic_one_per_day")]
        indexes = [models.Index(fields=["trade_date"], name="zq_data_basic_date_idx")]

    def __str__(self) -> str:
        return f"{self.ts_code} {self.trade_date}"


class FactorDefinition(AuditedModel):
    """A factor the calculation knows how to compute; `kind` names the formula, `window` its length."""

    class Kind(models.TextChoices):
        MOMENTUM = "momentum", _("Momentum: close / close N days ago - 1")
        MA_RATIO = "ma_ratio", _("Moving-average ratio: MA(short) / MA(N) - 1")
        VOLATILITY = "volatility", _("Volatility: standard deviation of N daily returns")

    code = models.CharField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("formula"), max_length=20, choices=Kind.choices)
    window = models.PositiveIntegerField(_("window (trading days)"))
    short_window = models.PositiveIntegerField(_("short window"), null=True, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    description = models.TextField(_("description"), blank=True, default="")

    class Meta:
        db_table = "zq_data_factor_definition"
        ordering = ["id"]
        verbose_name = _("factor definition")
        verbose_name_plural = _("factor definitions")

    def __str__(self) -> str:
        return self.code


class FactorValue(AuditedModel):
    factor = models.ForeignKey(FactorDefinition, verbose_name=_("factor"), on_delete=models.CASCADE)
    ts_code = models.CharField(_("ts code"), max_length=20)
    trade_date = models.DateField(_("trade date"))
    value = models.FloatField(_("value"))

    class Meta:
        db_table = "zq_data_factor_value"
        ordering = ["factor", "ts_code", "trade_date"]
        verbose_name = _("factor value")
        verbose_name_plural = _("factor values")
        constraints = [
            models.UniqueConstraint(fields=["factor", "ts_code", "trade_date"], name="zq_data_factor_one_per_day")
        ]
        indexes = [models.Index(fields=["trade_date"], name="zq_data_factor_date_idx")]

    def __str__(self) -> str:
        return f"{self.factor_id} {self.ts_code} {self.trade_date} {self.value}"
