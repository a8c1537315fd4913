"""50 concurrent clients x 100 calls leave exactly 5,000 prediction records: none lost, none twice."""

import concurrent.futures as cf

import pytest

from modelvigil.client.connect import connect
from modelvigil.service.options import ServiceOptions
from tests.helpers import lab_payload


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_fifty_clients_times_a_hundred_calls(make_service, backend, request):
    store_url = None
    if backend == "postgres":
        store_url = request.getfixturevalue("store_url_pg")
    svc = make_service(ServiceOptions(replicas=4, queue_timeout_s=60), store_url=store_url)
    payload = lab_payload(1)

    def client(_: int) -> list[str]:
        conn = connect(base_url=svc.url, pool_size=2)
        try:
            return [conn.endpoint.predict(payload).uuid for _ in range(100)]
        finally:
            conn.endpoint.close()

    with cf.ThreadPoolExecutor(50) as pool:
        uuids = [u for batch in pool.map(client, range(50)) for u in batch]
    assert len(uuids) == 5_000 and len(set(uuids)) == 5_000
    frame = svc.store.read_frame(svc.identity.deployment_crn)
    assert len(frame) == 5_000
    assert set(frame["prediction_uuid"]) == set(uuids)
