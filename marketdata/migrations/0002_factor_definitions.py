"""Seed the factor definitions the sample pipeline computes (ids 1-3, as zquant's factor_id)."""

from django.db import migrations

FACTORS = [
    ("momentum_20", "20日动量", "momentum", 20, None, "close / close 20 trading days earlier - 1"),
    ("ma_ratio_5_20", "5/20日均线比", "ma_ratio", 20, 5, "MA(5) / MA(20) - 1 of the close"),
    ("volatility_20", "20日波动率", "volatility", 20, None, "standard deviation of the last 20 daily returns"),
]


def create(apps, schema_editor):
    FactorDefinition = apps.get_model("marketdata", "FactorDefinition")
    for code, name, kind, window, short_window, description in FACTORS:
        FactorDefinition.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "window": window,
                "short_window": short_window,
                "description": description,
                "created_by": "migration",
                "updated_by": "migration",
            },
        )


def remove(apps, schema_editor):
    apps.get_model("marketdata", "FactorDefinition").objects.filter(code__in=[row[0] for row in FACTORS]).delete()


class Migration(migrations.Migration):
    dependencies = [("marketdata", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
