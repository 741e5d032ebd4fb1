//! The one adapter between axum and the emulators' rules, shared by the handlers of Commvault,
//! Salesforce, Oracle and NeonCRM (Heron's handlers are axum's own): the request taken apart
//! ([`Call`], and the plain [`Request`] the Oracle and Salesforce rules read), the base URL the
//! client reached the sandbox at, the choice between a saved and a transient change of the data
//! ([`on_data`]), and the count kept by an emulator's `lose_create_answers` knob
//! ([`LostAnswers`]).

use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Method, Uri};

use super::SandboxData;
use super::state::SandboxState;

/// A request as the emulators' rules read it: its method, address, headers and whole body.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Call {
    type Rejection = BytesRejection;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Call, BytesRejection> {
        let (parts, body) = request.into_parts();
        let (method, uri, headers) = (
            parts.method.clone(),
            parts.uri.clone(),
            parts.headers.clone(),
        );
        // Through axum's own `Bytes`, so the body limit is the one every handler had.
        let body =
            Bytes::from_request(axum::extract::Request::from_parts(parts, body), state).await?;
        Ok(Call {
            method,
            uri,
            headers,
            body,
        })
    }
}

impl Call {
    /// A header's value, if it is there and is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Wherever the client reached this sandbox: the base of every URL an emulator hands out
    /// (Salesforce's `instance_url`, Oracle's links), so that each points back at the sandbox.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.header("host").unwrap_or("127.0.0.1"))
    }

    /// The call as the Oracle and Salesforce emulators' rules read it.
    pub(crate) fn request(&self) -> Request<'_> {
        Request {
            method: self.method.as_str(),
            path: self.uri.path(),
            query: self.uri.query(),
            authorization: self.header("authorization"),
            query_options: self.header("sforce-query-options"),
            body: &self.body,
        }
    }
}

/// An HTTP request, as much of it as the Oracle and Salesforce emulators read: free of axum, so
/// that tests can hand their rules one directly.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `Sforce-Query-Options` header (Salesforce's only).
    pub query_options: Option<&'a str>,
    pub body: &'a [u8],
}

/// Runs a call's rules on the data: through `mutate` (saved) when the call changes what the
/// data file keeps, through `touch` (not saved) when it only changes sessions, tokens or
/// cursors, which a restarted provider would have forgotten too.
pub(crate) async fn on_data<R>(
    state: &SandboxState,
    saves: bool,
    rules: impl FnOnce(&mut SandboxData) -> R,
) -> R {
    if saves {
        state.mutate(rules).await
    } else {
        state.touch(rules)
    }
}

/// What an emulator's `lose_create_answers` knob has lost so far: the first so many creates are
/// committed, then answered with HTTP 502 instead, as a proxy that lost the upstream answer, so
/// that a client cannot know whether they happened. Transient, never saved.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LostAnswers(u32);

impl LostAnswers {
    /// Whether the answer to the create just committed is lost, while fewer than `limit` are;
    /// counts it when so.
    pub(crate) fn lose(&mut self, limit: u32) -> bool {
        let lose = self.0 < limit;
        if lose {
            self.0 += 1;
        }
        lose
    }
}
