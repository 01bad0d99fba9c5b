//! A real S3-protocol server on 127.0.0.1 for tests: s3s-fs (objects are files in a temporary
//! folder) behind s3s, with SigV4 signatures checked against one access key, started in
//! process on an ephemeral port with its own runtime thread.
//!
//! ```no_run
//! let server = walcast_testbed::s3::S3Server::start()?;
//! let url = server.url("app"); // s3://walcast/app?endpoint=http://127.0.0.1:PORT&…
//! let env = server.credentials(); // AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY pairs
//! # anyhow::Ok(())
//! ```
//!
//! It owns the server's lifetime (stopped when dropped) and its folder; it must never be
//! reachable from anything but loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

/// The bucket [`S3Server::start`] creates.
pub const BUCKET: &str = "walcast";
/// The access key the server accepts.
pub const ACCESS_KEY: &str = "walcast-test-access";
/// The secret key the server accepts.
pub const SECRET_KEY: &str = "walcast-test-secret-key";

/// A running S3 server (see the module docs).
pub struct S3Server {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("addr", &self.addr)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl S3Server {
    /// Starts a server with one empty bucket, [`BUCKET`].
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create the S3 server's folder")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("walcast-test-s3")
            .enable_all()
            .build()
            .context("cannot start the S3 server's runtime")?;
        let fs = s3s_fs::FileSystem::new(dir.path())
            .map_err(|e| anyhow::anyhow!("s3s-fs on {}: {e:?}", dir.path().display()))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
            .context("cannot bind the S3 server to 127.0.0.1")?;
        let addr = listener.local_addr()?;
        runtime.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        let server = Self {
            addr,
            dir,
            runtime: Some(runtime),
        };
        server.create_bucket(BUCKET)?;
        Ok(server)
    }

    /// Creates another (empty) bucket.
    pub fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        let path = self.dir.path().join(name);
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The replica URL of `path` in [`BUCKET`], in Litestream's spelling
    /// (`s3://walcast/PATH?endpoint=…&region=us-east-1&forcePathStyle=true`).
    pub fn url(&self, path: &str) -> String {
        format!(
            "s3://{BUCKET}/{path}?endpoint={}&region=us-east-1&forcePathStyle=true",
            self.endpoint()
        )
    }

    /// The environment variables that authenticate against this server.
    pub fn credentials(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ]
    }

    /// The folder holding bucket `bucket` (objects are files under it, named by key).
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.dir.path().join(bucket)
    }

    /// The server's folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
