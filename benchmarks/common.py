"""What every benchmark shares: results with ratios beside their targets, the machine, peak memory,
child processes that report JSON, one Prefect server for the whole run, a throwaway Postgres
schema, and a fast, product-path store fill.

Nothing here asserts a timing: a benchmark reports, and the harness prints and saves.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

PG_ADMIN_URL = os.environ.get("MODELVIGIL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BENCH_CRN = "crn:cdp:ml:bench:acct:workspace:ws/deployment"
BENCH_T0_MS = 1_700_000_000_000  # fill_store writes one record every 10 ms from here
PACKAGES = (
    "prefect",
    "pandas",
    "numpy",
    "pyarrow",
    "scikit-learn",
    "sqlalchemy",
    "psycopg",
    "great-expectations",
    "fastapi",
    "uvicorn",
    "requests",
    "seaborn",
)


@dataclass
class Ratio:
    name: str
    value: float | None
    target: float
    kind: str = "at least"  # or "at most"

    @property
    def met(self) -> bool | None:
        if self.value is None or not np.isfinite(self.value):
            return None
        return self.value >= self.target if self.kind == "at least" else self.value <= self.target


@dataclass
class Result:
    id: str
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The result as the harness prints it: figures, each ratio beside its target, notes."""
        lines = [f"{self.id}  {self.title}"]
        lines += [f"      {name:32} {value}" for name, value in self.figures.items()]
        for ratio in self.ratios:
            mark = {True: "met", False: "MISSED", None: "n/a"}[ratio.met]
            lines.append(
                f"    > {ratio.name:46} {ratio.value!s:>10}  target {ratio.kind} {ratio.target:g}  {mark}"
            )
        lines += [f"      note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for got, ratio in zip(out["ratios"], self.ratios, strict=True):
            got["met"] = ratio.met
        return out


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "packages": versions,
    }


def run_child(module: str, *args: str, timeout: float = 1800) -> dict[str, Any]:
    """Run `python -m <module> args...` in a fresh process (so its peak RSS is its own) and return the
    JSON object it prints on its last line."""
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@contextmanager
def shared_prefect_server() -> Iterator[str]:
    """One temporary Prefect server (loopback) for this run and every child process it starts.

    Each child running a flow would otherwise start an ephemeral server of its own (about 12 s
    here), outside its measured time but inside the run's. The children find it by
    `PREFECT_API_URL`; an API already named in the environment is used as it is.
    """
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        del os.environ["PREFECT_API_URL"]
        server.stop()


@contextmanager
def pg_schema() -> Iterator[str]:
    """A throwaway schema in the machine's Postgres, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"mv_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_ADMIN_URL else "?"
    try:
        yield f"{PG_ADMIN_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fill_store(
    url: str, n: int, *, seed: int = 2, chunk: int = 20_000, with_labels: bool = True, crn: str = BENCH_CRN
) -> list[str]:
    """N prediction records with 15 input features and ground truth on each (unless
    `with_labels` is False), written through the
    store's own write path (`record_predictions`, `merge_delayed`) the way the service writes them.
    Covariate shift from 70 % of the range on, so drift has something to find. Returns the uuids."""
    from modelvigil.data import FEATURES, LABEL, generate
    from modelvigil.model import FraudModel
    from modelvigil.store import MetricsStore, PredictionRecord

    model = FraudModel.train(generate(20_000, seed=1))
    store = MetricsStore(url)
    t0_ms = BENCH_T0_MS
    written: list[str] = []
    try:
        for lo in range(0, n, chunk):
            hi = min(lo + chunk, n)
            traffic = (
                generate(hi - lo, seed=seed + lo, scenario="covariate_shift", onset=0.0)
                if (lo >= 0.7 * n)
                else generate(hi - lo, seed=seed + lo)
            )
            features = traffic[FEATURES].to_numpy(dtype=float)
            truth = traffic[LABEL].to_numpy()
            scores = model.predict(features)
            labels = scores.labels.tolist()
            probs = np.round(scores.probabilities, 6).tolist()
            columns = [features[:, j].tolist() for j in range(len(FEATURES))]
            uuids = [str(uuid.uuid4()) for _ in range(hi - lo)]
            recs = [
                PredictionRecord(
                    "crn:model",
                    "crn:build",
                    crn,
                    uuids[i],
                    t0_ms + (lo + i) * 10,
                    t0_ms + (lo + i) * 10 + 3,
                    {
                        "prediction": [labels[i]],
                        "probability": [probs[i]],
                        "input_data": {f: [columns[j][i]] for j, f in enumerate(FEATURES)},
                    },
                )
                for i in range(hi - lo)
            ]
            store.record_predictions(recs)
            if with_labels:
                store.merge_delayed([(u, {"final_label": int(t)}) for u, t in zip(uuids, truth, strict=True)])
            written += uuids
    finally:
        store.close()
    return written


def fit_exponent(sizes: list[int], seconds: list[float]) -> float:
    """Slope of log(time) against log(size): 1 is linear."""
    slope, _ = np.polyfit(np.log(sizes), np.log(seconds), 1)
    return float(slope)
