//! A software passkey for HTTP-level tests: what a platform authenticator and the browser's
//! WebAuthn client do (WebAuthn Level 2 §6.3.2 authenticatorMakeCredential, §6.3.3
//! authenticatorGetAssertion, §5.8.1 client data), for one ES256 (P-256) key: a "none"
//! attestation at registration, then assertions with user presence and verification, a
//! growing signature counter and the user handle (discoverable). The server checks them with
//! webauthn-rs exactly as it checks a browser's.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

/// WebAuthn §6.1 flags: user present, user verified, attested credential data included.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

pub struct SoftPasskey {
    key: EcdsaKeyPair,
    cred_id: Vec<u8>,
    user_handle: Vec<u8>,
    rp_id: String,
    origin: String,
    counter: AtomicU32,
}

/// A CBOR head (RFC 8949 §3): major type and argument.
fn head(major: u8, n: usize) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=255 => vec![m | 24, n as u8],
        _ => {
            let n = u16::try_from(n).unwrap();
            let mut v = vec![m | 25];
            v.extend_from_slice(&n.to_be_bytes());
            v
        }
    }
}

fn cbor_bytes(b: &[u8]) -> Vec<u8> {
    let mut v = head(2, b.len());
    v.extend_from_slice(b);
    v
}

fn cbor_text(s: &str) -> Vec<u8> {
    let mut v = head(3, s.len());
    v.extend_from_slice(s.as_bytes());
    v
}

fn sha256(b: &[u8]) -> Vec<u8> {
    digest(&SHA256, b).as_ref().to_vec()
}

fn b64(options: &Value, pointer: &str) -> Vec<u8> {
    let text = options
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {options}"));
    B64.decode(text).unwrap()
}

impl SoftPasskey {
    /// Answer `navigator.credentials.create` `options` (as the server sent them) from `origin`:
    /// the new passkey and the `RegisterPublicKeyCredential` JSON for the server.
    pub fn register(origin: &str, options: &Value) -> (Self, String) {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().unwrap().to_owned();
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let cred_id = shared::crypto::random_bytes::<16>().to_vec();
        let me = Self {
            key,
            cred_id,
            user_handle: b64(options, "/publicKey/user/id"),
            rp_id,
            origin: origin.to_owned(),
            counter: AtomicU32::new(0),
        };
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": B64.encode(b64(options, "/publicKey/challenge")),
            "origin": me.origin,
            "crossOrigin": false,
        })
        .to_string();
        // The credential public key (RFC 9053 §7.1.1, COSE_Key EC2): kty 2, alg -7 (ES256),
        // crv 1 (P-256), x, y.
        let point = me.key.public_key().as_ref();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        let mut cose = head(5, 5);
        cose.extend_from_slice(&[0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]);
        cose.extend(cbor_bytes(&point[1..33]));
        cose.push(0x22);
        cose.extend(cbor_bytes(&point[33..65]));
        let mut auth_data = sha256(me.rp_id.as_bytes());
        auth_data.push(UP | UV | AT);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&u16::try_from(me.cred_id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&me.cred_id);
        auth_data.extend(cose);
        let mut attestation = head(5, 3);
        attestation.extend(cbor_text("fmt"));
        attestation.extend(cbor_text("none"));
        attestation.extend(cbor_text("attStmt"));
        attestation.extend(head(5, 0));
        attestation.extend(cbor_text("authData"));
        attestation.extend(cbor_bytes(&auth_data));
        let credential = json!({
            "id": B64.encode(&me.cred_id),
            "rawId": B64.encode(&me.cred_id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "attestationObject": B64.encode(&attestation),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
            },
        });
        (me, credential.to_string())
    }

    /// Answer `navigator.credentials.get` `options`: the `PublicKeyCredential` JSON.
    pub fn assert(&self, options: &Value) -> String {
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": B64.encode(b64(options, "/publicKey/challenge")),
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string();
        let count = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let mut auth_data = sha256(self.rp_id.as_bytes());
        auth_data.push(UP | UV);
        auth_data.extend_from_slice(&count.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(sha256(client_data.as_bytes()));
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": B64.encode(&self.cred_id),
            "rawId": B64.encode(&self.cred_id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
                "signature": B64.encode(signature.as_ref()),
                "userHandle": B64.encode(&self.user_handle),
            },
        })
        .to_string()
    }
}
