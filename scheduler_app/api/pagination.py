"""Page-number pagination with a real total count: {count, next, previous, results}."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """50 rows a page by default; `page_size` may ask for up to 500."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
