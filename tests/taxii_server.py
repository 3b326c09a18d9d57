"""A real TAXII 2.1 server for tests: medallion with its MemoryBackend, served by werkzeug on
127.0.0.1 (a free port) in a thread of the test process. No network beyond loopback."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterator

API_ROOT = "api1"
COLLECTION_ID = "472c94ae-3113-4e3e-a4dd-a9f4ac7471d4"
INTEL_COLLECTION_ID = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"
USER, PASSWORD = "cranewatch-test", "pw-7c1e0a9f3b"


@dataclass
class TaxiiServer:
    url: str  # the API root URL
    backend: Any


def _data(base: str) -> dict[str, Any]:
    def collection(cid: str, title: str) -> dict[str, Any]:
        return {"id": cid, "title": title, "description": "", "can_read": True, "can_write": True,
                "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}

    return {
        "/discovery": {"title": "test TAXII", "description": "", "contact": "", "default": f"{base}/{API_ROOT}/",
                       "api_roots": [f"{base}/{API_ROOT}/"]},
        API_ROOT: {
            "information": {"title": "ISAC", "description": "", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 104857600},
            "status": [],
            "collections": [collection(COLLECTION_ID, "member bundles"), collection(INTEL_COLLECTION_ID, "ISAC feed")],
        },
    }


def serve() -> Iterator[TaxiiServer]:
    import medallion
    from medallion.backends.memory_backend import MemoryBackend
    from werkzeug.serving import make_server

    app = medallion.application_instance
    if "collections" not in app.blueprints:
        medallion.register_blueprints(app)
    app.users_backend = {USER: PASSWORD}
    app.taxii_config = {"max_page_size": 100}
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    backend = MemoryBackend(session_timeout=30, check_interval=3600)
    backend.data = _data(base)
    app.medallion_backend = backend
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TaxiiServer(f"{base}/{API_ROOT}/", backend)
    finally:
        server.shutdown()
        thread.join(timeout=5)
