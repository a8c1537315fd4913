"""Bodies over 1 MB are parsed in a worker process: the answers are those of a small call, refusals
say the same, and a worker that dies costs one slower call, never an outage."""

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import pytest
import requests

from modelvigil.data import FEATURES, generate
from modelvigil.service.model import IN_PROCESS_BYTES
from modelvigil.settings import load_or_create_identity
from tests.helpers import auth, serving


def big_body(svc, rows: int = 12_000, **changes) -> bytes:
    frame = generate(rows, seed=7)
    data = np.ascontiguousarray(frame[FEATURES].to_numpy())
    request = {"dataframe_split": {"columns": FEATURES, "data": data}}
    body = orjson.dumps(
        {"accessKey": svc.identity.access_key, "request": request, **changes},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    assert len(body) > IN_PROCESS_BYTES
    return body


def parse_pool(svc):
    return svc.server.config.app.state.service.parse_pool


def post(svc, body: bytes) -> requests.Response:
    headers = {**auth(svc), "Content-Type": "application/json"}
    return requests.post(f"{svc.url}/model", data=body, headers=headers, timeout=60)


def test_a_big_call_scores_as_the_model_does(service, trained_model):
    answer = post(service, big_body(service))
    assert answer.status_code == 200, answer.text[:300]
    features = generate(12_000, seed=7)[FEATURES].to_numpy(dtype=float)
    expected = trained_model[0].predict(features)
    got = answer.json()["response"]
    assert got["prediction"] == expected.labels.tolist()
    assert np.allclose(got["probability"], expected.probabilities, atol=1e-6)
    assert parse_pool(service).worker_pids()  # it went through a worker


@pytest.mark.parametrize(
    ("mangle", "status", "says"),
    [
        (lambda b: b[:-1], 400, "malformed JSON body"),
        (lambda b: b.replace(b'"age"', b'"agee"', 1), 422, "unknown column(s) ['agee']"),
        (
            lambda b: b.replace(b'"accessKey":"', b'"accessKey":"x', 1),
            404,
            "no model deployment has that access key",
        ),
    ],
)
def test_a_big_call_is_refused_with_the_reason_a_small_one_gets(service, mangle, status, says):
    answer = post(service, mangle(big_body(service)))
    assert answer.status_code == status and says in answer.json()["error"], answer.text[:300]


def test_a_killed_parse_worker_costs_one_slower_call_not_an_outage(service):
    body = big_body(service, rows=9_000)
    assert post(service, body).status_code == 200
    pool = parse_pool(service)
    [first] = pool.worker_pids()
    os.kill(first, signal.SIGKILL)
    for _ in range(3):
        assert post(service, body).status_code == 200
    assert pool.worker_pids() and first not in pool.worker_pids()


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def test_parse_workers_exit_when_the_service_is_killed_outright(settings):
    """A service killed with SIGKILL cannot shut its pool down: its workers must notice and go."""
    with serving(settings.home) as (url, pid):
        svc = SimpleNamespace(url=url, identity=load_or_create_identity(settings))
        assert post(svc, big_body(svc, rows=9_000)).status_code == 200
        workers = _children(pid)
        assert workers, "no parse worker was started"
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
