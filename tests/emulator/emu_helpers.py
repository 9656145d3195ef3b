"""Helpers shared by the emulator tests."""

from __future__ import annotations

import httpx

from aiomusic.emulator._audio import render

KEY = "test-key"


def reference(seconds: float = 12.0, fmt: str = "mp3", seed: int = 7) -> bytes:
    """A real audio file to upload as a reference."""
    return render(seed, seconds, fmt=fmt, sample_rate=16000, channels=1, bitrate=64000).data


def upload(client: httpx.Client, purpose: str = "song", *, native: bool = False) -> dict[str, str]:
    path = "/v1/music_upload" if native else "/v2/generate/audio/minimax/upload"
    resp = client.post(
        path, files={"file": ("ref.mp3", reference(), "audio/mpeg")}, data={"purpose": purpose}
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, str] = resp.json()
    return body


class CallbackSink:
    """A loopback HTTP server that records callback bodies; can fail the first N posts."""

    def __init__(self, fail_first: int = 0) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bodies: list[dict[str, object]] = []
        self.attempts = 0
        self.fail_first = fail_first
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                sink.attempts += 1
                status = 500 if sink.attempts <= sink.fail_first else 200
                if status == 200:
                    sink.bodies.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def suno_upload(client: httpx.Client) -> str:
    resp = client.post(
        "/api/file-stream-upload",
        files={"file": ("vocals.mp3", reference(), "audio/mpeg")},
        data={"uploadPath": "tests/vocals"},
    )
    url: str = resp.json()["data"]["downloadUrl"]
    return url


def instrumental_body(
    upload_url: str, callback: str = "http://127.0.0.1:9/none"
) -> dict[str, object]:
    return {
        "uploadUrl": upload_url,
        "title": "Night Drive",
        "tags": "synthwave, warm",
        "negativeTags": "metal",
        "callBackUrl": callback,
    }
