"""HTTP plumbing: limiter spacing and pauses, a request's limiter slot held until its answer,
429/Retry-After, safe retries only, the environment merged once per host (the limiter
itself: tests/test_limiter.py)."""

import math

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


def test_limiter_slots_are_released_by_leaving_the_block():
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock.time, sleep=clock.sleep)
    with limiter.acquire(), limiter.acquire():
        assert limiter.try_acquire() == math.inf  # both slots run
    assert limiter.try_acquire() == pytest.approx(60.0)  # held 60 s after the answers


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
    assert len(responses.calls) == 6  # first try + 5 retries


def test_retry_after_parsing():
    assert retry_after_seconds("12", 1) == 12
    assert retry_after_seconds(None, 4) == 4
    assert retry_after_seconds("garbage", 4) == 4
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 4) == 0


def test_redaction_of_registered_secrets_and_bearer():
    redact.register("sup3r-secret-value")
    text = "failed with sup3r-secret-value and Authorization: Bearer abc.def.ghi"
    assert redact.scrub(text) == "failed with [redacted] and Authorization: Bearer [redacted]"


def _refused() -> requests.ConnectionError:
    """What requests raises for a refused connection (the request was never sent)."""
    import urllib3.exceptions

    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, URL, reason))


@responses.activate
def test_a_post_that_never_left_is_sent_again():
    """Connection refused means the request was never written: even a POST may be sent
    again, and it is not ambiguous."""
    clock = FakeClock()
    http = client(clock)
    responses.get(URL, status=200, json={})
    http.request("GET", URL)  # the host has answered once: outages are waited for
    responses.post(URL, body=_refused())
    responses.post(URL, body=_refused())
    responses.post(URL, status=201, json={"id": "x"})
    assert http.request("POST", URL, json={}).status_code == 201
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 3
    assert http.retried == 2 and len(clock.slept) == 2


@responses.activate
def test_a_host_that_never_answered_fails_fast_with_one_line():
    clock = FakeClock()
    for _ in range(10):
        responses.get(URL, body=_refused())
    with pytest.raises(TransportError) as info:
        client(clock).request("GET", URL)
    assert len(responses.calls) == 2  # one quick retry: a wrong URL is not waited for
    assert str(info.value) == ("GET https://api.example.test/Users: cannot connect to "
                               "api.example.test (connection refused): is the server up and "
                               "the URL right?")


@responses.activate
def test_tls_failures_are_not_retried_and_say_what_to_do():
    responses.get(URL, body=requests.exceptions.SSLError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate "
        "(_ssl.c:1006)"))
    with pytest.raises(TransportError) as info:
        client(FakeClock()).request("GET", URL)
    assert len(responses.calls) == 1
    assert not info.value.transient
    assert "certificate verify failed: self-signed certificate; if the server uses a private " \
        "CA, set ca_bundle" in str(info.value)


@responses.activate
def test_a_resource_limited_429_is_handed_back_at_once():
    clock = FakeClock()
    responses.get(URL, status=429, json={"detail": "exceeds internal resource limits"})
    response = client(clock).request("GET", URL,
                                     give_up=lambda r: b"resource limits" in r.content)
    assert response.status_code == 429 and clock.slept == [] and len(responses.calls) == 1


@responses.activate
def test_a_tls_connection_cut_mid_handshake_is_transient():
    """The target going down during a TLS handshake is a network failure, not a trust
    problem: a GET is tried again; a POST is ambiguous (the caller looks it up)."""
    clock = FakeClock()
    http = client(clock)
    eof = requests.exceptions.SSLError("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in "
                                       "violation of protocol (_ssl.c:1006)")
    responses.get(URL, body=eof)
    responses.get(URL, status=200, json={})
    assert http.request("GET", URL).status_code == 200
    responses.post(URL, body=eof)
    with pytest.raises(TransportError) as info:
        http.request("POST", URL, json={})
    assert info.value.ambiguous and info.value.transient
    assert "the TLS connection to api.example.test was cut" in str(info.value)


@responses.activate
def test_a_request_holds_its_slot_until_its_answer_and_60_s_more():
    """HttpClient releases the limiter slot when the answer has arrived (here 5 s after
    the start): at one request a minute the next may start 60 s after that answer."""
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock.time, sleep=clock.sleep)
    http = HttpClient(make_session(), limiter, timeout=5, sleep=clock.sleep)

    def slow(request):
        clock.now += 5
        return (200, {}, "{}")

    responses.add_callback(responses.GET, URL, callback=slow)
    http.request("GET", URL)
    assert limiter.try_acquire() == pytest.approx(60.0)  # until 65 s; the clock is at 5 s


@responses.activate
def test_a_failed_request_gives_its_slot_back_too():
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock.time, sleep=clock.sleep)
    http = HttpClient(make_session(), limiter, timeout=5, sleep=clock.sleep)
    responses.post(URL, body=requests.ConnectionError("reset"))
    with pytest.raises(TransportError):
        http.request("POST", URL, json={})
    assert limiter.try_acquire() == pytest.approx(60.0)  # not math.inf: released


@responses.activate
def test_the_environment_is_merged_once_per_host(monkeypatch):
    """requests' environment look-up (proxies, CA bundle variables) runs once per host
    and session, not on every request."""
    calls: list[str] = []
    merge = requests.Session.merge_environment_settings

    def counting(self, url, *args):
        calls.append(url)
        return merge(self, url, *args)

    monkeypatch.setattr(requests.Session, "merge_environment_settings", counting)
    other = "https://login.example.test/oauth/token"
    responses.get(URL, json={})
    responses.post(other, json={})
    http = client(FakeClock())
    for _ in range(5):
        http.request("GET", URL, params={"count": 1})
    for _ in range(3):
        http.request("POST", other, data={"grant_type": "client_credentials"})
    assert len(responses.calls) == 8
    assert [url.split("/")[2] for url in calls] == ["api.example.test", "login.example.test"]


def test_a_configured_ca_bundle_beats_the_environment_every_time(monkeypatch, tmp_path):
    """REQUESTS_CA_BUNDLE loses to the session's own ``verify`` on the first look-up and
    on the cached ones; with nothing configured, the variable is used (requests' rule)."""
    mine, env = tmp_path / "mine.pem", tmp_path / "env.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(env))
    session = make_session(str(mine))
    for _ in range(3):
        settings = session.merge_environment_settings(URL, {}, None, None, None)
        assert settings["verify"] == str(mine)
    settings["proxies"]["https"] = "http://changed.example"  # a caller's change stays its own
    assert session.merge_environment_settings(URL, {}, None, None, None)["proxies"].get(
        "https") != "http://changed.example"
    assert make_session().merge_environment_settings(URL, {}, None, None, None)["verify"] \
        == str(env)
