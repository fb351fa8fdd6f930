"""The API's OpenAPI schema: generated without errors, checked in, and served with its readers,
whose assets come from this server only."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def test_the_checked_in_schema_is_the_api_as_built(tmp_path):
    generated = tmp_path / "openapi.yaml"
    # --fail-on-warn: an endpoint whose shapes the generator had to guess fails here, not in a client.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(generated))
    assert generated.read_text() == SCHEMA.read_text(), (
        "The REST API changed: run `make schema` and commit docs/openapi.yaml with the change.")


def test_the_schema_lists_the_versioned_api_once(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/calls/" in paths and "post" in paths["/api/v1/calls/"]
    assert all(path.startswith("/api/v1/") for path in paths)  # /api/ is an alias, not listed twice


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_readers_load_nothing_from_another_origin(client, url):
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "googleapis" not in html and "cdn" not in html.lower()
    for source in sources:
        if source.startswith(settings.STATIC_URL):
            assert finders.find(source.removeprefix(settings.STATIC_URL)), f"{source} is not a static file"
        else:  # Swagger's init script, served by the view itself (no inline script: the CSP)
            script = client.get(source)
            assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_the_unversioned_alias_serves_the_same_api(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=alice)[1]}")
    assert client.get("/api/v1/customers/").json() == client.get("/api/customers/").json()
