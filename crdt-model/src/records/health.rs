//! Health (scope `health`): a patient summary per resident shaped after the HL7 FHIR
//! International Patient Summary (patient, allergies, medications, problems, immunizations),
//! encounter summaries written by a clinic, appointment and teleconsultation requests, the
//! link to a family doctor, and consent.
//!
//! A summary's sections are maps of entries keyed by id, so two clinics adding an allergy
//! and a medication offline both keep theirs. Appointments follow the pending-request rule:
//! the clinic's box answers, a request made elsewhere waits. A consent, once revoked, stays
//! revoked; giving it again is a new consent record.

use std::collections::BTreeMap;

use automerge::AutoCommit;
use chrono::NaiveDate;

use super::store::{self, Fields, MapReader, MapWriter, Record, Scope, StoreError, tag_enum};
use super::values::{IdCard, InputError, NodeRef, PersonName, Phone, RecordId, Text, Timestamp};

tag_enum! {
    /// FHIR administrative gender.
    pub enum Sex {
        Male = "male",
        Female = "female",
        Other = "other",
        Unknown = "unknown",
    }
}

tag_enum! {
    /// FHIR AllergyIntolerance.criticality.
    pub enum Criticality {
        Low = "low",
        High = "high",
        UnableToAssess = "unable-to-assess",
    }
}

tag_enum! {
    pub enum ConsentPurpose {
        Treatment = "treatment",
        Teleconsultation = "teleconsultation",
        Sharing = "sharing",
        Research = "research",
    }
}

/// A health operation that the records or their rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("only the clinic's box {owner} may answer appointment {appointment}; {node} asked")]
    NotClinic {
        appointment: RecordId,
        node: NodeRef,
        owner: NodeRef,
    },
    #[error("appointment {appointment} was already answered")]
    Answered { appointment: RecordId },
    #[error("consent {consent} was already revoked")]
    Revoked { consent: RecordId },
}

/// The person the summary is about (FHIR Patient: a name and a birth date are required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    /// The 12-digit personal id, FHIR system `http://fhir.hl7.org.vn/core/sid/cccd`.
    pub citizen_id: IdCard,
    pub name: PersonName,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub commune: RecordId,
    pub phone: Option<Phone>,
}

impl Fields for Patient {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("citizen_id", &self.citizen_id)?;
        w.put("name", &self.name)?;
        w.put("birth_date", &self.birth_date)?;
        w.put("sex", &self.sex)?;
        w.put("commune", &self.commune)?;
        w.put("phone", &self.phone)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            citizen_id: r.get("citizen_id")?,
            name: r.get("name")?,
            birth_date: r.get("birth_date")?,
            sex: r.get("sex")?,
            commune: r.get("commune")?,
            phone: r.get("phone")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allergy {
    pub substance: Text,
    pub criticality: Criticality,
    pub reaction: Option<Text>,
    pub recorded: NaiveDate,
}

impl Fields for Allergy {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("substance", &self.substance)?;
        w.put("criticality", &self.criticality)?;
        w.put("reaction", &self.reaction)?;
        w.put("recorded", &self.recorded)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            substance: r.get("substance")?,
            criticality: r.get("criticality")?,
            reaction: r.get("reaction")?,
            recorded: r.get("recorded")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medication {
    pub name: Text,
    pub dosage: Text,
    pub since: NaiveDate,
    pub until: Option<NaiveDate>,
}

impl Fields for Medication {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("name", &self.name)?;
        w.put("dosage", &self.dosage)?;
        w.put("since", &self.since)?;
        w.put("until", &self.until)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            name: r.get("name")?,
            dosage: r.get("dosage")?,
            since: r.get("since")?,
            until: r.get("until")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub description: Text,
    /// ICD-10 code, if coded (`E11` for type 2 diabetes).
    pub icd10: Option<RecordId>,
    pub onset: NaiveDate,
    pub active: bool,
}

impl Fields for Problem {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("description", &self.description)?;
        w.put("icd10", &self.icd10)?;
        w.put("onset", &self.onset)?;
        w.put("active", &self.active)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            description: r.get("description")?,
            icd10: r.get("icd10")?,
            onset: r.get("onset")?,
            active: r.get("active")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Immunization {
    pub vaccine: Text,
    pub date: NaiveDate,
    pub dose: u32,
}

impl Fields for Immunization {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("vaccine", &self.vaccine)?;
        w.put("date", &self.date)?;
        w.put("dose", &self.dose)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            vaccine: r.get("vaccine")?,
            date: r.get("date")?,
            dose: r.get("dose")?,
        })
    }
}

/// The resident's family doctor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyDoctor {
    pub practitioner: RecordId,
    pub name: PersonName,
    pub clinic: RecordId,
    pub since: NaiveDate,
}

impl Fields for FamilyDoctor {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("practitioner", &self.practitioner)?;
        w.put("name", &self.name)?;
        w.put("clinic", &self.clinic)?;
        w.put("since", &self.since)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            practitioner: r.get("practitioner")?,
            name: r.get("name")?,
            clinic: r.get("clinic")?,
            since: r.get("since")?,
        })
    }
}

/// A resident's patient summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSummary {
    pub id: RecordId,
    pub patient: Patient,
    pub allergies: BTreeMap<RecordId, Allergy>,
    pub medications: BTreeMap<RecordId, Medication>,
    pub problems: BTreeMap<RecordId, Problem>,
    pub immunizations: BTreeMap<RecordId, Immunization>,
    /// IPS requires each of allergies, medications and problems to have entries or say why
    /// not; `true` means "none known" was asserted by a clinician.
    pub none_known_allergies: bool,
    pub family_doctor: Option<FamilyDoctor>,
    pub updated_at: Timestamp,
}

impl Record for PatientSummary {
    const SCOPE: Scope = Scope::Health;
    const COLLECTION: &'static str = "summaries";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for PatientSummary {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.nested("patient", &self.patient)?;
        w.items("allergies", &self.allergies)?;
        w.items("medications", &self.medications)?;
        w.items("problems", &self.problems)?;
        w.items("immunizations", &self.immunizations)?;
        w.put("none_known_allergies", &self.none_known_allergies)?;
        w.nested_opt("family_doctor", self.family_doctor.as_ref())?;
        w.put("updated_at", &self.updated_at)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            patient: r.nested("patient")?,
            allergies: r.items("allergies")?,
            medications: r.items("medications")?,
            problems: r.items("problems")?,
            immunizations: r.items("immunizations")?,
            none_known_allergies: r.get("none_known_allergies")?,
            family_doctor: r.nested_opt("family_doctor")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A clinic's summary of one visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encounter {
    pub id: RecordId,
    pub summary: RecordId,
    pub clinic: RecordId,
    pub practitioner: RecordId,
    pub at: Timestamp,
    pub reason: Text,
    pub notes: Text,
    pub node: NodeRef,
}

impl Record for Encounter {
    const SCOPE: Scope = Scope::Health;
    const COLLECTION: &'static str = "encounters";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Encounter {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("summary", &self.summary)?;
        w.put("clinic", &self.clinic)?;
        w.put("practitioner", &self.practitioner)?;
        w.put("at", &self.at)?;
        w.put("reason", &self.reason)?;
        w.put("notes", &self.notes)?;
        w.put("node", &self.node)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            summary: r.get("summary")?,
            clinic: r.get("clinic")?,
            practitioner: r.get("practitioner")?,
            at: r.get("at")?,
            reason: r.get("reason")?,
            notes: r.get("notes")?,
            node: r.get("node")?,
        })
    }
}

/// A request to see a clinic, in person or by teleconsultation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    pub id: RecordId,
    pub summary: RecordId,
    pub clinic: RecordId,
    /// The clinic's box, the only one whose answer counts.
    pub clinic_node: NodeRef,
    pub slot: Timestamp,
    pub minutes: u32,
    pub teleconsultation: bool,
    pub reason: Text,
    pub requested_by: NodeRef,
    pub requested_at: Timestamp,
    /// The clinic's answer: accepted or not, and when.
    pub accepted: Option<bool>,
    pub answered_at: Option<Timestamp>,
}

impl Appointment {
    /// Whether the request still waits for the clinic (an answer by anyone else is ignored
    /// by construction: only [`answer`] writes it, and it checks the node).
    pub fn is_pending(&self) -> bool {
        self.accepted.is_none()
    }
}

impl Record for Appointment {
    const SCOPE: Scope = Scope::Health;
    const COLLECTION: &'static str = "appointments";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Appointment {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("summary", &self.summary)?;
        w.put("clinic", &self.clinic)?;
        w.put("clinic_node", &self.clinic_node)?;
        w.put("slot", &self.slot)?;
        w.put("minutes", &self.minutes)?;
        w.put("teleconsultation", &self.teleconsultation)?;
        w.put("reason", &self.reason)?;
        w.put("requested_by", &self.requested_by)?;
        w.put("requested_at", &self.requested_at)?;
        w.put("accepted", &self.accepted)?;
        w.put("answered_at", &self.answered_at)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            summary: r.get("summary")?,
            clinic: r.get("clinic")?,
            clinic_node: r.get("clinic_node")?,
            slot: r.get("slot")?,
            minutes: r.get("minutes")?,
            teleconsultation: r.get("teleconsultation")?,
            reason: r.get("reason")?,
            requested_by: r.get("requested_by")?,
            requested_at: r.get("requested_at")?,
            accepted: r.get("accepted")?,
            answered_at: r.get("answered_at")?,
        })
    }
}

/// A patient's consent for a grantee to use their records for a purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: RecordId,
    pub summary: RecordId,
    pub grantee: RecordId,
    pub purpose: ConsentPurpose,
    pub granted_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub node: NodeRef,
}

impl Record for Consent {
    const SCOPE: Scope = Scope::Health;
    const COLLECTION: &'static str = "consents";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Consent {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("summary", &self.summary)?;
        w.put("grantee", &self.grantee)?;
        w.put("purpose", &self.purpose)?;
        w.put("granted_at", &self.granted_at)?;
        w.put("revoked_at", &self.revoked_at)?;
        w.put("node", &self.node)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            summary: r.get("summary")?,
            grantee: r.get("grantee")?,
            purpose: r.get("purpose")?,
            granted_at: r.get("granted_at")?,
            revoked_at: r.get("revoked_at")?,
            node: r.get("node")?,
        })
    }
}

/// Records an appointment or teleconsultation request, pending until the clinic answers.
pub fn request_appointment(
    doc: &mut AutoCommit,
    appointment: &Appointment,
) -> Result<(), HealthError> {
    if appointment.minutes == 0 || appointment.minutes > 240 {
        let value = i128::from(appointment.minutes);
        let reason = "minutes must be 1 to 240";
        return Err(InputError::Number {
            field: "minutes",
            value,
            reason,
        }
        .into());
    }
    if appointment.accepted.is_some() {
        return Err(HealthError::Answered {
            appointment: appointment.id.clone(),
        });
    }
    store::insert(doc, appointment)?;
    Ok(())
}

/// The clinic's box accepts or declines a pending request.
pub fn answer(
    doc: &mut AutoCommit,
    appointment_id: &RecordId,
    by: &NodeRef,
    accepted: bool,
    at: Timestamp,
) -> Result<(), HealthError> {
    let mut appointment: Appointment = store::fetch(doc, appointment_id)?;
    if by != &appointment.clinic_node {
        let (node, owner) = (by.clone(), appointment.clinic_node.clone());
        return Err(HealthError::NotClinic {
            appointment: appointment_id.clone(),
            node,
            owner,
        });
    }
    if !appointment.is_pending() {
        return Err(HealthError::Answered {
            appointment: appointment_id.clone(),
        });
    }

    appointment.accepted = Some(accepted);
    appointment.answered_at = Some(at);
    store::put(doc, &appointment)?;
    Ok(())
}

/// Revokes a consent; revocation is final.
pub fn revoke(
    doc: &mut AutoCommit,
    consent_id: &RecordId,
    at: Timestamp,
) -> Result<(), HealthError> {
    let mut consent: Consent = store::fetch(doc, consent_id)?;
    if consent.revoked_at.is_some() {
        return Err(HealthError::Revoked {
            consent: consent_id.clone(),
        });
    }
    consent.revoked_at = Some(at);
    store::put(doc, &consent)?;
    Ok(())
}

/// Whether `grantee` holds a live consent for `purpose` on a summary, in this replica's view.
pub fn consents(
    doc: &AutoCommit,
    summary: &RecordId,
    grantee: &RecordId,
    purpose: ConsentPurpose,
) -> Result<bool, HealthError> {
    let consents: Vec<Consent> = store::list(doc)?;
    Ok(consents.iter().any(|c| {
        &c.summary == summary
            && &c.grantee == grantee
            && c.purpose == purpose
            && c.revoked_at.is_none()
    }))
}
