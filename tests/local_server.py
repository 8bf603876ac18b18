"""A tiny threaded HTTP server on 127.0.0.1 for standing in for Ollama, OpenAI-compatible servers and TMDb."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class LocalServer:
    """Subclasses implement `respond(method, path, query, body)` returning (status, json data), or call
    `self.drop(handler)` to close the connection mid-answer. Every request is recorded, and every answer sent."""

    def __init__(self):
        self.requests: list[tuple[str, str, dict | None]] = []
        self.answered: list[str] = []  # the path of each request answered in full, in the order they ended
        self.queries: list[dict[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def respond(self, method: str, path: str, query: dict[str, str], body: dict | None):
        raise NotImplementedError

    @staticmethod
    def drop(handler: BaseHTTPRequestHandler) -> None:
        """Promise a body, send a piece of it, and close the connection."""
        handler.send_response(200)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", "500")
        handler.end_headers()
        handler.wfile.write(b'{"message": {"role": "assis')
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}") if method == "POST" else None
                server.requests.append((method, url.path, body))
                server.queries.append(query | {"_authorization": self.headers.get("authorization", "")})
                answer = server.respond(method, url.path, query, body) if url.path != "/drop" else None
                if answer is None:
                    return server.drop(self)
                status, data = answer
                payload = data if isinstance(data, bytes) else json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:  # the client gave up waiting: not answered
                    return
                server.answered.append(url.path)

        return Handler


def closed_port_url() -> str:
    """An address where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
