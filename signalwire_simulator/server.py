"""The HTTP side: a threading server on loopback and its handler, which reads each request,
hands the API ones to the `Simulator`, answers the control endpoints and acts out faults
(held answers, dropped and reset connections)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import struct
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from signalwire_simulator.outcome import Outcome
from signalwire_simulator.routes import CONTROL_PREFIX
from signalwire_simulator.spaces import SimProject

if TYPE_CHECKING:
    from signalwire_simulator.simulator import Simulator

logger = logging.getLogger("signalwire_simulator")
MAX_BODY_BYTES = 1 << 20


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type, simulator: Simulator) -> None:
        self.simulator = simulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Shut every open connection so idle keep-alive threads end with the server."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SignalWireSimulator/1"
    timeout = 60  # idle keep-alive connections close after a minute
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms.
    disable_nagle_algorithm = True
    server: Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        simulator = self.server.simulator
        body = self._read_body()
        if body is None:
            return
        parts = urlsplit(self.path)
        if parts.path.startswith(CONTROL_PREFIX + "/") or parts.path == CONTROL_PREFIX:
            self._control(method, parts.path, body)
            return
        simulator.enter()
        try:
            endpoint, _, outcome = simulator.handle_api(
                method, parts.path, parts.query, self.headers, body
            )
            # Counted before the answer goes out, so a client that has its answer can rely on
            # the stats; a held request shows as "timeout" from the moment it is held.
            status = outcome.label
            simulator.count(endpoint, status)
            simulator.record_exchange(
                {
                    "method": method,
                    "path": self.path,
                    "headers": self._safe_headers(),
                    "body": body.decode("utf-8", "replace"),
                    "status": status,
                    "response_headers": outcome.headers,
                    "response_body": outcome.body,
                }
            )
            self._act(outcome)
        finally:
            simulator.leave()

    def _act(self, outcome: Outcome) -> None:
        """Send the outcome, or act out its fault."""
        if outcome.reset:
            self._reset_connection()
            return
        if outcome.create is not None:
            outcome = self.server.simulator.hold_with_late_creation(
                outcome.hold_seconds, outcome.create_at, outcome.create
            )
        elif outcome.hold_seconds:
            self.server.simulator.hold(outcome.hold_seconds)
        if outcome.drop:
            self.close_connection = True
            return
        try:
            self._send_json(outcome.status, outcome.body, outcome.headers)
        except OSError:
            # The client gave up on a held request; the answer had nowhere to go.
            self.close_connection = True

    def _control(self, method: str, path: str, body: bytes) -> None:
        simulator = self.server.simulator
        if not is_loopback(self.client_address[0]):
            self._send_json(403, {"error": "the control endpoints answer loopback clients only"})
            return
        name = path[len(CONTROL_PREFIX) :].strip("/")
        parts = [unquote(part) for part in name.split("/")]
        try:
            payload = json.loads(body.decode("utf-8") or "{}") if method == "POST" else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            if (name, method) == ("config", "GET"):
                self._send_json(200, simulator.config.as_dict())
            elif (name, method) == ("config", "POST"):
                self._send_json(200, simulator.configure(**payload).as_dict())
            elif (name, method) == ("reset", "POST"):
                simulator.reset()
                self._send_json(200, {"reset": True})
            elif (name, method) == ("stats", "GET"):
                self._send_json(200, simulator.stats())
            elif (name, method) == ("exchanges", "GET"):
                self._send_json(200, simulator.exchanges())
            elif (name, method) == ("projects", "GET"):
                self._send_json(200, [project.public() for project in simulator.projects()])
            elif (name, method) == ("projects", "POST"):
                project = SimProject.from_dict(payload)
                simulator.add_project(project)
                self._send_json(201, project.public())
            elif len(parts) in (3, 4) and parts[0] == "projects" and parts[2] == "numbers":
                self._control_numbers(method, parts, payload, path)
            elif len(parts) == 3 and parts[0] == "projects" and parts[2] == "list-fault":
                self._control_list_fault(method, parts[1], payload, path)
            else:
                self._send_json(404, {"error": f"no control endpoint {method} {path}"})
        except LookupError as exc:
            self._send_json(404, {"error": str(exc).strip("'\"")})
        except (ValueError, TypeError) as exc:
            self._send_json(400, {"error": str(exc)})

    def _control_list_fault(
        self, method: str, project_id: str, payload: dict[str, Any], path: str
    ) -> None:
        """``/__sim__/projects/{id}/list-fault``: arm (POST), read (GET), disarm (DELETE)."""
        simulator = self.server.simulator
        if method == "POST":
            self._send_json(200, simulator.arm_list_fault(project_id, payload).as_dict())
        elif method == "GET":
            fault = simulator.list_fault(project_id)
            self._send_json(200, fault.as_dict() if fault else None)
        elif method == "DELETE":
            simulator.disarm_list_fault(project_id)
            self._send_json(200, None)
        else:
            self._send_json(404, {"error": f"no control endpoint {method} {path}"})

    def _control_numbers(
        self, method: str, parts: list[str], payload: dict[str, Any], path: str
    ) -> None:
        """``/__sim__/projects/{id}/numbers[/{sid or +number}]``: the Space changing by other
        routes than the portal (see the package docstring)."""
        simulator = self.server.simulator
        project_id = parts[1]
        if len(parts) == 3 and method == "POST":
            sids = simulator.add_numbers(project_id, payload)
            self._send_json(201, {"added": len(sids), "sids": sids})
        elif len(parts) == 4 and method == "DELETE":
            self._send_json(200, simulator.release_number(project_id, parts[3]))
        elif len(parts) == 4 and method == "POST":
            self._send_json(200, simulator.change_number(project_id, parts[3], payload))
        else:
            self._send_json(404, {"error": f"no control endpoint {method} {path}"})

    # -- I/O ----------------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send_json(411, {"error": "send a Content-Length"})
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._send_json(413, {"error": "body too large or bad Content-Length"})
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        # 204 No Content (a release) has no body and no Content-Length (RFC 9110 §8.6).
        payload = b"" if status == 204 else json.dumps(body).encode("utf-8")
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _safe_headers(self) -> dict[str, str]:
        safe = {}
        for name, value in self.headers.items():
            if name.lower() == "authorization":
                value = value.split(" ", 1)[0] + " [redacted]"
            safe[name] = value
        return safe


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)
