"""What both sides of the wire agree on: the service, the store, the client and the analysis.

Kept apart so that no side imports another for a constant: the key ground truth travels under,
the clock records are stamped with, the largest timestamp a store column holds, the 5-second
bucket the live counters share, and the shape of the CRNs the embedded service invents.
"""

from __future__ import annotations

import time

LABEL_KEY = "final_label"  # the delayed metric holding ground truth, as the CML lab names it
MAX_MS = 2**63 - 1  # timestamps are BIGINT: routes refuse a larger one (422) instead of the store failing
BUCKET_MS = 5_000  # the live counters' bucket: the store's and the service's share one time axis
CRN_PATTERN = r"^crn:[A-Za-z0-9:_./-]+$"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def bucket_of(ms: int) -> int:
    return ms - ms % BUCKET_MS


def local_crn(account: str, workspace: str, resource_id: str) -> str:
    """A CRN in CML's shape for a resource of the embedded service (`local` where CML has a region)."""
    return f"crn:cdp:ml:local:{account}:workspace:{workspace}/{resource_id}"
