"""The console in a real browser: Debian's chromium driven by Playwright against a real `fnhost serve`.

Signs in, deploys a bundle (twice) through the upload form, invokes, opens the invocation with its
REPORT line and logs, rolls back, follows the live log tail, redrives a dead letter and reads the
audit log, saving a screenshot of each step to `FNHOST_SCREENSHOTS` (default build/screenshots/;
docs/console.md shows copies). Playwright never downloads a browser: `just setup` installs chromium.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
import wat_guests
from conftest import ROOT, missing_toolchain
from test_e2e import server

from fnhost.control import pack_bundle

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("FNHOST_SCREENSHOTS", ROOT / "build" / "screenshots"))
CONSUMER = """name = "consumer"
[[triggers.queue]]
queue = "jobs"
max_receive_count = 1
visibility_timeout_s = 10
"""


def _wait(what: str, check: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_sign_in_deploy_invoke_read_logs_roll_back_tail_and_redrive_in_chromium(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        missing_toolchain("Debian's chromium for the console's browser test (`just setup-browser` installs it)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing_toolchain("playwright (in the dev extra: `just setup`)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    v1, v2 = tmp_path / "hello-v1.zip", tmp_path / "hello-v2.zip"
    v1.write_bytes(pack_bundle('name = "hello"\n', wat_guests.LOG_PAYLOAD))
    v2.write_bytes(pack_bundle('name = "hello"\n[env]\nRELEASE = "2"\n', wat_guests.LOG_PAYLOAD))
    data_dir = tmp_path / "data"
    with server(data_dir) as url:
        admin = (data_dir / "admin.key").read_text().strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=60)
        # a consumer that fails dead-letters its message; then it is fixed (redeployed), ready for a redrive
        assert api.put("/v1/functions/consumer", content=pack_bundle(CONSUMER, wat_guests.FAILS)).status_code == 201
        assert api.post("/v1/queues/jobs/messages", content=b'{"job": 1}').status_code == 201
        _wait("the message was never dead-lettered", lambda: api.get("/v1/queues/jobs-dlq/messages").json()["messages"])
        assert api.put("/v1/functions/consumer", content=pack_bundle(CONSUMER, wat_guests.ECHO)).status_code == 201

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            problems: list[str] = []
            # script errors and Content-Security-Policy violations (a 401 sign-in page is logged too: not a problem)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "status of 401" not in m.text else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("dialog", lambda dialog: dialog.accept())  # the forms' confirmations

            def shot(name: str) -> None:
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

            page.goto(url + "/")  # a browser at / lands on the console's sign-in
            expect(page.locator("h1")).to_have_text("Sign in")
            page.fill("input[name=key]", "fnh_0000000000000000_" + "x" * 43)
            page.click("button:text('Sign in')")
            expect(page.locator(".error")).to_contain_text("unknown API key")
            page.fill("input[name=key]", admin)
            shot("01-sign-in")
            page.click("button:text('Sign in')")
            page.wait_for_url("**/console/functions")

            page.fill("input[name=name]", "hello")
            page.set_input_files("input[name=bundle]", str(v1))
            page.click("button:text('Deploy')")
            page.wait_for_url("**/console/functions/hello?ns=default")
            page.set_input_files("input[name=bundle]", str(v2))
            page.click("button:text('Deploy')")
            expect(page.locator("main > p").first).to_contain_text("version 2")
            shot("02-function-deployed")

            page.fill("textarea[name=payload]", '{"name": "browser"}')
            page.click("button:text('Invoke')")
            expect(page.locator("pre.output")).to_have_text('{"name": "browser"}')
            expect(page.locator("pre.logs")).to_contain_text('{"name": "browser"}')
            shot("03-invoked")
            page.click("dd a[href^='/console/invocations/']")
            expect(page.locator("pre.report")).to_contain_text("REPORT RequestId:")
            expect(page.locator(".outcome")).to_have_text("ok")
            shot("04-invocation")

            page.click("dd a[href^='/console/functions/hello']")
            page.click("button:text('Roll back to 1')")
            expect(page.locator("main > p").first).to_contain_text("version 1")
            expect(page.locator("main > p").first).to_contain_text("pinned")
            shot("05-rolled-back")
            assert api.get("/v1/functions/hello").json()["aliases"][0] == {"alias": "live", "version": 1, "pinned": True}

            page.goto(url + "/console/invocations?function=hello")
            expect(page.locator("tbody tr")).to_have_count(1)
            page.goto(url + "/console/tail?function=hello")
            expect(page.locator("#tail-status")).to_contain_text("following")
            assert api.post("/v1/functions/hello/invoke", content=b"a line for the tail").status_code == 200
            expect(page.locator(".tail-log").first).to_have_text("[info] a line for the tail", timeout=15000)
            shot("06-live-logs")

            page.goto(url + "/console/queues")
            expect(page.locator("tbody")).to_contain_text("jobs-dlq")
            shot("07-queues")
            page.click("a:text('jobs-dlq')")
            expect(page.locator("pre.body")).to_have_text('{"job": 1}')
            shot("08-dead-letter")
            page.click("button:text('Redrive')")
            expect(page.locator("main > p").first).to_contain_text("0 message(s)")
            _wait(
                "the redriven message never reached the fixed consumer",
                lambda: api.get("/v1/functions/consumer/invocations?outcome=ok").json()["invocations"],
            )
            shot("09-redriven")

            page.goto(url + "/console/audit")
            expect(page.locator("p.ok")).to_contain_text("Hash chain intact")
            expect(page.locator("tbody")).to_contain_text("queue.redrive")
            shot("10-audit")
            page.goto(url + "/console/usage")
            expect(page.locator("section.usage-chart h2").first).to_be_visible()
            expect(page.locator("section.usage-chart rect.calls").first).to_be_visible()
            shot("11-usage")
            page.click("button:text('Sign out')")
            expect(page.locator("h1")).to_have_text("Sign in")
            page.goto(url + "/console/functions")
            expect(page.locator("h1")).to_have_text("Sign in")
            browser.close()
        assert problems == [], problems  # no script error, no Content-Security-Policy violation
