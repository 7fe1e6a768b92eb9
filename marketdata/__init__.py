"""Market data for the data-sync and factor actions: stocks, trading calendar, daily bars, factors."""
