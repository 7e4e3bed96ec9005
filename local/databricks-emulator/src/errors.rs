//! Error responses in the shapes the real service uses.
//!
//! Most Databricks REST APIs answer `{"error_code": "...", "message": "..."}`. Two
//! families differ and clients parse them differently, so they have their own variants:
//! SCIM endpoints answer the SCIM error schema, and the OIDC token endpoints answer the
//! OAuth 2.0 error shape (`error`, `error_description`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorBody {
    /// `{"error_code": <code>, "message": ...}`. The code is a JSON value because the
    /// real service answers authentication failures with a numeric `error_code`.
    Standard { error_code: Value, message: String },
    /// SCIM 2.0 error schema.
    Scim { detail: String },
    /// OAuth 2.0 token endpoint error.
    OAuth { error: String, description: String },
    /// `text/plain` body, e.g. `MALFORMED_REQUEST: ...` as some AWS-facing checks answer.
    Plain(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    pub retry_after_seconds: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody::Standard {
                error_code: Value::String(code.to_string()),
                message: message.into(),
            },
            retry_after_seconds: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }

    pub fn missing_field(field: &str) -> Self {
        Self::invalid(format!("Missing required field: {field}"))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST", message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "RESOURCE_ALREADY_EXISTS", message)
    }

    pub fn quota_exceeded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "QUOTA_EXCEEDED", message)
    }

    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_STATE", message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", message)
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", message)
    }

    /// No credential at all. The real service answers 401 with a numeric code.
    pub fn unauthenticated() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            body: ErrorBody::Standard {
                error_code: json!(401),
                message: "Credential was not sent or was of an unsupported type for this API."
                    .to_string(),
            },
            retry_after_seconds: None,
        }
    }

    /// Unknown, expired or revoked bearer token: 403 with a numeric code, as the
    /// real service answers.
    pub fn invalid_token() -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            body: ErrorBody::Standard {
                error_code: json!(403),
                message: "Invalid access token.".to_string(),
            },
            retry_after_seconds: None,
        }
    }

    pub fn scim(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody::Scim {
                detail: detail.into(),
            },
            retry_after_seconds: None,
        }
    }

    pub fn oauth(status: StatusCode, error: &str, description: &str) -> Self {
        ApiError {
            status,
            body: ErrorBody::OAuth {
                error: error.to_string(),
                description: description.to_string(),
            },
            retry_after_seconds: None,
        }
    }

    pub fn plain(status: StatusCode, text: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody::Plain(text.into()),
            retry_after_seconds: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// Turns a standard error into the SCIM shape with the same status and message.
    pub fn into_scim(self) -> Self {
        match self.body {
            ErrorBody::Standard { message, .. } => ApiError::scim(self.status, message),
            _ => self,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            ErrorBody::Standard {
                error_code,
                message,
            } => (
                self.status,
                axum::Json(json!({"error_code": error_code, "message": message})),
            )
                .into_response(),
            ErrorBody::Scim { detail } => {
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "detail": detail,
                    "status": self.status.as_u16().to_string(),
                });
                let mut r = (self.status, axum::Json(body)).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/scim+json"),
                );
                r
            }
            ErrorBody::OAuth { error, description } => (
                self.status,
                axum::Json(json!({"error": error, "error_description": description})),
            )
                .into_response(),
            ErrorBody::Plain(text) => {
                let mut r = (self.status, text).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r
            }
        };
        if let Some(seconds) = self.retry_after_seconds {
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
