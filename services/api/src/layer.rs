//! The shape of the api's own tower layers ([`crate::edge`], [`crate::release`],
//! [`crate::faults`]): a layer is its configuration, every service it wraps holds a clone of it
//! beside the inner service, and the configuration says what becomes of each request
//! ([`Intercept`]); readiness is always the inner service's.

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

/// A layer that is nothing but `C`, cloned into every [`Configured`] service it makes.
#[derive(Debug, Clone)]
pub struct ConfigLayer<C> {
    config: C,
}

impl<C> ConfigLayer<C> {
    /// The layer of `config`.
    pub const fn with_config(config: C) -> Self {
        Self { config }
    }
}

impl<C: Clone, S> Layer<S> for ConfigLayer<C> {
    type Service = Configured<C, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Configured { inner, config: self.config.clone() }
    }
}

/// `inner`, wrapped with the configuration of the [`ConfigLayer`] that made it.
#[derive(Debug, Clone)]
pub struct Configured<C, S> {
    pub(crate) inner: S,
    pub(crate) config: C,
}

/// What a [`Configured`] service does with each request: the configuration's part of the layer.
pub trait Intercept<S: Service<Request<ReqBody>>, ReqBody> {
    /// The answer's future.
    type Future: Future<Output = Result<S::Response, S::Error>>;

    /// Answers `request`, calling `inner` (which is ready) or not.
    fn intercept(&self, inner: &mut S, request: Request<ReqBody>) -> Self::Future;
}

impl<C, S, ReqBody> Service<Request<ReqBody>> for Configured<C, S>
where
    S: Service<Request<ReqBody>>,
    C: Intercept<S, ReqBody>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = C::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        self.config.intercept(&mut self.inner, request)
    }
}
