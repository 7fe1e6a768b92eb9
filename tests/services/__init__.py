"""Tests of scheduler_app.services."""
