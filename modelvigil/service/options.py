"""How the embedded service is run: auth, replicas, queueing, body limit, model threads."""

from __future__ import annotations

from dataclasses import dataclass

MAX_BODY_BYTES = 5 * 1024 * 1024  # CML: requests should stay under 5 MB
MAX_HEADER_BYTES = 64 * 1024  # a request's headers, counted as they arrive (see `http_limits`)
HEADER_TIMEOUT_S = 10.0  # for the rest of a request's headers, once a read ended without them
BODY_TIMEOUT_S = 30.0  # for a whole body once its headers came: 5 MB at 170 KB/s
BODIES_HELD = 16  # bodies of the largest size the service holds at once (see `limits`)


@dataclass(frozen=True)
class ServiceOptions:
    auth: bool = True
    # CML: each replica serves one request at a time; the router waits up to 30 s, then 429.
    # Here `replicas` bounds the requests in flight; those in flight are scored in batches.
    replicas: int = 8
    queue_timeout_s: float = 30.0
    max_body_bytes: int = MAX_BODY_BYTES
    body_timeout_s: float = BODY_TIMEOUT_S
    max_bodies_held_bytes: int = BODIES_HELD * MAX_BODY_BYTES
    # OpenMP threads per model call; 1 is fastest under load on a small machine (see `scoring`).
    model_threads: int = 1
    max_header_bytes: int = MAX_HEADER_BYTES
    header_timeout_s: float = HEADER_TIMEOUT_S
    # Processes that parse bodies over 1 MB, so that one big call stalls nobody (see `parse_pool`);
    # 0 parses them in threads, for a service that may not start processes.
    parse_workers: int = 1
    # Added to every answer, to rehearse a remote endpoint's round trip on loopback (`added_latency`).
    added_latency_ms: float = 0.0
