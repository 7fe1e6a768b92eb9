"""Date formats of the console: one format, to the second, in every language (as admin.common.local_time)."""
