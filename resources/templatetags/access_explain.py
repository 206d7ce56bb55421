"""`{{ condition|condition_text }}`: a "Check access" condition as an admin reads it (issue 18
item 6), e.g. "Current time is within Mon-Fri 09:00-17:00 Europe/Berlin"."""

from __future__ import annotations

from collections.abc import Mapping

from django import template

from resources.conditions import Operator, Property
from resources.explain import ConditionCheck, format_time_windows

register = template.Library()

PROPERTY_LABELS = {
    Property.REMOTE_IP_LOCATION_REGION: "Client location",
    Property.REMOTE_IP: "Remote IP",
    Property.PROVIDER_ID: "Sign-in provider",
    Property.CURRENT_UTC_DATETIME: "Current time",
    Property.CLIENT_VERIFIED: "Client verified",
}
OPERATOR_LABELS = {
    Operator.IS_IN: "is in",
    Operator.IS_NOT_IN: "is not in",
    Operator.IS_IN_CIDR: "is in",
    Operator.IS_NOT_IN_CIDR: "is not in",
}


@register.filter
def condition_text(check: ConditionCheck, provider_names: Mapping[str, str] | None = None) -> str:
    label = PROPERTY_LABELS.get(check.property, check.property)  # type: ignore[call-overload]
    if check.property == Property.CURRENT_UTC_DATETIME:
        return f"{label} is within {format_time_windows(check.values)}"
    if check.property == Property.CLIENT_VERIFIED:
        return f"{label} is {', '.join(check.values)}"
    values = check.values
    if check.property == Property.PROVIDER_ID and provider_names:
        values = [provider_names.get(v, v) for v in values]
    operator = OPERATOR_LABELS.get(check.operator, check.operator)  # type: ignore[call-overload]
    return f"{label} {operator} {', '.join(values)}"
