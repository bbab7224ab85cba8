"""The web console's login in headless Chromium, against a `fjord server`
whose admin API is HTTPS and requires a login (an authorizer is set).

run.sh starts that server (its ACL server) and exports $SECURE_ADMIN (the
admin address), $SSL_CA (the CA of its certificate) and the admin user's
$FJORD_ADMIN_USER / $FJORD_ADMIN_PASSWORD. A topic is made through the API
with HTTP Basic; the browser is refused with a wrong password, logs in,
sees the topic, and logs out.
"""

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect, sync_playwright

ADMIN = os.environ.get("SECURE_ADMIN", "127.0.0.1:19645")
BASE = f"https://{ADMIN}"
CA = os.environ.get("SSL_CA")
USER = os.environ.get("FJORD_ADMIN_USER", "admin")
PASSWORD = os.environ.get("FJORD_ADMIN_PASSWORD", "")
HERE = os.path.dirname(os.path.abspath(__file__))
SCREENSHOTS = os.environ.get("SCREENSHOTS", os.path.join(HERE, "screenshots"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def call(method, path, body=None, login=None):
    """The API over HTTPS, checked against the test CA: (status, JSON)."""
    context = ssl.create_default_context(cafile=CA)
    headers = {"Content-Type": "application/json"}
    if login:
        token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as res:
            status, text = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    return status, (json.loads(text) if text else None)


@pytest.fixture(scope="module")
def topic():
    assert CA and PASSWORD, "run.sh exports SSL_CA and FJORD_ADMIN_PASSWORD"
    # Without a login the API refuses; with the admin's it serves.
    status, body = call("GET", "/api/v1/topics")
    assert status == 401, (status, body)
    name = f"login-{uuid.uuid4().hex[:8]}"
    status, body = call("POST", "/api/v1/topics", {"name": name}, login=(USER, PASSWORD))
    assert status == 201, (status, body)
    return name


@pytest.fixture
def page():
    os.makedirs(SCREENSHOTS, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # The test CA is not the browser's: its certificate errors are
        # ignored (the API calls above check it).
        context = browser.new_context(viewport={"width": 1400, "height": 900},
                                      ignore_https_errors=True)
        pg = context.new_page()
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        context.close()
        browser.close()
        # Script errors fail the test (a refused login's 401 is expected).
        assert not errors, errors


def test_login_is_refused_with_a_wrong_password_then_shows_topics(page, topic):
    page.goto(f"{BASE}/#/topics")
    form = page.get_by_test_id("login-form")
    expect(form).to_be_visible(timeout=15000)
    # No dialog of the browser's own: the console's calls get no challenge.
    page.get_by_test_id("login-user").fill(USER)
    page.get_by_test_id("login-password").fill("not-the-password")
    page.get_by_test_id("login-submit").click()
    error = page.get_by_test_id("login-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("invalid user name or password")
    expect(form).to_be_visible()
    page.screenshot(path=os.path.join(SCREENSHOTS, "login-refused.png"), full_page=True)

    page.get_by_test_id("login-user").fill(USER)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("principal")).to_have_text(f"User:{USER}", timeout=15000)
    expect(page.locator('main[data-rendered="/topics"]')).to_have_count(1, timeout=15000)
    expect(page.get_by_text(topic, exact=True)).to_be_visible()
    page.screenshot(path=os.path.join(SCREENSHOTS, "login-topics.png"), full_page=True)

    # The session is an HttpOnly cookie the page's script cannot read.
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["fjord_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert "fjord_session" not in page.evaluate("document.cookie")

    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-form")).to_be_visible(timeout=15000)
    page.goto(f"{BASE}/#/topics")
    expect(page.get_by_test_id("login-form")).to_be_visible(timeout=15000)
