from __future__ import annotations

from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "gateways"

    def ready(self) -> None:
        # Receivers are connected once the app registry is ready (Django's documented place).
        from accounts.signals import account_disabled
        from gateways.services.sessions import device_sessions_close_for_disabled_account

        account_disabled.connect(
            device_sessions_close_for_disabled_account, dispatch_uid="gateways.sessions"
        )
