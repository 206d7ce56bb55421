"""The policy form (portal.md §4.4.2/§4.4.4) and the sentence that describes a policy's
conditions on its page (§4.4.3).

The form only shapes request data: it reads the `policy[...]` fields into what the policy services
take, and maps their errors back onto the fields (`add_service_errors`, firezone.web.forms).
Validation of the conditions themselves is done once, by `resources.conditions` through the
services; this module only lists what the editor offers (operators, countries, time zones) and
drops conditions left empty.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final
from zoneinfo import available_timezones

from django.http import QueryDict
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from firezone.web.forms import ServiceErrorsMixin, extend_unique
from resources import conditions as conds
from resources import time_windows
from resources.conditions import Property

# --- what the editor offers ----------------------------------------------------------------------

# Common English names of the country codes `resources.conditions.COUNTRY_CODES` accepts.
_COUNTRIES = """
AD Andorra; AE United Arab Emirates; AF Afghanistan; AG Antigua and Barbuda; AI Anguilla; AL
Albania; AM Armenia; AO Angola; AQ Antarctica; AR Argentina; AS American Samoa; AT Austria; AU
Australia; AW Aruba; AX Åland Islands; AZ Azerbaijan; BA Bosnia and Herzegovina; BB Barbados; BD
Bangladesh; BE Belgium; BF Burkina Faso; BG Bulgaria; BH Bahrain; BI Burundi; BJ Benin; BL Saint
Barthélemy; BM Bermuda; BN Brunei; BO Bolivia; BQ Caribbean Netherlands; BR Brazil; BS Bahamas;
BT Bhutan; BV Bouvet Island; BW Botswana; BY Belarus; BZ Belize; CA Canada; CC Cocos (Keeling)
Islands; CD DR Congo; CF Central African Republic; CG Republic of the Congo; CH Switzerland; CI
Ivory Coast; CK Cook Islands; CL Chile; CM Cameroon; CN China; CO Colombia; CR Costa Rica; CU
Cuba; CV Cape Verde; CW Curaçao; CX Christmas Island; CY Cyprus; CZ Czechia; DE Germany; DJ
Djibouti; DK Denmark; DM Dominica; DO Dominican Republic; DZ Algeria; EC Ecuador; EE Estonia; EG
Egypt; EH Western Sahara; ER Eritrea; ES Spain; ET Ethiopia; FI Finland; FJ Fiji; FK Falkland
Islands; FM Micronesia; FO Faroe Islands; FR France; GA Gabon; GB United Kingdom; GD Grenada; GE
Georgia; GF French Guiana; GG Guernsey; GH Ghana; GI Gibraltar; GL Greenland; GM Gambia; GN
Guinea; GP Guadeloupe; GQ Equatorial Guinea; GR Greece; GS South Georgia; GT Guatemala; GU Guam;
GW Guinea-Bissau; GY Guyana; HK Hong Kong; HM Heard Island and McDonald Islands; HN Honduras; HR
Croatia; HT Haiti; HU Hungary; ID Indonesia; IE Ireland; IL Israel; IM Isle of Man; IN India; IO
British Indian Ocean Territory; IQ Iraq; IR Iran; IS Iceland; IT Italy; JE Jersey; JM Jamaica;
JO Jordan; JP Japan; KE Kenya; KG Kyrgyzstan; KH Cambodia; KI Kiribati; KM Comoros; KN Saint
Kitts and Nevis; KP North Korea; KR South Korea; KW Kuwait; KY Cayman Islands; KZ Kazakhstan; LA
Laos; LB Lebanon; LC Saint Lucia; LI Liechtenstein; LK Sri Lanka; LR Liberia; LS Lesotho; LT
Lithuania; LU Luxembourg; LV Latvia; LY Libya; MA Morocco; MC Monaco; MD Moldova; ME Montenegro;
MF Saint Martin; MG Madagascar; MH Marshall Islands; MK North Macedonia; ML Mali; MM Myanmar; MN
Mongolia; MO Macau; MP Northern Mariana Islands; MQ Martinique; MR Mauritania; MS Montserrat; MT
Malta; MU Mauritius; MV Maldives; MW Malawi; MX Mexico; MY Malaysia; MZ Mozambique; NA Namibia;
NC New Caledonia; NE Niger; NF Norfolk Island; NG Nigeria; NI Nicaragua; NL Netherlands; NO
Norway; NP Nepal; NR Nauru; NU Niue; NZ New Zealand; OM Oman; PA Panama; PE Peru; PF French
Polynesia; PG Papua New Guinea; PH Philippines; PK Pakistan; PL Poland; PM Saint Pierre and
Miquelon; PN Pitcairn Islands; PR Puerto Rico; PS Palestine; PT Portugal; PW Palau; PY Paraguay;
QA Qatar; RE Réunion; RO Romania; RS Serbia; RU Russia; RW Rwanda; SA Saudi Arabia; SB Solomon
Islands; SC Seychelles; SD Sudan; SE Sweden; SG Singapore; SH Saint Helena, Ascension and
Tristan da Cunha; SI Slovenia; SJ Svalbard and Jan Mayen; SK Slovakia; SL Sierra Leone; SM San
Marino; SN Senegal; SO Somalia; SR Suriname; SS South Sudan; ST São Tomé and Príncipe; SV El
Salvador; SX Sint Maarten; SY Syria; SZ Eswatini; TC Turks and Caicos Islands; TD Chad; TF
French Southern and Antarctic Lands; TG Togo; TH Thailand; TJ Tajikistan; TK Tokelau; TL
Timor-Leste; TM Turkmenistan; TN Tunisia; TO Tonga; TR Turkey; TT Trinidad and Tobago; TV
Tuvalu; TW Taiwan; TZ Tanzania; UA Ukraine; UG Uganda; UM United States Minor Outlying Islands;
US United States; UY Uruguay; UZ Uzbekistan; VA Vatican City; VC Saint Vincent and the
Grenadines; VE Venezuela; VG British Virgin Islands; VI United States Virgin Islands; VN
Vietnam; VU Vanuatu; WF Wallis and Futuna; WS Samoa; XK Kosovo; YE Yemen; YT Mayotte; ZA South
Africa; ZM Zambia; ZW Zimbabwe"""
COUNTRY_NAMES: Final[dict[str, str]] = dict(
    item.strip().split(" ", 1) for item in " ".join(_COUNTRIES.split()).split(";")
)


def country_name(code: str) -> str:
    return COUNTRY_NAMES.get(code.upper(), code)


@cache
def country_options() -> list[tuple[str, str]]:
    """(code, name) by name, for the "Client location" selects."""
    return sorted(COUNTRY_NAMES.items(), key=lambda item: item[1])


@cache
def timezone_options() -> list[str]:
    """The IANA zones the time condition accepts, sorted."""
    return sorted(zone for zone in available_timezones() if time_windows.is_valid_timezone(zone))


OPERATOR_LABELS: Final[dict[str, str]] = {
    conds.Operator.IS_IN: "is in",
    conds.Operator.IS_NOT_IN: "is not in",
    conds.Operator.IS_IN_CIDR: "is in",
    conds.Operator.IS_NOT_IN_CIDR: "is not in",
}

DAYS: Final = tuple(
    zip(
        time_windows.DAYS_OF_WEEK,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
DEFAULT_TIMEZONE: Final = "UTC"

# Conditions of the editor, in the order they are shown and submitted.
LIST_PROPERTIES: Final = (
    Property.REMOTE_IP_LOCATION_REGION,
    Property.REMOTE_IP,
    Property.PROVIDER_ID,
    Property.CLIENT_VERIFIED,
)


def time_condition_offered(resource_type: str | None) -> bool:
    """The Internet resource has no time windows (§4.4.2)."""
    return resource_type != "internet"


# --- form state ----------------------------------------------------------------------------------

FIELD: Final = "policy"


def _name(*parts: str) -> str:
    return FIELD + "".join(f"[{p}]" for p in parts)


@dataclass
class ListCondition:
    """One "operator + values" panel (location, IP, provider, verification)."""

    property: str
    operator: str
    values: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    # `property` is a field here: the decorator is the builtin's full name.
    @builtins.property
    def operators(self) -> list[tuple[str, str]]:
        return [
            (op, OPERATOR_LABELS.get(op, op)) for op in conds.OPERATORS_BY_PROPERTY[self.property]
        ]

    @builtins.property
    def inputs(self) -> list[str]:
        """The filled values and one blank input after them ("or" another one)."""
        return [*self.values, ""]

    @builtins.property
    def is_open(self) -> bool:
        return bool(self.values or self.errors)

    @builtins.property
    def checked(self) -> bool:
        return self.values == ["true"]

    def as_condition(self) -> dict[str, Any] | None:
        if not self.values:
            return None
        return {"property": self.property, "operator": self.operator, "values": list(self.values)}


@dataclass
class TimeCondition:
    """The "Current time" panel: one ranges text per weekday and one time zone."""

    days: dict[str, str] = field(default_factory=dict)
    timezone: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[tuple[str, str, str]]:
        return [(code, name, self.days.get(code, "")) for code, name in DAYS]

    @property
    def is_open(self) -> bool:
        return any(self.days.values()) or bool(self.errors)

    def as_condition(self) -> dict[str, Any] | None:
        values = []
        for code in time_windows.DAYS_OF_WEEK:
            text = self.days.get(code, "").strip()
            if text:
                # Without a zone the value has no third part: "timezone is required".
                values.append(
                    f"{code}/{text}/{self.timezone}" if self.timezone else f"{code}/{text}"
                )
        if not values:
            return None
        return {
            "property": Property.CURRENT_UTC_DATETIME.value,
            "operator": conds.Operator.IS_IN_DAY_OF_WEEK_TIME_RANGES.value,
            "values": values,
        }


def _blank_lists() -> dict[str, ListCondition]:
    return {
        prop.value: ListCondition(prop.value, conds.OPERATORS_BY_PROPERTY[prop][0])
        for prop in LIST_PROPERTIES
    }


@dataclass
class PolicyForm(ServiceErrorsMixin):
    """What the policy form shows and submits."""

    actor_group_id: str = ""
    resource_id: str = ""
    description: str = ""
    lists: dict[str, ListCondition] = field(default_factory=_blank_lists)
    time: TimeCondition = field(default_factory=TimeCondition)
    # Errors outside the conditions: "actor_group_id", "resource_id", "description", "base".
    errors: dict[str, list[str]] = field(default_factory=dict)
    # Which condition each submitted index was, to place the services' "conditions.<i>" errors.
    _submitted: list[str] = field(default_factory=list)

    # Template shortcuts.
    @property
    def location(self) -> ListCondition:
        return self.lists[Property.REMOTE_IP_LOCATION_REGION]

    @property
    def ip(self) -> ListCondition:
        return self.lists[Property.REMOTE_IP]

    @property
    def provider(self) -> ListCondition:
        return self.lists[Property.PROVIDER_ID]

    @property
    def verified(self) -> ListCondition:
        return self.lists[Property.CLIENT_VERIFIED]

    @property
    def has_errors(self) -> bool:
        return (
            bool(self.errors)
            or any(c.errors for c in self.lists.values())
            or bool(self.time.errors)
        )

    # --- building -----------------------------------------------------------------------------

    @classmethod
    def from_policy(cls, policy: Any) -> PolicyForm:
        """The edit form of a stored policy."""
        form = cls(
            actor_group_id=str(policy.actor_group_id),
            resource_id=str(policy.resource_id),
            description=policy.description or "",
        )
        for condition in conds.parse_conditions(policy.conditions):
            if condition.property in form.lists:
                panel = form.lists[condition.property]
                panel.operator = condition.operator
                panel.values = list(condition.values)
            elif condition.property == Property.CURRENT_UTC_DATETIME:
                for value in condition.values:
                    day, _, rest = value.partition("/")
                    ranges, _, zone = rest.partition("/")
                    if ranges:
                        previous = form.time.days.get(day)
                        form.time.days[day] = f"{previous}, {ranges}" if previous else ranges
                    form.time.timezone = form.time.timezone or zone
        return form

    @classmethod
    def from_post(cls, data: QueryDict) -> PolicyForm:
        form = cls(
            actor_group_id=data.get(_name("actor_group_id"), "").strip(),
            resource_id=data.get(_name("resource_id"), "").strip(),
            description=data.get(_name("description"), ""),
        )
        for prop, panel in form.lists.items():
            operator = data.get(_name("conditions", prop, "operator"), "")
            panel.operator = operator or panel.operator
            values = [v.strip() for v in data.getlist(_name("conditions", prop, "values") + "[]")]
            panel.values = [v for v in values if v]
        time_prop = Property.CURRENT_UTC_DATETIME.value
        form.time.timezone = data.get(_name("conditions", time_prop, "timezone"), "").strip()
        for code, _day in DAYS:
            text = data.get(_name("conditions", time_prop, "values", code), "").strip()
            if text:
                form.time.days[code] = text
        return form

    # --- to the services and back ---------------------------------------------------------------

    def conditions(self, *, resource_type: str | None) -> list[dict[str, Any]]:
        """The non-empty conditions, in editor order (time windows only where offered)."""
        found: list[dict[str, Any]] = []
        self._submitted = []
        panels: list[ListCondition | TimeCondition] = list(self.lists.values())
        if time_condition_offered(resource_type):
            panels.append(self.time)
        for panel in panels:
            condition = panel.as_condition()
            if condition is not None:
                found.append(condition)
                self._submitted.append(condition["property"])
        return found

    # --- service errors (ServiceErrorsMixin hooks) ------------------------------------------

    def service_error_field(self, key: str) -> str:
        """Where an error of the policy services goes: a field, a condition panel
        ("condition:<property>", placed by the submitted index) or "base"."""
        if key in ("actor_group_id", "resource_id", "description"):
            return key
        parts = key.split(".")
        if parts[0] == "conditions" and len(parts) > 1 and parts[1].isdigit():
            index = int(parts[1])
            if index < len(self._submitted):
                return f"condition:{self._submitted[index]}"
        return "base"

    def put_service_error(self, field: str | None, message: str) -> None:
        prop = (field or "").removeprefix("condition:")
        if prop in self.lists:
            target = self.lists[prop].errors
        elif prop == Property.CURRENT_UTC_DATETIME:
            target = self.time.errors
        else:
            target = self.errors.setdefault(field or "base", [])
        extend_unique(target, message)


# --- the sentence on the policy page --------------------------------------------------------------


def _strong(text: str) -> SafeString:
    return format_html("<strong>{}</strong>", text)


def _time_fragment(values: Iterable[str]) -> SafeString | None:
    by_day: dict[str, dict[str, list[tuple[Any, Any]]]] = {}
    for value in values:
        try:
            parsed = time_windows.parse_day_of_week_time_ranges(value)
        except time_windows.ConditionValueError:
            continue
        if parsed.ranges:
            by_day.setdefault(parsed.day, {}).setdefault(parsed.timezone, []).extend(parsed.ranges)
    items = []
    for code, day_name in DAYS:
        zones = by_day.get(code)
        if not zones:
            continue
        windows = " ".join(
            "({} {})".format(
                ", ".join(f"{start:%H:%M:%S} - {end:%H:%M:%S}" for start, end in ranges), zone
            )
            for zone, ranges in zones.items()
        )
        items.append(_strong(f"{day_name}s {windows}"))
    if not items:
        return None
    return format_html("on {}", mark_safe(", ".join(items)))  # noqa: S308 (escaped above)


def describe_conditions(
    conditions: Iterable[Any] | None,
    *,
    providers: Mapping[str, Any],
    provider_url: Callable[[Any], str],
) -> SafeString | None:
    """ "This policy can be used from United States on Mondays (09:00:00 - 17:00:00 UTC)", or
    None without conditions. `providers` maps provider ids (str) to providers; ids that name no
    provider of the account are left out."""
    fragments: list[SafeString] = []
    for condition in conds.parse_conditions(conditions):
        prop, operator, values = condition.property, condition.operator, condition.values
        if not values:
            continue
        if prop == Property.REMOTE_IP_LOCATION_REGION:
            # §9 item 13: the original reads "any counties except".
            lead = "from" if operator == conds.Operator.IS_IN else "from any countries except"
            names = ", ".join(country_name(v) for v in values)
            fragments.append(format_html("{} {}", lead, _strong(names)))
        elif prop == Property.REMOTE_IP:
            word = "in" if operator == conds.Operator.IS_IN_CIDR else "not in"
            fragments.append(
                format_html("from IP addresses that are {} {}", word, _strong(", ".join(values)))
            )
        elif prop == Property.PROVIDER_ID:
            known = [providers[v] for v in values if v in providers]
            if not known:
                continue
            word = "with" if operator == conds.Operator.IS_IN else "not with"
            links = format_html_join(
                ", ",
                '<a href="{}"><strong>{}</strong></a>',
                ((provider_url(p), p.name) for p in known),
            )
            fragments.append(format_html("when signed in {} {} provider(s)", word, links))
        elif prop == Property.CLIENT_VERIFIED:
            state = "verified" if values == ("true",) else "not verified"
            fragments.append(format_html("by clients that are {}", state))
        elif prop == Property.CURRENT_UTC_DATETIME:
            fragment = _time_fragment(values)
            if fragment is not None:
                fragments.append(fragment)
    if not fragments:
        return None
    return format_html(
        "This policy can be used {}", format_html_join(" ", "{}", ((f,) for f in fragments))
    )
