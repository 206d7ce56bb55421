"""The import contract: which package may import which (README "Architecture").

Layers, from the bottom:

* **core** — `firezone` plumbing (changes, stream, phoenix, db, errors, …): imports no app.
* **domain** — each app's models, services, selectors and helpers. `accounts` (the identity
  domain) imports only core; `resources` and `gateways` (the access model and the devices) import
  `accounts` and each other (a resource points at sites, the hub reads policies); `billing` and
  `directory_sync` may import every domain below them.
* **web** — the portal framework (`firezone.web`, the template tags) and the REST API's
  (`firezone.api`): core and domains.
* **entry points** — views, forms, tables, URL confs, admin, socket consumers, Celery tasks,
  management commands, REST API endpoints (`<app>.api`), the sign-in steps of each app and its
  `apps` module (AppConfig.ready connects receivers, which may be Celery tasks): core,
  web, any domain, their own app's entry points and other apps' forms (never other apps' views).
* **root** — settings, URL/ASGI routing, Celery app, seed, management commands: anything.

Function-level imports of our own modules are refused (they hide cycles), except in
`AppConfig.ready` (Django's place for wiring receivers) and the few listed in `LAZY_ALLOWED`.
The graph is read from the source with `ast`, so the test needs no import of the code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "resources", "gateways", "billing", "directory_sync")
FIRST_PARTY = ("firezone", *APPS)

ROOT_MODULES = {
    "firezone",  # its __init__ loads the Celery app (Celery's documented pattern)
    "firezone.settings",
    "firezone.urls",
    "firezone.routing",
    "firezone.asgi",
    "firezone.celery",
    "firezone.seed",
    "firezone.test_runner",
    "firezone.devservices",
    "firezone.api_urls",
}
ROOT_PACKAGES = ("firezone.management",)
# The frameworks of the entry points: the portal's (web, template tags, staff admin) and the
# REST API's (`firezone.api`).
WEB_PACKAGES = ("firezone.web", "firezone.templatetags", "firezone.admin", "firezone.api")
# Within an app, these submodules/packages are entry points (pages, sockets, jobs).
ENTRY_NAMES = (
    "views",
    "forms",
    "urls",
    "portal_urls",
    "oidc_urls",
    "sign_up_urls",
    "admin",
    "consumers",
    "tasks",
    "policy_forms",
    "relay_forms",
    "client_forms",
    "explain_forms",
    "tables",
    "management",
    "sign_in.flow",
    "sign_in.logout",
    "api",
    # AppConfig.ready wires receivers and hooks, some of them Celery tasks (billing.tasks).
    "apps",
)
DOMAIN_MAY_IMPORT: dict[str, set[str]] = {
    "accounts": {"accounts"},
    "resources": {"accounts", "resources", "gateways"},
    "gateways": {"accounts", "resources", "gateways"},
    "billing": {"accounts", "resources", "gateways", "billing"},
    "directory_sync": {"accounts", "resources", "gateways", "billing", "directory_sync"},
}
# (module, imported module) → why the import has to be deferred.
LAZY_ALLOWED: dict[tuple[str, str], str] = {
    ("firezone.dbbackend.base", "firezone.changes"): (
        "the database backend is loaded before the app registry; `changes` imports models"
    ),
}


@dataclass(frozen=True)
class Import:
    module: str
    target: str
    line: int
    lazy: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _sources() -> Iterator[Path]:
    for package in FIRST_PARTY:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).parts
            if "tests" in relative or "migrations" in relative:
                continue
            yield path


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path) -> Iterator[Import]:
    module = _module_name(path)
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, lazy: bool, ready: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child):
                continue
            child_lazy = lazy
            child_ready = ready
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                child_lazy = True
                child_ready = ready or child.name == "ready"
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, child.lineno, lazy and not ready)
            elif isinstance(child, ast.ImportFrom):
                target = child.module or ""
                if child.level:
                    base = module.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join([*base, target] if target else base)
                # `from firezone import changes` imports the module firezone.changes
                for alias in child.names:
                    name = f"{target}.{alias.name}"
                    submodule = _is_module(name)
                    yield Import(
                        module, name if submodule else target, child.lineno, lazy and not ready
                    )
            yield from visit(child, child_lazy, child_ready)

    yield from visit(ast.parse(path.read_text()), False, False)


def _layer(module: str) -> tuple[str, str]:
    """(layer, app) of one of our modules."""
    top = module.split(".")[0]
    if top == "firezone":
        if module in ROOT_MODULES or module.startswith(ROOT_PACKAGES):
            return "root", "firezone"
        if module.startswith(WEB_PACKAGES):
            return "web", "firezone"
        return "core", "firezone"
    rest = module[len(top) + 1 :]
    if any(rest == name or rest.startswith(name + ".") for name in ENTRY_NAMES):
        return "entry", top
    return "domain", top


def _allowed(source: str, target: str) -> bool:
    layer, app = _layer(source)
    target_layer, target_app = _layer(target)
    if layer == "root":
        return True
    if target_layer == "core":
        return True
    if layer == "core":
        return False
    if layer == "domain":
        return target_layer == "domain" and target_app in DOMAIN_MAY_IMPORT[app]
    if layer == "web":
        return target_layer in {"web", "domain"}
    # entry points: another app's forms are fine (a site page embeds a policy form), its views
    # are not
    if target_layer == "entry" and target_app != app:
        return ".views" not in target
    return target_layer in {"web", "domain", "entry"}


def _ours(target: str) -> bool:
    return target.split(".")[0] in FIRST_PARTY


def _all_imports() -> list[Import]:
    return [i for path in _sources() for i in _imports(path) if _ours(i.target)]


def test_the_graph_is_read() -> None:
    imports = _all_imports()
    assert len(imports) > 500
    assert any(i.module == "gateways.connect" and i.target == "accounts.request" for i in imports)


def test_imports_point_down_the_layers() -> None:
    wrong = [
        f"{i.module}:{i.line} imports {i.target} ({_layer(i.module)[0]} → {_layer(i.target)[0]})"
        for i in _all_imports()
        if not _allowed(i.module, i.target)
    ]
    assert wrong == []


def test_no_function_level_imports_of_our_modules() -> None:
    lazy = [
        f"{i.module}:{i.line} imports {i.target} inside a function"
        for i in _all_imports()
        if i.lazy and (i.module, i.target) not in LAZY_ALLOWED
    ]
    assert lazy == []


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("accounts.services.actors", "gateways.models", False),
        ("firezone.changes", "accounts.models", False),
        ("gateways.services.sites", "accounts.limits", True),
        ("firezone.web.session", "accounts.views.home", False),
        ("resources.views.policies", "accounts.views.groups", False),
        ("gateways.views.sites", "resources.policy_forms", True),
        ("accounts.views.actors", "gateways.selectors.clients", True),
        ("firezone.urls", "accounts.urls", True),
        ("resources.api", "firezone.api.views", True),
        ("firezone.api.views", "resources.api", False),
        ("firezone.api_urls", "resources.api", True),
    ],
)
def test_the_rules_themselves(source: str, target: str, allowed: bool) -> None:
    assert _allowed(source, target) is allowed
