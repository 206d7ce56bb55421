"""Typed requests of the portal: the attributes middleware and the view decorators set
(django-stubs' documented pattern, as django-htmx's `HtmxDetails`). Views annotate their request
with the class matching their decorator; nothing here exists at run time beyond the classes.
"""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from accounts.auth import Subject
from accounts.models import Account


class HtmxRequest(HttpRequest):
    """Any request: `HtmxMiddleware` sets `htmx`."""

    htmx: HtmxDetails


class AccountRequest(HtmxRequest):
    """A page under `/<account>/…` (`with_account`, `signed_out_only`): the URL's account."""

    account: Account


class PortalRequest(AccountRequest):
    """An admin page (`admin_required`): the account and the signed-in admin's subject."""

    subject: Subject
