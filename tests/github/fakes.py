"""Fake HTTP transport for the GitHub client tests: a requests adapter returning built responses."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

# Recorded headers that describe the wire encoding, not the decoded bodies the corpus stores.
WIRE_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


@dataclass
class Reply:
    """One canned answer: a status, headers and a body (dict/list become JSON)."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


Handler = Callable[[requests.PreparedRequest], "Reply | Exception"]


def json_reply(body: Any, status: int = 200, **headers: str) -> Reply:
    """Build a JSON reply; header names use underscores for dashes."""
    names = {key.replace("_", "-"): value for key, value in headers.items()}
    return Reply(status=status, body=body, headers={"Content-Type": "application/json", **names})


def corpus_reply(exchange: Mapping[str, Any]) -> Reply:
    """Build a reply from a recorded corpus exchange, dropping wire-encoding headers."""
    response = exchange["response"]
    headers = {
        key: value
        for key, value in (response.get("headers") or {}).items()
        if key.lower() not in WIRE_HEADERS
    }
    body = response.get("body")
    if response.get("body_format") == "json":
        body = json.dumps(body).encode("utf-8")
    return Reply(status=response.get("status") or 200, body=body, headers=headers)


def _encode(body: Any) -> bytes:
    """Turn a reply body into bytes."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


class FakeTransport(BaseAdapter):
    """Adapter that answers from a queue of replies or a handler and records every request.

    Queue entries and handler results may be an exception instance, which is raised instead of
    answering (as a real adapter raises ``requests.ConnectTimeout`` and friends).
    """

    def __init__(
        self, replies: Iterable[Reply | Exception] = (), *, handler: Handler | None = None
    ) -> None:
        """Answer with ``replies`` in order, then with ``handler`` if given."""
        super().__init__()
        self._queue: deque[Reply | Exception] = deque(replies)
        self._handler = handler
        self._lock = threading.Lock()
        self.requests: list[requests.PreparedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Record ``request`` and return the next canned response."""
        with self._lock:
            self.requests.append(request)
            queued = self._queue.popleft() if self._queue else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if queued is not None:
                reply = queued
            elif self._handler is not None:
                reply = self._handler(request)
            else:
                raise AssertionError(f"unexpected request {request.method} {request.url}")
            if isinstance(reply, Exception):
                raise reply
            if reply.delay:
                time.sleep(reply.delay)
            return self._build(request, reply)
        finally:
            with self._lock:
                self.in_flight -= 1

    def add(self, *replies: Reply | Exception) -> None:
        """Queue more replies."""
        with self._lock:
            self._queue.extend(replies)

    def close(self) -> None:
        """Nothing to release."""

    @property
    def urls(self) -> list[str]:
        """Return the URLs requested so far."""
        return [request.url or "" for request in self.requests]

    @property
    def pending(self) -> int:
        """Return how many queued replies were not consumed."""
        return len(self._queue)

    def _build(self, request: requests.PreparedRequest, reply: Reply) -> requests.Response:
        """Turn a reply into a ``requests.Response`` as an HTTP adapter would."""
        content = _encode(reply.body)
        response = requests.Response()
        response.status_code = reply.status
        response.headers = CaseInsensitiveDict(reply.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = io.BytesIO(content)
        response._content = content
        response._content_consumed = True
        try:
            response.reason = HTTPStatus(reply.status).phrase
        except ValueError:
            response.reason = "Unknown"
        response.url = request.url or ""
        response.request = request
        response.connection = self
        return response


def query_of(url: str) -> dict[str, str]:
    """Return the query parameters of ``url`` as a dict."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def path_of(url: str) -> str:
    """Return the path of ``url``."""
    return urlsplit(url).path


def session_with(transport: FakeTransport) -> requests.Session:
    """Return a session whose every request goes to ``transport``."""
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", transport)
    session.mount("http://", transport)
    return session
