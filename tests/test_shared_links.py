"""Signed links to the home's reports and Data Docs, on the real service: what opens, and what an
adversary gets from a link that is altered, expired, another home's, or bent out of its folder."""

from __future__ import annotations

import os
import stat
import time

import pytest
import requests

from modelvigil.shared_links import (
    KEY_FILE,
    LinkRefused,
    WeakSigningKey,
    check,
    shared_url,
    signed_path,
    signing_key,
)


@pytest.fixture
def report(settings):
    folder = settings.home / "reports" / "20261128T041500Z"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<html><body><img src='accuracy_band.png'></body></html>")
    (folder / "accuracy_band.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (folder / "summary.json").write_text('{"alerts": []}')
    return folder


def test_a_signed_link_opens_the_report_and_what_it_links_to_without_a_key(service, settings, report):
    link = shared_url(service.url, settings.home, report)
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "accuracy_band.png" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"  # the link never leaks through a Referer
    # The PNG and summary.json are relative links: the permission is in the path, so they open too.
    png = requests.get(link.rsplit("/", 1)[0] + "/accuracy_band.png", timeout=10)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    folder_itself = requests.get(link.rsplit("/", 1)[0] + "/", timeout=10)
    assert folder_itself.status_code == 200 and "accuracy_band.png" in folder_itself.text
    assert service.identity.api_key.get_secret_value() not in link


def test_altered_expired_foreign_and_escaping_links_open_nothing(service, settings, report, tmp_path):
    link = shared_url(service.url, settings.home, report)
    prefix, _, rest = link.partition("/shared/")
    token, _, path = rest.partition("/")
    expires, _, signature = token.partition(".")

    def status(url: str) -> tuple[int, str]:
        answer = requests.get(url, timeout=10)
        return answer.status_code, answer.text

    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert status(f"{prefix}/shared/{expires}.{flipped}/{path}")[0] == 403
    # A later expiry with the same signature: the signature covers the expiry.
    assert status(f"{prefix}/shared/{int(expires) + 86400}.{signature}/{path}")[0] == 403
    # The same token on another report's folder: it covers the folder too.
    other = settings.home / "reports" / "other"
    other.mkdir()
    (other / "index.html").write_text("secret")
    assert status(f"{prefix}/shared/{token}/reports/other/index.html")[0] == 403
    # Out of the folder: `..` (sent as is, not normalised by the client) and a symlink.
    for escape in ("reports/20261128T041500Z/../other/index.html", "reports/20261128T041500Z/%2e%2e/other"):
        code, text = status(f"{prefix}/shared/{token}/{escape}")
        assert code in (403, 404) and "secret" not in text
    (report / "key").symlink_to(settings.home / KEY_FILE)
    assert status(f"{prefix}/shared/{token}/reports/20261128T041500Z/key")[0] == 404
    # What cannot be shared at all: the home's own files.
    code, text = status(f"{prefix}/shared/{token}/identity.json")
    assert code == 403 and "nothing that can be shared" in text
    # Another home's key signs nothing here.
    foreign = signed_path(signing_key(tmp_path / "other-home"), "reports/20261128T041500Z")
    assert status(prefix + foreign)[0] == 403
    # An expired link says so, in words a person who clicked it can act on.
    past = signed_path(signing_key(settings.home), "reports/20261128T041500Z", ttl_s=-10)
    code, text = status(prefix + past)
    assert code == 403 and "expired" in text
    assert status(f"{prefix}/shared/{token}/reports/20261128T041500Z/missing.png")[0] == 404


def test_the_signing_key_is_private_and_made_once(settings):
    first = signing_key(settings.home)
    assert signing_key(settings.home) == first and len(first) == 32
    mode = stat.S_IMODE(os.stat(settings.home / KEY_FILE).st_mode)
    assert mode == 0o600
    assert not [p for p in settings.home.iterdir() if p.name.startswith(f".{KEY_FILE}")]  # no staging left


def test_only_report_and_data_docs_folders_under_the_home_get_links(settings, report, tmp_path):
    assert shared_url("http://127.0.0.1:1", settings.home, report) is not None
    docs = settings.home / "runs" / "sim-1" / "data_docs"
    docs.mkdir(parents=True)
    assert "/runs/sim-1/data_docs/index.html" in shared_url("http://127.0.0.1:1", settings.home, docs)
    assert shared_url("http://127.0.0.1:1", settings.home, tmp_path / "elsewhere") is None
    assert shared_url("http://127.0.0.1:1", settings.home, settings.home) is None
    key = signing_key(settings.home)
    token = signed_path(key, "reports/x").split("/")[2]
    assert check(key, token, "reports/x/a/b.png").file == "a/b.png"
    with pytest.raises(LinkRefused):
        check(key, token, "reports/x/../y/index.html")
    with pytest.raises(LinkRefused, match="expired"):
        check(key, token, "reports/x/index.html", now=time.time() + 8 * 86400)


def test_a_blank_signing_key_signs_nothing_and_opens_nothing(settings, report, make_service):
    (settings.home / KEY_FILE).write_bytes(b"")
    with pytest.raises(WeakSigningKey):
        signing_key(settings.home)
    assert shared_url("http://127.0.0.1:1", settings.home, report) is None
    svc = make_service()  # starts, and serves everything but shared links
    forged = signed_path(b"", "reports/20261128T041500Z")
    answer = requests.get(svc.url + forged, timeout=10)
    assert answer.status_code == 404 and "link-signing key is blank" in answer.text
    assert requests.get(f"{svc.url}/health", timeout=10).ok


def test_what_an_adversarial_probe_found_stays_shut(service, settings, report, tmp_path):
    """Symlinks as the index or as the folder itself, weak keys, odd spellings of a token,
    names the file system cannot hold: refused, never a 500, never a secret."""
    link = shared_url(service.url, settings.home, report)
    prefix, _, rest = link.partition("/shared/")
    token = rest.split("/", 1)[0]
    base = f"{prefix}/shared/{token}/reports/20261128T041500Z"
    secret = service.identity.api_key.get_secret_value()

    (report / "sub").mkdir()
    (report / "sub" / "index.html").symlink_to(settings.home / "service.json")
    answer = requests.get(f"{base}/sub", timeout=10)
    assert answer.status_code == 404 and secret not in answer.text
    (report / "index.html").unlink()
    (report / "index.html").symlink_to(settings.home / KEY_FILE)
    assert requests.get(f"{base}/", timeout=10).status_code == 404

    fake = settings.home / "runs" / "fake"
    fake.mkdir(parents=True)
    (fake / "report").symlink_to(settings.home)  # a shareable-looking folder that is the home
    forged = signed_path(signing_key(settings.home), "runs/fake/report", "service.json")
    answer = requests.get(prefix + forged, timeout=10)
    assert answer.status_code == 404 and secret not in answer.text

    expires, signature = token.split(".")
    odd = [
        f"%C2%B2.{signature}", f"{'9' * 4301}.{signature}", f"{expires}.{signature[:-1]}%C3%A9",
        f"0{expires}.{signature}", f"{expires}.{signature}==",
    ]  # fmt: skip
    for spelled in odd:
        assert (
            requests.get(f"{prefix}/shared/{spelled}/reports/20261128T041500Z/", timeout=10).status_code
            == 403
        )
    for name in ("a%00b.png", "x" * 5_000, "a/" * 2_000):
        assert requests.get(f"{base}/{name}", timeout=10).status_code in (403, 404)

    assert requests.head(f"{base}/accuracy_band.png", timeout=10).status_code == 200
    docs = settings.home / "runs" / "sim-1" / "data_docs"
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<script>sessionStorage</script>")
    answer = requests.get(shared_url(service.url, settings.home, docs), timeout=10)
    policy = answer.headers["content-security-policy"]
    assert (
        answer.status_code == 200 and "sandbox allow-scripts" in policy and "allow-same-origin" not in policy
    )


@pytest.mark.parametrize("key", [b" " * 32, b"\x00" * 32, b"a" * 32, b"\n" * 40, b"ab" * 16])
def test_a_simple_key_is_no_key(settings, key):
    (settings.home / KEY_FILE).write_bytes(key)
    with pytest.raises(WeakSigningKey):
        signing_key(settings.home)
