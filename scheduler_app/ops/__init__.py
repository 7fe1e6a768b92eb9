"""Operability: notification events and their delivery (email, signed webhooks), metric counters."""
