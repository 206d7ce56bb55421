"""Feature flags (domain.md §2.17): an account feature is on only when the deployment allows it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from accounts.models import Account

# Keys of `Account.features` (booleans, missing = off); each also has a global switch in
# `settings.FEATURES` (this module imports no models, so the settings may read it).
ACCOUNT_FEATURES = (
    "policy_conditions",
    "multi_site_resources",
    "traffic_filters",
    "self_hosted_relays",
    "idp_sync",
    "rest_api",
    "internet_resource",
)


def globally_enabled(feature: str) -> bool:
    # traffic_filters has no global switch in the original: always allowed.
    if feature == "traffic_filters":
        return True
    return bool(settings.FEATURES.get(feature, False))


def feature_enabled(account: Account, feature: str) -> bool:
    """Global switch AND `account.features[feature] is True` (missing or null = off)."""
    return globally_enabled(feature) and (account.features or {}).get(feature) is True
