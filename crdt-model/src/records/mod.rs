//! The island's records: typed documents over automerge, each in its scope, with the rules
//! that keep them correct while boxes are cut off from each other.
//!
//! Everything here is pure: functions take an [`automerge::AutoCommit`] and plain values
//! (times, ids, the acting node) and return typed errors. Nothing reads a clock, draws a
//! random number or does I/O; ids of new records are chosen by the caller.
//!
//! # The map
//!
//! - [`values`]: validated values (ids, node names, VND, phone and citizen-id numbers,
//!   Vietnamese text, instants in UTC with the site's offset for display, date ranges) and
//!   [`values::InputError`], which names the field and the offending value.
//! - [`store`]: how a record sits in a document (`ROOT.<collection>.<id>`, one map per
//!   record, one key per field), [`store::Record`] with its `SCOPE` and `SCOPE_NAME`
//!   constants, and the field-by-field reconciliation that writes records.
//! - [`escrow`]: shares of a bounded quantity that each box spends alone (wallet money,
//!   ferry seats, offer caps), with recalls as pending requests.
//! - [`tickets`] (`tickets`): passes, entitlements, sailings and their seat quotas, sale,
//!   refund, transfer, expiry, gate redemptions, delegation of the redemption right, and
//!   the deterministic double-redemption conflicts.
//! - [`cards`], [`wallet`] (`cards`): the national card (profile, signing key, memberships,
//!   student and staff enrolment), attendance, door access; the VND wallet.
//! - [`bookings`], [`tours`], [`loyalty`] (`bookings`): vehicles, bookings of rooms and
//!   vehicles confirmed by their owner, attraction check-ins, tour contracts, loyalty offers.
//! - [`lodging`] (`lodging`): establishments, rooms, lodging registration at check-in/out.
//! - [`health`] (`health`): the FHIR IPS-shaped patient summary, encounters, appointments and
//!   teleconsultations, family doctor, consent.
//! - [`sports`] (`sports`): tournaments, teams, players, fixtures, results by referee.
//! - [`radio`] (`radio`): announcements with Circular 39/2020 priorities and their delivery
//!   per loudspeaker cluster.
//! - [`stats`] (`stats`): figures derived from the records, equal on any two replicas that
//!   hold the same records.
//!
//! # How records merge
//!
//! A document holds one scope (`ROOT.scope`; writing a record of another scope is refused).
//! Fields are automerge map keys, so concurrent edits of *different* fields of one record
//! both survive: a write puts only the fields whose value changes. Concurrent edits of the
//! *same* scalar field resolve as automerge does (a deterministic winner, the same on every
//! replica, never a clock); that is acceptable only for fields with one writer or where the
//! table below says so. Sets and nested items are maps keyed by id, so concurrent additions
//! all survive. Facts (a redemption, a payment, a check-in, a referee's score) are separate
//! keys written once, never overwritten: what two partitions did is all there after the
//! merge. Where two replicas create the same container map concurrently, automerge keeps two
//! objects under one key; readers take the union of both, so nothing is hidden.
//!
//! # Rules that hold under partition
//!
//! "Owner" is the node that decides (DESIGN.md, "Rules that hold under partition"). Every
//! rule is checked by the acting node against its own view, which for owner-decided fields
//! always contains the owner's earlier decisions.
//!
//! | record | field | merge rule | who decides | a partition can | a partition cannot |
//! | --- | --- | --- | --- | --- | --- |
//! | pass / entitlement | `right`, `delegate` | single writer (the right's owner) | owner of the redemption right (the port box for a ferry boarding) | delay a delegation or a take-back reaching the delegate | let a node redeem that never held the right in its view |
//! | redemption | one key per use under `redemptions.<pass>.<ent>` | append-only, never overwritten | the right holder in its own view | produce a double use (owner took the right back while its delegate was cut off) | hide it: [`tickets::conflicts`] lists it once, identically on every replica, until staff resolve it; a later use reopens it |
//! | entitlement | `refund` | single writer (the right's owner, undelegated) | owner of the right | refund at the owner while a stale delegate redeems | hide it: a use after refund is a conflict too |
//! | pass | `holder` (transfer) | single writer | issuer | delay the transfer | transfer a pass already used |
//! | sailing seats | escrow ledger per class | append-only credits, moves, debits | operator delegates quotas; each box sells within its quota | leave seats unsold in a cut-off box's quota | sell beyond capacity |
//! | wallet | escrow ledger in VND | append-only top-ups, payments, moves, recalls | owner (home box) delegates allowances; each box pays within its own | delay a recall; top-ups anywhere at once | take the balance, or any box's allowance, below zero |
//! | booking | `answer` | single writer (resource owner); answers by others ignored | the room's or vehicle's owner | leave requests made elsewhere pending | confirm two bookings sharing a night |
//! | booking | `cancelled_at` | monotone (set once) | requester or owner | cancel while the owner confirms: cancelled wins | un-cancel |
//! | loyalty offer | escrow ledger `cap` | append-only | chain's node delegates quotas to businesses | leave quota unused | redeem beyond the cap |
//! | loyalty stamps | append-only stamps | union | any business of the chain | spend the same stamps at two cut-off boxes (the balance shows negative) | lose a stamp or a redemption |
//! | tour contract | terms, `agency_signature`, `visitor_acceptance` | per field; signatures carry the terms' digest | agency writes and signs; visitor accepts | accept terms that changed meanwhile | count as agreed: status needs both digests equal to the current terms |
//! | lodging registration | all fields, `checked_out_at` | single writer | the establishment's box | delay the registration reaching the hub | register a guest for another establishment |
//! | card, patient summary | each field; items by id | per field (same field: automerge's deterministic winner) | issuer or clinic | edit different fields or add items at two sites: both kept | merge two edits of one field; the loser stays visible to automerge's `get_all` |
//! | appointment | `accepted`, `answered_at` | single writer | the clinic's box | leave requests pending | be accepted by another node |
//! | consent | `revoked_at` | monotone | patient (via any box) | delay a revocation | un-revoke (a new grant is a new record) |
//! | sports result | one entry per referee | per-referee keys; differing entries derive a conflict | referees enter; organiser decides over the entries it saw | let two referees enter different scores | pick one silently: [`sports::result`] shows the conflict until a decision covers exactly the entries present |
//! | announcement | `cancelled`, `replaces` | monotone | the authoring station | play a cancelled item in a cut-off commune until the cancellation arrives | revive a cancelled or replaced announcement |
//! | delivery per cluster | one key per state | furthest state wins (`queued < failed < playing < played`) | the commune station | report late | move a cluster's state backwards |
//! | statistics | one record per day | every writer writes the same derived values | nobody: derived | be stale until the records arrive | differ between replicas holding the same records |
//!
//! # Choices, and why
//!
//! - Hand-written reconciliation over the automerge API rather than autosurgeon (0.14 does
//!   match automerge 0.12): the rules above need control of the document's shape — facts as
//!   separate keys, conflicting values read with `get_all`, container maps read as unions —
//!   and writing only changed fields, which a derive would hide. It also keeps the crate's
//!   dependencies to automerge itself; [`store::Field`] and [`store::Fields`] keep the
//!   per-record code to one line per field.
//! - Escrow as append-only entries with derived shares (a bounded counter) rather than
//!   counters or balances per box: every entry is written once by one node, so there is
//!   nothing to conflict, and the audit trail is the ledger itself.
//! - Conflicts derived, not stored: a conflict record is a pure function of the records, so
//!   it cannot be detected twice or differently; only staff's resolution is stored.
//!
//! # Known limits
//!
//! - A share check reads per-node running totals ([`escrow::Totals`], one row per node,
//!   written only by that node), so a payment costs the same however long the ledger; the
//!   conflict scan, overlap checks and full balances still read their records, in time
//!   proportional to the redemptions, bookings or entries involved.
//! - Moving a resource's ownership (a room to a new owner box) is not modelled: the owner is
//!   fixed when the record is created.
//! - Loyalty stamps are not escrowed (see [`loyalty`]).
//! - Text fields are scalars, not collaborative text: two concurrent edits of one note keep
//!   one (deterministically), not a character merge.

pub mod bookings;
pub mod cards;
pub mod escrow;
pub mod health;
pub mod lodging;
pub mod loyalty;
pub mod radio;
pub mod sports;
pub mod stats;
pub mod store;
pub mod tickets;
pub mod tours;
pub mod values;
pub mod wallet;

pub use store::{Record, Scope, StoreError};
pub use values::{InputError, NodeRef, RecordId, Timestamp, Vnd};
