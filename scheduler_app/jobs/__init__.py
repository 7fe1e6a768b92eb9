"""Job scripts run by command tasks (`python -m scheduler_app.jobs.<name>`); they never import Django."""
