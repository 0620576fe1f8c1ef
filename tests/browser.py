"""A real headless Chromium (Debian's) driven by Playwright, for web UI tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

CHROMIUM = "/usr/bin/chromium"
# No sandbox: the tests run in containers and as unprivileged users without user namespaces.
# No background networking: this machine's network is closed; only the page's own traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Opens a terminal the way the web UI does (POST /pty, then its WebSocket) and runs a command.
TERMINAL_ROUND_TRIP = """async () => {
  const created = await fetch('/pty', {
    method: 'POST', headers: {'content-type': 'application/json'},
    body: JSON.stringify({command: '/bin/sh'})});
  if (!created.ok) return 'create failed: HTTP ' + created.status;
  const pty = await created.json();
  return await new Promise((resolve) => {
    const ws = new WebSocket(`ws://${location.host}/pty/${pty.id}/connect`);
    let seen = '';
    const timer = setTimeout(() => resolve('timeout, terminal said: ' + seen), 15000);
    ws.onopen = () => ws.send('echo occ-$((6*7))\\n');
    ws.onmessage = async (event) => {
      seen += typeof event.data === 'string' ? event.data : await event.data.text();
      if (seen.includes('occ-42')) { clearTimeout(timer); ws.close(); resolve('ok'); }
    };
    ws.onerror = () => { clearTimeout(timer); resolve('websocket error, terminal said: ' + seen); };
  });
}"""


@contextlib.contextmanager
def authenticated_page(url: str, username: str, password: str) -> Iterator:
    """A page loaded from ``url`` with HTTP basic auth; asserts it answered 200."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                http_credentials={"username": username, "password": password}
            )
            page = context.new_page()
            response = page.goto(url)
            assert response is not None and response.status == 200, response
            yield page
        finally:
            browser.close()


def rendered_text(page, tries: int = 60) -> str:
    """The page's visible text once the JS app has rendered some (polled from Python:
    opencode's CSP forbids the string eval that wait_for_function uses)."""
    text = ""
    for _ in range(tries):
        text = page.locator("body").inner_text()
        if len(text.strip()) > 20:
            break
        page.wait_for_timeout(500)
    return text


def assert_opencode_ui(page) -> None:
    text = rendered_text(page)
    assert len(text.strip()) > 20, f"the web UI did not render: {text!r}"
    assert "OpenCode" in page.title()
