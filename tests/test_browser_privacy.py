"""Admin pages (and the public home and sign-in pages) in a real chromium, over the small seed
(firezone.seed): no request leaves the portal's origin (no Gravatar, fonts, CDNs or analytics by
default), no emoji or other pictographic character is rendered (they are empty boxes without an
emoji font; icons are inline SVG), and a full-page screenshot of each page is kept in
`.artifacts/screenshots/` (git-ignored) for a look by eye."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests import live as harness
from tests import portal_browser
from tests.portal_browser import base_url, sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

live_daphne, server = harness.live_daphne, portal_browser.portal_server

SCREENSHOTS = Path(__file__).resolve().parents[1] / ".artifacts" / "screenshots"

# Every admin list page (portal_urls, gateways.urls, resources.urls), then a few detail pages.
LIST_PAGES = {
    "sites": "/sites",
    "actors": "/actors",
    "groups": "/groups",
    "clients": "/clients",
    "resources": "/resources",
    "policies": "/policies",
    "relay_groups": "/relay_groups",
    "settings_account": "/settings/account",
    "settings_identity_providers": "/settings/identity_providers",
    "settings_dns": "/settings/dns",
    "settings_api_clients": "/settings/api_clients",
}

# Public layout: the home page and another account's sign-in page.
PUBLIC_PAGES = {"home": "/", "sign_in": "/not_firezone"}

# Icons that must be inline SVG, per page: each element matched holds an <svg>.
SVG_ICONS = {
    "actors": ("#actors .identity-chip-icon", "#actors .client-peek"),
    "clients": ("#clients td.os",),
    "actor": ("#identities .identity-chip-icon", "#clients td.os"),
}

# Text nodes (outside <script>/<style>), tooltips and labels holding a pictographic character.
PICTOGRAPHS_JS = """() => {
  const re = /\\p{Extended_Pictographic}/u;
  const found = [];
  if (re.test(document.body.innerText)) found.push("innerText");
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const tag = node.parentElement ? node.parentElement.tagName : "";
    if (tag !== "SCRIPT" && tag !== "STYLE" && re.test(node.data)) found.push(node.data.trim());
  }
  for (const el of document.querySelectorAll("[title], [aria-label], [placeholder], [alt]")) {
    for (const name of ["title", "aria-label", "placeholder", "alt"]) {
      const value = el.getAttribute(name);
      if (value && re.test(value)) found.push(`${name}="${value}"`);
    }
  }
  return found;
}"""


def _in_thread(fn: Any) -> Any:
    """Run ORM code that publishes changes in a thread of its own: `async_to_sync` refuses the
    thread where Playwright's event loop runs. The thread's connection is closed afterwards."""
    from django.db import connections

    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised below
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _seeded() -> dict[str, Any]:
    from accounts.models import Actor, AuthIdentity
    from accounts.tests.factories import ActorFactory
    from firezone import seed
    from gateways.models import Client, Gateway, Site
    from resources.models import Resource

    seed.seed(synced_groups=20, max_clients_per_user=5)
    identity = AuthIdentity.objects.select_related("actor", "account").get(
        account__slug=seed.FIREZONE_SLUG,
        provider__adapter="email",
        provider_identifier=seed.ADMIN_EMAIL,
    )
    account = identity.account
    ActorFactory(account=account, type=Actor.Type.API_CLIENT, name="CI pipeline")
    site = Site.objects.get(account=account, name=seed.SITE_NAME)
    return {
        "identity": identity,
        "details": {
            "actor": f"/actors/{identity.actor_id}",
            "site": f"/sites/{site.pk}",
            "gateway": f"/gateways/{Gateway.objects.filter(group=site)[0].pk}",
            "client": f"/clients/{Client.objects.filter(account=account)[0].pk}",
            "resource": f"/resources/{Resource.objects.filter(account=account)[0].pk}",
            "identity_provider_new": "/settings/identity_providers/new",
        },
    }


@pytest.mark.django_db(transaction=True)
def test_admin_pages_stay_on_their_origin_and_render_no_emoji(server: Any, page: Page) -> None:
    data = _in_thread(_seeded)
    sign_in_page(page, server, data["identity"])
    url = base_url(server)
    origin = urlsplit(url).netloc

    requested: list[tuple[str, str]] = []  # (page name, URL) of every request and socket
    current = {"name": ""}
    page.on("request", lambda request: requested.append((current["name"], request.url)))
    page.on("websocket", lambda socket: requested.append((current["name"], socket.url)))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    pages = {
        **{name: f"/firezone{path}" for name, path in {**LIST_PAGES, **data["details"]}.items()},
        **PUBLIC_PAGES,
    }
    pictographs: dict[str, list[str]] = {}
    not_svg: list[str] = []
    for name, path in pages.items():
        current["name"] = name
        response = page.goto(f"{url}{path}")
        assert response is not None and response.status == 200, (name, path)
        if name not in PUBLIC_PAGES:
            expect(page.locator("#user-menu-button")).to_be_visible()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        if found := page.evaluate(PICTOGRAPHS_JS):
            pictographs[name] = found

        for selector in SVG_ICONS.get(name, ()):
            icons = page.locator(selector)
            with_svg = page.locator(f"{selector} svg")
            if icons.count() == 0 or with_svg.count() != icons.count():
                not_svg.append(f"{name}: {with_svg.count()} of {icons.count()} {selector}")

    foreign = sorted(
        {(name, u) for name, u in requested if urlsplit(u).scheme in ("http", "https", "ws", "wss")
         and urlsplit(u).netloc != origin}
    )  # fmt: skip
    assert not foreign, f"requests outside {origin}: {foreign}"
    assert {name for name, _ in requested} >= set(pages)  # every page was watched
    assert not pictographs, f"pictographic characters rendered: {pictographs}"
    assert not not_svg, f"icons without an inline SVG: {not_svg}"
    # The user menu shows the initials, not a Gravatar (GRAVATAR_ENABLED is off by default).
    page.goto(f"{url}/firezone/sites")
    avatar = page.locator("#user-menu-button .avatar")
    expect(avatar).to_have_text("FA")
    assert avatar.get_attribute("style") is None
