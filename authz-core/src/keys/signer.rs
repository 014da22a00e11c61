//! One signing key: its algorithm, parsed private key, public JWK and thumbprint `kid`.
//! The only place in the server that produces signatures.

pub use crate::config::types::SigningAlg;
use crate::error::{Error, Result};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use serde::Serialize;

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private key ready to sign, with its public half as a JWK.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    signer: Signer,
    jwk: Jwk,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// Generate a new key; returns it with its PKCS#8 DER encoding (to be stored encrypted).
    pub fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>)> {
        let pkcs8 = match alg {
            SigningAlg::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map(|d| d.as_ref().to_vec()),
            SigningAlg::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map(|d| d.as_ref().to_vec()),
            SigningAlg::EdDsa => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8v1())
                .map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| Error::internal(format!("{alg} key generation failed")))?;
        let key = Self::from_pkcs8(alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Parse a stored PKCS#8 private key.
    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self> {
        let bad = |e: aws_lc_rs::error::KeyRejected| Error::internal(format!("{alg} key: {e}"));
        let (signer, params) = match alg {
            SigningAlg::Rs256 => {
                let k = RsaKeyPair::from_pkcs8(der).map_err(bad)?;
                if k.public_modulus_len() < 256 {
                    return Err(Error::internal("RSA keys must be at least 2048 bits"));
                }
                let public = k.public_key();
                let params = AlgorithmParameters::RSA(RSAKeyParameters {
                    key_type: RSAKeyType::RSA,
                    n: b64(public.modulus().big_endian_without_leading_zero()),
                    e: b64(public.exponent().big_endian_without_leading_zero()),
                });
                (Signer::Rsa(k), params)
            }
            SigningAlg::Es256 => {
                let k =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(bad)?;
                // Uncompressed SEC1 point: 0x04 ‖ x ‖ y.
                let point = k.public_key().as_ref();
                if point.len() != 65 || point[0] != 4 {
                    return Err(Error::internal("unexpected P-256 public key encoding"));
                }
                let params = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: b64(&point[1..33]),
                    y: b64(&point[33..65]),
                });
                (Signer::Ec(k), params)
            }
            SigningAlg::EdDsa => {
                let k = Ed25519KeyPair::from_pkcs8(der).map_err(bad)?;
                let params = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: b64(k.public_key().as_ref()),
                });
                (Signer::Ed(k), params)
            }
        };
        let mut jwk = Jwk {
            common: CommonParameters::default(),
            algorithm: params,
        };
        // RFC 7638 thumbprint over the required public members only.
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| Error::internal(format!("thumbprint: {e}")))?;
        jwk.common = CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(match alg {
                SigningAlg::Rs256 => KeyAlgorithm::RS256,
                SigningAlg::Es256 => KeyAlgorithm::ES256,
                SigningAlg::EdDsa => KeyAlgorithm::EdDSA,
            }),
            key_id: Some(kid.clone()),
            ..CommonParameters::default()
        };
        Ok(Self {
            kid,
            alg,
            signer,
            jwk,
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public key as published in the JWKS (`kid`, `alg`, `use: sig`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Sign `header_json.claims` as a compact JWS. `typ` goes into the protected header
    /// (RFC 9068 §2.1 `at+jwt`; RFC 8725 §3.11 explicit typing).
    pub fn sign_jwt<C: Serialize>(&self, typ: &str, claims: &C) -> Result<String> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: self.alg.as_str(),
            typ,
            kid: &self.kid,
        })
        .map_err(Error::internal)?;
        let claims = serde_json::to_vec(claims).map_err(Error::internal)?;
        let mut out = String::with_capacity(64 + claims.len() * 4 / 3 + 360);
        URL_SAFE_NO_PAD.encode_string(&header, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut out);
        let signature = self.sign(out.as_bytes())?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut out);
        Ok(out)
    }

    /// Raw signature over `msg` with this key's algorithm.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let failed = |_| Error::internal("signing failed");
        match &self.signer {
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
            Signer::Ec(k) => Ok(k.sign(&self.rng, msg).map_err(failed)?.as_ref().to_vec()),
            Signer::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode};

    #[test]
    fn every_algorithm_signs_tokens_jsonwebtoken_verifies() {
        for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
            let (key, der) = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, &der).unwrap();
            assert_eq!(key.kid(), again.kid(), "kid must be stable across reloads");
            let claims = serde_json::json!({"sub": "x", "exp": 4_000_000_000i64, "aud": "a"});
            let token = key.sign_jwt("at+jwt", &claims).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(key.kid()));
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            let dk = DecodingKey::from_jwk(key.public_jwk()).unwrap();
            let mut v = Validation::new(alg.jsonwebtoken());
            v.set_audience(&["a"]);
            decode::<serde_json::Value>(&token, &dk, &v).unwrap();
        }
    }

    #[test]
    fn rsa_kid_is_rfc7638_thumbprint() {
        let (key, _) = SigningKey::generate(SigningAlg::Rs256).unwrap();
        let AlgorithmParameters::RSA(p) = &key.public_jwk().algorithm else {
            panic!()
        };
        let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, p.e, p.n);
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        assert_eq!(key.kid(), b64(d.as_ref()));
        assert_eq!(p.e, "AQAB");
    }

    #[test]
    fn wrong_algorithm_for_key_is_rejected() {
        let (_, der) = SigningKey::generate(SigningAlg::EdDsa).unwrap();
        assert!(SigningKey::from_pkcs8(SigningAlg::Rs256, &der).is_err());
    }
}
