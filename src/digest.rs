//! SHA-256 over a value's JSON, streamed into the hash without building the text first: how
//! digests of a hundred thousand organizations, and of a plan that holds them, are computed.

use sha2::{Digest as _, Sha256};

/// The hex SHA-256 of `value` as compact JSON.
pub(crate) fn json_sha256<T: serde::Serialize + ?Sized>(value: &T) -> String {
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = HashWriter(Sha256::new());
    // Writing into a hash can't fail; a value that can't serialize hashes what was written.
    let _ = serde_json::to_writer(&mut writer, value);
    hex::encode(writer.0.finalize())
}
