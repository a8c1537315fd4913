"""Request bodies at the service's edge, over raw sockets on loopback: a body goes only to a route
that takes one, must arrive in time, and the bodies held at once have a ceiling."""

import socket
import time

import pytest
import requests

from modelvigil.service.options import ServiceOptions
from tests.helpers import auth, lab_payload


def _announce(url: str, head: str, declared: int, sent: bytes) -> socket.socket:
    """A connection that announces a body of `declared` bytes, sends `sent` of it, then stalls."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(f"{head}\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {declared}\r\n\r\n".encode() + sent)  # fmt: skip
    return sock


def _answer(sock: socket.socket, wait_s: float = 5.0) -> str:
    sock.settimeout(wait_s)
    try:
        return sock.recv(4096).decode("latin-1")
    except TimeoutError:
        return ""


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        ("POST /health HTTP/1.1", "405"),
        ("POST /no/such/path HTTP/1.1", "404"),
        ("GET /openapi.json HTTP/1.1", "200"),
        ("PUT /monitoring HTTP/1.1", "405"),
    ],
)
def test_a_body_sent_where_no_route_takes_one_is_never_waited_for(service, request_line, status):
    """Answered at once, while 4.9 MB are still announced: nobody can make the service hold a body
    for a route that reads none (no key is needed for these)."""
    with _announce(service.url, request_line, 4_900_000, b"{" * 1_000) as sock:
        answer = _answer(sock)
    assert answer.startswith(f"HTTP/1.1 {status}"), answer[:200]


def test_a_body_that_stalls_is_cut_off_and_the_service_goes_on(make_service):
    svc = make_service(options=ServiceOptions(body_timeout_s=0.5))
    head = "POST /model HTTP/1.1\r\nAuthorization: " + auth(svc)["Authorization"]
    started = time.monotonic()
    with _announce(svc.url, head, 100_000, b'{"accessKey": "') as sock:
        answer = _answer(sock)
    assert answer.startswith("HTTP/1.1 408"), answer[:200]
    assert "request body took over 0.5 s to arrive" in answer and "connection: close" in answer.lower()
    assert time.monotonic() - started < 4
    body = {"accessKey": svc.identity.access_key, "request": lab_payload(1)}
    assert requests.post(f"{svc.url}/model", json=body, headers=auth(svc), timeout=30).status_code == 200


def test_bodies_held_at_once_have_a_ceiling_and_a_retryable_answer_past_it(make_service):
    options = ServiceOptions(max_body_bytes=2_500_000, max_bodies_held_bytes=3_000_000, body_timeout_s=5)
    svc = make_service(options=options)
    head = "POST /model HTTP/1.1\r\nAuthorization: " + auth(svc)["Authorization"]

    def chunks():  # no Content-Length: counted as they come
        for _ in range(4):
            yield b" " * 600_000
        yield b'{"accessKey": "x", "request": {}}'

    first = _announce(svc.url, head, 2_000_000, b"{" * 1_000)  # held while it arrives
    try:
        time.sleep(0.3)
        with _announce(svc.url, head, 2_000_000, b"{" * 1_000) as second:
            answer = _answer(second)
        assert answer.startswith("HTTP/1.1 503"), answer[:200]
        assert "too many large bodies at once" in answer and "retry-after: 1" in answer.lower()
        r = requests.post(f"{svc.url}/model", data=chunks(), headers=auth(svc), timeout=30)
        assert r.status_code == 503 and "too many large bodies" in r.json()["error"]
        body = {"accessKey": svc.identity.access_key, "request": lab_payload(2)}
        small = requests.post(f"{svc.url}/model", json=body, headers=auth(svc), timeout=30)
        assert small.status_code == 200  # what is left under the ceiling still serves
    finally:
        first.close()
    time.sleep(0.3)  # a body gone frees its share
    r = requests.post(f"{svc.url}/model", data=chunks(), headers=auth(svc), timeout=30)
    assert r.status_code == 404  # 2.4 MB fits now: read, then judged (no model has key "x")
