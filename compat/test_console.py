"""The web console (issue 14) in a real browser: Debian's headless Chromium driven by Selenium
through chromedriver. A scenario made with confluent-kafka (a topic of JSON records with a
header, a consumer group that stopped part way, so it lags) must show on the pages; every page
loads without errors in the browser's console; the plots draw; creating a topic through the
form works (and Kafka's admin API sees it); a bad form value gets a clear message. A screenshot
of each page is written to $ODRADEK_ARTIFACT_DIR (default: console-screenshots beside the
binaries)."""

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN_DIR, Node, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("ODRADEK_ARTIFACT_DIR", BIN_DIR.parent / "console-screenshots"))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """A node with the console, a topic `orders` of 120 JSON records, a group `billing` that
    consumed and committed 100 of them (lag 20)."""
    work = tmp_path_factory.mktemp("console")
    port = free_port()
    node = Node(work, {"console.listener": f"http://127.0.0.1:{port}"})
    node.console = f"http://127.0.0.1:{port}"
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    a.create_topics([NewTopic("orders", num_partitions=1, replication_factor=1)])["orders"].result(10)
    p = Producer({"bootstrap.servers": node.bootstrap})
    for i in range(120):
        p.produce("orders", key=f"order-{i}", value=json.dumps({"order": i, "amount": i * 3}),
                  headers=[("source", b"checkout")])
    assert p.flush(20) == 0
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "billing",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["orders"])
    got = 0
    deadline = time.time() + 30
    while got < 100 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got += 1
    assert got == 100
    c.commit(offsets=[TopicPartition("orders", 0, 100)], asynchronous=False)
    c.close()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromium-driver are needed (scripts/install-deps.sh --test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="odradek-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1280,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def visit(browser, url, shot):
    """Loads `url`, checks the browser logged no error, saves a screenshot."""
    browser.get(url)
    time.sleep(0.3)
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, f"{url}: browser console errors: {errors}"
    browser.save_screenshot(str(ARTIFACTS / f"{shot}.png"))
    return browser


def text_of(browser, css):
    from selenium.webdriver.common.by import By
    return browser.find_element(By.CSS_SELECTOR, css).text


def wait_plot(browser, timeout=15):
    """Waits until every plot on the page has drawn at least two samples."""
    from selenium.webdriver.common.by import By
    deadline = time.time() + timeout
    while time.time() < deadline:
        charts = browser.find_elements(By.CSS_SELECTOR, ".chart")
        if charts and all(int(c.get_attribute("data-points") or 0) >= 2 for c in charts):
            assert all(c.find_elements(By.CSS_SELECTOR, "canvas") for c in charts)
            return
        time.sleep(0.5)
    raise AssertionError("plots did not draw")


def test_overview_shows_the_cluster(scenario, browser):
    visit(browser, scenario.console + "/", "overview")
    assert text_of(browser, "#broker-count") == "1"
    assert text_of(browser, "#under-replicated") == "0"
    assert text_of(browser, "#offline") == "0"
    assert text_of(browser, "#quorum-leader") == "1"
    assert scenario.bootstrap.split(":")[1] in text_of(browser, "#brokers")
    wait_plot(browser)
    browser.save_screenshot(str(ARTIFACTS / "overview.png"))


def test_topics_and_a_topic_page(scenario, browser):
    visit(browser, scenario.console + "/topics", "topics")
    assert "orders" in text_of(browser, "#topics")
    visit(browser, scenario.console + "/topics/orders", "topic")
    rows = text_of(browser, "#partitions")
    # Partition 0, led by broker 1, log from 0 to 120, its size here in KiB.
    assert "120" in rows and rows.count("\n") >= 1 and "KiB" in rows
    assert "retention.ms" in text_of(browser, "#configs")
    wait_plot(browser)
    browser.save_screenshot(str(ARTIFACTS / "topic.png"))


def test_message_browser_shows_records_in_each_view(scenario, browser):
    visit(browser, scenario.console + "/topics/orders/messages?partition=0&offset=100&view=json", "messages-json")
    table = text_of(browser, "#messages")
    assert "order-100" in table and '"amount": 300' in table and "source=checkout" in table
    assert "order-99" not in table
    visit(browser, scenario.console + "/topics/orders/messages?partition=0&offset=0&view=hex", "messages-hex")
    # "order-0" in hex.
    assert "6f 72 64 65 72 2d 30" in text_of(browser, "#messages")
    # By timestamp: everything was produced after 0 ms.
    visit(browser, scenario.console + "/topics/orders/messages?partition=0&timestamp=0", "messages-time")
    assert "order-0" in text_of(browser, "#messages")


def test_groups_show_the_lag_and_its_plot(scenario, browser):
    visit(browser, scenario.console + "/groups", "groups")
    groups = text_of(browser, "#groups")
    assert "billing" in groups and "20" in groups
    visit(browser, scenario.console + "/groups/billing", "group")
    assert text_of(browser, "#total-lag") == "20"
    assert "100" in text_of(browser, "#offsets")
    wait_plot(browser)
    browser.save_screenshot(str(ARTIFACTS / "group.png"))


def test_creating_a_topic_through_the_form(scenario, browser):
    from selenium.webdriver.common.by import By
    visit(browser, scenario.console + "/topics", "create-before")
    browser.find_element(By.ID, "topic-name").send_keys("made-in-browser")
    browser.find_element(By.ID, "topic-partitions").send_keys("3")
    browser.find_element(By.ID, "create-button").click()
    time.sleep(0.5)
    assert "created" in text_of(browser, "#notice")
    assert "made-in-browser" in text_of(browser, "#topics")
    browser.save_screenshot(str(ARTIFACTS / "create-after.png"))
    md = AdminClient({"bootstrap.servers": scenario.bootstrap}).list_topics(timeout=10)
    assert len(md.topics["made-in-browser"].partitions) == 3
    # A second time: Kafka's error, shown on the page.
    browser.find_element(By.ID, "topic-name").send_keys("made-in-browser")
    browser.find_element(By.ID, "create-button").click()
    time.sleep(0.5)
    assert "TOPIC_ALREADY_EXISTS" in text_of(browser, "#form-error")


def test_bad_requests_get_clear_answers(scenario):
    def status(path, data=None):
        try:
            with urllib.request.urlopen(scenario.console + path, data=data, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
    code, body = status("/topics/no-such-topic")
    assert code == 404 and "UNKNOWN_TOPIC_OR_PARTITION" in body
    code, body = status("/topics/orders/messages?partition=7")
    assert code == 400 and "no partition 7" in body
    code, body = status("/topics/orders/messages?offset=abc")
    assert code == 400 and "offset" in body
    code, body = status("/topics", data=b"name=x&partitions=-4&replication_factor=")
    assert code == 400 and "partitions" in body
    code, body = status("/groups/no-such-group")
    assert code == 404 and "GROUP_ID_NOT_FOUND" in body


def test_with_an_authorizer_users_sign_in_and_see_only_what_acls_allow(tmp_path):
    """HTTP Basic against SCRAM credentials; every page's requests authorised for the user; a
    form from another origin refused."""
    import base64

    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    port = free_port()
    node = Node(tmp_path, {
        "console.listener": f"http://127.0.0.1:{port}",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # The test's own admin client is anonymous on the PLAINTEXT listener.
        "super.users": "User:ANONYMOUS;User:admin",
    }, format_args=["--add-scram", "SCRAM-SHA-256=[name=alice,password=alice-secret]",
                    "--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret]"])
    try:
        a = AdminClient({"bootstrap.servers": node.bootstrap})
        for f in a.create_topics([NewTopic(t, 1, 1) for t in ("visible", "hidden")]).values():
            f.result(20)
        for f in a.create_acls([AclBinding(ResourceType.TOPIC, "visible", ResourcePatternType.LITERAL, "User:alice", "*",
                                           AclOperation.DESCRIBE, AclPermissionType.ALLOW)]).values():
            f.result(20)
        base = f"http://127.0.0.1:{port}"

        def get(path, user=None, password=None, method="GET", headers=None, data=None):
            req = urllib.request.Request(base + path, method=method, data=data, headers=headers or {})
            if user:
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                req.add_header("Authorization", f"Basic {token}")
            try:
                with urllib.request.urlopen(req, timeout=20) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        code, _ = get("/topics")
        assert code == 401
        code, _ = get("/topics", "alice", "wrong")
        assert code == 401
        code, _ = get("/topics", "nobody", "x")
        assert code == 401
        code, body = get("/topics", "alice", "alice-secret")
        assert code == 200 and "visible" in body and "hidden" not in body
        code, body = get("/topics/hidden", "alice", "alice-secret")
        assert code in (403, 404) and "AUTHORIZATION_FAILED" in body
        code, body = get("/topics", "admin", "admin-secret")
        assert code == 200 and "visible" in body and "hidden" in body
        # Alice may not create topics: Kafka's refusal, on the page.
        code, body = get("/topics", "alice", "alice-secret", method="POST", data=b"name=new-one&partitions=1&replication_factor=")
        assert code == 200 and "cannot create" in body and "AUTHORIZATION_FAILED" in body
        assert "new-one" not in a.list_topics(timeout=10).topics
        # A form posted from another site is refused before anything happens.
        code, body = get("/topics/visible/delete", "admin", "admin-secret", method="POST", data=b"",
                         headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert code == 403
        assert "visible" in a.list_topics(timeout=10).topics
        # A DNS-rebinding page (another host name) gets nothing from a loopback console.
        code, _ = get("/", "admin", "admin-secret", headers={"Host": "evil.example:%d" % port})
        assert code == 403
    finally:
        node.stop()


def test_altering_a_config_and_deleting_a_topic_through_the_forms(scenario, browser):
    from confluent_kafka.admin import ConfigResource
    from selenium.webdriver.common.by import By
    a = AdminClient({"bootstrap.servers": scenario.bootstrap})
    a.create_topics([NewTopic("doomed", num_partitions=1, replication_factor=1)])["doomed"].result(10)
    visit(browser, scenario.console + "/topics/doomed", "alter-before")
    browser.find_element(By.ID, "config-key").send_keys("retention.ms")
    browser.find_element(By.ID, "config-value").send_keys("3600000")
    browser.find_element(By.CSS_SELECTOR, "#alter-config button").click()
    time.sleep(0.5)
    assert "altered" in text_of(browser, "#notice")
    assert "3600000" in text_of(browser, "#configs")
    browser.save_screenshot(str(ARTIFACTS / "alter-after.png"))
    res = ConfigResource("topic", "doomed")
    described = a.describe_configs([res])[res].result(10)
    assert described["retention.ms"].value == "3600000"
    # A bad value: Kafka's INVALID_CONFIG, on the page.
    browser.find_element(By.ID, "config-key").send_keys("retention.ms")
    browser.find_element(By.ID, "config-value").send_keys("soon")
    browser.find_element(By.CSS_SELECTOR, "#alter-config button").click()
    time.sleep(0.5)
    assert "INVALID_CONFIG" in text_of(browser, "#form-error")
    # Delete asks first; accepted, the topic goes.
    browser.find_element(By.CSS_SELECTOR, "#delete-topic button").click()
    browser.switch_to.alert.accept()
    time.sleep(0.5)
    assert "deleted" in text_of(browser, "#notice")
    browser.save_screenshot(str(ARTIFACTS / "delete-after.png"))
    deadline = time.time() + 10
    while "doomed" in a.list_topics(timeout=10).topics and time.time() < deadline:
        time.sleep(0.2)
    assert "doomed" not in a.list_topics(timeout=10).topics
