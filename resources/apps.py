from __future__ import annotations

from django.apps import AppConfig


class ResourcesConfig(AppConfig):
    name = "resources"

    def ready(self) -> None:
        # Receivers are connected once the app registry is ready (Django's documented place).
        from accounts.signals import account_disabled
        from resources.services.flows import flows_delete_for_disabled_account

        account_disabled.connect(flows_delete_for_disabled_account, dispatch_uid="resources.flows")
