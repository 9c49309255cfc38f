//! Serving the router from the API Lambda: the client address comes from the API Gateway
//! request context (what API Gateway saw), never from a header the client could set.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;

use entryguard::domain::net::ClientIp;

use crate::extract::ClientAddr;
use crate::{router, ApiState};

/// The source IP API Gateway recorded for the request.
pub fn source_ip(context: &RequestContext) -> Option<ClientIp> {
    let raw = match context {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref(),
        _ => None,
    }?;
    raw.parse().ok()
}

async fn client_addr_from_context(mut req: Request, next: Next) -> Response {
    if let Some(ip) = req.request_context_ref().and_then(source_ip) {
        req.extensions_mut().insert(ClientAddr(ip));
    }
    next.run(req).await
}

/// The router as the Lambda serves it.
pub fn lambda_router(state: ApiState) -> axum::Router {
    router(state).layer(middleware::from_fn(client_addr_from_context))
}

pub async fn run_lambda(state: ApiState) -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_router(state)).await
}
