//! Migrations expand, then contract one release later: during a rolling upgrade the previous
//! release keeps serving on the schema the new one migrated (docs/operating.md, "Upgrades"). A
//! migration newer than the last release's (CHANGELOG.md names it) may add tables, nullable or
//! defaulted columns, indexes and triggers; it may not drop, rename, retype, or make a column
//! NOT NULL that the previous release may leave empty. A deliberate contract says so in a
//! `-- contract:` comment (and its release in CHANGELOG.md, rolled with every replica stopped).

/// The last migration the newest release in CHANGELOG.md shipped: its entry says "migrations
/// up to `<file>`".
fn last_released() -> String {
    let changelog =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/CHANGELOG.md")).unwrap();
    let released = changelog
        .split("\n## [")
        .skip(1)
        .find(|entry| !entry.starts_with("Unreleased"))
        .expect("CHANGELOG.md has a release")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let at = released.find("migrations up to `").expect(
        "the newest release in CHANGELOG.md names its last migration: migrations up to `<file>`",
    );
    let rest = &released[at + "migrations up to `".len()..];
    rest[..rest.find('`').unwrap()].to_owned()
}

/// What in `sql` would break the previous release, clause by clause (function bodies between
/// `$$` are not read).
fn contracts(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    let outside_bodies: String = code.split("$$").step_by(2).collect::<Vec<_>>().join(" ");
    let mut found = Vec::new();
    for statement in outside_bodies.split(';') {
        let s = statement
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        if s.is_empty() {
            continue;
        }
        if s.starts_with("DROP ") || s.starts_with("TRUNCATE") {
            found.push(s);
            continue;
        }
        let Some(actions) = s.strip_prefix("ALTER TABLE ") else {
            continue;
        };
        // ALTER TABLE t ADD …, ALTER …, DROP …: each action on its own.
        let mut clauses = vec![String::new()];
        for word in actions.split(' ') {
            let last = clauses.last_mut().unwrap();
            if last.ends_with(',')
                && ["ADD", "ALTER", "DROP", "RENAME", "SET", "VALIDATE"].contains(&word)
            {
                clauses.push(String::new());
            }
            let last = clauses.last_mut().unwrap();
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
        let breaking = |c: &str| {
            let adds_required = c.contains("ADD ")
                && !c.contains("ADD CONSTRAINT")
                && c.contains("NOT NULL")
                && !c.contains("DEFAULT");
            let alters = c.contains("ALTER ")
                && (c.contains(" TYPE ")
                    || c.contains("SET NOT NULL")
                    || c.contains("DROP DEFAULT"));
            adds_required || alters || c.contains("DROP ") || c.contains("RENAME ")
        };
        if clauses.iter().any(|c| breaking(c)) {
            found.push(s);
        }
    }
    found
}

#[test]
fn migrations_since_the_last_release_only_expand() {
    let last = last_released();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    assert!(
        names.contains(&last),
        "CHANGELOG.md names {last}, which migrations/ does not hold"
    );
    let mut broken = Vec::new();
    for name in names.iter().filter(|n| **n > last) {
        let sql = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        if sql.contains("-- contract:") {
            continue;
        }
        broken.extend(contracts(&sql).into_iter().map(|s| format!("{name}: {s}")));
    }
    assert!(
        broken.is_empty(),
        "migrations newer than the last release ({last}) that the previous release could not run on (expand now, contract one release later, or mark a deliberate one '-- contract:'):\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_rule_tells_expanding_from_contracting() {
    for fine in [
        "CREATE TABLE t (id uuid NOT NULL, CONSTRAINT t_pkey PRIMARY KEY (id));",
        "ALTER TABLE t ADD COLUMN note text;",
        "ALTER TABLE t ADD COLUMN n integer NOT NULL DEFAULT 0;",
        "CREATE INDEX t_note ON t (note); -- DROP later",
        "INSERT INTO t DEFAULT VALUES;",
        "ALTER TABLE t ADD COLUMN a int NOT NULL DEFAULT 0, ADD COLUMN b text;",
        "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN DROP TABLE x; RETURN NULL; END $$ LANGUAGE plpgsql;",
    ] {
        assert!(contracts(fine).is_empty(), "{fine}");
    }
    for breaking in [
        "DROP TABLE t;",
        "ALTER TABLE t DROP COLUMN note;",
        "ALTER TABLE t RENAME COLUMN note TO remark;",
        "ALTER TABLE t ALTER COLUMN n TYPE bigint;",
        "ALTER TABLE t ALTER COLUMN note SET NOT NULL;",
        "ALTER TABLE t ADD COLUMN must text NOT NULL;",
        "ALTER TABLE t DROP CONSTRAINT t_pkey;",
        "DROP TRIGGER t_notify ON t;",
        "ALTER TABLE t ADD must text NOT NULL;",
        "ALTER TABLE t ALTER n TYPE bigint;",
        "ALTER TABLE t ALTER COLUMN n DROP DEFAULT;",
        "ALTER TABLE t ADD COLUMN a text NOT NULL, ADD COLUMN b int NOT NULL DEFAULT 0;",
    ] {
        assert_eq!(contracts(breaking).len(), 1, "{breaking}");
    }
}

/// A rollback, or an old replica restarted during a rolling upgrade: this build starts on a
/// schema a newer release migrated, leaving the migrations it does not know alone.
#[sqlx::test]
async fn a_schema_a_newer_release_migrated_is_left_as_it_is(pool: sqlx::PgPool) {
    use crate::helpers::*;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99991231000000, 'from a newer release', true, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let tenant = TestTenant::start().await;
    let mut cmd = fleetgate(&database_url(&pool).await, &tenant, &[]);
    cmd.arg("migrate");
    succeeded(cmd).await;
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE version = 99991231000000")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kept, 1);
}
