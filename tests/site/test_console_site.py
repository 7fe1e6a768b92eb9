"""The site around the console: its root, its icon, its date formats."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus

from django.templatetags.static import static
from django.utils import formats, translation


def test_the_root_and_view_site_open_the_admin(client):
    response = client.get("/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/admin/"


def test_the_favicon(admin_client):
    response = admin_client.get("/favicon.ico")
    assert response.status_code == HTTPStatus.MOVED_PERMANENTLY
    assert response["Location"] == static("scheduler_app/favicon.svg")
    html = admin_client.get("/admin/").content.decode()
    assert f'<link rel="icon" type="image/svg+xml" href="{static("scheduler_app/favicon.svg")}">' in html


def test_dates_have_one_format_to_the_second_in_both_languages():
    moment = datetime(2025, 1, 6, 10, 0, 5, tzinfo=UTC)
    for language in ("en", "zh-hans"):
        with translation.override(language):
            assert formats.date_format(moment, "DATETIME_FORMAT") == "2025-01-06 10:00:05"
            assert formats.localize(moment.date()) == "2025-01-06"
