//! One export call with a request already encoded: a batch is encoded once, and every retry of
//! it sends the same bytes instead of cloning and encoding the decoded request again.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Request, Status};

/// A unary gRPC client codec that sends `Bytes` as they are and decodes the answer as `R`
/// (the load generator sends its pre-encoded requests with it too).
#[derive(Debug)]
pub struct Encoded<R>(PhantomData<fn() -> R>);

impl<R> Default for Encoded<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: prost::Message + Default + Send + 'static> Codec for Encoded<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self::default()
    }

    fn decoder(&mut self) -> Self {
        Self::default()
    }
}

impl<R> Encoder for Encoded<R> {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl<R: prost::Message + Default> Decoder for Encoded<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        R::decode(src.copy_to_bytes(src.remaining()))
            .map(Some)
            .map_err(|error| Status::internal(format!("undecodable answer: {error}")))
    }
}

/// Calls the unary method `path` with the encoded `request`, as the generated client would.
pub(super) async fn unary<R: prost::Message + Default + Send + 'static>(
    channel: Channel,
    request: Request<Bytes>,
    path: &'static str,
) -> Result<R, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| Status::unknown(format!("Service was not ready: {error}")))?;
    Ok(grpc.unary(request, PathAndQuery::from_static(path), Encoded::default()).await?.into_inner())
}
