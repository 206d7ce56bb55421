"""The policy condition evaluator and validator (domain.md §2.13, protocol.md §5.3); the
day-of-week time windows are in `resources.time_windows`.

Pure functions: callers pass the request facts in a `RequestContext` (including `now`), so the
websocket channels, the flow service and the re-authorisation job all share one set of rules.

Deviations from the original, as recommended by domain.md §8:
* a policy's expiry is the minimum over the non-null expiries of its conditions (item 4);
* the longest conforming policy is chosen by chronological max expiry, None = +infinity (item 5);
* `authorization_expiry` treats a null token expiry as +infinity (item 6);
* a `provider_id` condition with no identity sees provider None: `is_in` fails, `is_not_in` holds
  (item 7);
* bare IPv6 values of `remote_ip` conditions are /128 (item 8).
Unknown properties/operators and malformed stored values make their condition fail (fail closed).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, TypeVar

from firezone.addresses import IPAddress, IPNetwork, host_network, parse_cidr, parse_ip
from firezone.errors import ValidationFailed
from resources.time_windows import (
    ConditionValueError,
    parse_day_of_week_time_ranges,
    time_window_expiry,
)

T = TypeVar("T")


class Property(StrEnum):
    REMOTE_IP_LOCATION_REGION = "remote_ip_location_region"
    REMOTE_IP = "remote_ip"
    PROVIDER_ID = "provider_id"
    CURRENT_UTC_DATETIME = "current_utc_datetime"
    CLIENT_VERIFIED = "client_verified"


class Operator(StrEnum):
    IS_IN = "is_in"
    IS_NOT_IN = "is_not_in"
    IS_IN_CIDR = "is_in_cidr"
    IS_NOT_IN_CIDR = "is_not_in_cidr"
    IS_IN_DAY_OF_WEEK_TIME_RANGES = "is_in_day_of_week_time_ranges"
    IS = "is"
    # Part of the stored enum, accepted by no property.
    CONTAINS = "contains"
    DOES_NOT_CONTAIN = "does_not_contain"


OPERATORS_BY_PROPERTY: Final[Mapping[str, tuple[str, ...]]] = {
    Property.REMOTE_IP_LOCATION_REGION: (Operator.IS_IN, Operator.IS_NOT_IN),
    Property.REMOTE_IP: (Operator.IS_IN_CIDR, Operator.IS_NOT_IN_CIDR),
    Property.PROVIDER_ID: (Operator.IS_IN, Operator.IS_NOT_IN),
    Property.CURRENT_UTC_DATETIME: (Operator.IS_IN_DAY_OF_WEEK_TIME_RANGES,),
    Property.CLIENT_VERIFIED: (Operator.IS,),
}
DEFAULT_PROPERTY: Final = Property.REMOTE_IP_LOCATION_REGION
DEFAULT_OPERATOR: Final = Operator.IS_IN

# ISO 3166-1 alpha-2 codes plus XK (Kosovo), as reported by the load balancer's geo headers.
COUNTRY_CODES: Final = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA
    ZM ZW
    """.split()  # noqa: SIM905 (a word list reads better than a literal)
)

# --- data types ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """One element of `policies.conditions`: `{"property", "operator", "values": [str]}`."""

    property: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Condition:
        """Leniently read a stored condition (defaults applied, values trimmed, non-strings
        dropped). Use `clean_condition` for user input."""
        prop = data.get("property")
        operator = data.get("operator")
        raw_values = data.get("values")
        values = (
            tuple(v.strip() for v in raw_values if isinstance(v, str))
            if isinstance(raw_values, list | tuple)
            else ()
        )
        return cls(
            property=prop if isinstance(prop, str) and prop else DEFAULT_PROPERTY.value,
            operator=operator if isinstance(operator, str) and operator else DEFAULT_OPERATOR.value,
            values=values,
        )

    def to_dict(self) -> dict[str, object]:
        """The JSON stored in `policies.conditions` and sent over the API."""
        return {"property": self.property, "operator": self.operator, "values": list(self.values)}


def parse_conditions(raw: Iterable[Condition | Mapping[str, object]] | None) -> list[Condition]:
    """Read a stored conditions list (None = no conditions)."""
    if raw is None:
        return []
    return [c if isinstance(c, Condition) else Condition.from_dict(c) for c in raw]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What conditions are evaluated against: the client as seen on its current connection.

    `now` must be timezone-aware. `provider_id` is the provider of the identity the client signed
    in with; None for service accounts (no identity).
    """

    now: datetime
    remote_ip: IPAddress | str | None = None
    remote_ip_location_region: str | None = None
    provider_id: uuid.UUID | str | None = None
    client_verified: bool = False

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("RequestContext.now must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of evaluating a policy: allowed until `expires_at` (None = no expiry from the
    conditions), or refused because of `violated_properties` (distinct, first-failure order)."""

    allowed: bool
    expires_at: datetime | None = None
    violated_properties: tuple[str, ...] = ()

    @classmethod
    def conforms(cls, expires_at: datetime | None = None) -> Result:
        return cls(allowed=True, expires_at=expires_at)

    @classmethod
    def forbidden(cls, violated_properties: Iterable[str]) -> Result:
        return cls(allowed=False, violated_properties=tuple(dict.fromkeys(violated_properties)))


# --- expiry algebra -----------------------------------------------------------------------------


def min_expiry(*expiries: datetime | None) -> datetime | None:
    """Earliest expiry; None means "never expires" (+infinity), so it only wins when alone."""
    present = [e for e in expiries if e is not None]
    return min(present) if present else None


def authorization_expiry(
    condition_expiry: datetime | None, token_expiry: datetime | None
) -> datetime | None:
    """When a flow authorisation ends: the earlier of the policy's and the session token's expiry.

    None (no expiry) on either side means +infinity, so the result is None only when both are None;
    the caller then applies its own cap, if any (domain.md §8 item 6).
    """
    return min_expiry(condition_expiry, token_expiry)


# --- evaluation ---------------------------------------------------------------------------------


class _Violation(Exception):
    """A condition that is not met."""


def parse_ip_or_cidr(text: str) -> IPNetwork:
    """A `remote_ip` condition value: a CIDR (host bits allowed) or a bare IP (/32 or /128)."""
    text = text.strip()
    if "/" in text:
        return parse_cidr(text)
    return host_network(parse_ip(text))


def _client_ip(value: IPAddress | str | None) -> IPAddress | None:
    if value is None:
        return None
    try:
        ip = value if not isinstance(value, str) else parse_ip(value.strip())
    except ValueError:
        return None
    # A v4 client seen through a dual-stack socket still matches IPv4 ranges.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _normalise_id(value: uuid.UUID | str) -> str:
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value.strip()))
    except ValueError:
        return value.strip().lower() if isinstance(value, str) else str(value)


def _check(condition: Condition, ctx: RequestContext) -> datetime | None:
    """Returns the condition's expiry (None = none) or raises _Violation."""
    prop, operator, values = condition.property, condition.operator, condition.values
    if operator not in OPERATORS_BY_PROPERTY.get(prop, ()):
        raise _Violation

    if prop == Property.REMOTE_IP_LOCATION_REGION:
        region = (ctx.remote_ip_location_region or "").strip().upper() or None
        inside = region is not None and region in {v.upper() for v in values}
        if inside != (operator == Operator.IS_IN):
            raise _Violation
        return None

    if prop == Property.REMOTE_IP:
        ip = _client_ip(ctx.remote_ip)
        try:
            networks = [parse_ip_or_cidr(v) for v in values]
        except ValueError:
            raise _Violation from None
        # Without a known address neither "inside" nor "outside" can be shown.
        if ip is None:
            raise _Violation
        inside = any(ip.version == net.version and ip in net for net in networks)
        if inside != (operator == Operator.IS_IN_CIDR):
            raise _Violation
        return None

    if prop == Property.PROVIDER_ID:
        provider = None if ctx.provider_id is None else _normalise_id(ctx.provider_id)
        inside = provider is not None and provider in {_normalise_id(v) for v in values}
        if inside != (operator == Operator.IS_IN):
            raise _Violation
        return None

    if prop == Property.CLIENT_VERIFIED:
        if values == ("true",) and not ctx.client_verified:
            raise _Violation
        return None

    # Property.CURRENT_UTC_DATETIME
    try:
        expiry = time_window_expiry(values, ctx.now)
    except ConditionValueError:
        raise _Violation from None
    if expiry is None:
        raise _Violation
    return expiry


@dataclass(frozen=True, slots=True)
class ConditionOutcome:
    """One condition checked against a request: met (with its expiry, None = none) or not.
    `skipped` marks a condition not checked because an earlier one on its property failed."""

    condition: Condition
    passed: bool
    expires_at: datetime | None = None
    skipped: bool = False


def check_conditions(
    conditions: Iterable[Condition | Mapping[str, object]] | None, ctx: RequestContext
) -> list[ConditionOutcome]:
    """Each condition of one policy, in order, checked against a request. `evaluate` folds
    these outcomes, so the access explainer (`resources.explain`) and the authorisation share
    one evaluator. Once a property has failed, later conditions on it are skipped (failed)."""
    outcomes: list[ConditionOutcome] = []
    violated: set[str] = set()
    for condition in parse_conditions(conditions):
        if condition.property in violated:
            outcomes.append(ConditionOutcome(condition, passed=False, skipped=True))
            continue
        try:
            outcomes.append(
                ConditionOutcome(condition, passed=True, expires_at=_check(condition, ctx))
            )
        except _Violation:
            violated.add(condition.property)
            outcomes.append(ConditionOutcome(condition, passed=False))
    return outcomes


def fold_outcomes(outcomes: Iterable[ConditionOutcome]) -> Result:
    """A policy's `Result` from its conditions' outcomes (AND; expiry = the earliest)."""
    violated: list[str] = []
    expires_at: datetime | None = None
    for outcome in outcomes:
        if not outcome.passed:
            violated.append(outcome.condition.property)
        else:
            expires_at = min_expiry(expires_at, outcome.expires_at)
    if violated:
        return Result.forbidden(violated)
    return Result.conforms(expires_at)


def evaluate(
    conditions: Iterable[Condition | Mapping[str, object]] | None, ctx: RequestContext
) -> Result:
    """Evaluate one policy's conditions (AND-ed, in order) for a request.

    Once a property has failed, later conditions on it are skipped. No conditions → allowed with
    no expiry. Only time conditions produce an expiry; the policy's is the earliest of them.
    """
    return fold_outcomes(check_conditions(conditions, ctx))


def longest_conforming(results: Iterable[tuple[T, Result]]) -> tuple[T | None, Result]:
    """Pick the most permissive of several evaluated policies for the same resource.

    Returns the conforming `(policy, result)` with the latest expiry (None = +infinity; the first
    one wins ties), or `(None, forbidden)` with the union of violated properties, in order, when
    none conforms (also when `results` is empty).
    """
    best: tuple[T, Result] | None = None
    violated: list[str] = []
    for policy, result in results:
        if not result.allowed:
            violated.extend(result.violated_properties)
            continue
        if best is None:
            best = (policy, result)
            continue
        best_expiry = best[1].expires_at
        if best_expiry is not None and (
            result.expires_at is None or result.expires_at > best_expiry
        ):
            best = (policy, result)
    if best is not None:
        return best
    return None, Result.forbidden(violated)


def evaluate_policies(
    policies: Iterable[tuple[T, Iterable[Condition | Mapping[str, object]] | None]],
    ctx: RequestContext,
) -> tuple[T | None, Result]:
    """`evaluate` each `(policy, conditions)` pair and return the `longest_conforming` one."""
    return longest_conforming((policy, evaluate(conds, ctx)) for policy, conds in policies)


# --- validation of user input -------------------------------------------------------------------

MSG_PROPERTY_NOT_SUPPORTED: Final = "is not supported"
MSG_PROPERTY_NOT_FOR_INTERNET: Final = "is not supported for the Internet Resource"
MSG_VALUES_INVALID: Final = "is invalid"
MSG_CLIENT_VERIFIED_COUNT: Final = "must have exactly one value"
MSG_CLIENT_VERIFIED_VALUE: Final = "must be true or false"


def _operator_message(prop: str) -> str:
    return "must be one of: " + ", ".join(OPERATORS_BY_PROPERTY[prop])


def _clean_values(prop: str, values: list[str]) -> tuple[list[str], list[str]]:
    """Normalised values and error messages for a known property."""
    errors: list[str] = []
    cleaned: list[str] = []
    if prop == Property.REMOTE_IP_LOCATION_REGION:
        for value in values:
            code = value.upper()
            if code in COUNTRY_CODES:
                cleaned.append(code)
            else:
                errors.append(f"{value} is not a valid country code")
    elif prop == Property.REMOTE_IP:
        for value in values:
            try:
                parse_ip_or_cidr(value)
            except ValueError:
                errors.append(f"{value} is not a valid IP address or CIDR range")
            else:
                cleaned.append(value)
    elif prop == Property.PROVIDER_ID:
        for value in values:
            try:
                cleaned.append(str(uuid.UUID(value)))
            except ValueError:
                errors.append(f"{value} is not a valid provider ID")
    elif prop == Property.CLIENT_VERIFIED:
        if len(values) != 1:
            errors.append(MSG_CLIENT_VERIFIED_COUNT)
        elif values[0].lower() not in ("true", "false"):
            errors.append(MSG_CLIENT_VERIFIED_VALUE)
        else:
            cleaned.append(values[0].lower())
    else:  # Property.CURRENT_UTC_DATETIME
        for value in values:
            try:
                parse_day_of_week_time_ranges(value)
            except ConditionValueError as exc:
                errors.append(exc.message)
            else:
                cleaned.append(value)
    return cleaned, list(dict.fromkeys(errors))


def clean_condition(data: Mapping[str, object], *, resource_type: str | None = None) -> Condition:
    """Validate and normalise one condition from user input.

    Defaults: property `remote_ip_location_region`, operator `is_in`; values are trimmed. Country
    codes are upper-cased and provider ids canonicalised. With `resource_type="internet"` the time
    condition is refused (the UI never offers it there). Raises `ValidationFailed` keyed by
    `property` / `operator` / `values`.
    """
    prop = data.get("property") or DEFAULT_PROPERTY.value
    operator = data.get("operator") or DEFAULT_OPERATOR.value
    raw_values = data.get("values")
    if raw_values is None:
        raw_values = []
    errors: dict[str, list[str]] = {}

    if not isinstance(prop, str) or prop not in OPERATORS_BY_PROPERTY:
        raise ValidationFailed({"property": [MSG_PROPERTY_NOT_SUPPORTED]})
    if resource_type == "internet" and prop == Property.CURRENT_UTC_DATETIME:
        errors["property"] = [MSG_PROPERTY_NOT_FOR_INTERNET]
    if not isinstance(operator, str) or operator not in OPERATORS_BY_PROPERTY[prop]:
        errors["operator"] = [_operator_message(prop)]
        operator = ""

    values: list[str] = []
    if not isinstance(raw_values, list | tuple) or not all(isinstance(v, str) for v in raw_values):
        errors["values"] = [MSG_VALUES_INVALID]
    else:
        cleaned, value_errors = _clean_values(prop, [v.strip() for v in raw_values])
        if value_errors:
            errors["values"] = value_errors
        values = cleaned

    if errors:
        raise ValidationFailed(errors)
    return Condition(property=prop, operator=operator, values=tuple(values))


def clean_conditions(
    data: Iterable[Mapping[str, object]] | None, *, resource_type: str | None = None
) -> list[Condition]:
    """Validate a conditions list from user input; raises `ValidationFailed` keyed
    `conditions.<index>.<field>` (the keys of the policy services' errors)."""
    if data is None:
        return []
    if isinstance(data, str | bytes | Mapping):
        raise ValidationFailed({"conditions.0.conditions": [MSG_VALUES_INVALID]})
    cleaned: list[Condition] = []
    errors: dict[str, list[str]] = {}
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            errors[f"conditions.{index}.condition"] = [MSG_VALUES_INVALID]
            continue
        try:
            cleaned.append(clean_condition(item, resource_type=resource_type))
        except ValidationFailed as exc:
            errors.update({f"conditions.{index}.{key}": msgs for key, msgs in exc.errors.items()})
    if errors:
        raise ValidationFailed(errors)
    return cleaned
