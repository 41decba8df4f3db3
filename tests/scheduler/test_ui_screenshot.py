"""
The Airflow UI shows the finished run's graph: headless Chromium, logged in, takes a screenshot.

Chromium is driven over the DevTools protocol on a loopback port: the simple auth manager's JWT
goes into the ``_token`` cookie the UI sends with its API calls (what its login page does), the
UI's stored view preference is set to the graph, the details panel is collapsed and the task
group expanded, and the page is captured once every node is drawn.
``TRENDER_UPDATE_SCREENSHOT=1`` copies the capture to docs/images/trender_daily_graph.png.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

from tests.scheduler.conftest import FinishedRun
from tests.scheduler.stack import (
    ADMIN_USER,
    DAG_ID,
    HOST,
    HTTP_TIMEOUT_SECONDS,
    POLL_SECONDS,
    PROJECT_ROOT,
    AirflowStack,
    Service,
    fetch_token,
    stop_service,
)

pytestmark = pytest.mark.scheduler

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1600, 1000
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    # No name resolves: the browser can reach only the loopback address it is given.
    f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}",
    f"--window-size={WIDTH},{HEIGHT}",
    f"--remote-debugging-address={HOST}",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to the profile
)
BROWSER_START_TIMEOUT_SECONDS = 30
DEVTOOLS_CALL_TIMEOUT_SECONDS = 30
RENDER_TIMEOUT_SECONDS = 60  # the React UI fetches the DAG structure and run states first
SETTLE_SECONDS = 2  # a click's re-layout and the fit-to-view transition take about a second
VIEW_PREFERENCE = ("default_dag_view", "graph")  # the UI's localStorage key: grid or graph
# The UI's buttons, by their English labels: give the graph the whole width, show the group's
# tasks, and fit the result into the view.
GRAPH_BUTTONS = ("Collapse Details Panel", "Expand all task groups", "Fit View")
TOP_LEVEL_NODES = frozenset(
    {
        "ensure_schema",
        "resolve_run",
        "list_languages",
        "fetch_language_repos",
        "fetch_render_repos",
        "plan_batches",
        "analyze_repo_batch",
        "aggregate_results",
        "cleanup_old_data",
        "record_run",
    }
)
GROUP_TASKS = frozenset(
    f"aggregate_results.{task}"
    for task in (
        "load_candidates",
        "load_dim_repositories",
        "load_fact_snapshots",
        "check_warehouse",
    )
)
JOIN_NODE_SUFFIX = "_join_id"  # the UI's invisible entry and exit points of an expanded group
# The login page captures at about 46 kB at this size; the graph at about 135 kB.
MIN_SCREENSHOT_BYTES = 90_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COMMITTED_SCREENSHOT = PROJECT_ROOT / "docs" / "images" / "trender_daily_graph.png"
UPDATE_ENV = "TRENDER_UPDATE_SCREENSHOT"
GRAPH_NODES = """
Object.fromEntries(
  [...document.querySelectorAll('.react-flow__node')]
    .map((node) => [node.dataset.id, node.innerText])
)
"""
CLICK = """
(() => {{
  const button = document.querySelector({selector});
  if (button) button.click();
  return button !== null;
}})()
"""


class DevTools:
    """A DevTools protocol session with one page, over a loopback websocket."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result, skipping the events sent meanwhile."""
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        deadline = time.monotonic() + DEVTOOLS_CALL_TIMEOUT_SECONDS
        while True:
            message = json.loads(self._socket.recv(timeout=deadline - time.monotonic()))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        """Return the value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, done: Callable[[Any], bool], what: str) -> Any:
        """Evaluate an expression until ``done`` accepts its value; return that value."""
        deadline = time.monotonic() + RENDER_TIMEOUT_SECONDS
        while True:
            value = self.evaluate(expression)
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} within {RENDER_TIMEOUT_SECONDS} s: {value!r}")
            time.sleep(POLL_SECONDS / 2)

    def click(self, label: str) -> None:
        """Click the button with this ARIA label."""
        selector = json.dumps(f'[aria-label="{label}"]')
        assert self.evaluate(CLICK.format(selector=selector)), f"no button {label!r}"


def _devtools_port(profile: Path, browser: Service) -> int:
    deadline = time.monotonic() + BROWSER_START_TIMEOUT_SECONDS
    port_file = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if browser.process.poll() is not None:
            raise RuntimeError(f"chromium exited with {browser.process.returncode}")
        if port_file.exists() and (lines := port_file.read_text().splitlines()):
            return int(lines[0])
        time.sleep(POLL_SECONDS / 4)
    raise TimeoutError(f"chromium opened no DevTools port within {BROWSER_START_TIMEOUT_SECONDS} s")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    """Start headless Chromium with an empty profile; return a DevTools session with its page."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian: apt-get install chromium)")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    log = tmp_path / "chromium.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    service = Service("chromium", process, log)
    try:
        port = _devtools_port(profile, service)
        targets = requests.get(f"http://{HOST}:{port}/json/list", timeout=HTTP_TIMEOUT_SECONDS)
        page = next(target for target in targets.json() if target["type"] == "page")
        with connect(
            page["webSocketDebuggerUrl"], max_size=None, open_timeout=HTTP_TIMEOUT_SECONDS
        ) as socket:
            yield DevTools(socket)
    finally:
        stop_service(service)


def png_size(data: bytes) -> tuple[int, int]:
    """Return the width and height a PNG's header gives."""
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_graph_view_shows_the_finished_run(
    finished_run: FinishedRun, airflow_stack: AirflowStack, browser: DevTools, tmp_path: Path
) -> None:
    assert finished_run.dag_run["state"] == "success"
    base_url = airflow_stack.base_url
    token = fetch_token(base_url, ADMIN_USER, airflow_stack.admin_password)
    cookie = browser.call(
        "Network.setCookie", name="_token", value=token, url=f"{base_url}/", httpOnly=True
    )
    assert cookie == {"success": True}
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=WIDTH,
        height=HEIGHT,
        deviceScaleFactor=1,
        mobile=False,
    )
    browser.call("Page.navigate", url=f"{base_url}/")
    browser.wait_for("document.readyState", lambda state: state == "complete", "no home page")
    key, value = VIEW_PREFERENCE
    browser.evaluate(f"localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(value))})")
    run_path = f"/dags/{DAG_ID}/runs/{quote(finished_run.run_id, safe='')}"
    browser.call("Page.navigate", url=f"{base_url}{run_path}")
    browser.wait_for(GRAPH_NODES, lambda nodes: set(nodes) == TOP_LEVEL_NODES, "no graph")
    for label in GRAPH_BUTTONS:
        browser.click(label)
        time.sleep(SETTLE_SECONDS)
    nodes = browser.wait_for(
        GRAPH_NODES,
        lambda nodes: set(nodes) >= GROUP_TASKS,
        "the task group did not expand",
    )
    screenshot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "graph.png").write_bytes(screenshot)
    (tmp_path / "graph.html").write_text(
        browser.evaluate("document.documentElement.outerHTML"), encoding="utf-8"
    )

    assert browser.evaluate("location.pathname") == run_path  # not sent to the login page
    tasks = {node: text for node, text in nodes.items() if not node.endswith(JOIN_NODE_SUFFIX)}
    assert set(tasks) == TOP_LEVEL_NODES | GROUP_TASKS
    assert [node for node, text in tasks.items() if "success" not in text.split()] == []
    assert png_size(screenshot) == (WIDTH, HEIGHT)
    assert len(screenshot) > MIN_SCREENSHOT_BYTES
    if os.environ.get(UPDATE_ENV) == "1":
        COMMITTED_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "graph.png", COMMITTED_SCREENSHOT)
