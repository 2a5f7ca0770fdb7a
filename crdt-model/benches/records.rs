//! Hot-path costs of `crdt_model::records` (being written).

fn main() {}
