//! SCRAM (RFC 5802; SHA-256 per RFC 7677), sans-IO: messages in, messages out.
//!
//! The exchange is three messages from the client and two from the server:
//!
//! ```text
//! client-first  n,,n=<user>,r=<client nonce>
//! server-first  r=<client nonce + server nonce>,s=<salt, base64>,i=<iterations>
//! client-final  c=biws,r=<nonce>,p=<proof, base64>
//! server-final  v=<server signature, base64>
//! ```
//!
//! The client proves it knows the password without sending it: from the salted password it
//! derives a `ClientKey`, and sends `ClientKey XOR HMAC(StoredKey, AuthMessage)`, where
//! `StoredKey = H(ClientKey)` is what the server keeps and `AuthMessage` is the conversation so
//! far. The server proves it knows `StoredKey` too, by sending `HMAC(ServerKey, AuthMessage)`,
//! which the client checks — a server that does not know the user cannot fake it.
//!
//! Salting (PBKDF2 with the server's iteration count, 4,096 to 15,000 and more) is the
//! expensive step, milliseconds of CPU; [`KeyCache`] keeps the derived keys per (password,
//! salt, iterations) so a pool of a hundred connections pays it once.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};

/// Which hash the SCRAM variant uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Hash {
    Sha1,
    Sha256,
}

/// The fewest PBKDF2 iterations MongoDB's auth spec lets a server ask for.
const MIN_ITERATIONS: u32 = 4096;

/// The most this driver will run. MongoDB's default is 15,000 (SCRAM-SHA-256) and 10,000
/// (SCRAM-SHA-1); a hostile or broken server asking for `i=4294967295` would otherwise keep
/// a worker in PBKDF2 for hours (salting runs on the caller's thread or coroutine). A
/// million takes about a third of a second of SHA-256 here.
const MAX_ITERATIONS: u32 = 1_000_000;

/// How many derived keys a credential keeps: one per (hash, salt, iterations) a server has
/// used, which is one or two in practice; a server sending a new salt every time must not
/// make the cache grow without end.
const MAX_CACHED_KEYS: usize = 8;

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut m = hmac::Hmac::<sha1::Sha1>::new_from_slice(key).expect("any key size");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha256 => {
                let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key size");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Hash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// The keys derived from a salted password.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    client_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl Keys {
    fn derive(hash: Hash, password: &[u8], salt: &[u8], iterations: u32) -> Keys {
        let salted = hash.salted_password(password, salt, iterations);
        Keys {
            client_key: hash.hmac(&salted, b"Client Key"),
            server_key: hash.hmac(&salted, b"Server Key"),
        }
    }
}

/// Derived keys by (hash, salt, iterations), for one credential. Computing outside the lock
/// and inserting after keeps the critical section short and never across I/O.
#[derive(Default)]
pub(crate) struct KeyCache(parking_lot::Mutex<Vec<(KeyParams, Keys)>>);

/// What the keys are derived from besides the password: hash, salt, iterations.
type KeyParams = (Hash, Vec<u8>, u32);

impl KeyCache {
    fn get_or_derive(&self, hash: Hash, password: &[u8], salt: &[u8], iterations: u32) -> Keys {
        let key = (hash, salt.to_vec(), iterations);
        if let Some((_, keys)) = self.0.lock().iter().find(|(k, _)| *k == key) {
            return keys.clone();
        }
        let keys = Keys::derive(hash, password, salt, iterations);
        let mut cache = self.0.lock();
        if !cache.iter().any(|(k, _)| *k == key) {
            if cache.len() >= MAX_CACHED_KEYS {
                cache.remove(0);
            }
            cache.push((key, keys.clone()));
        }
        keys
    }
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache(..)")
    }
}

/// Why a SCRAM exchange failed on the client's side.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScramError {
    #[error("the server's message is malformed: {0}")]
    Malformed(&'static str),
    #[error("the server's nonce does not extend ours")]
    NonceMismatch,
    #[error("the server asked for {0} iterations, fewer than the minimum of 4096")]
    TooFewIterations(u32),
    #[error("the server asked for {0} iterations, more than this driver's maximum of 1,000,000")]
    TooManyIterations(u32),
    #[error("the server reported an error: {0}")]
    Server(String),
    #[error("the server's signature is wrong: it does not know this user's password")]
    BadServerSignature,
}

/// One client side of a SCRAM conversation.
pub(crate) struct ScramClient {
    hash: Hash,
    /// `n=<user>,r=<nonce>`: client-first without the GS2 header.
    client_first_bare: String,
    client_nonce: String,
    /// The server signature we expect, once the client-final is built.
    expected_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// Starts a conversation for `user` (already SASLprep'd or not, as the mechanism wants)
    /// with the given client nonce.
    pub(crate) fn new(hash: Hash, user: &str, client_nonce: &str) -> ScramClient {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            hash,
            client_first_bare: format!("n={user},r={client_nonce}"),
            client_nonce: client_nonce.to_string(),
            expected_signature: None,
        }
    }

    /// The client-first message.
    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Reads the server-first message and returns the client-final one. `password` is the
    /// mechanism's form of the password (see `auth::mod`).
    pub(crate) fn client_final(
        &mut self,
        server_first: &[u8],
        password: &[u8],
        cache: &KeyCache,
    ) -> Result<Vec<u8>, ScramError> {
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(e) = server_first.strip_prefix("e=") {
            return Err(ScramError::Server(e.to_string()));
        }
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for part in server_first.split(',') {
            match part.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = Some(v),
                Some(("i=", v)) => iterations = Some(v),
                Some(("m=", _)) => return Err(ScramError::Malformed("unsupported extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::Malformed("no nonce"))?;
        let salt = B64
            .decode(salt.ok_or(ScramError::Malformed("no salt"))?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = iterations
            .ok_or(ScramError::Malformed("no iteration count"))?
            .parse()
            .map_err(|_| ScramError::Malformed("bad iteration count"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        if iterations < MIN_ITERATIONS {
            return Err(ScramError::TooFewIterations(iterations));
        }
        if iterations > MAX_ITERATIONS {
            return Err(ScramError::TooManyIterations(iterations));
        }
        let keys = cache.get_or_derive(self.hash, password, &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let stored_key = self.hash.digest(&keys.client_key);
        let client_signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = keys
            .client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.expected_signature = Some(self.hash.hmac(&keys.server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server must prove it knows the user too.
    pub(crate) fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::Server(e.to_string()));
        }
        let signature = text
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .ok_or(ScramError::Malformed("no server signature"))?;
        let signature = B64
            .decode(signature)
            .map_err(|_| ScramError::Malformed("signature is not base64"))?;
        match &self.expected_signature {
            Some(expected) if *expected == signature => Ok(()),
            _ => Err(ScramError::BadServerSignature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the RFC's exchange and checks every client message against the RFC's.
    fn rfc_exchange(
        hash: Hash,
        nonce: &str,
        server_first: &str,
        client_final: &str,
        server_final: &str,
    ) {
        let cache = KeyCache::default();
        let mut c = ScramClient::new(hash, "user", nonce);
        assert_eq!(
            c.client_first(),
            format!("n,,n=user,r={nonce}").into_bytes()
        );
        let out = c
            .client_final(server_first.as_bytes(), b"pencil", &cache)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), client_final);
        c.verify_server_final(server_final.as_bytes()).unwrap();
        // A forged signature (one byte off) is refused.
        let mut forged = B64
            .decode(server_final.strip_prefix("v=").unwrap())
            .unwrap();
        forged[0] ^= 1;
        assert_eq!(
            c.verify_server_final(format!("v={}", B64.encode(forged)).as_bytes()),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn rfc_5802_scram_sha_1_test_vector() {
        rfc_exchange(
            Hash::Sha1,
            "fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        );
    }

    #[test]
    fn rfc_7677_scram_sha_256_test_vector() {
        rfc_exchange(
            Hash::Sha256,
            "rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        );
    }

    #[test]
    fn a_dishonest_or_broken_server_is_refused() {
        let cache = KeyCache::default();
        let mut c = ScramClient::new(Hash::Sha256, "user", "abc");
        let cases: [(&str, ScramError); 7] = [
            ("r=xyzdef,s=AAAA,i=4096", ScramError::NonceMismatch),
            ("r=abc,s=AAAA,i=4096", ScramError::NonceMismatch),
            ("r=abcdef,s=AAAA,i=1000", ScramError::TooFewIterations(1000)),
            // Past the bound: refused before any PBKDF2 is done (checked first with one that
            // would take a second, then with one that would take hours).
            (
                "r=abcdef,s=AAAA,i=2000000",
                ScramError::TooManyIterations(2_000_000),
            ),
            (
                "r=abcdef,s=AAAA,i=4294967295",
                ScramError::TooManyIterations(4294967295),
            ),
            ("r=abcdef,i=4096", ScramError::Malformed("no salt")),
            ("e=other-error", ScramError::Server("other-error".into())),
        ];
        for (msg, want) in cases {
            assert_eq!(
                c.client_final(msg.as_bytes(), b"p", &cache).unwrap_err(),
                want,
                "{msg}"
            );
        }
        // No client-final built yet: any server-final is refused.
        let fresh = ScramClient::new(Hash::Sha256, "user", "abc");
        assert_eq!(
            fresh.verify_server_final(b"v=AAAA"),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn user_names_are_escaped_and_keys_are_cached() {
        let c = ScramClient::new(Hash::Sha1, "a=b,c", "n");
        assert_eq!(c.client_first(), b"n,,n=a=3Db=2Cc,r=n".to_vec());
        let cache = KeyCache::default();
        let k1 = cache.get_or_derive(Hash::Sha256, b"pw", b"salt", 4096);
        let k2 = cache.get_or_derive(Hash::Sha256, b"pw", b"salt", 4096);
        assert_eq!(k1.client_key, k2.client_key);
        assert_eq!(cache.0.lock().len(), 1);
        cache.get_or_derive(Hash::Sha256, b"pw", b"salt", 5000);
        assert_eq!(cache.0.lock().len(), 2);
    }

    #[test]
    fn a_server_sending_a_new_salt_each_time_does_not_grow_the_cache() {
        let cache = KeyCache::default();
        for i in 0..100u32 {
            cache.get_or_derive(Hash::Sha1, b"pw", &i.to_le_bytes(), 4096);
        }
        assert_eq!(cache.0.lock().len(), MAX_CACHED_KEYS);
        // The newest are kept.
        let newest = 99u32.to_le_bytes().to_vec();
        assert!(
            cache
                .0
                .lock()
                .iter()
                .any(|((_, salt, _), _)| *salt == newest)
        );
    }
}
