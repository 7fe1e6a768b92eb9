"""The scheduler's REST API (DRF): thin views over the services and selectors."""
