"""Triggers on api_file keep api_workspacefilecount.files right in the same transaction as
every insert, delete, move between workspaces and publication of a job's results (the rows
``selectors.files_visible_to`` shows: all but pending files produced by a job). Then the
counts of the files already there, and a zero row for each workspace without files."""

from django.db import migrations

# A file counts unless it is a job's result not yet published.
_PG_COUNTED = "NOT ({row}.status = 'pending' AND {row}.produced_by_id IS NOT NULL)"

POSTGRES = f"""
CREATE FUNCTION api_file_count_keep() RETURNS trigger AS $$
DECLARE
    was boolean := TG_OP <> 'INSERT' AND {_PG_COUNTED.format(row="OLD")};
    now_ boolean := TG_OP <> 'DELETE' AND {_PG_COUNTED.format(row="NEW")};
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.workspace_id = NEW.workspace_id AND was = now_ THEN
        RETURN NULL;
    END IF;
    IF was THEN
        INSERT INTO api_workspacefilecount (workspace_id, files) VALUES (OLD.workspace_id, -1)
        ON CONFLICT (workspace_id) DO UPDATE SET files = api_workspacefilecount.files - 1;
    END IF;
    IF now_ THEN
        INSERT INTO api_workspacefilecount (workspace_id, files) VALUES (NEW.workspace_id, 1)
        ON CONFLICT (workspace_id) DO UPDATE SET files = api_workspacefilecount.files + 1;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER api_file_count_keep
    AFTER INSERT OR DELETE OR UPDATE OF workspace_id, status, produced_by_id ON api_file
    FOR EACH ROW EXECUTE FUNCTION api_file_count_keep();
CREATE FUNCTION api_workspace_count_row() RETURNS trigger AS $$
BEGIN
    INSERT INTO api_workspacefilecount (workspace_id, files) VALUES (NEW.id, 0)
    ON CONFLICT (workspace_id) DO NOTHING;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER api_workspace_count_row AFTER INSERT ON api_workspace
    FOR EACH ROW EXECUTE FUNCTION api_workspace_count_row();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS api_file_count_keep ON api_file;
DROP FUNCTION IF EXISTS api_file_count_keep();
DROP TRIGGER IF EXISTS api_workspace_count_row ON api_workspace;
DROP FUNCTION IF EXISTS api_workspace_count_row();
"""


def _sqlite_add(row: str, delta: int) -> str:
    return (
        f"INSERT INTO api_workspacefilecount (workspace_id, files) VALUES ({row}.workspace_id, "
        f"{delta}) ON CONFLICT (workspace_id) DO UPDATE SET files = files + ({delta});"
    )


_SQ = "NOT ({row}.status = 'pending' AND {row}.produced_by_id IS NOT NULL)"
SQLITE = [
    f"""CREATE TRIGGER api_file_count_insert AFTER INSERT ON api_file
    WHEN {_SQ.format(row="NEW")} BEGIN {_sqlite_add("NEW", 1)} END""",
    f"""CREATE TRIGGER api_file_count_delete AFTER DELETE ON api_file
    WHEN {_SQ.format(row="OLD")} BEGIN {_sqlite_add("OLD", -1)} END""",
    f"""CREATE TRIGGER api_file_count_update_old
    AFTER UPDATE OF workspace_id, status, produced_by_id ON api_file
    WHEN {_SQ.format(row="OLD")} BEGIN {_sqlite_add("OLD", -1)} END""",
    f"""CREATE TRIGGER api_file_count_update_new
    AFTER UPDATE OF workspace_id, status, produced_by_id ON api_file
    WHEN {_SQ.format(row="NEW")} BEGIN {_sqlite_add("NEW", 1)} END""",
    """CREATE TRIGGER api_workspace_count_row AFTER INSERT ON api_workspace BEGIN
    INSERT OR IGNORE INTO api_workspacefilecount (workspace_id, files) VALUES (NEW.id, 0); END""",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "api_file_count_insert",
        "api_file_count_delete",
        "api_file_count_update_old",
        "api_file_count_update_new",
        "api_workspace_count_row",
    )
]

BACKFILL = f"""
INSERT INTO api_workspacefilecount (workspace_id, files)
SELECT w.id, (SELECT COUNT(*) FROM api_file f WHERE f.workspace_id = w.id
              AND {_SQ.format(row="f")})
FROM api_workspace w
"""


def create(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM api_workspacefilecount")
        if connection.vendor == "postgresql":
            cursor.execute(POSTGRES)
        elif connection.vendor == "sqlite":
            for statement in SQLITE:
                cursor.execute(statement)
        else:
            raise RuntimeError(f"No file count triggers for {connection.vendor}.")
        cursor.execute(BACKFILL)


def drop(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(POSTGRES_DROP)
        else:
            for statement in SQLITE_DROP:
                cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("api", "0015_workspace_file_count_and_list_indexes")]

    operations = [migrations.RunPython(create, drop)]
