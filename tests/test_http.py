"""HTTP plumbing: limiter spacing and pauses, 429/Retry-After, safe retries only."""

import pytest
import requests
import responses

from genesys_prov import redact
from genesys_prov.http import (
    HttpClient,
    RateLimiter,
    TransportError,
    make_session,
    retry_after_seconds,
)

URL = "https://api.example.test/Users"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_limiter_spaces_requests_evenly():
    clock = FakeClock()
    limiter = RateLimiter(120, clock=clock.time, sleep=clock.sleep)
    for _ in range(5):
        limiter.acquire()
    assert clock.now == pytest.approx(2.0)  # 4 gaps of 0.5 s
    limiter.pause(10)
    limiter.acquire()
    assert clock.now == pytest.approx(12.0)


def test_limiter_off():
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock.time, sleep=clock.sleep)
    for _ in range(100):
        limiter.acquire()
    assert clock.slept == []


def client(clock: FakeClock) -> HttpClient:
    limiter = RateLimiter(0, clock=clock.time, sleep=clock.sleep)
    return HttpClient(make_session(), limiter, timeout=5, sleep=clock.sleep)


@responses.activate
def test_429_honours_retry_after_for_posts_too():
    clock = FakeClock()
    responses.post(URL, status=429, headers={"Retry-After": "7"})
    responses.post(URL, status=429, headers={"Retry-After": "3"})
    responses.post(URL, status=201, json={"id": "x"})
    http = client(clock)
    response = http.request("POST", URL, json={})
    assert response.status_code == 201
    assert clock.slept == [7.0, 3.0]
    assert http.counts["POST"] == 3
    assert http.throttled == 2


@responses.activate
def test_5xx_retried_for_get_not_for_post():
    clock = FakeClock()
    responses.get(URL, status=503)
    responses.get(URL, status=200, json={})
    http = client(clock)
    assert http.request("GET", URL).status_code == 200
    responses.post(URL, status=503)
    assert http.request("POST", URL, json={}).status_code == 503
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 1


@responses.activate
def test_connection_error_on_post_is_ambiguous():
    clock = FakeClock()
    responses.post(URL, body=requests.ConnectionError("reset"))
    with pytest.raises(TransportError) as info:
        client(clock).request("POST", URL, json={})
    assert info.value.ambiguous


@responses.activate
def test_connection_errors_on_get_give_up_after_retries():
    clock = FakeClock()
    for _ in range(10):
        responses.get(URL, body=requests.ConnectionError("refused"))
    with pytest.raises(TransportError) as info:
        client(clock).request("GET", URL)
    assert not info.value.ambiguous
    assert len(responses.calls) == 5  # first try + 4 retries


def test_retry_after_parsing():
    assert retry_after_seconds("12", 1) == 12
    assert retry_after_seconds(None, 4) == 4
    assert retry_after_seconds("garbage", 4) == 4
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 4) == 0


def test_redaction_of_registered_secrets_and_bearer():
    redact.register("sup3r-secret-value")
    text = "failed with sup3r-secret-value and Authorization: Bearer abc.def.ghi"
    assert redact.scrub(text) == "failed with [redacted] and Authorization: Bearer [redacted]"
