# Hand-written: database-level ON DELETE CASCADE (domain.md §1.22), the composite same-account FKs
# of policies (§1.16) and the Internet-resource trigger on resource connections (§1.15).

from django.db import migrations

from accounts.migration_operations import DbOnDelete

CASCADES = [
    ("resource", "account"),
    ("resourceconnection", "account"),
    ("resourceconnection", "resource"),
    ("resourceconnection", "gateway_group"),
    ("policy", "account"),
    ("policy", "actor_group"),
    ("policy", "resource"),
    ("flow", "account"),
    ("flow", "policy"),
    ("flow", "client"),
    ("flow", "gateway"),
    ("flow", "resource"),
    ("flow", "token"),
    ("flow", "actor_group_membership"),
]

# A policy's group and resource must belong to the policy's account. Not deferrable, so a
# cross-account insert fails at once ("Not allowed to create policies for ... outside of your
# account"); the (account_id, id) unique constraints of both targets back these FKs.
POLICY_FKS_SQL = """
ALTER TABLE resources_policy
    ADD CONSTRAINT policies_actor_group_id_fkey FOREIGN KEY (actor_group_id, account_id)
        REFERENCES accounts_actorgroup (id, account_id) ON DELETE CASCADE,
    ADD CONSTRAINT policies_resource_id_fkey FOREIGN KEY (resource_id, account_id)
        REFERENCES resources_resource (id, account_id) ON DELETE CASCADE;
"""
POLICY_FKS_REVERSE_SQL = """
ALTER TABLE resources_policy
    DROP CONSTRAINT policies_actor_group_id_fkey,
    DROP CONSTRAINT policies_resource_id_fkey;
"""

# The Internet resource lives only in the Internet site, and nothing else does. Raised as a
# check_violation (23514) naming `internet_resource_in_internet_site`, so Django reports an
# IntegrityError whose diag.constraint_name services can map to a form error.
INTERNET_TRIGGER_SQL = """
CREATE FUNCTION enforce_internet_resource_in_internet_gg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    resource_type text;
    is_internet_site boolean;
BEGIN
    SELECT type INTO resource_type FROM resources_resource WHERE id = NEW.resource_id;
    SELECT name = 'Internet' AND managed_by = 'system' INTO is_internet_site
        FROM gateways_site WHERE id = NEW.gateway_group_id;
    IF (coalesce(is_internet_site, false) AND resource_type IS DISTINCT FROM 'internet')
       OR (resource_type = 'internet' AND NOT coalesce(is_internet_site, false)) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'internet_resource_in_internet_site',
            MESSAGE = 'Only internet resource type is allowed in the Internet site';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER internet_resource_in_internet_gg
    BEFORE INSERT OR UPDATE OF resource_id, gateway_group_id ON resources_resourceconnection
    FOR EACH ROW EXECUTE FUNCTION enforce_internet_resource_in_internet_gg();
"""
INTERNET_TRIGGER_REVERSE_SQL = """
DROP TRIGGER internet_resource_in_internet_gg ON resources_resourceconnection;
DROP FUNCTION enforce_internet_resource_in_internet_gg();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("resources", "0001_initial"),
        ("accounts", "0003_database_rules"),
        ("gateways", "0002_database_rules"),
    ]

    operations = [DbOnDelete(model, field) for model, field in CASCADES] + [
        migrations.RunSQL(sql=POLICY_FKS_SQL, reverse_sql=POLICY_FKS_REVERSE_SQL),
        migrations.RunSQL(sql=INTERNET_TRIGGER_SQL, reverse_sql=INTERNET_TRIGGER_REVERSE_SQL),
    ]
