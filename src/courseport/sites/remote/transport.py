"""The remote site's transport: the server address, credentials, requests with
retries, and answers checked for their shape."""

from __future__ import annotations

import contextlib
import functools
import inspect
import ipaddress
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx

from ... import __version__
from ...datastore import Entity
from ...datastore.wire import WireError, decode_line
from ...errors import UserError
from ..base import CourseInfo
from ..protocol import API, MAX_BATCH_BYTES

log = logging.getLogger("courseport.remote")

DEFAULT_PORT = 8081
#: the bytes of one put this client sends: half the server's limit
SEND_BYTES = MAX_BATCH_BYTES // 2
RETRIES = 5
#: batches of puts on their way at once
IN_FLIGHT = 2


class RemoteError(UserError):
    """A server that cannot be reached, refuses, or answers what it should not;
    ``status`` is the HTTP status of a refusal."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RemoteCourseNotFound(RemoteError, LookupError):
    pass


MALFORMED = (KeyError, IndexError, TypeError, AttributeError, ValueError, UnicodeDecodeError)


def malformed(where: str, exc: BaseException) -> RemoteError:
    return RemoteError(f"{where}: the server's answer is not what a courseport server sends "
                       f"({type(exc).__name__}: {str(exc)[:120]}); is it one, of this version?")


def checked_answers(cls: type) -> type:
    """Every public method of ``cls`` turns an answer of the wrong shape (a server that
    is not courseport's, or a broken one) into one RemoteError, never a traceback."""
    def guard(method: Callable) -> Callable:
        if inspect.isgeneratorfunction(method):
            @functools.wraps(method)
            def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    yield from method(self, *args, **kwargs)
                except UserError:
                    raise
                except MALFORMED as exc:
                    raise malformed(_where(self), exc) from None
            return generator

        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except UserError:
                raise
            except MALFORMED as exc:
                raise malformed(_where(self), exc) from None
        return call

    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_"):
            setattr(cls, name, guard(value))
    return cls


def _where(obj: Any) -> str:
    for path in ("description", "site.description", "base_url"):
        target = obj
        for part in path.split("."):
            target = getattr(target, part, None)
        if isinstance(target, str):
            return target
    return "the server"


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str  # an app-specific password

    def __repr__(self) -> str:  # never in a log or a traceback
        return f"Credentials(email={self.email!r}, password=...)"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_url(server: str, port: int = DEFAULT_PORT) -> str:
    """The base URL a server argument names (DESIGN.md, "The server argument").

    ``localhost`` and ``127.0.0.1`` take ``port``; ``localhost:PORT`` its own;
    ``host.name[:PORT]`` is https; ``http(s)://host[:port]`` is as given.
    Plain http to a host off loopback is refused: credentials would cross
    the network in clear.
    """
    if "://" in server:
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"{server}: not a server address; use http(s)://host[:port], host.name or localhost")
        if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
            raise RemoteError(f"{server}: give the server as scheme://host[:port] only "
                              "(credentials come from COURSEPORT_EMAIL / COURSEPORT_APP_PASSWORD)")
        scheme, host, given = parts.scheme, parts.hostname, parts.port
    else:
        host, sep, port_text = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
        if not sep:
            host = server
        if not host or any(c in host for c in "/?#@ "):
            raise RemoteError(f"{server!r}: not a server address; use localhost[:PORT], host.name or https://host")
        try:
            given = int(port_text) if port_text else None
        except ValueError:
            raise RemoteError(f"{server}: the port {port_text!r} is not a number") from None
        scheme = "http" if is_loopback_host(host) else "https"
        if given is None and scheme == "http":
            given = port
    if given is not None and not 0 < given < 65536:
        raise RemoteError(f"{server}: the port must be between 1 and 65535")
    if scheme == "http" and not is_loopback_host(host):
        raise RemoteError(f"{server}: refusing to send credentials over plain http to another machine; "
                          "use https://")
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}{'' if given is None else f':{given}'}"


class Http:
    """Requests with retries, one-line errors, and no credential in any message."""

    def __init__(self, base_url: str, credentials: Credentials, *, ca_file: str | None, timeout: float) -> None:
        self.base_url = base_url
        self.client = httpx.Client(
            base_url=base_url, auth=httpx.BasicAuth(credentials.email, credentials.password),
            verify=_tls_context(ca_file) if ca_file else True, timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"User-Agent": f"courseport/{__version__}"}, follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), retries: int = RETRIES,
                **kwargs: Any) -> httpx.Response:
        delay = 0.5
        for attempt in range(retries + 1):
            try:
                response = self.client.request(method, API + path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == retries:
                    again = f" (after {retries} retries)" if retries else ""
                    raise RemoteError(f"{self.base_url}: {_describe(exc)}{again}") from None
                log.warning("%s: %s; retrying in %.1fs", self.base_url, _describe(exc), delay)
            else:
                if response.status_code < 500 or attempt == retries:
                    return self.check(response, ok)
                log.warning("%s answered %d; retrying in %.1fs", self.base_url, response.status_code, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"{self.base_url}{API}{path}: the server's answer is not JSON") from None

    def check(self, response: httpx.Response, ok: tuple[int, ...]) -> httpx.Response:
        if response.status_code in ok:
            return response
        with contextlib.suppress(httpx.HTTPError):
            response.read()
        try:
            message = response.json().get("error") or response.text[:200]
        except (ValueError, AttributeError):
            message = response.text[:200].strip() or response.reason_phrase
        status = response.status_code
        fix = {
            401: " (set COURSEPORT_EMAIL and COURSEPORT_APP_PASSWORD to an admin's email and an app-specific "
                 "password: 'courseport app-password create' on the server)",
            429: "",
        }.get(status, "")
        error = RemoteCourseNotFound if status == 404 else RemoteError
        raise error(f"{self.base_url} refused ({status}): {message}{fix}", status)


def _tls_context(ca_file: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise RemoteError(f"--ca_file {ca_file}: not a CA certificate in PEM form ({exc})") from None


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return f"its TLS certificate is not trusted ({text}); pass --ca_file with its CA"
        return f"cannot connect ({text}): is 'courseport serve' running there?"
    return text


def course_info_from(value: dict) -> CourseInfo:
    fields = {name: value[name] for name in ("slug", "raw", "namespace", "version", "title")}
    if not all(isinstance(text, str) for text in fields.values()) or not isinstance(value["editable"], bool):
        raise TypeError(f"a course is strings and a boolean, not {value!r:.100}")
    return CourseInfo(**fields, editable=value["editable"])


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def decode_entity(line: str) -> Entity:
    try:
        return decode_line(line)
    except WireError as exc:
        raise RemoteError(f"the server sent an entity that is not one: {exc}") from None


