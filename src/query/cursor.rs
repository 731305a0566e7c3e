//! Keyset cursors: the position after the last row of a page, opaque to clients and signed, so a
//! cursor that was altered, or used with other filters or another sort, is refused.
//!
//! A cursor holds the last row's sort key, feed and GlobalEventID: with each event id stored
//! once per feed, that triple is unique, so the order is total and a walk over pages sees no row
//! twice and misses none, whatever is ingested meanwhile (new rows land before or after the
//! cursor's position, never across it).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A position in a sorted walk over events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The sort column's value as an integer (milliseconds or days since 1970).
    #[serde(rename = "k")]
    pub key: i64,
    #[serde(rename = "f")]
    pub feed: String,
    #[serde(rename = "i")]
    pub id: i64,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    #[serde(flatten)]
    position: Position,
    /// Fingerprint of the filters and sort the cursor belongs to.
    #[serde(rename = "q")]
    query: String,
}

/// Signs and checks cursors with a secret key.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor is not one this server issued (altered or truncated)")]
    Invalid,
    #[error("cursor belongs to other filters or another sort; start again without a cursor")]
    OtherQuery,
}

type HmacSha256 = Hmac<Sha256>;

impl CursorCodec {
    /// A codec signing with `key`.
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn tag(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// The cursor for `position` in the walk fingerprinted `query`.
    pub fn encode(&self, position: &Position, query: &str) -> String {
        let payload = serde_json::to_vec(&Payload {
            position: position.clone(),
            query: query.to_owned(),
        })
        .expect("a payload serializes");
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(self.tag(&payload))
        )
    }

    /// The position a cursor holds, if this server signed it for the walk `query`.
    ///
    /// # Errors
    /// An altered or foreign cursor, or one from another walk.
    pub fn decode(&self, cursor: &str, query: &str) -> Result<Position, CursorError> {
        let (payload, tag) = cursor.split_once('.').ok_or(CursorError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CursorError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CursorError::Invalid)?;
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&payload);
        mac.verify_truncated_left(&tag)
            .map_err(|_| CursorError::Invalid)?;
        if tag.len() != 16 {
            return Err(CursorError::Invalid);
        }
        let payload: Payload =
            serde_json::from_slice(&payload).map_err(|_| CursorError::Invalid)?;
        if payload.query != query {
            return Err(CursorError::OtherQuery);
        }
        Ok(payload.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_refuses_tampering_and_other_queries() {
        let codec = CursorCodec::new(b"secret".to_vec());
        let position = Position {
            key: 1_424_300_400_000,
            feed: "english".into(),
            id: 410_412_347,
        };
        let cursor = codec.encode(&position, "q1");
        assert_eq!(codec.decode(&cursor, "q1").unwrap(), position);
        assert_eq!(codec.decode(&cursor, "q2"), Err(CursorError::OtherQuery));
        // Another id, signed by nobody.
        let (payload, tag) = cursor.split_once('.').unwrap();
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let forged = URL_SAFE_NO_PAD.encode(text.replace("410412347", "410412346"));
        assert_eq!(
            codec.decode(&format!("{forged}.{tag}"), "q1"),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            codec.decode(&cursor[..cursor.len() - 2], "q1"),
            Err(CursorError::Invalid)
        );
        assert_eq!(codec.decode("garbage", "q1"), Err(CursorError::Invalid));
        let other = CursorCodec::new(b"another".to_vec());
        assert_eq!(other.decode(&cursor, "q1"), Err(CursorError::Invalid));
    }
}
