"""The web UI with accounts on, in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): two users in two browser contexts, a private collection that the second cannot see,
open or search until its owner shares it; sign-in errors, sign-out, an expired session, API keys
and the audit log. With accounts off (the loopback default) there is no sign-in at all. Screenshots
(desktop and 375 px phone width) go to artifacts/ui/."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from embedhub.server.app import create_app
from tests.live_server import live_server
from tests.server.test_ui_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

PASSWORDS = {"alice": "alice-correct-horse", "bob": "bob-battery-staple", "root": "root-admin-secret"}
COLLECTION = "alice-private"
OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def add_users(home: Path, old_audit_entries: int = 0) -> None:
    from embedhub.accounts.store import AccountStore

    store = AccountStore.for_home(home)
    try:
        store.add_user("alice", "editor", PASSWORDS["alice"])
        store.add_user("bob", "viewer", PASSWORDS["bob"])
        store.add_user("root", "admin", PASSWORDS["root"])
        store.add_group("physics")
        store.add_member("physics", "bob")
        for number in range(old_audit_entries):
            store.record("alice", "upload", "older", f"old-{number}.md")
    finally:
        store.close()


def open_page(context, errors: list[str]):
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def sign_in(page, name: str, password: str | None = None) -> None:
    page.wait_for_selector("#sign-in-form")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name] if password is None else password)
    page.press("input[name=password]", "Enter")  # the keyboard is enough


def wait_signed_in(page, name: str) -> None:
    page.wait_for_selector("#account:not([hidden])")
    assert page.locator("#account-name").inner_text() == name


def csrf_fetch(page, path: str, body: dict) -> int:
    """The status of a POST made in the page with its session and CSRF token (no UI in the way)."""
    return page.evaluate(
        """([path, body]) => fetch(path, { method: 'POST', body: JSON.stringify(body),
             headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': account.csrf } })
           .then((response) => response.status)""",
        [path, body],
    )


def test_private_collection_is_hidden_until_shared(browser, settings, tiny_encoder, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "home"
    add_users(home, old_audit_entries=60)  # more than a page of the audit log
    configured = settings.model_copy(update={"home": home, "accounts": "on"})
    app = create_app(configured, encoders={"tiny": tiny_encoder})
    with live_server(app, "/health") as url:
        errors: list[str] = []
        alice_context = browser.new_context(viewport={"width": 1280, "height": 900})
        bob_context = browser.new_context(viewport={"width": 1280, "height": 900})
        alice, bob = open_page(alice_context, errors), open_page(bob_context, errors)

        # alice signs in, creates a private collection and uploads a file
        alice.goto(url + "/")
        alice.wait_for_selector("#sign-in-form")
        assert alice.locator("header nav").is_hidden() and alice.locator("#account").is_hidden()
        assert alice.evaluate("document.activeElement.name") == "username"
        alice.screenshot(path=str(ARTIFACTS / "20-sign-in.png"))
        sign_in(alice, "alice")
        wait_signed_in(alice, "alice")
        assert alice.locator("#account-role").inner_text() == "editor"
        alice.fill("input[name=name]", COLLECTION)
        alice.click("text=Create collection")
        alice.wait_for_selector("#dropzone")
        assert "owner alice" in alice.locator("#access").inner_text()
        alice.set_input_files(
            "#file-input",
            files=[{"name": "alpha.md", "mimeType": "text/markdown", "buffer": b"# Alpha\n\nIt is helium."}],
        )
        alice.wait_for_selector("#jobs tr[data-status=done]", timeout=60_000)
        alice.wait_for_selector("#documents tr")

        # bob: a wrong password first, then the list without alice's collection
        bob.goto(url + "/")
        sign_in(bob, "bob", "not-his-password")
        bob.wait_for_function("document.getElementById('sign-in-error').textContent.length > 0")
        assert "Wrong username or password" in bob.locator("#sign-in-error").inner_text()
        assert bob.evaluate("document.activeElement.name") == "password"
        sign_in(bob, "bob")
        wait_signed_in(bob, "bob")
        bob.wait_for_selector("#collection-list")
        assert COLLECTION not in bob.locator("#collection-list").inner_text()
        assert bob.locator("#create-form").count() == 0  # a viewer creates nothing

        # ... nor open it by its address, nor search it
        bob.goto(url + f"/#/collection/{COLLECTION}")
        bob.wait_for_selector(".card.error")
        assert "Not found" in bob.locator(".card.error").inner_text()
        bob.goto(url + f"/#/search?collection={COLLECTION}&q=helium")
        bob.wait_for_selector("#results .error")
        assert COLLECTION in bob.locator("#results .error").inner_text()
        assert bob.locator(".result").count() == 0
        assert csrf_fetch(bob, f"/v1/collections/{COLLECTION}/search", {"query": "helium"}) == 404
        unprotected = "fetch('/v1/collections', {method: 'POST', body: '{}'}).then((r) => r.status)"
        assert bob.evaluate(unprotected) == 403  # the UI's requests work because they carry the token

        # alice shares it with bob as a viewer
        alice.click("#share-button")
        alice.wait_for_selector("#share-dialog[open]")
        assert alice.evaluate("document.activeElement.name") == "name"
        alice.wait_for_selector("#share-names option[value=bob]", state="attached")  # the picker
        assert alice.locator("#share-names option[value=alice]").count() == 0  # not the owner
        alice.select_option("#share-form select[name=kind]", "group")
        assert alice.locator("#share-names option").evaluate_all("o => o.map((x) => x.value)") == ["physics"]
        alice.select_option("#share-form select[name=kind]", "user")
        alice.fill("#share-form input[name=name]", "bob")
        alice.select_option("#share-form select[name=role]", "viewer")
        alice.click("#share-add")
        alice.wait_for_selector("#share-list li[data-name=bob]")
        assert "viewer" in alice.locator("#share-list li[data-name=bob]").inner_text()
        alice.screenshot(path=str(ARTIFACTS / "21-share-dialog.png"))
        alice.click("#share-close")

        # now bob sees it, reads and searches it, and has nothing to change it with
        bob.goto(url + "/#/collections")
        bob.wait_for_selector(f"#collection-list a[data-name='{COLLECTION}']")
        card = bob.locator(f"#collection-list a[data-name='{COLLECTION}']").inner_text()
        assert "owner alice" in card and "you: viewer" in card
        bob.click(f"#collection-list a[data-name='{COLLECTION}']")
        bob.wait_for_selector("#documents tr")
        assert "you: viewer" in bob.locator("#access").inner_text()
        for absent in ("#dropzone", "#file-input", ".delete-doc", "#drop-collection", "#share-button"):
            assert bob.locator(absent).count() == 0, absent
        bob.screenshot(path=str(ARTIFACTS / "22-shared-viewer.png"), full_page=True)
        bob.click("text=search this collection")
        bob.fill("input[name=query]", "helium")
        bob.click("button:has-text('Search')")
        bob.wait_for_selector(".result")
        assert "alpha.md" in bob.locator(".result").first.inner_text()

        # sign-out returns to the sign-in page, and the session is gone
        bob.click("#account-summary")
        bob.click("#sign-out")
        bob.wait_for_selector("#sign-in-form")
        assert bob.locator("#account").is_hidden()
        assert bob.evaluate("fetch('/v1/collections').then((r) => r.status)") == 401

        # an expired session: the sign-in page, then back to the page the user was on
        alice.goto(url + f"/#/search?collection={COLLECTION}&q=helium")
        alice.wait_for_selector(".result")
        later = time.time() + configured.session_lifetime + 60
        app.state.accounts.clock = lambda: later  # the session has expired on the server
        alice.click("button:has-text('Search')")
        sign_in(alice, "alice")
        alice.wait_for_selector(".result")
        assert "q=helium" in alice.url

        # API keys: created (shown once, with a copy button), usable as a bearer token, revoked
        alice.click("#account-summary")
        alice.click("#account-menu a:text-is('API keys')")
        alice.wait_for_selector("#create-key-form")
        alice.fill("#create-key-form input[name=name]", "scripts")
        alice.click("#create-key-form button")
        alice.wait_for_selector("#new-key-value")
        secret = alice.locator("#new-key-value").input_value()
        assert "will not be shown again" in alice.locator(".new-key").inner_text()
        alice_context.grant_permissions(["clipboard-read", "clipboard-write"])
        alice.click("#copy-key")
        alice.wait_for_selector("#copy-state:text('Copied')")
        assert alice.evaluate("navigator.clipboard.readText()") == secret
        alice.wait_for_selector("#key-list tr[data-key]")
        assert secret not in alice.locator("#key-list").inner_text()  # the list shows a prefix only
        listed = httpx.get(url + "/v1/collections", headers={"Authorization": f"Bearer {secret}"})
        assert listed.status_code == 200 and COLLECTION in listed.text
        alice.screenshot(path=str(ARTIFACTS / "23-api-keys.png"))
        alice.once("dialog", lambda dialog: dialog.accept())
        alice.click("#key-list button.revoke")
        alice.wait_for_selector("#key-list tr[data-key]", state="detached")
        revoked = httpx.get(url + "/v1/collections", headers={"Authorization": f"Bearer {secret}"})
        assert revoked.status_code == 401
        assert alice.locator("#audit-link").get_attribute("hidden") is not None  # not an admin
        alice.click("text=Settings")
        alice.wait_for_selector("dl.settings")
        assert "signed in as alice (editor)" in alice.locator("dl.settings").inner_text()

        # an admin opens the audit log by its address: signed in, the page asked for is shown
        bob.goto(url + "/#/audit")
        sign_in(bob, "root")
        wait_signed_in(bob, "root")
        bob.wait_for_selector("table.audit tbody tr")
        assert bob.locator("#audit-link").get_attribute("hidden") is None  # in the menu of an admin
        log = bob.locator("table.audit").inner_text()
        assert "share" in log and "alice" in log and COLLECTION in log
        assert bob.locator("table.audit tbody tr").count() == 50 and "old-0.md" not in log
        bob.click("#audit-more")  # the next page, older than the last row shown
        bob.wait_for_selector("#audit-more", state="hidden")
        rows = bob.locator("table.audit td.detail").all_inner_texts()
        older = [row for row in rows if row.startswith("old-")]
        assert older == [f"old-{number}.md" for number in reversed(range(60))]  # each once, newest first
        bob.screenshot(path=str(ARTIFACTS / "24-audit.png"))
        bob.set_viewport_size({"width": 375, "height": 800})
        assert bob.evaluate(OVERFLOW)
        bob.screenshot(path=str(ARTIFACTS / "24b-audit-phone.png"))

        # phone width: the header with the account menu and the sign-in page fit
        alice.set_viewport_size({"width": 375, "height": 800})
        alice.goto(url + f"/#/collection/{COLLECTION}")
        alice.wait_for_selector("#documents tr")
        alice.click("#account-summary")
        alice.wait_for_selector("#account-menu #sign-out")
        assert alice.evaluate(OVERFLOW)
        menu = alice.locator("#account-menu").bounding_box()
        assert menu["x"] >= 0 and menu["x"] + menu["width"] <= 375
        alice.screenshot(path=str(ARTIFACTS / "25-account-menu-phone.png"))
        alice.keyboard.press("Escape")
        assert not alice.evaluate("document.getElementById('account').open")
        alice.click("#share-button")
        alice.wait_for_selector("#share-list li[data-name=bob]")
        shown = alice.locator("#share-dialog").bounding_box()
        assert shown["x"] >= 0 and shown["x"] + shown["width"] <= 375
        alice.screenshot(path=str(ARTIFACTS / "27-share-dialog-phone.png"))
        alice.click("#share-list li[data-name=bob] button.remove-share")  # and unshared again
        alice.wait_for_selector("#share-list li[data-name=bob]", state="detached")
        alice.click("#share-close")
        alice.goto(url + "/#/keys")
        alice.fill("#create-key-form input[name=name]", "phone")
        alice.click("#create-key-form button")
        alice.wait_for_selector("#new-key-value")
        assert alice.evaluate(OVERFLOW)
        alice.screenshot(path=str(ARTIFACTS / "23b-api-keys-phone.png"), full_page=True)
        alice.click("#account-summary")
        alice.click("#sign-out")
        alice.wait_for_selector("#sign-in-form")
        assert alice.evaluate(OVERFLOW)
        alice.screenshot(path=str(ARTIFACTS / "26-sign-in-phone.png"))
        assert errors == []
        alice_context.close()
        bob_context.close()


def test_repeated_wrong_passwords_say_how_long_to_wait(browser, settings, tiny_encoder, tmp_path):
    home = tmp_path / "home"
    add_users(home)
    configured = settings.model_copy(update={"home": home, "accounts": "on", "login_max_failures": 2})
    app = create_app(configured, encoders={"tiny": tiny_encoder})
    with live_server(app, "/health") as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/")
        for _ in range(4):
            sign_in(page, "bob", "wrong-password-again")
            page.wait_for_function(
                "!document.getElementById('sign-in-button').disabled || "
                "document.getElementById('sign-in-error').textContent.includes('Too many')"
            )
            if "Too many" in page.locator("#sign-in-error").inner_text():
                break
        message = page.locator("#sign-in-error").inner_text()
        assert "Too many sign-in attempts" in message and "second" in message
        assert page.locator("#sign-in-button").is_disabled()  # until the wait is over
        context.close()


def test_accounts_off_shows_no_sign_in(browser, settings, tiny_encoder, tmp_path):
    """The loopback default: no sign-in page, no account menu, everything usable as before."""
    app = create_app(settings.model_copy(update={"home": tmp_path / "home"}), encoders={"tiny": tiny_encoder})
    with live_server(app, "/health") as url:
        assert httpx.get(url + "/v1/auth/me").json()["accounts"] is False
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        page.wait_for_selector("#create-form")
        assert page.locator("#sign-in-form").count() == 0
        assert page.locator("#account").is_hidden() and page.locator("header nav").is_visible()
        page.fill("input[name=name]", "mine")
        page.click("text=Create collection")
        page.wait_for_selector("#dropzone")
        assert page.locator("#drop-collection").count() == 1 and page.locator("#access").count() == 0
        assert errors == []
        page.close()
