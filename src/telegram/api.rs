//! A small Bot API client: `setWebhook`, `getWebhookInfo`, `deleteWebhook`.
//!
//! HTTPS through rustls with the webpki roots (plain http only reaches a
//! loopback `api_url`, which the config enforces). Every call is bounded by
//! `CALL_TIMEOUT`, and its answer by `MAX_ANSWER`: Telegram's answers are a
//! few KiB, so a larger one (a broken proxy, a hostile `api_url`) fails the
//! call instead of being held in memory. The token is part of the request path, so no error built
//! here ever includes the URL (hyper's errors and their causes do not).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri, header};
use http_body::Body as _;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::WebhookInfo;
use crate::config::BotToken;

/// How long one Bot API call may take, connect included.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read. `getWebhookInfo` is under 1 KiB; the largest
/// documented answers (a `getUpdates` batch of 100) stay well under this.
const MAX_ANSWER: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach the Bot API at {origin}: {reason}")]
    Unreachable { origin: String, reason: String },
    #[error("the Bot API did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Telegram refused: {description} (error {code})")]
    Refused {
        code: i64,
        description: String,
        /// Seconds to wait before the next call (`parameters.retry_after` of a 429).
        retry_after: Option<u64>,
    },
    #[error("unexpected answer from the Bot API: {0}")]
    Invalid(String),
    /// Reading stops at `MAX_ANSWER`; the connection is dropped, not drained.
    #[error("{0}: Bot API answer larger than 1 MiB; stopped reading it")]
    TooLarge(String),
}

/// What `setWebhook` is told.
#[derive(Debug, Clone)]
pub struct WebhookParams {
    pub url: String,
    pub secret_token: Option<String>,
    pub allowed_updates: Option<Vec<String>>,
    pub max_connections: Option<u32>,
}

pub struct BotApi {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    origin: String,
    token: BotToken,
}

impl BotApi {
    pub fn new(api_url: &Uri, token: BotToken) -> Result<Self, ApiError> {
        let origin = api_url.to_string().trim_end_matches('/').to_string();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| ApiError::Invalid(format!("TLS setup failed: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(BotApi { client, origin, token })
    }

    pub async fn set_webhook(&self, params: &WebhookParams) -> Result<String, ApiError> {
        let mut body = json!({ "url": params.url });
        if let Some(secret) = &params.secret_token {
            body["secret_token"] = json!(secret);
        }
        if let Some(updates) = &params.allowed_updates {
            body["allowed_updates"] = json!(updates);
        }
        if let Some(n) = params.max_connections {
            body["max_connections"] = json!(n);
        }
        self.call("setWebhook", body).await.map(|answer| answer.description)
    }

    pub async fn get_webhook_info(&self) -> Result<WebhookInfo, ApiError> {
        let answer = self.call("getWebhookInfo", json!({})).await?;
        serde_json::from_value(answer.result).map_err(|e| ApiError::Invalid(format!("getWebhookInfo: {e}")))
    }

    pub async fn delete_webhook(&self, drop_pending: bool) -> Result<String, ApiError> {
        let body = json!({ "drop_pending_updates": drop_pending });
        self.call("deleteWebhook", body).await.map(|answer| answer.description)
    }

    async fn call(&self, method: &str, params: Value) -> Result<Answer, ApiError> {
        let uri = format!("{}/bot{}/{method}", self.origin, self.token.expose());
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(params.to_string())))
            .map_err(|_| ApiError::Invalid("cannot build the request".to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| ApiError::Unreachable { origin: self.origin.clone(), reason: crate::error::chain(&e) })?;
            // A declared length over the cap fails before any of the body is read.
            let body = response.into_body();
            if body.size_hint().lower() > MAX_ANSWER as u64 {
                return Err(ApiError::TooLarge(method.to_string()));
            }
            let body = Limited::new(body, MAX_ANSWER).collect().await.map_err(|e| {
                if e.is::<LengthLimitError>() {
                    ApiError::TooLarge(method.to_string())
                } else {
                    ApiError::Unreachable { origin: self.origin.clone(), reason: e.to_string() }
                }
            })?;
            Ok::<_, ApiError>(body.to_bytes())
        };
        let body =
            tokio::time::timeout(CALL_TIMEOUT, exchange).await.map_err(|_| ApiError::Timeout(CALL_TIMEOUT))??;
        let value: Value =
            serde_json::from_slice(&body).map_err(|_| ApiError::Invalid(format!("{method}: not JSON")))?;
        if value["ok"] == json!(true) {
            let description = self.without_token(value["description"].as_str().unwrap_or("ok"));
            return Ok(Answer { result: value["result"].clone(), description });
        }
        Err(ApiError::Refused {
            code: value["error_code"].as_i64().unwrap_or(0),
            description: self.without_token(value["description"].as_str().unwrap_or("no description")),
            retry_after: value["parameters"]["retry_after"].as_u64(),
        })
    }

    /// An answer's text with the bot token taken out: a Bot API server or a
    /// proxy in front of it may echo the path it was asked (`/bot<token>/…`),
    /// and the text goes to the log, the status page and `hookgate telegram`.
    fn without_token(&self, text: &str) -> String {
        let token = self.token.expose();
        if token.is_empty() { text.to_string() } else { text.replace(token, "<token>") }
    }
}

struct Answer {
    result: Value,
    description: String,
}
