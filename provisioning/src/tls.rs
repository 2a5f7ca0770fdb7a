//! TLS material for what a box serves over HTTPS (its site's web pages and API): the
//! network's certificate authority and each box's certificate, made with rcgen.
//!
//! This is separate from the node certificates of [`crate::cert`]: iroh authenticates peers by
//! their ed25519 node id, while browsers and devices on a site's Wi-Fi speak TLS and trust
//! `tls-ca.pem`. Both CA and box keys are ECDSA P-256, which every TLS stack accepts.
//!
//! The CA's distinguished name is derived from the network id alone, so the authority can
//! rebuild the issuer from its sealed key without keeping the CA's parameters elsewhere.
//!
//! The organization (O) of a certificate the CA issues is what the box's embedded MQTT broker
//! holds a TLS client to: topics under `/tenants/{O}/` only (`docs/mqtt.md`). A box's O is its
//! network id in hex, so boxes share the network's sync tree; a device's O is its own name.

use std::fmt;
use std::net::IpAddr;

use crdt_model::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::device::{DeviceClass, DeviceName};
use crate::names::{NetworkId, Site};
use crate::policy::Role;

/// How long the network's TLS CA certificate is valid: twenty years.
const CA_VALIDITY_S: i64 = 20 * 365 * 86_400;

/// Why TLS material could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("TLS {what}: {reason}")]
    Rcgen { what: &'static str, reason: String },
    #[error("time {unix_s} is outside what a TLS certificate can state")]
    Time { unix_s: i64 },
}

fn rcgen_err(what: &'static str) -> impl Fn(rcgen::Error) -> TlsError {
    move |err| TlsError::Rcgen {
        what,
        reason: err.to_string(),
    }
}

fn datetime(unix_s: i64) -> Result<OffsetDateTime, TlsError> {
    OffsetDateTime::from_unix_timestamp(unix_s).map_err(|_| TlsError::Time { unix_s })
}

/// The network's TLS certificate authority: its key and the parameters it signs with.
pub struct TlsCa {
    network: NetworkId,
    key: KeyPair,
}

impl TlsCa {
    /// A new CA for `network`, with a fresh key.
    pub(crate) fn generate(network: NetworkId) -> Result<Self, TlsError> {
        let key = KeyPair::generate().map_err(rcgen_err("CA key generation"))?;
        Ok(Self { network, key })
    }

    /// The CA of `network` whose key is the PKCS#8 DER `key_der`.
    pub(crate) fn from_key_der(network: NetworkId, key_der: &[u8]) -> Result<Self, TlsError> {
        let key = KeyPair::try_from(key_der).map_err(rcgen_err("CA key"))?;
        Ok(Self { network, key })
    }

    /// The key as PKCS#8 DER, for sealing.
    pub(crate) fn key_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.key.serialize_der())
    }

    fn params(&self) -> CertificateParams {
        let mut name = DistinguishedName::new();
        name.push(
            DnType::OrganizationName,
            format!("culao network {}", self.network),
        );
        name.push(
            DnType::CommonName,
            format!("culao TLS CA {}", self.network.short()),
        );
        let mut params = CertificateParams::default();
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
    }

    /// The CA's self-signed certificate, PEM, valid from `now_unix_s` - 1 day for 20 years.
    pub(crate) fn certificate_pem(&self, now_unix_s: i64) -> Result<String, TlsError> {
        let mut params = self.params();
        params.not_before = datetime(now_unix_s - 86_400)?;
        params.not_after = datetime(now_unix_s + CA_VALIDITY_S)?;
        let cert = params
            .self_signed(&self.key)
            .map_err(rcgen_err("CA certificate"))?;
        Ok(cert.pem())
    }

    /// A server-and-client certificate for one box, with a fresh key.
    pub(crate) fn issue(&self, subject: &TlsSubject<'_>) -> Result<TlsCertificate, TlsError> {
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, self.network.to_string());
        name.push(DnType::OrganizationalUnitName, subject.role.as_str());
        name.push(DnType::CommonName, subject.node.to_string());
        let mut params = CertificateParams::default();
        params.distinguished_name = name;
        params.serial_number = Some(SerialNumber::from_slice(&subject.serial.to_be_bytes()));
        params.not_before = datetime(subject.not_before_unix_s)?;
        params.not_after = datetime(subject.not_after_unix_s)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.subject_alt_names = subject_alt_names(subject)?;
        self.sign_fresh(params, "box certificate")
    }

    /// A client-only certificate for one site device, with a fresh key: its organization is
    /// the device's name, which the broker turns into the one topic root it may use.
    pub(crate) fn issue_device(
        &self,
        subject: &DeviceSubject<'_>,
    ) -> Result<TlsCertificate, TlsError> {
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, subject.name.as_str());
        name.push(DnType::OrganizationalUnitName, subject.class.as_str());
        name.push(
            DnType::CommonName,
            format!("{} {} at {}", subject.class, subject.name, subject.site),
        );
        let mut params = CertificateParams::default();
        params.distinguished_name = name;
        params.not_before = datetime(subject.not_before_unix_s)?;
        params.not_after = datetime(subject.not_after_unix_s)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign_fresh(params, "device certificate")
    }

    /// Signs `params` for a fresh key, naming this CA's key as the authority's.
    fn sign_fresh(
        &self,
        mut params: CertificateParams,
        what: &'static str,
    ) -> Result<TlsCertificate, TlsError> {
        let key = KeyPair::generate().map_err(rcgen_err(what))?;
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::new(self.params(), &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(rcgen_err(what))?;
        Ok(TlsCertificate {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }
}

/// The names and dates a device's TLS certificate states.
#[derive(Debug)]
pub(crate) struct DeviceSubject<'a> {
    pub name: &'a DeviceName,
    pub class: DeviceClass,
    pub site: &'a Site,
    pub not_before_unix_s: i64,
    pub not_after_unix_s: i64,
}

impl fmt::Debug for TlsCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsCa(network {}, key: <hidden>)", self.network.short())
    }
}

/// The names and dates a box's TLS certificate states.
#[derive(Debug)]
pub(crate) struct TlsSubject<'a> {
    pub node: NodeId,
    pub role: Role,
    pub site: &'a Site,
    pub addresses: &'a [IpAddr],
    pub serial: u64,
    pub not_before_unix_s: i64,
    pub not_after_unix_s: i64,
}

/// The site (a DNS label, also reachable as `<site>.local` over mDNS), `localhost`,
/// the loopback addresses, and every address the box listens on.
fn subject_alt_names(subject: &TlsSubject<'_>) -> Result<Vec<SanType>, TlsError> {
    let dns = |name: String| -> Result<SanType, TlsError> {
        let name = name.try_into().map_err(rcgen_err("subject name"))?;
        Ok(SanType::DnsName(name))
    };
    let mut names = vec![
        dns(subject.site.to_string())?,
        dns(format!("{}.local", subject.site))?,
        dns("localhost".to_owned())?,
    ];
    let loopback = [
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    ];
    let mut addresses: Vec<IpAddr> = loopback.into_iter().collect();
    for addr in subject.addresses {
        if !addr.is_unspecified() && !addresses.contains(addr) {
            addresses.push(*addr);
        }
    }
    names.extend(addresses.into_iter().map(SanType::IpAddress));
    Ok(names)
}

/// A box's TLS certificate and key, both PEM. The key's `Debug` is hidden.
#[derive(Clone)]
pub struct TlsCertificate {
    pub cert_pem: String,
    pub key_pem: Zeroizing<String>,
}

impl fmt::Debug for TlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCertificate")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<hidden>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_tls_key() {
        let ca = TlsCa::generate(NetworkId::from_bytes([1; 16])).unwrap();
        let site = Site::new("port").unwrap();
        let issued = ca
            .issue(&TlsSubject {
                node: crdt_model::Identity::from_secret_bytes([2; 32]).node_id(),
                role: Role::Port,
                site: &site,
                addresses: &[],
                serial: 1,
                not_before_unix_s: 0,
                not_after_unix_s: 86_400,
            })
            .unwrap();
        assert!(issued.key_pem.contains("PRIVATE KEY"));
        for shown in [format!("{ca:?}"), format!("{issued:?}")] {
            assert!(
                shown.contains("<hidden>") && !shown.contains("PRIVATE"),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_ca_rebuilt_from_its_sealed_key_is_the_same_ca() {
        let ca = TlsCa::generate(NetworkId::from_bytes([1; 16])).unwrap();
        let again = TlsCa::from_key_der(NetworkId::from_bytes([1; 16]), &ca.key_der()).unwrap();
        assert_eq!(again.key.public_key_raw(), ca.key.public_key_raw());
        assert!(TlsCa::from_key_der(NetworkId::from_bytes([1; 16]), b"junk").is_err());
    }
}
