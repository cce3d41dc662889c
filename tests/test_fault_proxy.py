"""The fault-injecting reverse proxy (genesys_prov.sandbox.faults): every fault as a `requests`
client observes it, against a tiny counting upstream, the sandbox's Genesys emulator (HTTPS)
and scim2-server (HTTP)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from genesys_prov.sandbox import Sandbox
from genesys_prov.sandbox.faults import (
    Event,
    Fault,
    FaultProxy,
    Rule,
    graph_error_body,
    sandbox_proxy,
)
from tests.conftest import Scim2Server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@dataclass
class Seen:
    """One request the upstream received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """A running counting upstream."""

    url: str
    seen: list[Seen] = field(default_factory=list)

    def paths(self) -> list[str]:
        """The request targets received, in order."""
        return [s.path for s in self.seen]


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        query = parse_qs(urlsplit(self.path).query)
        status = int(query.get("status", ["200"])[0])
        if "sleep" in query:
            time.sleep(float(query["sleep"][0]))
        payload = {"method": self.command, "path": self.path, "n": len(self.server.seen),
                   "body": body.decode("utf-8"), "host": self.headers.get("Host"),
                   "pad": "x" * int(query.get("pad", ["0"])[0])}
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("X-Upstream", "counting")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        if status == 204:
            self.end_headers()
            return
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A plain-HTTP upstream under /api/v1 that counts requests and echoes them as JSON."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _UpstreamHandler)
    server.daemon_threads = True
    server.block_on_close = False
    seen: list[Seen] = []
    server.seen = seen  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield Upstream(f"http://127.0.0.1:{server.server_port}/api/v1", seen)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    """A plain-HTTP proxy in front of the counting upstream."""
    with FaultProxy(upstream.url, seed=1) as p:
        yield p


def wait_for(condition: Callable[[], bool], what: str, limit: float = 15.0) -> None:
    """Poll until ``condition()`` holds (a generous limit: never a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


# ------------------------------------------------------------------------------ pass-through


def test_pass_through_keeps_methods_bodies_statuses_headers_and_queries(
        upstream: Upstream, proxy: FaultProxy) -> None:
    assert proxy.url.endswith("/api/v1") and proxy.url.startswith("http://127.0.0.1:")
    with requests.Session() as s:
        r = s.get(f"{proxy.url}/Users?filter=userName%20eq%20%22a%22&count=2",
                  headers={"X-Custom": "yes", "Authorization": "Bearer t"}, timeout=10)
        assert r.status_code == 200
        assert r.json()["path"] == '/api/v1/Users?filter=userName%20eq%20%22a%22&count=2'
        assert r.json()["host"] == urlsplit(upstream.url).netloc  # Host rewritten
        assert r.headers["X-Upstream"] == "counting"
        assert r.headers["Content-Type"] == "application/json"
        assert s.cookies.get("a") == "1" and s.cookies.get("b") == "2"  # repeated headers kept
        assert upstream.seen[0].headers["X-Custom"] == "yes"
        assert upstream.seen[0].headers["Authorization"] == "Bearer t"

        r = s.post(f"{proxy.url}/Users?status=201", json={"userName": "é"}, timeout=10)
        assert r.status_code == 201
        assert json.loads(r.json()["body"]) == {"userName": "é"}
        r = s.patch(f"{proxy.url}/Users/1", data=b"x" * 100_000, timeout=10)
        assert r.status_code == 200 and len(r.json()["body"]) == 100_000
        r = s.delete(f"{proxy.url}/Users/1?status=204", timeout=10)
        assert r.status_code == 204 and r.content == b""
        r = s.head(f"{proxy.url}/Users", timeout=10)
        assert r.status_code == 200 and r.content == b""
        assert int(r.headers["Content-Length"]) > 0  # the length the upstream declared
        r = s.get(f"{proxy.url}/Users?status=404", timeout=10)
        assert r.status_code == 404

    assert [s.method for s in upstream.seen] == ["GET", "POST", "PATCH", "DELETE", "HEAD", "GET"]
    assert [(e.method, e.fault, e.forwarded, e.status) for e in proxy.log] == [
        ("GET", Fault.PASS, True, 200), ("POST", Fault.PASS, True, 201),
        ("PATCH", Fault.PASS, True, 200), ("DELETE", Fault.PASS, True, 204),
        ("HEAD", Fault.PASS, True, 200), ("GET", Fault.PASS, True, 404)]
    assert len(proxy.forwarded("post")) == 1
    assert proxy.injected() == []


def test_unreachable_upstream_is_a_502_from_the_proxy() -> None:
    with FaultProxy("http://127.0.0.1:9/x") as p:  # port 9 (discard): nothing listens
        r = requests.get(f"{p.url}/Users", timeout=10)
    assert r.status_code == 502
    assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert p.log[0].forwarded is False and p.log[0].error


# ------------------------------------------------------------------------------ rule selection


def test_status_with_retry_after_then_passes(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.add(Rule(Fault.STATUS, method="POST", path=r"/Users(\?|$)", times=1, status=429,
                   headers={"Retry-After": "3"}))
    with requests.Session() as s:
        assert s.get(f"{proxy.url}/Users", timeout=10).status_code == 200  # method differs
        assert s.post(f"{proxy.url}/Users/1", timeout=10).status_code == 200  # path differs
        r = s.post(f"{proxy.url}/Users", json={}, timeout=10)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "3"
        assert r.headers["Content-Type"] == "application/scim+json"
        assert r.json() == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                            "status": "429", "detail": "injected"}
        assert s.post(f"{proxy.url}/Users", json={}, timeout=10).status_code == 200  # times=1
    assert upstream.paths() == ["/api/v1/Users", "/api/v1/Users/1", "/api/v1/Users"]
    assert proxy.log[2] == Event("POST", "/api/v1/Users", Fault.STATUS, False, 429, rule=0)
    assert proxy.applied(0) == 1

    proxy.clear()
    proxy.add(Rule(Fault.STATUS, status=503, body=graph_error_body("ServiceUnavailable")))
    r = requests.get(f"{proxy.url}/users", timeout=10)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "ServiceUnavailable"
    assert r.headers["Content-Type"] == "application/json"


def test_times_and_skip(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.add(Rule(Fault.STATUS, path="/Users", skip=1, times=2, status=500),
              Rule(Fault.STATUS, path="/Users", status=502))
    with requests.Session() as s:
        statuses = [s.get(f"{proxy.url}/Users", timeout=10).status_code for _ in range(5)]
    # skipped (rule 0 decided: pass), applied twice, then rule 0 stops matching: rule 1.
    assert statuses == [200, 500, 500, 502, 502]
    assert [e.rule for e in proxy.log] == [0, 0, 0, 1, 1]
    assert len(upstream.seen) == 1


def test_probability_is_seeded(upstream: Upstream) -> None:
    def run(seed: int) -> list[int]:
        with FaultProxy(upstream.url, seed=seed) as p, requests.Session() as s:
            p.add(Rule(Fault.STATUS, probability=0.5, status=503))
            return [s.get(f"{p.url}/x", timeout=10).status_code for _ in range(40)]

    first, again, other = run(3), run(3), run(4)
    assert first == again
    assert first != other
    assert 0 < first.count(503) < 40
    assert len(upstream.seen) == 40 - first.count(503) + 40 - again.count(503) + 40 - other.count(
        503)


# ------------------------------------------------------------------------------ faults


def test_reset_before_does_not_reach_the_upstream(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.add(Rule(Fault.RESET_BEFORE, method="POST", times=1))
    with requests.Session() as s:
        assert s.get(f"{proxy.url}/warm", timeout=10).status_code == 200  # keep-alive conn
        with pytest.raises(requests.ConnectionError):
            s.post(f"{proxy.url}/Users", json={"userName": "a"}, timeout=10)
        assert s.post(f"{proxy.url}/Users", json={"userName": "a"}, timeout=10).ok
    assert [s.method for s in upstream.seen] == ["GET", "POST"]
    assert proxy.log[1] == Event("POST", "/api/v1/Users", Fault.RESET_BEFORE, False, None, rule=0)


def test_reset_after_reaches_the_upstream(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.add(Rule(Fault.RESET_AFTER, method="POST", times=1))
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{proxy.url}/Users?status=201", json={"userName": "a"}, timeout=10)
    assert [s.method for s in upstream.seen] == ["POST"]
    event = proxy.log[0]
    assert (event.fault, event.forwarded, event.status, event.upstream_status) == (
        Fault.RESET_AFTER, True, None, 201)
    assert proxy.forwarded("POST") == [event]


def test_truncate_gives_an_incomplete_body(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.add(Rule(Fault.TRUNCATE, times=1))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{proxy.url}/Users?pad=5000", timeout=10)
    r = requests.get(f"{proxy.url}/Users?pad=5000", stream=True, timeout=10)  # passes now
    assert len(r.json()["pad"]) == 5000
    assert len(upstream.seen) == 2
    assert proxy.log[0].fault is Fault.TRUNCATE and proxy.log[0].status == 200


def test_garbage_is_html_with_the_upstream_status(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.add(Rule(Fault.GARBAGE, times=1))
    r = requests.post(f"{proxy.url}/Users?status=201", json={}, timeout=10)
    assert r.status_code == 201
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text.startswith("<!DOCTYPE html>")
    with pytest.raises(requests.JSONDecodeError):
        r.json()
    assert len(upstream.seen) == 1


def test_delay_trips_the_client_timeout_and_still_lands(upstream: Upstream,
                                                         proxy: FaultProxy) -> None:
    proxy.add(Rule(Fault.DELAY, delay=1.0, times=1))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{proxy.url}/Users", json={}, timeout=(10, 0.2))
    wait_for(lambda: len(upstream.seen) == 1, "the delayed request to land")
    wait_for(lambda: len(proxy.log) == 1, "the delayed request to be logged")
    assert proxy.log[0].fault is Fault.DELAY and proxy.log[0].forwarded


def test_stop_aborts_a_delayed_request(upstream: Upstream) -> None:
    p = FaultProxy(upstream.url)
    p.start()
    p.add(Rule(Fault.DELAY, delay=300))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            requests.get(f"{p.url}/slow", timeout=60)
        except requests.RequestException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: bool(p._conns), "the request to reach the proxy")
    p.stop()
    p.stop()  # idempotent
    caller.join(timeout=30)
    assert not caller.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], requests.ConnectionError)
    assert upstream.seen == []


def test_stop_leaves_no_proxy_thread_behind(upstream: Upstream) -> None:
    with FaultProxy(upstream.url) as p, requests.Session() as s:
        assert s.get(f"{p.url}/a", timeout=10).ok  # a kept-alive connection and its thread
        p.down(60)  # a pending come-back timer
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n.startswith("fault-proxy")], names
    wait_for(lambda: not p._workers, "the connection threads to end")


# ------------------------------------------------------------------------------ target down


def test_down_refuses_then_comes_back_on_the_same_port(upstream: Upstream,
                                                       proxy: FaultProxy) -> None:
    url = proxy.url
    with requests.Session() as s:
        assert s.get(f"{url}/a", timeout=10).ok  # an open keep-alive connection
        proxy.down()
        assert not proxy.is_up
        with pytest.raises(requests.ConnectionError) as refused:
            s.get(f"{url}/b", timeout=10)
        assert "refused" in str(refused.value).lower()  # the idle connection was dropped
        proxy.up()
        assert s.get(f"{url}/c", timeout=10).ok

        proxy.down(0.3)
        with pytest.raises(requests.ConnectionError):
            s.get(f"{url}/d", timeout=10)
        wait_for(lambda: proxy.is_up, "the proxy to come back up")
        assert s.get(f"{url}/e", timeout=10).ok
    assert proxy.url == url
    assert upstream.paths() == ["/api/v1/a", "/api/v1/c", "/api/v1/e"]


def test_a_down_rule_takes_the_target_down_at_exactly_that_request(
        upstream: Upstream, proxy: FaultProxy) -> None:
    """``Fault.DOWN`` with ``skip=2``: two POSTs reach the upstream, the third is reset and
    the target is down from then on (the kept-alive connection and new ones alike)."""
    proxy.add(Rule(Fault.DOWN, method="POST", skip=2))
    with requests.Session() as s:
        for name in ("a", "b"):
            assert s.post(f"{proxy.url}/Users?status=201", json={"userName": name},
                          timeout=10).ok
        with pytest.raises(requests.ConnectionError):
            s.post(f"{proxy.url}/Users", json={"userName": "c"}, timeout=10)
        assert not proxy.is_up
        with pytest.raises(requests.ConnectionError):
            s.get(f"{proxy.url}/x", timeout=10)
    assert [s.method for s in upstream.seen] == ["POST", "POST"]
    assert proxy.log[2] == Event("POST", "/api/v1/Users", Fault.DOWN, False, None, rule=0)
    proxy.up()
    assert requests.get(f"{proxy.url}/y", timeout=10).ok


def test_a_down_rule_with_a_delay_comes_back(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.add(Rule(Fault.DOWN, method="POST", times=1, delay=0.3))
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{proxy.url}/Users", json={"userName": "a"}, timeout=10)
    wait_for(lambda: proxy.is_up, "the proxy to come back up")
    assert requests.post(f"{proxy.url}/Users?status=201", json={"userName": "a"},
                         timeout=10).ok
    assert [s.method for s in upstream.seen] == ["POST"]


def test_requests_on_kept_alive_connections_are_refused_once_down_starts(
        upstream: Upstream, proxy: FaultProxy) -> None:
    """The moment ``down`` starts, a request arriving on an open connection is reset, not
    forwarded (closing the listener takes a while; nothing slips through meanwhile)."""
    with requests.Session() as s:
        assert s.get(f"{proxy.url}/a", timeout=10).ok
        proxy._refusing = True  # as down() sets it first, before the listener is closed
        with pytest.raises(requests.ConnectionError):
            s.get(f"{proxy.url}/b", timeout=10)
        proxy.down()
        proxy.up()
        assert not proxy.refusing
        assert s.get(f"{proxy.url}/c", timeout=10).ok
    assert upstream.paths() == ["/api/v1/a", "/api/v1/c"]


def test_a_rule_action_runs_at_exactly_the_request_it_decides(
        upstream: Upstream, proxy: FaultProxy) -> None:
    seen_before: list[int] = []
    proxy.add(Rule(Fault.PASS, method="POST", skip=2, times=1,
                   action=lambda: seen_before.append(len(upstream.seen))))
    for name in "abcd":
        assert requests.post(f"{proxy.url}/Users?status=201", json={"userName": name},
                             timeout=10).ok
    assert seen_before == [2]  # once, as the third POST arrived, before it was forwarded
    assert proxy.applied(0) == 1 and len(upstream.seen) == 4


def test_wait_closed_waits_for_a_delayed_request_whose_client_went_away(
        upstream: Upstream, proxy: FaultProxy) -> None:
    """The client gives up on a delayed request: the proxy still forwards it, and
    ``wait_closed`` returns only once it has (and the connection has ended)."""
    proxy.add(Rule(Fault.DELAY, method="POST", delay=0.3))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{proxy.url}/Users?status=201", json={"userName": "a"}, timeout=0.05)
    assert proxy.wait_closed(10)
    assert [s.method for s in upstream.seen] == ["POST"]
    assert proxy.log[0].forwarded


# ------------------------------------------------------------------------------ concurrency


def test_sixteen_parallel_requests_all_arrive(upstream: Upstream, proxy: FaultProxy) -> None:
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=8)
    with requests.Session() as s, ThreadPoolExecutor(max_workers=8) as pool:
        s.mount("http://", adapter)
        results = list(pool.map(
            lambda i: s.post(f"{proxy.url}/Users?sleep=0.05", json={"i": i}, timeout=30),
            range(16)))
    assert [r.status_code for r in results] == [200] * 16
    assert sorted(json.loads(seen.body)["i"] for seen in upstream.seen) == list(range(16))
    assert len(proxy.forwarded("POST")) == 16


# ------------------------------------------------------------------------------ real targets


def test_in_front_of_the_sandbox_genesys_over_https(tmp_path: Path) -> None:
    with Sandbox(workdir=tmp_path) as sb, sandbox_proxy(sb, seed=5) as proxy:
        assert proxy.url.startswith("https://127.0.0.1:") and proxy.url != sb.genesys_url
        assert proxy.url_for(sb.genesys_url) == proxy.url
        token_url = proxy.url_for(sb.genesys_token_url)
        assert token_url == proxy.origin + urlsplit(sb.genesys_token_url).path
        verify = str(sb.ca_bundle)
        with requests.Session() as s:
            r = s.get(f"{proxy.url}/ServiceProviderConfig", verify=verify, timeout=10)
            assert r.status_code == 200 and "schemas" in r.json()

            proxy.add(Rule(Fault.STATUS, times=1, status=503, headers={"Retry-After": "1"}),
                      Rule(Fault.RESET_BEFORE, times=1),
                      Rule(Fault.RESET_AFTER, times=1),
                      Rule(Fault.TRUNCATE, times=1),
                      Rule(Fault.GARBAGE, times=1))
            r = s.get(f"{proxy.url}/ServiceProviderConfig", verify=verify, timeout=10)
            assert r.status_code == 503 and r.headers["Retry-After"] == "1"
            for _ in ("reset before", "reset after"):
                with pytest.raises(requests.ConnectionError):
                    s.get(f"{proxy.url}/ServiceProviderConfig", verify=verify, timeout=10)
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                s.get(f"{proxy.url}/ServiceProviderConfig", verify=verify, timeout=10)
            r = s.get(f"{proxy.url}/ServiceProviderConfig", verify=verify, timeout=10)
            with pytest.raises(requests.JSONDecodeError):
                r.json()
            assert s.get(f"{proxy.url}/ServiceProviderConfig", verify=verify, timeout=10).ok
        assert [e.fault for e in proxy.log] == [
            Fault.PASS, Fault.STATUS, Fault.RESET_BEFORE, Fault.RESET_AFTER, Fault.TRUNCATE,
            Fault.GARBAGE, Fault.PASS]
        assert len(proxy.forwarded()) == 5
        assert len(sb.genesys.requests) == 5  # what the emulator received


def test_in_front_of_scim2_server_a_reset_after_create_still_creates(
        scim2_server: Scim2Server) -> None:
    with FaultProxy(scim2_server.url, seed=2) as proxy, requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {scim2_server.token}"
        proxy.add(Rule(Fault.RESET_AFTER, method="POST", path=r"/Users$", times=1))
        user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada"}
        with pytest.raises(requests.ConnectionError):
            s.post(f"{proxy.url}/Users", json=user, timeout=10)
        assert [u["userName"] for u in scim2_server.users()] == ["ada"]  # applied anyway
        r = s.get(f"{proxy.url}/Users", params={"filter": 'userName eq "ada"'}, timeout=10)
        assert r.status_code == 200 and r.json()["totalResults"] == 1
        assert scim2_server.requests[-1].query.startswith("filter=")
        r = s.post(f"{proxy.url}/Users", json=user, timeout=10)
        assert r.status_code == 409  # the retry of a create that was applied: a conflict
    assert [(e.method, e.fault, e.status) for e in proxy.log] == [
        ("POST", Fault.RESET_AFTER, None), ("GET", Fault.PASS, 200), ("POST", Fault.PASS, 409)]
