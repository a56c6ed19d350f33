//! Generated messages, clients and servers for the AXIOM-25 gRPC contract (`proto/`).
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `axiom25.matrix.v1`: the Matrix service.
pub mod matrix {
    /// Version 1 of the Matrix service.
    pub mod v1 {
        tonic::include_proto!("axiom25.matrix.v1");
    }
}

/// Encoded `FileDescriptorSet` of every proto in this crate, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("axiom25_descriptor");
