//! SCRAM (RFC 5802, with RFC 7677's SHA-256 and Kafka's SHA-512): the
//! credential arithmetic, the server side of one exchange, and a client
//! (for the `fjord` CLI and tests).
//!
//! It is for: turning a password into the salted credential a server
//! keeps ([`ScramCredential`]: salt, iterations, StoredKey, ServerKey —
//! never the password), checking a client's proof against one, and
//! proving a password to a server. It is not for: where credentials live
//! (the metadata frontend), who may log in how often or which mechanisms
//! are enabled (`crate::sasl`), or channel binding (Kafka has none: a
//! client asking for it is refused) and SASLprep (user names and
//! passwords are compared as the bytes sent, as Kafka does).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

pub use fjord_controller::{
    SCRAM_MAX_ITERATIONS, SCRAM_MIN_ITERATIONS, ScramCredential, ScramMechanism,
};

/// Why a SCRAM step failed. The server answers every one the same way
/// (authentication failed); the detail is for logs and for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message that is not SCRAM's.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Channel binding or an extension the server does not take
    /// (delegation tokens' `tokenauth`).
    #[error("unsupported SCRAM feature: {0}")]
    Unsupported(&'static str),
    /// The final message's nonce or channel binding is not the one agreed.
    #[error("the SCRAM exchange does not match")]
    Mismatch,
    /// The client's proof is wrong: wrong password or unknown user.
    #[error("invalid credentials")]
    InvalidProof,
    /// The server's signature is wrong (client side): the server does not
    /// know the password.
    #[error("the server's SCRAM signature is wrong")]
    ServerSignature,
    /// No randomness from the operating system.
    #[error("no random bytes from the operating system: {0}")]
    Random(String),
}

/// `n` random bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, ScramError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| ScramError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A fresh salt (32 random bytes).
pub fn random_salt() -> Result<Vec<u8>, ScramError> {
    random_bytes(32)
}

fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    match mechanism {
        ScramMechanism::Sha256 => Hmac::<Sha256>::new_from_slice(key)
            .map(|mac| mac.chain_update(data).finalize().into_bytes().to_vec())
            .unwrap_or_default(),
        ScramMechanism::Sha512 => Hmac::<Sha512>::new_from_slice(key)
            .map(|mac| mac.chain_update(data).finalize().into_bytes().to_vec())
            .unwrap_or_default(),
    }
}

fn hash(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
        ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// `Hi(password, salt, iterations)`: PBKDF2 with the mechanism's HMAC.
/// This is the expensive step (the iterations are there to make it so).
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let mut out = vec![0u8; mechanism.key_len()];
    match mechanism {
        ScramMechanism::Sha256 => {
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out)
        }
        ScramMechanism::Sha512 => {
            pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out)
        }
    }
    out
}

/// The credential a server keeps for a salted password (what
/// AlterUserScramCredentials sends).
pub fn credential_from_salted(
    mechanism: ScramMechanism,
    salted_password: &[u8],
    salt: Vec<u8>,
    iterations: u32,
) -> ScramCredential {
    let client_key = hmac(mechanism, salted_password, b"Client Key");
    ScramCredential {
        salt,
        iterations,
        stored_key: hash(mechanism, &client_key),
        server_key: hmac(mechanism, salted_password, b"Server Key"),
    }
}

/// The credential for `password` with `salt` and `iterations`.
pub fn credential(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: Vec<u8>,
    iterations: u32,
) -> ScramCredential {
    let salted = salted_password(mechanism, password, &salt, iterations);
    credential_from_salted(mechanism, &salted, salt, iterations)
}

/// Whether `password` is the one `credential` was made from (SASL/PLAIN
/// against a SCRAM credential): the whole derivation, then a comparison in
/// constant time.
pub fn password_matches(
    mechanism: ScramMechanism,
    credential: &ScramCredential,
    password: &[u8],
) -> bool {
    let salted = salted_password(mechanism, password, &credential.salt, credential.iterations);
    let client_key = hmac(mechanism, &salted, b"Client Key");
    let stored_key = hash(mechanism, &client_key);
    bool::from(stored_key.ct_eq(&credential.stored_key))
}

/// A SCRAM `saslname`: `,` and `=` escaped as `=2C` and `=3D`.
fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn unescape_name(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in the user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A SCRAM nonce: printable ASCII without `,`.
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// `key=value` attribute `key` at the start of `part`.
fn attribute<'a>(part: Option<&'a str>, key: &'static str) -> Result<&'a str, ScramError> {
    part.and_then(|p| p.strip_prefix(key))
        .and_then(|p| p.strip_prefix('='))
        .ok_or(ScramError::Malformed(key_error(key)))
}

fn key_error(key: &'static str) -> &'static str {
    match key {
        "n" => "expected the user name (n=)",
        "r" => "expected the nonce (r=)",
        "s" => "expected the salt (s=)",
        "i" => "expected the iteration count (i=)",
        "c" => "expected the channel binding (c=)",
        "p" => "expected the proof (p=)",
        "v" => "expected the server signature (v=)",
        _ => "unexpected attribute",
    }
}

/// What the server learns from a client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFirst {
    /// The user the client names.
    pub user: String,
    /// The authorization id of the GS2 header, if any.
    pub authzid: Option<String>,
    gs2_header: String,
    client_first_bare: String,
    client_nonce: String,
}

/// Parses a client-first message: `gs2-header client-first-bare`, where
/// the header is `n,,` or `n,a=authzid,` (`y` and `p` — channel binding —
/// are refused: Kafka has none).
pub(crate) fn parse_client_first(message: &[u8]) -> Result<ClientFirst, ScramError> {
    let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let (flag, rest) = text
        .split_once(',')
        .ok_or(ScramError::Malformed("no GS2 header"))?;
    match flag {
        "n" | "y" => {}
        _ if flag.starts_with("p=") => return Err(ScramError::Unsupported("channel binding")),
        _ => return Err(ScramError::Malformed("bad GS2 channel binding flag")),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(ScramError::Malformed("no GS2 header"))?;
    let authzid = match authzid {
        "" => None,
        a => Some(unescape_name(
            a.strip_prefix("a=")
                .ok_or(ScramError::Malformed("bad authorization id"))?,
        )?),
    };
    let gs2_header = format!("{flag},{},", &rest[..rest.len() - bare.len() - 1]);
    let mut parts = bare.split(',');
    let first = parts.next();
    if first.is_some_and(|p| p.starts_with("m=")) {
        return Err(ScramError::Unsupported("mandatory extension"));
    }
    let user = unescape_name(attribute(first, "n")?)?;
    if user.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    let client_nonce = attribute(parts.next(), "r")?;
    if !valid_nonce(client_nonce) {
        return Err(ScramError::Malformed("bad nonce"));
    }
    // Extensions (Kafka's KIP-84): only `tokenauth`, for delegation tokens,
    // which this broker does not issue.
    for extension in parts {
        if extension.starts_with("tokenauth=") && extension != "tokenauth=false" {
            return Err(ScramError::Unsupported("delegation tokens"));
        }
    }
    Ok(ClientFirst {
        user,
        authzid,
        gs2_header,
        client_first_bare: bare.to_owned(),
        client_nonce: client_nonce.to_owned(),
    })
}

/// The server's half of an exchange after the client-first message.
pub(crate) struct ServerExchange {
    mechanism: ScramMechanism,
    credential: ScramCredential,
    first: ClientFirst,
    nonce: String,
    server_first: String,
}

impl std::fmt::Debug for ServerExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerExchange")
            .field("mechanism", &self.mechanism)
            .field("user", &self.first.user)
            .finish_non_exhaustive()
    }
}

impl ServerExchange {
    /// Answers `first` for `credential` (the user's, or a made-up one for
    /// an unknown user, which then fails at the proof like a wrong
    /// password): the server-first message and the exchange to finish.
    pub(crate) fn start(
        mechanism: ScramMechanism,
        credential: ScramCredential,
        first: ClientFirst,
    ) -> Result<(ServerExchange, Vec<u8>), ScramError> {
        let nonce = format!("{}{}", first.client_nonce, BASE64.encode(random_bytes(24)?));
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let message = server_first.clone().into_bytes();
        Ok((
            ServerExchange {
                mechanism,
                credential,
                first,
                nonce,
                server_first,
            },
            message,
        ))
    }

    /// The mechanism of the exchange.
    pub(crate) fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// The user the exchange is for.
    pub(crate) fn user(&self) -> &str {
        &self.first.user
    }

    /// Checks the client-final message; the server-final message when the
    /// proof is right.
    pub(crate) fn finish(&self, message: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed(key_error("p")))?;
        let mut parts = without_proof.split(',');
        let binding = attribute(parts.next(), "c")?;
        let nonce = attribute(parts.next(), "r")?;
        let binding = BASE64
            .decode(binding)
            .map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
        if binding != self.first.gs2_header.as_bytes() || nonce != self.nonce {
            return Err(ScramError::Mismatch);
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.first.client_first_bare, self.server_first
        );
        let m = self.mechanism;
        let client_signature = hmac(m, &self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::InvalidProof);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let stored_key = hash(m, &client_key);
        if !bool::from(stored_key.ct_eq(&self.credential.stored_key)) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = hmac(m, &self.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

/// A made-up credential for a user that does not exist, the same for the
/// same user as long as the process runs (so repeated attempts see the
/// same salt, as for a real user), and no one's: the proof check fails.
pub(crate) fn unknown_user_credential(
    mechanism: ScramMechanism,
    user: &str,
) -> Result<ScramCredential, ScramError> {
    static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let key = match KEY.get() {
        Some(key) => key,
        None => {
            let drawn = random_bytes(32)?;
            KEY.get_or_init(|| drawn)
        }
    };
    let derive = |label: &str| hmac(mechanism, key, format!("{label}\0{user}").as_bytes());
    Ok(ScramCredential {
        salt: derive("salt")[..32].to_vec(),
        iterations: SCRAM_MIN_ITERATIONS,
        stored_key: derive("stored"),
        server_key: derive("server"),
    })
}

/// The client's side of one exchange: [`ScramClient::new`] gives the
/// client-first message, [`ScramClient::finish`] the client-final one,
/// [`ScramClient::verify`] checks the server-final one.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: Vec<u8>,
    client_first_bare: String,
    client_nonce: String,
    server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Starts an exchange for `user` with `password`; returns the client
    /// and its first message.
    pub fn new(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
    ) -> Result<(ScramClient, Vec<u8>), ScramError> {
        Self::with_nonce(mechanism, user, password, &BASE64.encode(random_bytes(24)?))
    }

    fn with_nonce(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
        nonce: &str,
    ) -> Result<(ScramClient, Vec<u8>), ScramError> {
        let client_first_bare = format!("n={},r={nonce}", escape_name(user));
        let message = format!("n,,{client_first_bare}").into_bytes();
        Ok((
            ScramClient {
                mechanism,
                password: password.as_bytes().to_vec(),
                client_first_bare,
                client_nonce: nonce.to_owned(),
                server_signature: None,
            },
            message,
        ))
    }

    /// Answers the server-first message with the client-final one.
    pub fn finish(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut parts = text.split(',');
        let nonce = attribute(parts.next(), "r")?;
        let salt = BASE64
            .decode(attribute(parts.next(), "s")?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = attribute(parts.next(), "i")?
            .parse()
            .map_err(|_| ScramError::Malformed("bad iteration count"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::Mismatch);
        }
        // A server could ask for billions of iterations to stall a client.
        if iterations > SCRAM_MAX_ITERATIONS * 4 {
            return Err(ScramError::Malformed("too many iterations"));
        }
        let m = self.mechanism;
        let salted = salted_password(m, &self.password, &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_key = hmac(m, &salted, b"Client Key");
        let stored_key = hash(m, &client_key);
        let client_signature = hmac(m, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(m, &salted, b"Server Key");
        self.server_signature = Some(hmac(m, &server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server knew the password.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(error) = text.strip_prefix("e=") {
            tracing::debug!(error, "the server refused the SCRAM exchange");
            return Err(ScramError::InvalidProof);
        }
        let signature = BASE64
            .decode(attribute(Some(text), "v")?)
            .map_err(|_| ScramError::Malformed("signature is not base64"))?;
        match &self.server_signature {
            Some(expected) if bool::from(expected.ct_eq(&signature)) => Ok(()),
            _ => Err(ScramError::ServerSignature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: user "user", password "pencil", the nonces,
    /// salt and iteration count of the example give exactly its messages.
    #[test]
    fn rfc7677_sha256_test_vector() {
        let m = ScramMechanism::Sha256;
        let (mut client, first) =
            ScramClient::with_nonce(m, "user", "pencil", "rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = client.finish(server_first).unwrap();
        assert_eq!(
            std::str::from_utf8(&client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert_eq!(
            client.verify(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::ServerSignature)
        );

        // The server side, from the stored credential alone, with the
        // RFC's server nonce.
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = credential(m, b"pencil", salt, 4096);
        let parsed = parse_client_first(&first).unwrap();
        assert_eq!(parsed.user, "user");
        let server = ServerExchange {
            mechanism: m,
            credential: credential.clone(),
            first: parsed,
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
            server_first: std::str::from_utf8(server_first).unwrap().into(),
        };
        assert_eq!(
            server.finish(&client_final).unwrap(),
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let mut wrong = client_final.clone();
        let at = wrong.len() - 3;
        wrong[at] = if wrong[at] == b'A' { b'B' } else { b'A' };
        assert_eq!(server.finish(&wrong), Err(ScramError::InvalidProof));
        assert!(password_matches(m, &credential, b"pencil"));
        assert!(!password_matches(m, &credential, b"pencil "));
    }

    /// A full exchange with SHA-512 and a name that needs escaping.
    #[test]
    fn sha512_round_trip() {
        let m = ScramMechanism::Sha512;
        let credential = credential(m, b"s3cret", random_salt().unwrap(), 4096);
        assert!(credential.check(m).is_ok());
        let (mut client, first) = ScramClient::new(m, "a,b=c", "s3cret").unwrap();
        let parsed = parse_client_first(&first).unwrap();
        assert_eq!(parsed.user, "a,b=c");
        let (server, server_first) = ServerExchange::start(m, credential, parsed).unwrap();
        let client_final = client.finish(&server_first).unwrap();
        let server_final = server.finish(&client_final).unwrap();
        client.verify(&server_final).unwrap();

        // An unknown user's made-up credential is stable and fails.
        let fake = unknown_user_credential(m, "nobody").unwrap();
        assert_eq!(fake, unknown_user_credential(m, "nobody").unwrap());
        assert_ne!(fake.salt, unknown_user_credential(m, "other").unwrap().salt);
        let (mut client, first) = ScramClient::new(m, "nobody", "x").unwrap();
        let (server, server_first) =
            ServerExchange::start(m, fake, parse_client_first(&first).unwrap()).unwrap();
        let client_final = client.finish(&server_first).unwrap();
        assert_eq!(server.finish(&client_final), Err(ScramError::InvalidProof));
    }

    #[test]
    fn hostile_client_first_messages() {
        for bad in [
            &b""[..],
            b"n,,",
            b"n,,n=,r=abc",
            b"n,,n=user",
            b"n,,r=abc,n=user",
            b"p=tls-unique,,n=user,r=abc",
            b"x,,n=user,r=abc",
            b"n,,m=ext,n=user,r=abc",
            b"n,,n=us=er,r=abc",
            b"n,,n=user,r=a b",
            b"n,,n=user,r=abc,tokenauth=true",
            b"n,\xff,n=user,r=abc",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad:?}");
        }
        let ok = parse_client_first(b"n,a=admin,n=user,r=abc").unwrap();
        assert_eq!(ok.authzid.as_deref(), Some("admin"));
        assert_eq!(ok.gs2_header, "n,a=admin,");
    }
}
