"""Migration operations for database rules Django 5.2 cannot declare on fields."""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations.base import Operation

# Django's suffix for FK constraint names; reusing it keeps later AlterField operations able to
# find (drop and recreate) the constraint as if Django had made it.
_FK_SUFFIX = "_fk_%(to_table)s_%(to_column)s"


class DbOnDelete(Operation):
    """Give the FK constraint of `model_name.name` a database-level ON DELETE action.

    Django < 6 only emulates `on_delete` in Python and creates every FK as NO ACTION. The spec
    (domain.md §1.22) wants the database itself to cascade, so raw SQL deletes, bulk deletes and
    the change-propagation layer see the same behaviour as `Model.delete()`.

    The statements are queued on the schema editor's deferred SQL, so this works in the same
    migration as the CreateModel whose FK constraints are themselves deferred to the end.
    Note: a later AlterField on the FK recreates it as NO ACTION; repeat this operation then
    (tests/test_schema_structure.py checks every delete rule).
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, name: str, action: str = "CASCADE") -> None:
        if action not in {"CASCADE", "SET NULL", "RESTRICT", "NO ACTION"}:
            raise ValueError(f"unsupported ON DELETE action {action!r}")
        self.model_name = model_name
        self.name = name
        self.action = action

    def state_forwards(self, app_label: str, state: Any) -> None:
        # Database only: the Django field keeps its own on_delete.
        pass

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        self._recreate(app_label, schema_editor, to_state, self.action)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        self._recreate(app_label, schema_editor, from_state, "NO ACTION")

    def _recreate(self, app_label: str, schema_editor: Any, state: Any, action: str) -> None:
        model = state.apps.get_model(app_label, self.model_name)
        field = model._meta.get_field(self.name)
        quote = schema_editor.quote_name
        constraint = str(schema_editor._fk_constraint_name(model, field, _FK_SUFFIX))
        target = field.target_field
        schema_editor.deferred_sql.append(
            f"ALTER TABLE {quote(model._meta.db_table)} "
            f"DROP CONSTRAINT {constraint}, "
            f"ADD CONSTRAINT {constraint} FOREIGN KEY ({quote(field.column)}) "
            f"REFERENCES {quote(target.model._meta.db_table)} ({quote(target.column)}) "
            f"ON DELETE {action} DEFERRABLE INITIALLY DEFERRED"
        )

    def describe(self) -> str:
        return f"Set ON DELETE {self.action} on {self.model_name}.{self.name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name.lower()}_{self.name.lower()}_on_delete"
