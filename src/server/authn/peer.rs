//! The names in a verified client certificate, read once per connection by the TLS accept
//! loop (`server::tls`) and mapped to a principal by `auth.certificates` (`server::authn`).

/// The names in a verified client certificate (mTLS), read once per connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Subject common names (CN).
    pub common_names: Vec<String>,
    /// DNS names among the subject alternative names.
    pub dns_names: Vec<String>,
    /// URIs among the subject alternative names (e.g. SPIFFE IDs).
    pub uris: Vec<String>,
}

impl PeerIdentity {
    /// The names in a DER-encoded X.509 certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
        let (_, cert) = X509Certificate::from_der(der).map_err(|err| err.to_string())?;
        let common_names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect();
        let mut identity = Self {
            common_names,
            ..Self::default()
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => identity.dns_names.push((*dns).to_owned()),
                    GeneralName::URI(uri) => identity.uris.push((*uri).to_owned()),
                    _ => {}
                }
            }
        }
        Ok(identity)
    }

    /// The names, for messages (`CN=a, DNS=b, URI=c`).
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .common_names
            .iter()
            .map(|n| format!("CN={n}"))
            .chain(self.dns_names.iter().map(|n| format!("DNS={n}")))
            .chain(self.uris.iter().map(|n| format!("URI={n}")))
            .collect();
        if names.is_empty() {
            "no names".into()
        } else {
            names.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_identity_reads_common_name_and_sans() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["web.example.org".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "writer");
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://example.org/ns/a/sa/b".try_into().unwrap(),
        ));
        let cert = params.self_signed(&key).unwrap();
        let identity = PeerIdentity::from_der(cert.der()).unwrap();
        assert_eq!(identity.common_names, vec!["writer"]);
        assert_eq!(identity.dns_names, vec!["web.example.org"]);
        assert_eq!(identity.uris, vec!["spiffe://example.org/ns/a/sa/b"]);
        assert!(PeerIdentity::from_der(b"not a certificate").is_err());
    }
}
