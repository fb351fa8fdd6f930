"""Call recordings: only signed-in staff with calls.view_call hear them, with byte ranges for seeking."""

import importlib

import pytest
from asgiref.sync import async_to_sync
from django.apps import apps
from django.core.files.base import ContentFile
from django.urls import clear_url_caches, reverse

import voicecrm.urls
from calls.models import Call

pytestmark = pytest.mark.django_db

AUDIO = bytes(range(256)) * 40  # 10,240 bytes, every offset recognisable


@pytest.fixture
def recorded_call():
    call = Call.objects.create(channel=Call.Channel.API)
    call.recording.save("recording.wav", ContentFile(AUDIO))
    yield call
    call.recording.delete(save=False)


def api_token(user) -> str:
    """A token for the API's authentication: DRF's tokens, or django-rest-knox's where installed."""
    if apps.is_installed("knox"):
        return apps.get_model("knox", "AuthToken").objects.create(user=user)[1]
    return apps.get_model("authtoken", "Token").objects.get_or_create(user=user)[0].key


def _url(call: Call) -> str:
    return reverse("calls:recording", args=[call.public_id])


def _body(response) -> bytes:
    async def read() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(read)()


def test_anonymous_visitors_are_sent_to_sign_in(client, recorded_call):
    response = client.get(_url(recorded_call))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert client.get(_url(recorded_call), HTTP_AUTHORIZATION="Token not-a-token").status_code == 401


def test_staff_without_view_call_are_refused(client, django_user_model, recorded_call):
    dave = django_user_model.objects.create_user("dave", "dave@example.com", "x", is_staff=True)  # no role
    client.force_login(dave)
    assert client.get(_url(recorded_call)).status_code == 403


def test_a_viewer_hears_the_whole_recording(client, charlie, recorded_call):
    client.force_login(charlie)
    response = client.get(_url(recorded_call))
    assert response.status_code == 200 and _body(response) == AUDIO
    assert response["Content-Type"] == "audio/x-wav" or response["Content-Type"] == "audio/wav"
    assert response["Content-Length"] == str(len(AUDIO)) and response["Accept-Ranges"] == "bytes"
    assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]


def test_an_api_token_works_too(client, charlie, recorded_call):
    token = api_token(charlie)
    response = client.get(_url(recorded_call), HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200 and _body(response) == AUDIO


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-9", 0, 9),
    ("bytes=1000-", 1000, len(AUDIO) - 1),
    ("bytes=-100", len(AUDIO) - 100, len(AUDIO) - 1),
    ("bytes=10000-99999", 10000, len(AUDIO) - 1),  # the end is clipped to the file
    ("bytes=-99999", 0, len(AUDIO) - 1),
])
def test_a_byte_range_is_answered_with_206(client, charlie, recorded_call, header, start, end):
    client.force_login(charlie)
    response = client.get(_url(recorded_call), HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(AUDIO)}"
    assert response["Content-Length"] == str(end - start + 1)
    assert _body(response) == AUDIO[start:end + 1]


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-20010", "bytes=9-2", "bytes=-0", "bytes=abc",
                                    "bytes=-", "bytes=1-x"])
def test_a_bad_range_is_answered_with_416(client, charlie, recorded_call, header):
    client.force_login(charlie)
    response = client.get(_url(recorded_call), HTTP_RANGE=header)
    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{len(AUDIO)}"


@pytest.mark.parametrize("header", ["items=0-5", "bytes=0-1,5-6"])
def test_ranges_it_does_not_serve_get_the_whole_file(client, charlie, recorded_call, header):
    client.force_login(charlie)
    response = client.get(_url(recorded_call), HTTP_RANGE=header)
    assert response.status_code == 200 and _body(response) == AUDIO


def test_the_proxy_can_send_the_file(client, charlie, recorded_call, settings):
    client.force_login(charlie)
    settings.RECORDINGS_SENDFILE = "nginx"
    settings.RECORDINGS_NGINX_LOCATION = "/protected-media/"
    response = client.get(_url(recorded_call))
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == "/protected-media/" + recorded_call.recording.name
    settings.RECORDINGS_SENDFILE = "apache"
    response = client.get(_url(recorded_call))
    assert response["X-Sendfile"] == recorded_call.recording.path and response.content == b""
    client.logout()
    assert "X-Accel-Redirect" not in client.get(_url(recorded_call))  # the check comes first


@pytest.fixture
def debug_urls(settings):
    """The URLs as `runserver` with DEBUG=1 builds them (the test run turns DEBUG off before loading them)."""
    settings.DEBUG = True
    importlib.reload(voicecrm.urls)
    clear_url_caches()
    yield
    settings.DEBUG = False
    importlib.reload(voicecrm.urls)
    clear_url_caches()


def test_no_public_url_serves_the_file(client, charlie, recorded_call, debug_urls):
    # With DEBUG on, a static(MEDIA_URL) route used to serve every recording to anyone.
    assert client.get(recorded_call.recording.url).status_code == 404
    client.force_login(charlie)
    assert client.get(recorded_call.recording.url).status_code == 404


def test_the_api_and_the_admin_point_at_the_checked_view(client, charlie, recorded_call):
    token = api_token(charlie)
    data = client.get(f"/api/calls/{recorded_call.public_id}/", HTTP_AUTHORIZATION=f"Token {token}").json()
    # The API's own download (voicecrm/api/calls.py), which answers with the same view's logic.
    assert data["recording_url"] == f"http://testserver/api/v1/calls/{recorded_call.public_id}/recording/"
    client.force_login(charlie)
    page = client.get(reverse("admin:calls_call_change", args=[recorded_call.pk])).content.decode()
    assert f'<audio controls preload="none" src="{_url(recorded_call)}">' in page


def test_a_call_without_a_recording_is_404(client, charlie):
    client.force_login(charlie)
    assert client.get(_url(Call.objects.create(channel=Call.Channel.API))).status_code == 404
