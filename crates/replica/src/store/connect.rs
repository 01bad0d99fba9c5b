//! Builds the object_store client of an S3, GCS or Azure [`ReplicaTarget`] from the target,
//! an environment snapshot ([`Env`]) and the [`RetryPolicy`].
//!
//! - S3: `AWS_*` variables as the AWS tools read them (credentials, session token, region,
//!   web identity, container credentials), with `LITESTREAM_ACCESS_KEY_ID` /
//!   `LITESTREAM_SECRET_ACCESS_KEY` taking precedence, as Litestream copies them over the
//!   `AWS_*` ones. Region: the target's, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else
//!   `us-east-1`. An `http://` endpoint is allowed (MinIO on a private network, a test
//!   server on loopback). Without `force-path-style` requests go to `BUCKET.endpoint`, as
//!   the AWS SDK that Litestream uses sends them.
//! - GCS: `GOOGLE_*` variables (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`…),
//!   else the instance's default credentials.
//! - Azure: `AZURE_*` variables; the account from the URL (`abs://ACCOUNT@CONTAINER`) or
//!   `AZURE_STORAGE_ACCOUNT_NAME`; `LITESTREAM_AZURE_ACCOUNT_KEY` as the access key.
//! - `AWS_CA_BUNDLE`: when it names a readable PEM bundle its certificates are trusted in
//!   addition to the system's; when it cannot be read or parsed it is ignored (never an
//!   error: some machines export it for other tools).
//! - Trust roots: the system's (`/etc/ssl/certs`…, `SSL_CERT_FILE`, `SSL_CERT_DIR`) when
//!   it has any; on a machine without any (a `FROM scratch` image) the Mozilla roots built
//!   into the binary ([`webpki_root_certs`]) instead. reqwest's verifier refuses to build a
//!   client when the system has no roots, even for an `http://` endpoint, so without this
//!   fallback a static binary could not reach any store without a mounted CA bundle.
//!
//! This module never sends a request: building a client checks the settings only.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{Certificate, ClientOptions, ObjectStore, RetryConfig};

use crate::store::env::Env;
use crate::store::error::StoreError;
use crate::store::keys::ObjectLayout;
use crate::store::retry::RetryPolicy;
use crate::target::{AzureTarget, GcsTarget, ReplicaTarget, S3Target};

/// Region used when neither the target nor the environment names one (Litestream's too).
pub const DEFAULT_REGION: &str = "us-east-1";

/// An object store client and how this replica uses it.
#[derive(Debug)]
pub(crate) struct Connected {
    pub store: Arc<dyn ObjectStore>,
    /// How objects are named in messages: `s3://bucket`.
    pub bucket_url: String,
    /// The replica's prefix inside the bucket (may be empty).
    pub prefix: String,
    /// The user-metadata key Litestream writes the LTX timestamp under on this backend.
    pub timestamp_key: &'static str,
    /// How Litestream names level directories on this backend.
    pub layout: ObjectLayout,
    /// Where requests go, for messages: the configured endpoint, else the provider's.
    pub endpoint: String,
    /// What the backend calls a bucket, for messages.
    pub container: &'static str,
}

fn setup(
    target: String,
    kind: &'static str,
    hint: &'static str,
) -> impl FnOnce(object_store::Error) -> StoreError {
    move |source| StoreError::Setup {
        target,
        kind,
        hint,
        source: Box::new(source),
    }
}

/// One retry layer only: ours (crate::store::retry).
fn no_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 0,
        ..RetryConfig::default()
    }
}

/// The client of an S3 (or S3-compatible) replica.
pub(crate) fn s3(t: &S3Target, env: &Env, policy: &RetryPolicy) -> Result<Connected, StoreError> {
    let options = client_options(env, policy);
    let options = match &t.endpoint {
        Some(e) if e.starts_with("http://") => options.with_allow_http(true),
        _ => options,
    };
    let store = s3_builder(t, env)
        .with_client_options(options)
        .with_retry(no_retries())
        .build()
        .map_err(setup(
            ReplicaTarget::S3(t.clone()).to_string(),
            "s3",
            "check the bucket name, endpoint and region of the replica",
        ))?;
    Ok(Connected {
        store: Arc::new(store),
        bucket_url: format!("s3://{}", t.bucket),
        prefix: t.path.clone(),
        timestamp_key: "litestream-timestamp",
        layout: ObjectLayout::HexLevels,
        endpoint: s3_endpoint(t, env),
        container: "bucket",
    })
}

/// The client of a Google Cloud Storage replica.
pub(crate) fn gcs(t: &GcsTarget, env: &Env, policy: &RetryPolicy) -> Result<Connected, StoreError> {
    let store = gcs_builder(t, env)
        .with_client_options(client_options(env, policy))
        .with_retry(no_retries())
        .build()
        .map_err(setup(
            ReplicaTarget::Gcs(t.clone()).to_string(),
            "gs",
            "check GOOGLE_APPLICATION_CREDENTIALS and the bucket name",
        ))?;
    Ok(Connected {
        store: Arc::new(store),
        bucket_url: format!("gs://{}", t.bucket),
        prefix: t.path.clone(),
        timestamp_key: "litestream-timestamp",
        layout: ObjectLayout::LtxLevels,
        endpoint: "https://storage.googleapis.com".to_owned(),
        container: "bucket",
    })
}

/// The client of an Azure Blob Storage replica.
pub(crate) fn azure(
    t: &AzureTarget,
    env: &Env,
    policy: &RetryPolicy,
) -> Result<Connected, StoreError> {
    let store = azure_builder(t, env)
        .with_client_options(client_options(env, policy))
        .with_retry(no_retries())
        .build()
        .map_err(setup(
            ReplicaTarget::Azure(t.clone()).to_string(),
            "abs",
            "name the storage account (abs://ACCOUNT@CONTAINER/PATH or AZURE_STORAGE_ACCOUNT_NAME) and give a key (LITESTREAM_AZURE_ACCOUNT_KEY or AZURE_STORAGE_ACCOUNT_KEY)",
        ))?;
    Ok(Connected {
        store: Arc::new(store),
        bucket_url: format!("abs://{}", t.container),
        prefix: t.path.clone(),
        timestamp_key: "litestreamtimestamp",
        layout: ObjectLayout::LtxLevels,
        endpoint: azure_endpoint(t, env),
        container: "container",
    })
}

fn client_options(env: &Env, policy: &RetryPolicy) -> ClientOptions {
    // Attempts are timed by crate::store::retry (PUTs by their size, downloads by their
    // progress), so the HTTP client's whole-request timeout is off.
    let mut options = ClientOptions::new()
        .with_timeout_disabled()
        .with_connect_timeout(policy.connect_timeout);
    if !system_has_roots() {
        options = options.with_no_system_certificates(true);
        for certificate in bundled_roots() {
            options = options.with_root_certificate(certificate);
        }
    }
    for certificate in ca_bundle(env) {
        options = options.with_root_certificate(certificate);
    }
    options
}

/// True when the system trust store has certificates (the lookup reqwest's verifier
/// makes: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the usual bundle paths). Looked up once per
/// process.
fn system_has_roots() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| !rustls_native_certs::load_native_certs().certs.is_empty())
}

/// The Mozilla root certificates built into the binary.
fn bundled_roots() -> impl Iterator<Item = Certificate> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| Certificate::from_der(der).ok())
}

/// The certificates of `AWS_CA_BUNDLE`, or none when it is unset, unreadable or not PEM.
fn ca_bundle(env: &Env) -> Vec<Certificate> {
    env.get("AWS_CA_BUNDLE")
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|pem| Certificate::from_pem_bundle(&pem).ok())
        .unwrap_or_default()
}

fn s3_builder(t: &S3Target, env: &Env) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::new();
    for (key, value) in env.with_prefix("AWS_") {
        if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    if let (Some(id), Some(secret)) = (
        env.get("LITESTREAM_ACCESS_KEY_ID"),
        env.get("LITESTREAM_SECRET_ACCESS_KEY"),
    ) {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret);
    }
    let region = s3_region(t, env);
    builder = builder.with_bucket_name(&t.bucket).with_region(region);
    match &t.endpoint {
        // `bucket.10.0.0.5` is no host name: an IP address endpoint can only be path style.
        Some(endpoint) if t.force_path_style || is_ip_endpoint(endpoint) => {
            builder.with_endpoint(endpoint)
        }
        // object_store's virtual-hosted mode takes the bucket's own endpoint.
        Some(endpoint) => builder
            .with_endpoint(bucket_endpoint(endpoint, &t.bucket))
            .with_virtual_hosted_style_request(true),
        None => builder.with_virtual_hosted_style_request(!t.force_path_style),
    }
}

/// The S3 endpoint for messages: the replica's, else AWS's for the region.
fn s3_endpoint(t: &S3Target, env: &Env) -> String {
    let configured = t.endpoint.as_deref();
    match (
        configured,
        env.get("AWS_ENDPOINT_URL").or(env.get("AWS_ENDPOINT")),
    ) {
        (Some(endpoint), _) | (None, Some(endpoint)) => endpoint.to_owned(),
        (None, None) => format!("https://s3.{}.amazonaws.com", s3_region(t, env)),
    }
}

fn s3_region<'a>(t: &'a S3Target, env: &'a Env) -> &'a str {
    t.region
        .as_deref()
        .or_else(|| env.get("AWS_REGION"))
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .unwrap_or(DEFAULT_REGION)
}

/// The Azure Blob endpoint for messages.
fn azure_endpoint(t: &AzureTarget, env: &Env) -> String {
    if let Some(endpoint) = env
        .get("AZURE_STORAGE_ENDPOINT")
        .or(env.get("AZURE_ENDPOINT"))
    {
        return endpoint.to_owned();
    }
    match t
        .account
        .as_deref()
        .or_else(|| env.get("AZURE_STORAGE_ACCOUNT_NAME"))
    {
        Some(account) => format!("https://{account}.blob.core.windows.net"),
        None => "https://ACCOUNT.blob.core.windows.net".to_owned(),
    }
}

/// True when the endpoint's host is an IP address (`http://127.0.0.1:9000`, `http://[::1]`).
fn is_ip_endpoint(endpoint: &str) -> bool {
    url::Url::parse(endpoint)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .is_some_and(|host| host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok())
}

/// `scheme://host` -> `scheme://bucket.host`.
fn bucket_endpoint(endpoint: &str, bucket: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, host)) => format!("{scheme}://{bucket}.{host}"),
        None => format!("{bucket}.{endpoint}"),
    }
}

fn gcs_builder(t: &GcsTarget, env: &Env) -> GoogleCloudStorageBuilder {
    let mut builder = GoogleCloudStorageBuilder::new();
    for (key, value) in env.with_prefix("GOOGLE_") {
        if let Ok(key) = key.to_ascii_lowercase().parse::<GoogleConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    builder.with_bucket_name(&t.bucket)
}

fn azure_builder(t: &AzureTarget, env: &Env) -> MicrosoftAzureBuilder {
    let mut builder = MicrosoftAzureBuilder::new();
    for (key, value) in env.with_prefix("AZURE_") {
        if let Ok(key) = key.to_ascii_lowercase().parse::<AzureConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    if let Some(key) = env.get("LITESTREAM_AZURE_ACCOUNT_KEY") {
        builder = builder.with_access_key(key);
    }
    if let Some(account) = &t.account {
        builder = builder.with_account(account);
    }
    builder.with_container_name(&t.container)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosted_endpoints_carry_the_bucket() {
        assert_eq!(
            bucket_endpoint("https://minio.example:9000", "b"),
            "https://b.minio.example:9000"
        );
    }

    #[test]
    fn ip_address_endpoints_are_recognised() {
        assert!(is_ip_endpoint("http://127.0.0.1:9000"));
        assert!(is_ip_endpoint("http://[::1]:9000"));
        assert!(!is_ip_endpoint("https://minio.example:9000"));
        assert!(!is_ip_endpoint("not a url"));
    }

    #[test]
    fn the_bundled_roots_all_load() {
        assert_eq!(
            bundled_roots().count(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
        assert!(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() > 100);
    }

    #[test]
    fn an_unusable_ca_bundle_is_ignored() {
        for value in ["/nonexistent/ca.pem", "/dev/null", "/proc/self/status"] {
            assert!(ca_bundle(&Env::from_pairs([("AWS_CA_BUNDLE", value)])).is_empty());
        }
    }
}
