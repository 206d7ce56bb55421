"""Presence topics (protocol.md §4.1, without Elixir's `presences:` prefix) and the
channel-layer group that carries each topic's diffs."""

from __future__ import annotations

from typing import Any, Final

GLOBAL_RELAYS: Final = "global_relays"


def account_clients_topic(account_id: Any) -> str:
    return f"account_clients:{account_id}"


def actor_clients_topic(actor_id: Any) -> str:
    return f"actor_clients:{actor_id}"


def account_gateways_topic(account_id: Any) -> str:
    return f"account_gateways:{account_id}"


def group_gateways_topic(site_id: Any) -> str:
    return f"group_gateways:{site_id}"


def group_relays_topic(group_id: Any) -> str:
    return f"group_relays:{group_id}"


def account_relays_topic(account_id: Any) -> str:
    return f"account_relays:{account_id}"


def relay_topic(relay_id: Any) -> str:
    return f"relays:{relay_id}"


def group_name(topic: str) -> str:
    """The channel-layer group that receives the presence diffs of `topic`."""
    return "presence." + topic.replace(":", ".")
