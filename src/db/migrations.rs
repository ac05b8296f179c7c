//! Schema migrations, embedded in the binary so that `ssp` runs from any
//! directory.
//!
//! Rules:
//! - the files of `migrations/` are applied in order of their names, at
//!   startup and by `ssp migrate`;
//! - each runs in its own transaction together with the row that records it in
//!   `_spooky_migration` (name, sha256 checksum, time), so a migration is
//!   either applied and recorded or neither;
//! - an applied migration is skipped; one whose text changed since it was
//!   applied stops startup with [`MigrationError::Changed`].
//!
//! To add a migration: add `migrations/NNNN_name.surql` and one line to
//! [`MIGRATIONS`] (a unit test checks that the list matches the folder).
//! Write one statement per `;`-terminated line group, so that a failure names
//! the statement.

use std::borrow::Cow;
use std::collections::HashMap;

use sha2::{Digest, Sha256};
use surrealdb::types::RecordId;

use super::{Db, DbError, Query};

pub use super::schema::MIGRATION_TABLE;

/// One migration: a name (its file name without `.surql`) and its SurrealQL.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: Cow<'static, str>,
    pub sql: Cow<'static, str>,
}

impl Migration {
    /// An embedded migration.
    pub const fn embedded(name: &'static str, sql: &'static str) -> Self {
        Migration {
            name: Cow::Borrowed(name),
            sql: Cow::Borrowed(sql),
        }
    }

    /// The hex sha256 of the text.
    pub fn checksum(&self) -> String {
        let digest = Sha256::digest(self.sql.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The statements of the text, one per `;`-terminated group of lines,
    /// comments and blank lines dropped.
    pub fn statements(&self) -> Vec<String> {
        let mut statements = Vec::new();
        let mut current = String::new();
        for line in self.sql.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with("--") || trimmed.starts_with("//") {
                continue;
            }
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
            if trimmed.ends_with(';') {
                statements.push(std::mem::take(&mut current));
            }
        }
        if !current.trim().is_empty() {
            statements.push(current);
        }
        statements
    }
}

/// The migrations shipped in this binary, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration::embedded(
        "0001_spooky_schema",
        include_str!("../../migrations/0001_spooky_schema.surql"),
    ),
    Migration::embedded(
        "0002_spooky_version",
        include_str!("../../migrations/0002_spooky_version.surql"),
    ),
    Migration::embedded(
        "0003_spooky_version_event",
        include_str!("../../migrations/0003_spooky_version_event.surql"),
    ),
    Migration::embedded(
        "0004_spooky_edge_key",
        include_str!("../../migrations/0004_spooky_edge_key.surql"),
    ),
    Migration::embedded(
        "0005_spooky_owner",
        include_str!("../../migrations/0005_spooky_owner.surql"),
    ),
    Migration::embedded(
        "0006_spooky_cluster",
        include_str!("../../migrations/0006_spooky_cluster.surql"),
    ),
];

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// An applied migration's text is not what was applied.
    #[error(
        "migration {name} was changed after it was applied (recorded checksum {recorded}, this binary has {current}); restore its original text and put the change in a new migration"
    )]
    Changed {
        name: String,
        recorded: String,
        current: String,
    },
    /// A migration failed and was rolled back.
    #[error("migration {name} failed and was rolled back: {source}")]
    Failed {
        name: String,
        #[source]
        source: DbError,
    },
    /// The migrations table could not be read or written.
    #[error("cannot read the applied migrations: {0}")]
    Db(#[from] DbError),
    /// Two migrations have the same name, or the list is not in order.
    #[error("the embedded migrations are out of order or duplicated at {0}")]
    BadList(String),
}

impl MigrationError {
    /// True when the database could not be reached (as opposed to a real
    /// migration problem).
    pub fn is_unavailable(&self) -> bool {
        match self {
            MigrationError::Db(e) | MigrationError::Failed { source: e, .. } => e.is_unavailable(),
            _ => false,
        }
    }
}

/// What a migration run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations applied by this run, in order.
    pub applied: Vec<String>,
    /// Migrations that were already applied.
    pub skipped: Vec<String>,
}

/// Applies the embedded [`MIGRATIONS`].
pub async fn migrate(db: &Db) -> Result<MigrationReport, MigrationError> {
    migrate_with(db, MIGRATIONS).await
}

/// Applies `migrations` (tests use their own lists).
pub async fn migrate_with(
    db: &Db,
    migrations: &[Migration],
) -> Result<MigrationReport, MigrationError> {
    for pair in migrations.windows(2) {
        if pair[0].name >= pair[1].name {
            return Err(MigrationError::BadList(pair[1].name.to_string()));
        }
    }

    // Instances started together migrate together: a conflict here is
    // another one defining the same table.
    let mut attempt = 0;
    while let Err(e) = ensure_table(db).await {
        attempt += 1;
        if attempt >= 5 {
            return Err(e.into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
    }
    let applied = applied(db).await?;
    let mut report = MigrationReport::default();

    for migration in migrations {
        let checksum = migration.checksum();
        if let Some(recorded) = applied.get(migration.name.as_ref()) {
            if *recorded != checksum {
                return Err(MigrationError::Changed {
                    name: migration.name.to_string(),
                    recorded: recorded.clone(),
                    current: checksum,
                });
            }
            report.skipped.push(migration.name.to_string());
            continue;
        }
        if let Err(source) = apply(db, migration, &checksum).await {
            // Several instances starting at once (a cluster) each try to
            // apply it, and all but one fail. Its record in the ledger, with
            // the same checksum, says it is applied after all.
            if applied_by_another(db, &migration.name, &checksum).await {
                tracing::info!(migration = %migration.name, "migration applied by another instance meanwhile");
                report.skipped.push(migration.name.to_string());
                continue;
            }
            return Err(MigrationError::Failed {
                name: migration.name.to_string(),
                source,
            });
        }
        tracing::info!(migration = %migration.name, "applied migration");
        report.applied.push(migration.name.to_string());
    }

    let known: Vec<&str> = migrations.iter().map(|m| m.name.as_ref()).collect();
    for name in applied.keys().filter(|n| !known.contains(&n.as_str())) {
        tracing::warn!(
            migration = %name,
            "the database has a migration this binary does not know (applied by a newer SSP?)"
        );
    }
    Ok(report)
}

/// Whether the ledger records `name` with `checksum` within a second or so
/// (the other instance's transaction may still be committing).
async fn applied_by_another(db: &Db, name: &str, checksum: &str) -> bool {
    for attempt in 1..=5u64 {
        if let Ok(now) = applied(db).await
            && now.get(name).is_some_and(|c| c == checksum)
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
    }
    false
}

/// Defines the migrations table if it is missing.
async fn ensure_table(db: &Db) -> Result<(), DbError> {
    let mut query = Query::transaction();
    query.push(format!(
        "DEFINE TABLE IF NOT EXISTS {MIGRATION_TABLE} TYPE NORMAL SCHEMAFULL PERMISSIONS NONE"
    ));
    query.push(format!(
        "DEFINE FIELD IF NOT EXISTS name ON {MIGRATION_TABLE} TYPE string"
    ));
    query.push(format!(
        "DEFINE FIELD IF NOT EXISTS checksum ON {MIGRATION_TABLE} TYPE string"
    ));
    query.push(format!(
        "DEFINE FIELD IF NOT EXISTS appliedAt ON {MIGRATION_TABLE} TYPE datetime"
    ));
    db.run(query).await?;
    Ok(())
}

/// The applied migrations: name → checksum.
pub async fn applied(db: &Db) -> Result<HashMap<String, String>, DbError> {
    let mut response = db
        .run(Query::new(format!(
            "SELECT name, checksum FROM {MIGRATION_TABLE}"
        )))
        .await?;
    let rows = response.take_json(0)?;
    let mut applied = HashMap::new();
    for row in rows.as_array().into_iter().flatten() {
        if let (Some(name), Some(checksum)) = (
            row.get("name").and_then(|v| v.as_str()),
            row.get("checksum").and_then(|v| v.as_str()),
        ) {
            applied.insert(name.to_owned(), checksum.to_owned());
        }
    }
    Ok(applied)
}

/// Applies one migration and records it, in one transaction.
async fn apply(db: &Db, migration: &Migration, checksum: &str) -> Result<(), DbError> {
    let mut query = Query::transaction();
    for statement in migration.statements() {
        query.push(statement);
    }
    query.push("CREATE $migration_id CONTENT { name: $migration_name, checksum: $migration_checksum, appliedAt: time::now() }");
    query.set(
        "migration_id",
        RecordId::new(MIGRATION_TABLE, migration.name.to_string()),
    );
    query.set("migration_name", migration.name.to_string());
    query.set("migration_checksum", checksum.to_owned());
    db.run(query).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_list_matches_the_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations folder")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".surql"))
            .map(|n| n.trim_end_matches(".surql").to_owned())
            .collect();
        files.sort();
        let embedded: Vec<String> = MIGRATIONS.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(files, embedded, "add the new migration to MIGRATIONS");
    }

    #[test]
    fn statements_split_on_line_ends() {
        let m = Migration::embedded(
            "x",
            "-- comment\nDEFINE TABLE a\n    PERMISSIONS NONE;\n\nDEFINE FIELD b ON a TYPE string;\n",
        );
        assert_eq!(
            m.statements(),
            vec![
                "DEFINE TABLE a\n    PERMISSIONS NONE;",
                "DEFINE FIELD b ON a TYPE string;"
            ]
        );
        assert_eq!(m.checksum().len(), 64);
    }
}
