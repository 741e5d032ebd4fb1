//! A provider's login for one run, shared by every request the run makes.
//!
//! The first caller logs in while the others wait for it, so a run logs in once however many
//! requests start together; a login the provider stops accepting is replaced once, however many
//! requests saw it refused at the same moment. Commvault's token, Salesforce's session, OCC's
//! token and NeonCRM's session id all live in one of these.

use std::future::Future;
use std::sync::Arc;

use reqwest::StatusCode;
use tokio::sync::{Mutex, MutexGuard};

use super::ProviderError;

/// The current login, if any; see the module docs.
pub(crate) struct LoginCell<T> {
    current: Mutex<Option<Arc<T>>>,
}

impl<T> Default for LoginCell<T> {
    fn default() -> Self {
        LoginCell {
            current: Mutex::new(None),
        }
    }
}

impl<T> LoginCell<T> {
    /// The current login, or a new one from `log_in` if there is none yet.
    pub(crate) async fn get<F>(&self, log_in: impl FnOnce() -> F) -> Result<Arc<T>, ProviderError>
    where
        F: Future<Output = Result<T, ProviderError>>,
    {
        let mut current = self.current.lock().await;
        if let Some(login) = &*current {
            return Ok(login.clone());
        }
        Self::replace(&mut current, log_in).await
    }

    /// A new login in place of `refused`, unless another caller has replaced it already. Says
    /// whether this call logged in (a caller that did, and is refused again, should give up).
    pub(crate) async fn renew<F>(
        &self,
        refused: &Arc<T>,
        log_in: impl FnOnce() -> F,
    ) -> Result<(Arc<T>, bool), ProviderError>
    where
        F: Future<Output = Result<T, ProviderError>>,
    {
        let mut current = self.current.lock().await;
        if let Some(login) = &*current
            && !Arc::ptr_eq(login, refused)
        {
            return Ok((login.clone(), false));
        }
        Ok((Self::replace(&mut current, log_in).await?, true))
    }

    /// Sends with `login` until the provider stops answering 401. A 401 is a refusal before any
    /// work, so the request is built and sent again with a renewed login: this call logs in at
    /// most once, and may take up a login another call renewed meanwhile, `max_logins` times in
    /// all. Past that, `refused` words the last answer as the error.
    pub(crate) async fn send_until_accepted<SendFut, LogInFut>(
        &self,
        mut login: Arc<T>,
        max_logins: usize,
        log_in: impl Fn() -> LogInFut,
        send: impl Fn(Arc<T>) -> SendFut,
        refused: impl Fn(StatusCode, &str) -> String,
    ) -> Result<(StatusCode, String), ProviderError>
    where
        SendFut: Future<Output = Result<(StatusCode, String), ProviderError>>,
        LogInFut: Future<Output = Result<T, ProviderError>>,
    {
        let mut logged_in = false;
        let mut tried = 0;
        loop {
            tried += 1;
            let (status, body) = send(login.clone()).await?;
            if status != StatusCode::UNAUTHORIZED {
                return Ok((status, body));
            }
            if logged_in || tried >= max_logins {
                return Err(ProviderError::Unauthorized {
                    message: refused(status, &body),
                });
            }
            tracing::debug!("the provider refused the login (HTTP 401): logging in again");
            (login, logged_in) = self.renew(&login, &log_in).await?;
        }
    }

    /// The cell held, for a provider that renews a login before it lapses (OCC's refresh).
    pub(crate) async fn lock(&self) -> MutexGuard<'_, Option<Arc<T>>> {
        self.current.lock().await
    }

    /// Logs in and keeps the result, in the held cell.
    pub(crate) async fn replace<F>(
        current: &mut Option<Arc<T>>,
        log_in: impl FnOnce() -> F,
    ) -> Result<Arc<T>, ProviderError>
    where
        F: Future<Output = Result<T, ProviderError>>,
    {
        let login = Arc::new(log_in().await?);
        *current = Some(login.clone());
        Ok(login)
    }
}
