//! Reading an enrollment bundle (`culao provision node`) into what the box runs on: its
//! identity, its trust, and the peers the bundle names.

use std::path::Path;

use provisioning::Bundle;

use crate::config::PeerConfig;
use crate::trust::Trust;
use crate::{Enrolment, StartError};

/// Loads and checks the bundle in `dir` (see `provisioning::Bundle::load`) at `now_unix_s`.
pub fn load(dir: &Path, now_unix_s: i64) -> Result<Enrolment, StartError> {
    let loaded =
        Bundle::load(dir, now_unix_s).map_err(|err| StartError::Bundle(err.to_string()))?;
    let bundle = loaded.bundle;
    let trust = Trust::new(
        bundle.authority,
        bundle.certificate,
        bundle.revocations,
        now_unix_s,
    )
    .map_err(|err| StartError::Bundle(format!("{}: {err}", dir.display())))?;
    let peers = bundle
        .peers
        .peers
        .into_iter()
        .map(|peer| PeerConfig {
            id: peer.node,
            addrs: peer.addrs,
        })
        .collect();
    Ok(Enrolment {
        identity: bundle.identity,
        trust,
        peers,
        tls: Some(bundle.tls),
    })
}
