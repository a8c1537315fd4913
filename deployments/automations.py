"""Automations, versioned here and applied by `python -m deployments apply`.

- An accuracy alert (event `modelvigil.alert.accuracy`, emitted by the monitoring flow) calls a
  webhook with the alert's numbers.
- A proactive trigger calls the same webhook when the nightly monitoring has not completed for
  26 hours: a monitor that silently stopped is the failure nobody would otherwise notice.
Re-applying replaces automations of the same name, so there is never a duplicate.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from prefect.automations import Automation, CallWebhook, EventTrigger, Posture
from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import get_client
from pydantic import SecretStr

from modelvigil.analysis.alerts import event_name, resource_id
from modelvigil.analysis.config import AlertKind

WEBHOOK_BLOCK = "modelvigil-alerts"
ACCURACY_ALERT = "modelvigil: accuracy alert -> webhook"
MONITORING_SILENT = "modelvigil: nightly monitoring silent for 26 h -> webhook"

ALERT_PAYLOAD = (
    '{"automation": "{{ automation.name }}", "event": "{{ event.event }}", '
    '"resource": "{{ event.resource.id }}", "alert": {{ event.payload | tojson }}}'
)
SILENT_PAYLOAD = (
    '{"automation": "{{ automation.name }}", "problem": "nightly monitoring did not complete in 26 h"}'
)


def save_webhook(url: str) -> UUID:
    Webhook(method="POST", url=SecretStr(url)).save(WEBHOOK_BLOCK, overwrite=True)
    return Webhook.load(WEBHOOK_BLOCK)._block_document_id  # type: ignore[return-value]


def _replace(automation: Automation) -> UUID:
    with get_client(sync_client=True) as client:
        for existing in client.read_automations_by_name(automation.name):
            client.delete_automation(existing.id)
    return automation.create().id


def apply_automations(webhook_url: str, monitoring_deployment_id: UUID) -> dict[str, UUID]:
    block_id = save_webhook(webhook_url)
    accuracy = Automation(
        name=ACCURACY_ALERT,
        description="The monitoring flow found a window whose accuracy is confidently below threshold.",
        trigger=EventTrigger(
            expect={event_name(AlertKind.accuracy)},
            match={"prefect.resource.id": resource_id("*")},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[CallWebhook(block_document_id=block_id, payload=ALERT_PAYLOAD)],
    )
    silent = Automation(
        name=MONITORING_SILENT,
        description="No Completed run of the nightly monitoring deployment within 26 hours.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Completed"},
            match_related={"prefect.resource.id": f"prefect.deployment.{monitoring_deployment_id}"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(hours=26),
        ),
        actions=[CallWebhook(block_document_id=block_id, payload=SILENT_PAYLOAD)],
    )
    return {ACCURACY_ALERT: _replace(accuracy), MONITORING_SILENT: _replace(silent)}
