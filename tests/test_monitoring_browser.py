"""The Monitoring page in real headless Chromium (Debian's, driven by Playwright): it logs in with the
API key, then updates by itself while traffic and ground truth arrive, without a reload."""

from __future__ import annotations

import uuid

import requests

from modelvigil.protocol import now_ms
from modelvigil.store import PredictionRecord
from tests.conftest import ARTIFACTS
from tests.helpers import auth, lab_payload


def kpi(page, name: str) -> str:
    return page.locator(f"#kpi-{name}").inner_text()


def points(page, chart: str) -> int:
    return int(page.locator(f"#chart-{chart} svg").get_attribute("data-points") or 0)


def test_page_updates_while_traffic_and_labels_arrive(service, browser_page):
    page = browser_page
    page.goto(f"{service.url}/monitoring")
    page.locator("#token").fill(service.identity.api_key.get_secret_value())
    page.locator("#login-form button").click()
    page.wait_for_function(
        "() => document.getElementById('kpi-requests').textContent === '0'", timeout=15_000
    )
    assert points(page, "accuracy") == 0
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    key = service.identity.access_key
    uuids = []
    for i in range(25):
        r = requests.post(
            f"{service.url}/model",
            json={"accessKey": key, "request": lab_payload(1, seed=i)},
            headers=auth(service),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        uuids.append(r.json()["response"]["uuid"])
    page.wait_for_function(
        "() => document.getElementById('kpi-requests').textContent === '25'", timeout=15_000
    )
    assert kpi(page, "predictions") == "25"
    assert points(page, "rps") > 0
    assert kpi(page, "accuracy") == "–"
    assert kpi(page, "estimated").endswith("%")  # from the model's confidence, before any label
    assert points(page, "accuracy") > 0  # the estimate is drawn already

    items = [{"prediction_uuid": u, "metrics": {"final_label": 0}} for u in uuids]
    r = requests.post(
        f"{service.url}/metrics/delayed/bulk", json={"items": items}, headers=auth(service), timeout=30
    )
    assert r.status_code == 200, r.text
    page.wait_for_function(
        "() => document.getElementById('kpi-coverage').textContent === '100.0%'", timeout=15_000
    )
    assert points(page, "memory") > 0 and points(page, "cpu") > 0  # the service process, sampled each second
    assert kpi(page, "accuracy").endswith("%")
    assert page.evaluate("window.__sameDocument") is True
    # The key is in session storage, never in the address.
    assert service.identity.api_key.get_secret_value() not in page.url

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "monitoring-page.png"), full_page=True)


def test_wrong_key_is_refused_with_a_message(service, browser_page):
    page = browser_page
    page.goto(f"{service.url}/monitoring")
    page.locator("#token").fill("not-the-key")
    page.locator("#login-form button").click()
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('refused')", timeout=15_000
    )
    assert page.locator("#login").is_visible()


def test_the_page_runs_under_its_own_content_security_policy(service, browser_page):
    """Styles from a file, swatches set through the DOM: the browser blocks nothing the page needs."""
    page = browser_page
    blocked: list[str] = []
    page.on(
        "console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None
    )
    response = page.goto(f"{service.url}/monitoring")
    assert response is not None and "default-src 'self'" in response.headers["content-security-policy"]
    page.locator("#token").fill(service.identity.api_key.get_secret_value())
    page.locator("#login-form button").click()
    requests.post(
        f"{service.url}/model",
        json={"accessKey": service.identity.access_key, "request": lab_payload(1)},
        headers=auth(service),
        timeout=30,
    ).raise_for_status()
    page.wait_for_function(
        "() => document.getElementById('kpi-requests').textContent === '1'", timeout=15_000
    )
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(248, 249, 251)"  # the stylesheet loaded
    swatch = page.evaluate("document.querySelector('#chart-rps .legend i').style.background")
    assert swatch.startswith("rgb") or swatch.startswith("#")  # set through the DOM, not blocked
    assert blocked == []


def test_a_regression_deployment_in_the_store_is_shown_by_its_error(service, browser_page):
    """Another model's records in the service's store (as CML's other deployments write theirs):
    picked from the list, the page says it is a regression and shows its MAE, not an accuracy."""
    dep = "crn:cdp:ml:local:a:workspace:w/house-prices"
    start = now_ms() - 20_000
    truth = [200.0 + 3 * i for i in range(40)]
    predictions = [t + (5.5 if i % 2 else -2.5) for i, t in enumerate(truth)]
    uuids = [str(uuid.uuid4()) for _ in truth]
    service.store.record_predictions(
        [
            PredictionRecord(
                "crn:m", "crn:b", dep, u, start + 100 * i, start + 100 * i + 5, {"prediction": p}
            )
            for i, (u, p) in enumerate(zip(uuids, predictions, strict=True))
        ]
    )
    service.store.merge_delayed([(u, {"final_label": t}) for u, t in zip(uuids, truth, strict=True)])
    page = browser_page
    page.goto(f"{service.url}/monitoring")
    page.locator("#token").fill(service.identity.api_key.get_secret_value())
    page.locator("#login-form button").click()
    page.wait_for_function(
        f"() => [...document.getElementById('deployment').options].some(o => o.value === '{dep}')"
    )
    page.locator("#deployment").select_option(dep)
    page.wait_for_function(
        "() => document.getElementById('kpi-task').textContent === 'regression'", timeout=15_000
    )
    assert page.locator("#kpi-accuracy-name").inner_text() == "MAE"
    assert kpi(page, "accuracy") == "4"  # |+5.5| and |-2.5| in turn
    assert not page.locator("#kpi-estimated-box").is_visible()
    assert page.locator("#caption-accuracy").inner_text().startswith("Error")
    assert points(page, "accuracy") > 0 and points(page, "predictions") > 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "monitoring-page-regression.png"), full_page=True)
