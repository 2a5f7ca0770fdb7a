//! Roles and the policy table: which scopes a box of each role reads, writes or only carries.
//!
//! - **read**: the box holds the scope's documents, serves them to its site, and is sent every
//!   entry of the scope.
//! - **write**: the box's own entries in the scope are accepted by others. Every scope a role
//!   writes it also reads (a change is made against the document it changes).
//! - **carry**: the box is sent the scope's entries only to pass them on (the ferry, between
//!   the island and the mainland); it never applies them or serves them to its site. A role
//!   never both reads and carries a scope.
//!
//! The table is fixed at provisioning: a certificate copies its role's sets, and peers enforce
//! the certificate, not this table, so a box provisioned under an older table keeps the rights
//! it was given until its certificate expires.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crdt_model::Scope;

/// The scopes this table knows, in sync-priority order.
pub const SCOPES: [&str; 9] = [
    "system", "radio", "health", "tickets", "cards", "bookings", "lodging", "sports", "stats",
];

/// What a box is for. The role decides its scopes through the [`Policy`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[non_exhaustive]
pub enum Role {
    /// The mainland hub: every scope, the district's archive and statistics.
    Hub,
    /// The ferry port: tickets, the gate, arrivals.
    Port,
    /// A commune hall: cards, guest registration, tournaments, loudspeakers.
    Commune,
    /// A clinic or health station: health records.
    Clinic,
    /// A resort: bookings, check-ins, payments.
    Resort,
    /// The school: student cards and tournaments.
    School,
    /// The box on the ferry: checks tickets on board, carries the rest across.
    Ferry,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Hub,
        Role::Port,
        Role::Commune,
        Role::Clinic,
        Role::Resort,
        Role::School,
        Role::Ferry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Hub => "hub",
            Role::Port => "port",
            Role::Commune => "commune",
            Role::Clinic => "clinic",
            Role::Resort => "resort",
            Role::School => "school",
            Role::Ferry => "ferry",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {value:?}; known roles: hub, port, commune, clinic, resort, school, ferry")]
pub struct UnknownRole {
    pub value: String,
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole {
                value: s.to_owned(),
            })
    }
}

/// The scopes one role reads, writes and carries.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Access {
    pub read: BTreeSet<Scope>,
    pub write: BTreeSet<Scope>,
    pub carry: BTreeSet<Scope>,
}

impl Access {
    /// Whether entries of `scope` may be sent to a holder of this access (read or carry).
    pub fn may_receive(&self, scope: &Scope) -> bool {
        self.read.contains(scope) || self.carry.contains(scope)
    }
}

/// The policy table. [`Policy::standard`] is the one `culao provision node` applies.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Policy {
    table: Vec<(Role, Access)>,
}

/// One row of the standard table: role, reads, writes, carries (scope names).
type Row = (
    Role,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const ALL: &[&str] = &SCOPES;

/// The standard table, also written out in `docs/provisioning.md` (a test keeps them equal).
const STANDARD: [Row; 7] = [
    (Role::Hub, ALL, ALL, &[]),
    (
        Role::Port,
        &["system", "radio", "tickets", "cards", "bookings", "stats"],
        &["radio", "tickets", "cards", "bookings", "stats"],
        &["lodging", "sports"],
    ),
    (
        Role::Commune,
        &[
            "system", "radio", "tickets", "cards", "bookings", "lodging", "sports", "stats",
        ],
        &["radio", "tickets", "cards", "lodging", "sports", "stats"],
        &[],
    ),
    (
        Role::Clinic,
        &["system", "radio", "health", "cards", "stats"],
        &["radio", "health", "stats"],
        &[],
    ),
    (
        Role::Resort,
        &[
            "system", "radio", "tickets", "cards", "bookings", "lodging", "stats",
        ],
        &["tickets", "cards", "bookings", "lodging", "stats"],
        &[],
    ),
    (
        Role::School,
        &["system", "radio", "cards", "sports"],
        &["sports"],
        &[],
    ),
    (
        Role::Ferry,
        &["system", "radio", "tickets", "cards"],
        &["tickets"],
        &["health", "bookings", "lodging", "sports", "stats"],
    ),
];

fn scope_set(names: &[&str]) -> BTreeSet<Scope> {
    names
        .iter()
        .filter_map(|name| Scope::new(name).ok())
        .collect()
}

impl Policy {
    /// The table in force for new certificates (see the crate doc).
    pub fn standard() -> Self {
        let table = STANDARD
            .iter()
            .map(|(role, read, write, carry)| {
                let access = Access {
                    read: scope_set(read),
                    write: scope_set(write),
                    carry: scope_set(carry),
                };
                (*role, access)
            })
            .collect();
        Self { table }
    }

    /// The access of `role`; a role without a row has none.
    pub fn access(&self, role: Role) -> Access {
        self.table
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, access)| access.clone())
            .unwrap_or_default()
    }

    fn row(&self, role: Role) -> Option<&Access> {
        self.table.iter().find(|(r, _)| *r == role).map(|(_, a)| a)
    }

    pub fn may_read(&self, role: Role, scope: &Scope) -> bool {
        self.row(role).is_some_and(|a| a.read.contains(scope))
    }

    pub fn may_write(&self, role: Role, scope: &Scope) -> bool {
        self.row(role).is_some_and(|a| a.write.contains(scope))
    }

    pub fn may_carry(&self, role: Role, scope: &Scope) -> bool {
        self.row(role).is_some_and(|a| a.carry.contains(scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(name: &str) -> Scope {
        Scope::new(name).unwrap()
    }

    #[test]
    fn health_is_read_and_written_only_by_clinics_and_the_hub() {
        let policy = Policy::standard();
        let health = scope("health");
        for role in Role::ALL {
            let allowed = matches!(role, Role::Clinic | Role::Hub);
            assert_eq!(
                policy.may_read(role, &health),
                allowed,
                "{role} reads health"
            );
            assert_eq!(
                policy.may_write(role, &health),
                allowed,
                "{role} writes health"
            );
        }
        for role in [Role::Resort, Role::Commune, Role::School, Role::Port] {
            assert!(
                !policy.access(role).may_receive(&health),
                "{role} receives health"
            );
        }
    }

    #[test]
    fn the_ferry_carries_health_but_cannot_read_it() {
        let policy = Policy::standard();
        let health = scope("health");
        assert!(policy.may_carry(Role::Ferry, &health));
        assert!(!policy.may_read(Role::Ferry, &health));
        let ferry = policy.access(Role::Ferry);
        for name in SCOPES {
            assert!(
                ferry.may_receive(&scope(name)),
                "the ferry takes {name} across"
            );
        }
    }

    #[test]
    fn every_role_reads_what_it_writes_and_never_reads_what_it_carries() {
        let policy = Policy::standard();
        for role in Role::ALL {
            let access = policy.access(role);
            assert!(access.write.is_subset(&access.read), "{role}: {access:?}");
            assert!(access.read.is_disjoint(&access.carry), "{role}: {access:?}");
            assert!(
                access.read.contains(&scope("system")),
                "{role} reads system"
            );
        }
        assert_eq!(policy.access(Role::Hub).read.len(), SCOPES.len());
    }

    #[test]
    fn only_the_hub_writes_system_records() {
        let policy = Policy::standard();
        for role in Role::ALL {
            assert_eq!(policy.may_write(role, &scope("system")), role == Role::Hub);
        }
    }

    /// A documented row: role, its (reads, writes, carries) as sets and as written.
    type DocRow = (String, [BTreeSet<Scope>; 3], [Vec<String>; 3]);

    /// The rows of the `| role | reads | writes | carries |` table in docs/provisioning.md.
    fn documented_table() -> Vec<DocRow> {
        let doc = include_str!("../../docs/provisioning.md");
        let mut lines = doc
            .lines()
            .skip_while(|line| *line != "| role | reads | writes | carries |")
            .skip(2);
        let mut rows = Vec::new();
        for line in lines.by_ref().take_while(|line| line.starts_with('|')) {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 4, "{line}");
            let names = |cell: &str| -> Vec<String> {
                if cell == "–" {
                    return Vec::new();
                }
                cell.split(", ").map(str::to_owned).collect()
            };
            let lists = [names(cells[1]), names(cells[2]), names(cells[3])];
            let sets = lists
                .clone()
                .map(|list| list.iter().map(|name| scope(name)).collect::<BTreeSet<_>>());
            rows.push((cells[0].to_owned(), sets, lists));
        }
        rows
    }

    #[test]
    fn the_documented_table_is_the_standard_policy() {
        let policy = Policy::standard();
        let rows = documented_table();
        let roles: Vec<&str> = rows.iter().map(|(role, ..)| role.as_str()).collect();
        let expected: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
        assert_eq!(roles, expected, "one row per role, in Role::ALL order");

        for (role, [read, write, carry], lists) in rows {
            let access = policy.access(role.parse().unwrap());
            assert_eq!(read, access.read, "{role} reads");
            assert_eq!(write, access.write, "{role} writes");
            assert_eq!(carry, access.carry, "{role} carries");
            for list in lists {
                let priorities: Vec<u8> = list.iter().map(|name| scope(name).priority()).collect();
                assert!(
                    priorities.is_sorted(),
                    "{role}: {list:?} not in priority order"
                );
            }
        }
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!(
            "Hub"
                .parse::<Role>()
                .unwrap_err()
                .to_string()
                .contains("\"Hub\"")
        );
    }
}
