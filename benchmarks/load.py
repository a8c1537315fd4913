"""Load: N concurrent clients for S seconds against `modelvigil serve` in its own process.

Reports calls by status (only 200 and the by-design 429 are acceptable), records stored against
calls answered 200 (none lost, none twice), and the server's RSS sampled every few seconds (flat
means no leak). Loopback only; bounded in time; stops by itself.
Run: `python -m benchmarks.load --clients 100 --seconds 60`.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import threading
import time
from pathlib import Path

import requests

from modelvigil.data import FEATURES, generate
from modelvigil.service.embedded import run_in_subprocess
from modelvigil.service.telemetry import rss_bytes
from modelvigil.settings import Settings, read_identity
from modelvigil.store import MetricsStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mv-load-"))
    os.environ["MODELVIGIL_HOME"] = str(home)
    settings = Settings(home=home)
    statuses: collections.Counter[str] = collections.Counter()
    uuids: list[str] = []
    lock = threading.Lock()
    with run_in_subprocess(settings) as url:
        identity = read_identity(settings)
        assert identity is not None
        pid = int(os.popen(f"pgrep -f 'serve --port {url.rsplit(':', 1)[1]}'").read().split()[0])
        headers = {"Authorization": f"Bearer {identity.api_key.get_secret_value()}"}
        row = generate(1, seed=1)[FEATURES].values.tolist()
        body = {
            "accessKey": identity.access_key,
            "request": {"dataframe_split": {"columns": FEATURES, "data": row}},
        }
        deadline = time.monotonic() + args.seconds

        def client() -> None:
            session = requests.Session()
            while time.monotonic() < deadline:
                try:
                    r = session.post(f"{url}/model", json=body, headers=headers, timeout=35)
                    key = str(r.status_code)
                    if r.status_code == 200:
                        with lock:
                            uuids.append(r.json()["response"]["uuid"])
                except requests.RequestException as exc:
                    key = type(exc).__name__
                with lock:
                    statuses[key] += 1

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        samples = []
        started = time.monotonic()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            rss = rss_bytes(pid)
            mb = round(rss / 2**20, 1) if rss is not None else float("nan")
            samples.append((round(time.monotonic() - started), mb))
            time.sleep(5)
        for t in threads:
            t.join()
        store = MetricsStore(settings.resolved_store_url())
        stored = store.read_frame(identity.deployment_crn)
        store.close()
    ok = statuses.get("200", 0)
    print(
        f"{args.clients} clients for {args.seconds:.0f} s: {sum(statuses.values())} calls, {dict(statuses)}"
    )
    print(f"throughput {ok / args.seconds:.0f} calls/s answered 200")
    print(
        f"stored records {len(stored)}, answered 200 {ok}, "
        f"unique uuids {stored['prediction_uuid'].nunique()}, "
        f"lost {len(set(uuids) - set(stored['prediction_uuid']))}, "
        f"stored but unanswered {len(set(stored['prediction_uuid']) - set(uuids))}"
    )
    print("server RSS (s, MB):", samples)


if __name__ == "__main__":
    main()
