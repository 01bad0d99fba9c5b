//! The startup check of an object-store replica: one cheap LIST under the replica's
//! prefix, with a short deadline and no long retry chain, so that a wrong endpoint, a
//! missing bucket or bad credentials are reported in a second or two, in one sentence,
//! instead of after the minute of retries normal operation allows
//! ([`crate::store::retry`]).
//!
//! Rules:
//! - The whole check must finish within [`PROBE_DEADLINE`] (connecting is bounded by the
//!   client's own connect timeout, [`crate::RetryPolicy::connect_timeout`]).
//! - A connection that fails without an answer (refused, reset) is tried
//!   [`PROBE_ATTEMPTS`] times, a few hundred milliseconds apart, so a one-off blip does not
//!   stop a start; nothing else is retried.
//! - An answer of HTTP 5xx, 408 or 429 proves the endpoint reachable: the check passes and
//!   the normal, retried requests take over. Any other failed answer (403, 404…) fails it.
//!
//! This module only decides what a failure means and what to tell the user; the request
//! itself is [`crate::ObjectReplica::check_reachable`].

use std::future::Future;
use std::time::Duration;

use crate::store::retry::http_status;

/// The longest the whole check may take.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(8);
/// Attempts when the connection fails without an answer.
const PROBE_ATTEMPTS: u32 = 3;
/// Pause after the first such failure (doubled after the second).
const PROBE_PAUSE: Duration = Duration::from_millis(250);

/// Why the check failed, in a few words, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreachable {
    pub reason: String,
    pub hint: &'static str,
}

const CREDENTIALS: &str = "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or LITESTREAM_ACCESS_KEY_ID/LITESTREAM_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY) and that they may list the bucket";
const REACHABLE: &str = "check the endpoint's address and port, that the server is running, and that this machine can reach it (firewall, proxy)";

/// Runs `attempt` (one LIST) as the module docs say. `container` is what the backend
/// calls a bucket (`bucket`, `container`), for messages.
pub(crate) async fn probe<F, Fut>(container: &str, mut attempt: F) -> Result<(), Unreachable>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), object_store::Error>>,
{
    let attempts = async {
        let mut n = 0;
        loop {
            n += 1;
            let Err(error) = attempt().await else {
                return Ok(());
            };
            match http_status(&error) {
                Some(status) if status >= 500 || status == 408 || status == 429 => return Ok(()),
                None if n < PROBE_ATTEMPTS && is_connection_failure(&error) => {
                    tokio::time::sleep(PROBE_PAUSE * n).await;
                }
                _ => return Err(classify(&error, container)),
            }
        }
    };
    match tokio::time::timeout(PROBE_DEADLINE, attempts).await {
        Ok(result) => result,
        Err(_elapsed) => Err(Unreachable {
            reason: format!("no answer within {} s", PROBE_DEADLINE.as_secs()),
            hint: REACHABLE,
        }),
    }
}

/// True for a failure without an answer that could go away at once (refused, reset), not
/// for DNS or TLS failures or a connect timeout.
fn is_connection_failure(error: &object_store::Error) -> bool {
    matches!(
        io_error_kind(error),
        Some(
            std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
        )
    )
}

/// The kind of the first I/O error in the chain.
fn io_error_kind(error: &object_store::Error) -> Option<std::io::ErrorKind> {
    chain(error).find_map(|e| e.downcast_ref::<std::io::Error>().map(|e| e.kind()))
}

fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// The innermost error's message: the actual cause, without object_store's and reqwest's
/// wrapping (`Connection refused (os error 111)`).
fn root_cause(error: &object_store::Error) -> String {
    chain(error)
        .last()
        .map_or_else(|| error.to_string(), |e| e.to_string())
}

/// What a failed check means.
pub(crate) fn classify(error: &object_store::Error, container: &str) -> Unreachable {
    let status = http_status(error);
    match (status, error) {
        (Some(401 | 403), _)
        | (
            None,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. },
        ) => {
            return Unreachable {
                reason: format!(
                    "access denied{}",
                    status.map_or_else(String::new, |s| format!(" (HTTP {s})"))
                ),
                hint: CREDENTIALS,
            };
        }
        (Some(404), _) | (None, object_store::Error::NotFound { .. }) => {
            return Unreachable {
                reason: format!("the {container} does not exist"),
                hint: "create it, or correct its name in the replica URL or config (and the endpoint, if it is not the provider's)",
            };
        }
        (Some(301 | 307 | 400), _) => {
            return Unreachable {
                reason: format!("the store answered HTTP {}", status.unwrap_or_default()),
                hint: "check the region (the bucket may be in another one) and the endpoint",
            };
        }
        (Some(status), _) => {
            return Unreachable {
                reason: format!("the store answered HTTP {status}: {}", root_cause(error)),
                hint: "check the endpoint, the bucket name and the credentials",
            };
        }
        (None, _) => {}
    }
    let texts: Vec<String> = chain(error).map(|e| e.to_string().to_lowercase()).collect();
    let mentions = |word: &str| texts.iter().any(|t| t.contains(word));
    match io_error_kind(error) {
        Some(std::io::ErrorKind::ConnectionRefused) => Unreachable {
            reason: "connection refused (nothing listens at that address and port)".into(),
            hint: REACHABLE,
        },
        Some(std::io::ErrorKind::TimedOut) => Unreachable {
            reason: "connecting timed out".into(),
            hint: REACHABLE,
        },
        _ if mentions("dns error") => Unreachable {
            reason: format!("the host name does not resolve ({})", root_cause(error)),
            hint: "check the endpoint's host name; unless force-path-style is set, requests go to BUCKET.endpoint, so the bucket name must be a valid host name there too",
        },
        _ if mentions("certificate") || mentions("tls") => Unreachable {
            reason: format!("the TLS handshake failed ({})", root_cause(error)),
            hint: "check that the endpoint's certificate is valid for its name; for a private CA, set AWS_CA_BUNDLE to its PEM file",
        },
        _ if mentions("timed out") => Unreachable {
            reason: "connecting timed out".into(),
            hint: REACHABLE,
        },
        _ => Unreachable {
            reason: root_cause(error),
            hint: REACHABLE,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: text.into(),
        }
    }

    #[test]
    fn answers_are_told_apart() {
        let denied = classify(&generic("list failed, status code: 403"), "bucket");
        assert_eq!(denied.reason, "access denied (HTTP 403)");
        let missing = classify(&generic("status code: 404, NoSuchBucket"), "container");
        assert_eq!(missing.reason, "the container does not exist");
        let refused = object_store::Error::Generic {
            store: "S3",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        assert!(
            classify(&refused, "bucket")
                .reason
                .contains("connection refused")
        );
        assert!(is_connection_failure(&refused));
        let dns = classify(&generic("dns error: failed to lookup address"), "bucket");
        assert!(dns.reason.contains("does not resolve"), "{dns:?}");
    }

    #[test]
    fn refused_connections_are_tried_a_few_times_and_5xx_passes() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(refused_then_busy());
    }

    async fn refused_then_busy() {
        let mut calls = 0;
        let result = probe("bucket", || {
            calls += 1;
            async {
                Err(object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                })
            }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, PROBE_ATTEMPTS);
        let busy = probe("bucket", || async { Err(generic("status code: 503")) }).await;
        assert_eq!(busy, Ok(()));
    }
}
