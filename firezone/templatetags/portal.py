"""Common components of the admin pages (portal.md §1.3): relative datetimes, connection status,
"created by", peeks, confirm dialogs, docs actions, copy blocks, the upgrade badge, form fields
and live tables. Pages compose these; none of them queries the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import template
from django.forms import BoundField
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil

from accounts.features import feature_enabled
from billing.selectors.provisioning import billing_provisioned
from firezone.web.pages import account_url
from firezone.web.tables import TablePage

register = template.Library()

DOCS = "https://www.firezone.dev/kb{}?utm_source=product"


def relative_text(value: datetime | None, now: datetime | None = None) -> str:
    """ "5 minutes ago" / "in 3 days" (capitalised), "Never" for None."""
    if value is None:
        return "Never"
    now = now or timezone.now()
    if value <= now:
        delta = timesince(value, now, depth=1)
        text = "just now" if delta.startswith("0\xa0") else f"{delta} ago"
    else:
        text = f"in {timeuntil(value, now, depth=1)}"
    text = text.replace("\xa0", " ")
    return text[:1].upper() + text[1:]


@register.simple_tag
def relative_datetime(value: datetime | None) -> SafeString:
    if value is None:
        return SafeString('<span class="relative-time">Never</span>')
    absolute = timezone.localtime(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return format_html(
        '<time class="relative-time" datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        absolute,
        relative_text(value),
    )


@register.simple_tag
def connection_status(online: bool, last_seen: datetime | None = None) -> SafeString:
    tip = f"Last started {relative_text(last_seen).lower()}" if last_seen else "Never connected"
    state = "online" if online else "offline"
    return format_html(
        '<span class="connection-status status-{}" title="{}"><span class="ping"></span>{}</span>',
        state,
        tip,
        "Online" if online else "Offline",
    )


@register.simple_tag
def created_by(obj: Any) -> SafeString:
    """ "{relative} by System|Directory Sync|{name}" from `inserted_at`/`created_by[_subject]`."""
    when = relative_datetime(getattr(obj, "inserted_at", None) or getattr(obj, "created_at", None))
    kind = getattr(obj, "created_by", "") or ""
    subject = getattr(obj, "created_by_subject", None) or {}
    if kind == "provider":
        who = "Directory Sync"
    elif kind in ("identity", "actor") and subject.get("name"):
        who = subject["name"]
    else:
        who = "System"
    return format_html("{} by {}", when, who)


@register.inclusion_tag("components/peek.html")
def peek(
    items: list[Any], limit: int, tail_url: str = "", empty: str = "None", total: int | None = None
) -> dict[str, Any]:
    """Up to `limit` items (rendered by the caller through `item.html`/`str`), then "and {k}
    more."; `empty` when there are none. `total` when `items` was already cut."""
    items = list(items)
    count = len(items) if total is None else total
    return {
        "items": items[:limit],
        "more": max(0, count - limit),
        "tail_url": tail_url,
        "empty": empty,
    }


@register.inclusion_tag("components/confirm.html")
def confirm_button(
    label: str,
    title: str,
    body: str,
    confirm: str,
    action: str,
    style: str = "danger",
    id: str = "",
    **fields: Any,
) -> dict[str, Any]:
    """A button opening a confirm dialog; only its Confirm posts `action` (plus `fields`) to the
    current page. `body` may contain `**bold**` (rendered as <strong>)."""
    return {
        "label": label,
        "title": title,
        "body": _bold(body),
        "confirm": confirm,
        "action": action,
        "style": style,
        "id": id or f"confirm-{action.replace('_', '-')}",
        "fields": fields,
    }


def _bold(text: str) -> SafeString:
    parts = str(text).split("**")
    html = SafeString("")
    for i, part in enumerate(parts):
        html += format_html("<strong>{}</strong>", part) if i % 2 else format_html("{}", part)
    return html


@register.simple_tag
def docs_action(path: str) -> SafeString:
    return format_html(
        '<a class="docs-action" href="{}" target="_blank" rel="noopener noreferrer" '
        'title="Documentation" aria-label="Documentation">?</a>',
        DOCS.format(path),
    )


@register.inclusion_tag("components/copy.html")
def copy_block(text: str, id: str = "") -> dict[str, Any]:
    return {"text": text, "id": id}


_UPGRADE_BADGE = (
    'title="Feature available on a higher pricing plan">'
    '<svg aria-hidden="true" viewBox="0 0 20 20" width="11" height="11"><rect x="4" y="9" '
    'width="12" height="9" rx="1.5" fill="currentColor"/><path d="M7 9V6.5a3 3 0 0 1 6 0V9" '
    'fill="none" stroke="currentColor" stroke-width="2"/></svg> UPGRADE TO UNLOCK'
)


@register.simple_tag
def upgrade_badge(account: Any) -> SafeString:
    """The plan upsell: a link to the billing page for a provisioned account; elsewhere (billing
    off, self-hosted, no Stripe customer) there is nothing to upgrade in the portal, so the badge
    is plain text rather than a link to a page that answers 404."""
    if billing_provisioned(account):
        return format_html(
            '<a class="upgrade-badge" href="{}" ' + _UPGRADE_BADGE + "</a>",
            account_url(account, "settings_billing"),
        )
    return mark_safe('<span class="upgrade-badge" ' + _UPGRADE_BADGE + "</span>")  # noqa: S308 (a constant)


@register.filter
def has_feature(account: Any, name: str) -> bool:
    return feature_enabled(account, name)


@register.inclusion_tag("components/field.html")
def field(bound: BoundField, help: str = "", **attrs: Any) -> dict[str, Any]:
    """Label, widget, help and the field's errors (`<p class="field-error">`)."""
    if attrs:
        bound.field.widget.attrs.update({k.replace("_", "-"): v for k, v in attrs.items()})
    return {"field": bound, "help": help or bound.help_text}


@register.inclusion_tag("components/live_table.html", takes_context=True)
def live_table(context: template.Context, page: TablePage) -> dict[str, Any]:
    return {
        **page.row_context,
        "page": page,
        "table": page.table,
        "portal": context.get("portal"),
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }


@register.simple_tag(takes_context=True)
def table_row(context: template.Context, page: TablePage, row: Any) -> str:
    """Render one row through the table's row template with the page context and `row` (the
    template's output is already a SafeString)."""
    tpl = template.loader.get_template(page.table.row_template)
    flat: dict[str, Any] = {str(key): value for key, value in context.flatten().items()}
    flat.update(page.row_context)
    flat["row"] = row
    return tpl.render(flat)
