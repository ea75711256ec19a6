"""
End-to-end: the real C{twistd -n wazzap --web} serves its page and
WebSocket on loopback; a headless Chromium driven by Selenium (Debian's
C{chromium} and C{chromium-driver}) chats with a raw socket user, as nc
makes, in one room.  A screenshot of the page is kept in
C{tests/artifacts/} (ignored by git).
"""

import base64
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from tests.support import PASSWORD, REPO, TIMEOUT, free_port, run_wazzap, seed_accounts, until

pytestmark = pytest.mark.timeout(120)

#: Where the screenshot of the page is kept after the run.
ARTIFACTS = REPO / "tests" / "artifacts"

#: Flags for a Chromium that asks nothing of the machine or the network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,700",
)

NO_BROWSER = "needs headless Chromium and chromedriver (apt-get install chromium chromium-driver)"


@pytest.fixture
def web_server(start_server):
    """
    A real server with --web on a free loopback port, and that port.
    """
    port = free_port()
    server = start_server("--web=tcp:%d:interface=127.0.0.1" % (port,))
    server.wait_for_log("serving the web page on http://127.0.0.1:%d/" % (port,))
    return server, port


@pytest.fixture
def chromium():
    """
    A headless Chromium under Selenium, with a new empty profile; skipped
    where Chromium or its driver is not installed.
    """
    webdriver = pytest.importorskip("selenium.webdriver", reason=NO_BROWSER)
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip(NO_BROWSER)
    profile = tempfile.mkdtemp(prefix="wazzap-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS + ("--user-data-dir=" + profile,):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def get(port, path="/", headers=()):
    """
    The status, headers and body of a GET on the web port.
    """
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def messages(driver):
    """
    The lines of the page's message list, as shown.
    """
    from selenium.webdriver.common.by import By

    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#messages li")]


def wait_for_line(driver, text):
    lines = until(lambda: [line for line in messages(driver) if text in line])
    assert lines, "no %r on the page: %r" % (text, messages(driver))
    return lines


def browser_joins(driver, port, nickname, password=None):
    from selenium.webdriver.common.by import By

    driver.get("http://127.0.0.1:%d/" % (port,))
    assert until(lambda: "connected" in driver.find_element(By.ID, "status").text)
    driver.find_element(By.ID, "nickname").send_keys(nickname)
    if password is not None:
        driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    wait_for_line(driver, "Welcome, %s!" % (nickname,))


def browser_says(driver, text):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.ID, "line")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def test_the_page_and_its_files_are_served(web_server):
    """/ serves the page, and its script and style, with a policy that loads nothing from elsewhere."""
    _, port = web_server
    status, headers, body = get(port)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script src="app.js"' in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert get(port, "/app.js")[0] == 200 and get(port, "/style.css")[0] == 200
    assert get(port, "/nothing")[0] == 404


def test_a_mismatched_origin_gets_403(web_server):
    """A request from another Origin gets HTTP 403; the page's own Origin and none are served."""
    _, port = web_server
    assert get(port, headers={"Origin": "http://evil.test"})[0] == 403
    assert get(port, headers={"Origin": "http://127.0.0.1:%d" % (port,)})[0] == 200
    assert get(port)[0] == 200


def test_a_websocket_without_a_browser_joins(web_server):
    """A WebSocket client that sends no Origin completes the handshake and is greeted in JSON."""
    _, port = web_server
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                % (port, key)
            ).encode()
        )
        received = b""
        deadline = time.monotonic() + TIMEOUT
        while b"Choose a nickname" not in received and time.monotonic() < deadline:
            received += sock.recv(65536)
    assert received.startswith(b"HTTP/1.1 101 ")
    assert b'{"type":"notice","text":"Choose a nickname' in received


def test_a_web_port_in_use_is_one_line(tmp_path):
    """A --web port in use ends the start with one line and status 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_wazzap(tmp_path, "--web=tcp:%d:interface=127.0.0.1" % (port,))
    assert result.returncode == 1, result
    assert result.stderr == (
        "wazzap: cannot serve the web page on tcp:%d:interface=127.0.0.1: address already in use\n"
        % (port,)
    )


def test_a_browser_and_a_raw_socket_user_chat(web_server, open_client, chromium):
    """A browser user and an nc-like user in one room see each other's lines, in order, with nicknames."""
    server, port = web_server
    browser_joins(chromium, port, "webby")
    nc = open_client(server, "ncuser")
    wait_for_line(chromium, "ncuser joined the chat")
    for n in range(3):
        nc.send("from nc %d" % (n,))
    wait_for_line(chromium, "from nc 2")
    said = [line for line in messages(chromium) if line.startswith("ncuser: ")]
    assert said == ["ncuser: from nc %d" % (n,) for n in range(3)]
    for n in range(3):
        browser_says(chromium, "from the browser %d" % (n,))
    for n in range(3):
        assert nc.read_until("from the browser") == "webby: from the browser %d" % (n,)
    browser_says(chromium, "@ncuser a secret")
    assert nc.read_until("[PM from webby]") == "[PM from webby] a secret"
    nc.send("@webby and back")
    wait_for_line(chromium, "[PM from ncuser] and back")
    browser_says(chromium, "/who")
    wait_for_line(chromium, "ncuser")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "web-chat.png"
    assert chromium.save_screenshot(str(shot))
    assert shot.stat().st_size > 1000


def test_markup_from_a_user_creates_no_element(web_server, open_client, chromium):
    """An <img onerror> line from a user shows as its text: no element is made, no script runs."""
    from selenium.webdriver.common.by import By

    server, port = web_server
    browser_joins(chromium, port, "webby")
    nc = open_client(server, "mallory")
    attack = "<img src=x onerror=document.title='pwned'> <b>bold</b>"
    nc.send(attack)
    wait_for_line(chromium, "mallory: " + attack)
    assert chromium.find_elements(By.CSS_SELECTOR, "#messages img, #messages b") == []
    assert chromium.title == "wazzap"


def test_a_registered_browser_user_logs_in_with_the_form(start_server, tmp_path, chromium):
    """The password given in the form answers the password prompt, and shows nowhere on the page."""
    from selenium.webdriver.common.by import By

    port = free_port()
    db = seed_accounts(tmp_path / "accounts.sqlite3", ["carol"])
    server = start_server(db, "--web=tcp:%d:interface=127.0.0.1" % (port,))
    server.wait_for_log("serving the web page")
    browser_joins(chromium, port, "carol", PASSWORD)
    assert "carol is registered. Password:" in " ".join(messages(chromium))
    assert PASSWORD not in chromium.find_element(By.ID, "messages").text
    assert chromium.find_element(By.ID, "line").get_attribute("type") == "text"
