//! The roles pgrepl manages: read a role's attributes and verifier, create it, reset its
//! attributes, set its password (a SCRAM verifier, never the password, or none), grant a
//! predefined role, EXECUTE on functions and SELECT on relations.

use super::{quote_ident, quote_literal, Db};

/// A role's attributes, as `init` checks them.
#[derive(Debug, Clone)]
pub struct RoleInfo {
    /// `pg_authid.rolcanlogin`: the role may log in.
    pub login: bool,
    /// `pg_authid.rolreplication`: the role may start streaming replication.
    pub replication: bool,
    /// Any attribute beyond LOGIN REPLICATION (superuser, createdb, createrole, bypassrls).
    pub extra_privileges: bool,
    /// The stored verifier (`pg_authid.rolpassword`); never printed.
    pub verifier: Option<String>,
    /// `pg_authid.rolinherit`: the role has the privileges of the roles it is a member of.
    pub inherit: bool,
    /// `pg_authid.rolconnlimit` (-1: no limit).
    pub conn_limit: i32,
    /// It has the privileges of `pg_monitor` (`pg_has_role(…, 'USAGE')`).
    pub pg_monitor: bool,
}

impl Db {
    /// Looks up a role's attributes (needs a superuser connection to read the verifier).
    pub async fn role(&self, name: &str) -> anyhow::Result<Option<RoleInfo>> {
        let rows = self
            .rows(
                "SELECT rolcanlogin, rolreplication, (rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls), \
                 rolpassword, rolinherit, rolconnlimit, pg_catalog.pg_has_role(oid, 'pg_monitor', 'USAGE') \
                 FROM pg_catalog.pg_authid WHERE rolname = $1",
                &[&name],
            )
            .await?;
        Ok(rows.first().map(|r| RoleInfo {
            login: r.get(0),
            replication: r.get(1),
            extra_privileges: r.get(2),
            verifier: r.get(3),
            inherit: r.get(4),
            conn_limit: r.get(5),
            pg_monitor: r.get(6),
        }))
    }

    /// Which of the function `signatures` may `role` not execute yet? (One round trip.)
    pub async fn missing_execute(
        &self,
        role: &str,
        signatures: &[&str],
    ) -> anyhow::Result<Vec<String>> {
        let sigs: Vec<String> = signatures.iter().map(|s| s.to_string()).collect();
        let rows = self
            .rows(
                "SELECT f FROM pg_catalog.unnest($2::pg_catalog.text[]) AS f WHERE NOT pg_catalog.has_function_privilege($1, f, 'EXECUTE')",
                &[&role, &sigs],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Which of the relations `names` may `role` not SELECT from yet? (One round trip.)
    pub async fn missing_select(&self, role: &str, names: &[&str]) -> anyhow::Result<Vec<String>> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let rows = self
            .rows(
                "SELECT t FROM pg_catalog.unnest($2::pg_catalog.text[]) AS t WHERE NOT pg_catalog.has_table_privilege($1, t, 'SELECT')",
                &[&role, &names],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// `CREATE ROLE name <attrs> PASSWORD '<verifier>'`, or with no password when `verifier` is
    /// `None` (the monitor role: peer authentication only). `attrs` is one of pgrepl's fixed
    /// attribute lists, `verifier` a SCRAM-SHA-256 verifier (never a clear-text password).
    pub async fn create_role(
        &self,
        name: &str,
        attrs: &str,
        verifier: Option<&str>,
    ) -> anyhow::Result<()> {
        let password = verifier
            .map(|v| format!(" PASSWORD {}", quote_literal(v)))
            .unwrap_or_default();
        self.execute(&format!(
            "CREATE ROLE {} {attrs}{password}",
            quote_ident(name)
        ))
        .await
    }

    /// `GRANT <role> TO name`: `role` is one of PostgreSQL's predefined roles (`pg_monitor`).
    pub async fn grant_role(&self, role: &str, name: &str) -> anyhow::Result<()> {
        self.execute(&format!(
            "GRANT {} TO {}",
            quote_ident(role),
            quote_ident(name)
        ))
        .await
    }

    /// `GRANT SELECT ON <relations> TO name`; `relations` are pgrepl's own constants.
    pub async fn grant_select(&self, name: &str, relations: &[String]) -> anyhow::Result<()> {
        self.execute(&format!(
            "GRANT SELECT ON {} TO {}",
            relations.join(", "),
            quote_ident(name)
        ))
        .await
    }

    /// `ALTER ROLE name <attrs>` (one of pgrepl's fixed attribute lists).
    pub async fn alter_role(&self, name: &str, attrs: &str) -> anyhow::Result<()> {
        self.execute(&format!("ALTER ROLE {} {attrs}", quote_ident(name)))
            .await
    }

    /// `ALTER ROLE name PASSWORD '<verifier>'` (a SCRAM-SHA-256 verifier), or `PASSWORD NULL`
    /// when `verifier` is `None`.
    pub async fn set_role_verifier(
        &self,
        name: &str,
        verifier: Option<&str>,
    ) -> anyhow::Result<()> {
        self.execute(&format!(
            "ALTER ROLE {} PASSWORD {}",
            quote_ident(name),
            verifier.map_or_else(|| "NULL".to_string(), quote_literal)
        ))
        .await
    }

    /// `GRANT EXECUTE ON FUNCTION <signatures> TO name`; `signatures` are pgrepl's own constants.
    pub async fn grant_execute(&self, name: &str, signatures: &[String]) -> anyhow::Result<()> {
        self.execute(&format!(
            "GRANT EXECUTE ON FUNCTION {} TO {}",
            signatures.join(", "),
            quote_ident(name)
        ))
        .await
    }

    /// The owner of database `name`, if it exists.
    pub async fn database_owner(&self, name: &str) -> anyhow::Result<Option<String>> {
        let rows = self
            .rows(
                "SELECT pg_catalog.pg_get_userbyid(datdba)::text FROM pg_catalog.pg_database WHERE datname = $1",
                &[&name],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// `CREATE DATABASE name OWNER owner` (names validated at load, quoted here).
    pub async fn create_database(&self, name: &str, owner: &str) -> anyhow::Result<()> {
        self.execute(&format!(
            "CREATE DATABASE {} OWNER {}",
            quote_ident(name),
            quote_ident(owner)
        ))
        .await
    }

    /// `ALTER DATABASE name OWNER TO owner`.
    pub async fn alter_database_owner(&self, name: &str, owner: &str) -> anyhow::Result<()> {
        self.execute(&format!(
            "ALTER DATABASE {} OWNER TO {}",
            quote_ident(name),
            quote_ident(owner)
        ))
        .await
    }
}
