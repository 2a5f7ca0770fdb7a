//! Tour contracts (scope `bookings`): an electronic contract and itinerary between an agency
//! and a visitor.
//!
//! The agency writes the terms and signs them; the visitor accepts them. Each signature
//! records the digest of the terms it covers, so a contract is agreed only when both sides
//! signed the terms it holds now: an itinerary edited while the visitor was accepting an
//! older version shows as not agreed, instead of binding the visitor to terms never seen.

use std::collections::BTreeMap;

use automerge::AutoCommit;
use chrono::NaiveDate;

use super::store::{self, Fields, MapReader, MapWriter, Record, Scope, StoreError};
use super::values::{
    IdDocument, InputError, NodeRef, PersonName, Phone, RecordId, Text, Timestamp, Vnd,
};

/// A tour operation that the records or their rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TourError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("only the agency's box {agency} may change or sign contract {contract}; {node} asked")]
    NotAgency {
        contract: RecordId,
        node: NodeRef,
        agency: NodeRef,
    },
    #[error("contract {contract} is agreed by both sides and can no longer change")]
    Agreed { contract: RecordId },
    #[error("contract {contract} has not been signed by the agency yet")]
    NotOffered { contract: RecordId },
    #[error("contract {contract} was cancelled")]
    Cancelled { contract: RecordId },
}

/// One stop of an itinerary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// Day of the tour, from 1.
    pub day: u32,
    pub place: Text,
    pub activity: Text,
}

impl Fields for Stop {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("day", &self.day)?;
        w.put("place", &self.place)?;
        w.put("activity", &self.activity)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            day: r.get("day")?,
            place: r.get("place")?,
            activity: r.get("activity")?,
        })
    }
}

/// A signature over the terms as they were when it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub at: Timestamp,
    pub node: NodeRef,
    /// The [`TourContract::terms_digest`] signed.
    pub digest: String,
}

impl Fields for Signature {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("at", &self.at)?;
        w.put("node", &self.node)?;
        w.put("digest", &self.digest)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            at: r.get("at")?,
            node: r.get("node")?,
            digest: r.get("digest")?,
        })
    }
}

/// Where a contract stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractStatus {
    Draft,
    /// Signed by the agency, waiting for the visitor.
    Offered,
    Agreed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TourContract {
    pub id: RecordId,
    pub agency: RecordId,
    /// The agency's box: the only writer of terms and of the agency's signature.
    pub agency_node: NodeRef,
    pub visitor: PersonName,
    pub document: IdDocument,
    pub phone: Option<Phone>,
    pub price: Vnd,
    pub starts: NaiveDate,
    pub itinerary: BTreeMap<RecordId, Stop>,
    pub agency_signature: Option<Signature>,
    pub visitor_acceptance: Option<Signature>,
    pub cancelled_at: Option<Timestamp>,
}

impl TourContract {
    /// A digest of the terms (parties, price, dates, itinerary), the same on every replica.
    pub fn terms_digest(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for part in [
            self.agency.as_str(),
            self.visitor.as_str(),
            &self.document.encode(),
            &self.price.get().to_string(),
            &self.starts.to_string(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update(b"\0");
        }
        for (id, stop) in &self.itinerary {
            let line = format!(
                "{id}\0{}\0{}\0{}\0",
                stop.day,
                stop.place.as_str(),
                stop.activity.as_str()
            );
            hasher.update(line.as_bytes());
        }
        hasher.finalize().to_hex()[..32].to_owned()
    }

    pub fn status(&self) -> ContractStatus {
        let digest = self.terms_digest();
        let signed = |s: &Option<Signature>| s.as_ref().is_some_and(|s| s.digest == digest);
        let agency_signed = self
            .agency_signature
            .as_ref()
            .is_some_and(|s| s.node == self.agency_node && s.digest == digest);
        match (
            self.cancelled_at,
            agency_signed,
            signed(&self.visitor_acceptance),
        ) {
            (Some(_), _, _) => ContractStatus::Cancelled,
            (None, true, true) => ContractStatus::Agreed,
            (None, true, false) => ContractStatus::Offered,
            (None, false, _) => ContractStatus::Draft,
        }
    }
}

impl Record for TourContract {
    const SCOPE: Scope = Scope::Bookings;
    const COLLECTION: &'static str = "tours";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for TourContract {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("agency", &self.agency)?;
        w.put("agency_node", &self.agency_node)?;
        w.put("visitor", &self.visitor)?;
        w.put("document", &self.document)?;
        w.put("phone", &self.phone)?;
        w.put("price", &self.price)?;
        w.put("starts", &self.starts)?;
        w.items("itinerary", &self.itinerary)?;
        w.nested_opt("agency_signature", self.agency_signature.as_ref())?;
        w.nested_opt("visitor_acceptance", self.visitor_acceptance.as_ref())?;
        w.put("cancelled_at", &self.cancelled_at)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            agency: r.get("agency")?,
            agency_node: r.get("agency_node")?,
            visitor: r.get("visitor")?,
            document: r.get("document")?,
            phone: r.get("phone")?,
            price: r.get("price")?,
            starts: r.get("starts")?,
            itinerary: r.items("itinerary")?,
            agency_signature: r.nested_opt("agency_signature")?,
            visitor_acceptance: r.nested_opt("visitor_acceptance")?,
            cancelled_at: r.get("cancelled_at")?,
        })
    }
}

fn editable(contract: &TourContract, by: &NodeRef) -> Result<(), TourError> {
    if by != &contract.agency_node {
        let (node, agency) = (by.clone(), contract.agency_node.clone());
        return Err(TourError::NotAgency {
            contract: contract.id.clone(),
            node,
            agency,
        });
    }
    match contract.status() {
        ContractStatus::Agreed => Err(TourError::Agreed {
            contract: contract.id.clone(),
        }),
        ContractStatus::Cancelled => Err(TourError::Cancelled {
            contract: contract.id.clone(),
        }),
        ContractStatus::Draft | ContractStatus::Offered => Ok(()),
    }
}

/// The agency writes a new contract or new terms; `by` must be its box.
pub fn write_terms(
    doc: &mut AutoCommit,
    contract: &TourContract,
    by: &NodeRef,
) -> Result<(), TourError> {
    if let Some(current) = store::get::<TourContract>(doc, &contract.id)? {
        editable(&current, by)?;
    } else if by != &contract.agency_node {
        let (node, agency) = (by.clone(), contract.agency_node.clone());
        return Err(TourError::NotAgency {
            contract: contract.id.clone(),
            node,
            agency,
        });
    }
    store::put(doc, contract)?;
    Ok(())
}

/// The agency signs the terms the contract holds now.
pub fn sign(
    doc: &mut AutoCommit,
    id: &RecordId,
    by: &NodeRef,
    at: Timestamp,
) -> Result<(), TourError> {
    let mut contract: TourContract = store::fetch(doc, id)?;
    editable(&contract, by)?;
    let digest = contract.terms_digest();
    contract.agency_signature = Some(Signature {
        at,
        node: by.clone(),
        digest,
    });
    store::put(doc, &contract)?;
    Ok(())
}

/// The visitor accepts the terms the contract holds now, at whichever box they use.
pub fn accept(
    doc: &mut AutoCommit,
    id: &RecordId,
    node: &NodeRef,
    at: Timestamp,
) -> Result<(), TourError> {
    let mut contract: TourContract = store::fetch(doc, id)?;
    match contract.status() {
        ContractStatus::Draft => {
            return Err(TourError::NotOffered {
                contract: id.clone(),
            });
        }
        ContractStatus::Cancelled => {
            return Err(TourError::Cancelled {
                contract: id.clone(),
            });
        }
        ContractStatus::Offered | ContractStatus::Agreed => {}
    }
    let digest = contract.terms_digest();
    contract.visitor_acceptance = Some(Signature {
        at,
        node: node.clone(),
        digest,
    });
    store::put(doc, &contract)?;
    Ok(())
}

/// Cancels a contract, by either side; final.
pub fn cancel(doc: &mut AutoCommit, id: &RecordId, at: Timestamp) -> Result<(), TourError> {
    let mut contract: TourContract = store::fetch(doc, id)?;
    if contract.cancelled_at.is_none() {
        contract.cancelled_at = Some(at);
        store::put(doc, &contract)?;
    }
    Ok(())
}
