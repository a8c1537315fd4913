"""The Monitoring page in real headless Chromium (Debian's, driven by Playwright): it logs in with the
API key, then updates by itself while traffic and ground truth arrive, without a reload."""

from __future__ import annotations

import requests

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
