"""Automations, versioned here and applied by `python -m deployments apply`.

- A monitoring run that raised alerts (one event `modelvigil.alerts` per run, every breach in
  it) calls a webhook once, with the model, the window times, each breach's value and threshold,
  and links to the flow run and the report.
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

from modelvigil.analysis.alerts import RUN_EVENT, resource_id

WEBHOOK_BLOCK = "modelvigil-alerts"
RUN_ALERTS = "modelvigil: monitoring alerts -> webhook"
RETIRED = ("modelvigil: accuracy alert -> webhook",)  # names earlier versions applied: removed
MONITORING_SILENT = "modelvigil: nightly monitoring silent for 26 h -> webhook"

ALERT_PAYLOAD = (
    '{"automation": "{{ automation.name }}", "event": "{{ event.event }}", '
    '"resource": "{{ event.resource.id }}", "resource_name": "{{ event.resource.name }}", '
    '"run": {{ event.payload | tojson }}}'
)
SILENT_PAYLOAD = (
    '{"automation": "{{ automation.name }}", "problem": "nightly monitoring did not complete in 26 h"}'
)


def save_webhook(url: str) -> UUID:
    # The automation posts its rendered template as text: without the header, a receiver (Slack,
    # an incident tool) would not read it as the JSON it is.
    hook = Webhook(method="POST", url=SecretStr(url), headers={"Content-Type": "application/json"})
    hook.save(WEBHOOK_BLOCK, overwrite=True)
    return Webhook.load(WEBHOOK_BLOCK)._block_document_id  # type: ignore[return-value]


def _delete(*names: str) -> None:
    with get_client(sync_client=True) as client:
        for name in names:
            for existing in client.read_automations_by_name(name):
                client.delete_automation(existing.id)


def _replace(automation: Automation) -> UUID:
    _delete(automation.name)
    return automation.create().id


def apply_automations(webhook_url: str, monitoring_deployment_id: UUID) -> dict[str, UUID]:
    block_id = save_webhook(webhook_url)
    alerts = Automation(
        name=RUN_ALERTS,
        description=(
            f"Fires once for every monitoring run that raised any alert (event {RUN_EVENT} from a "
            f"resource {resource_id('*')}, at once: threshold 1, no waiting): posts the run's "
            "breaches with value and threshold, their window times, and links to the flow run and "
            "the report."
        ),
        trigger=EventTrigger(
            expect={RUN_EVENT},
            match={"prefect.resource.id": resource_id("*")},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[CallWebhook(block_document_id=block_id, payload=ALERT_PAYLOAD)],
    )
    silent = Automation(
        name=MONITORING_SILENT,
        description=(
            "Fires when no run of the nightly monitoring deployment has reached Completed for 26 hours "
            "(proactive: waits for prefect.flow-run.Completed of that deployment, and posts when "
            "none came): a monitor that silently stopped."
        ),
        trigger=EventTrigger(
            expect={"prefect.flow-run.Completed"},
            match_related={"prefect.resource.id": f"prefect.deployment.{monitoring_deployment_id}"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(hours=26),
        ),
        actions=[CallWebhook(block_document_id=block_id, payload=SILENT_PAYLOAD)],
    )
    _delete(*RETIRED)
    return {RUN_ALERTS: _replace(alerts), MONITORING_SILENT: _replace(silent)}
