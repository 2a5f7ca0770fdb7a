//! The box's minimal HTTP surface. The full API and console come with the gateway.
//!
//! | route                          | answer                                              |
//! | ------------------------------ | --------------------------------------------------- |
//! | `GET /healthz`                 | 200 `ok`, or 503 once the store has failed          |
//! | `GET /v1/status`               | node id, peers, last sync, bytes, pending entries   |
//! | `PUT /v1/docs/{scope}/{id}`    | sets the JSON object's top-level fields; answers once durable |
//! | `GET /v1/docs/{scope}/{id}`    | the document as JSON, 404 if absent                 |
//! | `GET /v1/audit`                | entries sent per peer and scope; refusals           |
//! | `POST /v1/revocations`         | body: an armored revocation (list); applies it      |
//!
//! An enrolled box answers 403 (`scope_not_writable`, `scope_not_readable`) for a scope its
//! certificate does not allow.
//!
//! Every error is a JSON object `{"error": code, "message": text}`; client mistakes are 4xx
//! and not logged as errors, server faults are logged once by the core.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use crdt_model::json::check_fields;
use crdt_model::{DocId, DocKey, Scope};
use serde_json::{Value, json};

use crate::core::{CoreError, CoreHandle};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The router, without a socket, so tests can call it directly.
pub fn router(core: CoreHandle) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/status", get(status))
        .route("/v1/docs/{scope}/{id}", get(get_doc).put(put_doc))
        .route("/v1/audit", get(audit))
        .route("/v1/revocations", axum::routing::post(revoke))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(core)
}

/// An error answer: status, a stable code, and a message naming what was wrong.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response()
    }
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::Json(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string())
            }
            CoreError::ChangeTooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "change_too_large",
                err.to_string(),
            ),
            CoreError::StoreFailed | CoreError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                err.to_string(),
            ),
            CoreError::ScopeNotWritable { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "scope_not_writable", err.to_string())
            }
            CoreError::ScopeNotReadable { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "scope_not_readable", err.to_string())
            }
            CoreError::Replica(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ),
        }
    }
}

fn doc_key(scope: &str, id: &str) -> Result<DocKey, ApiError> {
    let scope = Scope::new(scope)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_scope", e.to_string()))?;
    let doc = id
        .parse::<DocId>()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_id", e.to_string()))?;
    Ok(DocKey { scope, doc })
}

async fn healthz(State(core): State<CoreHandle>) -> Response {
    match core.status().await {
        Some(status) if status.healthy => (StatusCode::OK, "ok\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store failed\n").into_response(),
    }
}

async fn status(State(core): State<CoreHandle>) -> Result<Json<Value>, ApiError> {
    let status = core
        .status()
        .await
        .ok_or_else(|| ApiError::from(CoreError::ShuttingDown))?;
    Ok(Json(serde_json::to_value(status).unwrap_or(Value::Null)))
}

async fn get_doc(
    State(core): State<CoreHandle>,
    Path((scope, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let key = doc_key(&scope, &id)?;
    match core.get(key.clone()).await? {
        Some(doc) => Ok(Json(doc)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no document {key}"),
        )),
    }
}

async fn put_doc(
    State(core): State<CoreHandle>,
    Path((scope, id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let key = doc_key(&scope, &id)?;
    let body = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "invalid_body", rejection.body_text())
    })?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("body is not JSON: {e}"),
        )
    })?;
    let fields = check_fields(&value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))?
        .clone();
    let outcome = core.put(key.clone(), fields).await?;
    Ok(Json(json!({
        "scope": key.scope.as_str(),
        "id": key.doc.to_string(),
        "seq": outcome.seq,
        "durable": true,
    })))
}

async fn audit(State(core): State<CoreHandle>) -> Result<Json<Value>, ApiError> {
    let audit = core
        .audit()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e))?;
    Ok(Json(serde_json::to_value(audit).unwrap_or(Value::Null)))
}

async fn revoke(
    State(core): State<CoreHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "invalid_body", rejection.body_text())
    })?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_revocation",
            "body is not UTF-8 text",
        )
    })?;
    let newly = core
        .revoke(text)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_revocation", e))?;
    Ok(Json(json!({ "newly_revoked": newly })))
}
