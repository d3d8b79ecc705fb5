//! The etcd backend: the [`Store`] trait on stock etcd 3.4+ through the `etcd-client` crate.
//!
//! # Mapping
//!
//! * Revisions are etcd's revisions, unchanged: a key's `mod_revision` and `create_revision`
//!   are etcd's, and a Kubernetes `resourceVersion` means the same as with kube-apiserver.
//!   etcd counts its own creation as revision 1, so a fresh etcd is at revision 1 (not 0)
//!   and its first write is revision 2.
//! * Keys: [`EtcdOptions::key_prefix`] is prepended to every key on the way in and removed
//!   on the way out (the default is empty: the API server's keys already start with
//!   `/registry/`). Keys outside the prefix are invisible to the store. Several clusters
//!   can share one etcd with different prefixes; their revisions then interleave, as etcd
//!   has one counter. The prefix is a plain string prefix: with `/cluster-a`, a list of
//!   the store's empty prefix would also see a neighbour's `/cluster-ab/...` keys (lists of
//!   `/registry/...` prefixes, the only ones the API server makes, cannot).
//! * `create` is a transaction `create_revision(key) == 0 → put`; `update` is
//!   `mod_revision(key) == expected ∧ version(key) > 0 → put` (else a read of the key for
//!   `Conflict`/`NotFound`); `delete` is `[mod_revision(key) == expected ∧] version(key) > 0
//!   → delete with prev_kv`. Each write is one round trip.
//! * `list` is one range read at the revision asked for, sorted by key, with etcd's `count`
//!   (keys in the range at that revision) giving `remaining = count - returned`.
//! * `watch(prefix, after)` is an etcd watch from `after + 1` with `prev_kv` (a delete event
//!   carries the last value from `prev_kv`). A read at `after` first makes a compacted
//!   `after` fail the call itself (etcd would cancel the watch only later). When the etcd
//!   stream fails or ends (etcd restarted, connection reset, keep-alive timeout), the watch
//!   is re-established from the revision after the last event delivered, with back-off,
//!   for as long as it takes: the consumer sees no gap, no duplicate and no error. Only if
//!   etcd then cancels it with a `compact_revision` (the history it needs was compacted
//!   meanwhile) does the stream yield [`StorageError::Compacted`] and end.
//! * `compact(r)` is etcd's (non-physical) compaction. etcd has no call that returns the
//!   compacted revision, so [`EtcdStore`] tracks a lower bound (its own compactions, watches
//!   canceled with a `compact_revision`, compaction errors) and `compacted_revision()`
//!   confirms it with a read at that revision, searching upwards (binary search up to the
//!   current revision) only when someone else compacted further.
//!
//! # Failures
//!
//! Every call has a deadline ([`EtcdOptions::request_timeout`]): if etcd does not answer in
//! time (down, partitioned, no leader), the call fails with [`StorageError::Unavailable`].
//! Transport errors and etcd's own "unavailable" answers (no leader, too many requests,
//! request timed out) map to `Unavailable` too. The underlying gRPC channel reconnects by
//! itself, so calls succeed again as soon as etcd is back. A write that timed out may still
//! have been applied, exactly as with any etcd client.

mod watch;

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity,
    KvClient, TlsOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchClient,
};

use crate::{KeyValue, ListResult, Result, Revision, StorageError, Store, WatchStream};

/// The largest gRPC message the store accepts from etcd (etcd itself sends up to 2 GiB; the
/// client's default of 4 MiB would fail lists of a few thousand objects).
const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

/// TLS towards etcd: the PEM contents of kube-apiserver's `--etcd-cafile`,
/// `--etcd-certfile` and `--etcd-keyfile`. Endpoints must then be `https://` URLs.
#[derive(Clone, Default)]
pub struct EtcdTls {
    /// CA certificate(s) that etcd's serving certificate must chain to. `None`: the
    /// operating system's roots are not used either, so give one unless etcd's certificate
    /// is signed by a CA tonic trusts by default.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and its private key, for etcd's `--client-cert-auth`.
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
    /// The name to verify etcd's certificate against, if not the endpoint's host.
    pub domain_name: Option<String>,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "<pem>"),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("domain_name", &self.domain_name)
            .finish()
    }
}

impl EtcdTls {
    /// Reads the three files (each optional) as kube-apiserver's `--etcd-*file` flags name them.
    pub fn from_files(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<EtcdTls> {
        let read = |p: Option<&Path>| -> Result<Option<Vec<u8>>> {
            p.map(|p| {
                std::fs::read(p).map_err(|e| {
                    StorageError::Internal(format!("cannot read {}: {e}", p.display()))
                })
            })
            .transpose()
        };
        Ok(EtcdTls {
            ca_pem: read(ca)?,
            client_cert_pem: read(cert)?,
            client_key_pem: read(key)?,
            domain_name: None,
        })
    }

    fn to_tls_options(&self) -> Result<TlsOptions> {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &self.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(cert), Some(key)) => tls = tls.identity(Identity::from_pem(cert, key)),
            (None, None) => {}
            _ => {
                return Err(StorageError::Internal(
                    "etcd TLS: a client certificate needs its key and a key its certificate".into(),
                ))
            }
        }
        if let Some(name) = &self.domain_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(tls)
    }
}

/// How to reach etcd. Only `endpoints` is required.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// Client URLs of the etcd members (`http://127.0.0.1:2379`, or `https://...` with
    /// [`EtcdOptions::tls`]); requests are balanced over them.
    pub endpoints: Vec<String>,
    /// A string prepended to every key (default empty). For example with `/cluster-a`, the
    /// key `/registry/pods/ns/p` is stored in etcd as `/cluster-a/registry/pods/ns/p`. It is
    /// prepended as is: give it without a trailing `/` when keys start with one.
    pub key_prefix: String,
    /// TLS settings; `None` for plain `http://` endpoints.
    pub tls: Option<EtcdTls>,
    /// Deadline of every call (and of every attempt to re-establish a watch); past it the
    /// call fails with [`StorageError::Unavailable`].
    pub request_timeout: Duration,
    /// Deadline for opening a connection to one member.
    pub dial_timeout: Duration,
    /// HTTP/2 keep-alive ping interval; a connection whose ping is not answered within
    /// `request_timeout` is dropped (and watches on it re-established). `None` disables.
    pub keep_alive_interval: Option<Duration>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            key_prefix: String::new(),
            tls: None,
            request_timeout: Duration::from_secs(10),
            dial_timeout: Duration::from_secs(5),
            keep_alive_interval: Some(Duration::from_secs(15)),
        }
    }
}

impl EtcdOptions {
    /// Options for these endpoints, everything else at its default.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> EtcdOptions {
        EtcdOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..EtcdOptions::default()
        }
    }
}

/// What the store and its watch tasks share.
pub(crate) struct Shared {
    /// A lower bound of etcd's compacted revision (see the module docs).
    pub(crate) compacted: AtomicI64,
    pub(crate) closed: AtomicBool,
    pub(crate) key_prefix: String,
    pub(crate) request_timeout: Duration,
}

impl Shared {
    pub(crate) fn note_compacted(&self, revision: Revision) {
        self.compacted.fetch_max(revision, Ordering::AcqRel);
    }
}

/// The etcd store. See the module docs for how the trait maps onto etcd.
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    shared: Arc<Shared>,
    /// Watches wait on this: a `true`, or its drop with the store, ends them. (Not in
    /// `Shared`, which the watch tasks hold.)
    closing: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("key_prefix", &self.shared.key_prefix)
            .finish_non_exhaustive()
    }
}

/// Maps an etcd-client error that has no more specific meaning at the call site.
pub(crate) fn etcd_err(err: etcd_client::Error) -> StorageError {
    use etcd_client::Error as E;
    use tonic::Code;
    match err {
        E::GRpcStatus(status) => {
            let msg = format!("etcd: {}", status.message());
            match status.code() {
                // Unreachable members, no leader, leader changes, overload and server-side
                // timeouts: all worth a retry.
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Aborted
                | Code::Cancelled => StorageError::Unavailable(msg),
                // tonic reports broken connections (h2 errors) as Unknown.
                Code::Unknown => StorageError::Unavailable(msg),
                code => StorageError::Internal(format!("{msg} ({code:?})")),
            }
        }
        E::TransportError(e) => StorageError::Unavailable(format!("etcd transport: {e}")),
        E::IoError(e) => StorageError::Unavailable(format!("etcd i/o: {e}")),
        E::WatchError(e) => StorageError::Unavailable(format!("etcd watch: {e}")),
        other => StorageError::Internal(format!("etcd: {other}")),
    }
}

fn status_message(err: &etcd_client::Error) -> Option<&str> {
    match err {
        etcd_client::Error::GRpcStatus(status) if status.code() == tonic::Code::OutOfRange => {
            Some(status.message())
        }
        _ => None,
    }
}

/// etcd's `ErrCompacted` ("mvcc: required revision has been compacted").
pub(crate) fn is_compacted(err: &etcd_client::Error) -> bool {
    status_message(err).is_some_and(|m| m.contains("required revision has been compacted"))
}

/// etcd's `ErrFutureRev` ("mvcc: required revision is a future revision").
fn is_future(err: &etcd_client::Error) -> bool {
    status_message(err).is_some_and(|m| m.contains("required revision is a future revision"))
}

/// The first byte string greater than every string that starts with `prefix` (etcd's
/// `GetPrefixRangeEnd`); `"\0"` ("to the end of the keyspace") when there is none.
fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StorageError::Internal("etcd answered without a header".into()))
}

impl EtcdStore {
    /// Sets up the connection. Nothing is sent yet (the channel connects on the first call,
    /// and reconnects by itself), so this fails only for invalid options, never because etcd
    /// is down; the first call then fails with `Unavailable` until etcd answers.
    pub async fn connect(opts: EtcdOptions) -> Result<Arc<EtcdStore>> {
        if opts.endpoints.is_empty() {
            return Err(StorageError::Internal("no etcd endpoints given".into()));
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(opts.dial_timeout)
            .with_keep_alive_while_idle(false);
        if let Some(interval) = opts.keep_alive_interval {
            connect = connect.with_keep_alive(interval, opts.request_timeout);
        }
        if let Some(tls) = &opts.tls {
            connect = connect.with_tls(tls.to_tls_options()?);
        }
        let client = Client::connect(&opts.endpoints, Some(connect))
            .await
            .map_err(|e| match e {
                etcd_client::Error::InvalidArgs(_)
                | etcd_client::Error::InvalidUri(_)
                | etcd_client::Error::TransportError(_) => {
                    StorageError::Internal(format!("etcd endpoints {:?}: {e}", opts.endpoints))
                }
                other => etcd_err(other),
            })?;
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let watch = client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let (closing, _) = tokio::sync::watch::channel(false);
        tracing::debug!(endpoints = ?opts.endpoints, key_prefix = %opts.key_prefix, "etcd store set up");
        Ok(Arc::new(EtcdStore {
            kv,
            watch,
            shared: Arc::new(Shared {
                compacted: AtomicI64::new(0),
                closed: AtomicBool::new(false),
                key_prefix: opts.key_prefix,
                request_timeout: opts.request_timeout,
            }),
            closing,
        }))
    }

    /// The string prepended to every key.
    pub fn key_prefix(&self) -> &str {
        &self.shared.key_prefix
    }

    /// Stops the store: afterwards every call fails with `Unavailable`, and every watch
    /// yields an `Unavailable` error and ends. (Dropping the store ends its watches too.)
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.closing.send_replace(true);
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StorageError::Unavailable("store is closed".into()));
        }
        Ok(())
    }

    fn full_key(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.shared.key_prefix.len() + key.len());
        full.extend_from_slice(self.shared.key_prefix.as_bytes());
        full.extend_from_slice(key.as_bytes());
        full
    }

    /// Runs one etcd call under the request deadline, raw errors kept for the caller.
    async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<std::result::Result<T, etcd_client::Error>> {
        self.check_open()?;
        match tokio::time::timeout(self.shared.request_timeout, fut).await {
            Ok(result) => Ok(result),
            Err(_) => Err(StorageError::Unavailable(format!(
                "etcd {what}: no answer within {:?}",
                self.shared.request_timeout
            ))),
        }
    }

    /// [`Self::call`] with every error mapped by [`etcd_err`].
    async fn simple_call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        self.call(what, fut).await?.map_err(etcd_err)
    }

    /// A cheap linearizable read (one key, count only) at `revision` (0: current): its
    /// header carries the current revision, and it fails like any read at `revision`.
    async fn probe(
        &self,
        revision: Revision,
    ) -> Result<std::result::Result<Revision, etcd_client::Error>> {
        let mut kv = self.kv.clone();
        // Any key will do; this one is inside the prefix, so it needs no extra permission.
        let key = self.full_key("/");
        let opts = GetOptions::new().with_count_only().with_revision(revision);
        Ok(self
            .call("read", async move { kv.get(key, Some(opts)).await })
            .await?
            .and_then(|r| {
                r.header()
                    .map(|h| h.revision())
                    .ok_or_else(|| etcd_client::Error::Internal("no header".into()))
            }))
    }

    /// Whether a read at `revision` is still possible (it is not compacted away).
    async fn readable_at(&self, revision: Revision) -> Result<bool> {
        match self.probe(revision).await? {
            Ok(_) => Ok(true),
            Err(e) if is_compacted(&e) => Ok(false),
            Err(e) => Err(etcd_err(e)),
        }
    }

    fn compacted_error(&self, requested: Revision, compacted: Revision) -> StorageError {
        StorageError::Compacted {
            requested,
            compacted: compacted.max(requested + 1),
        }
    }

    /// The error for a read at `requested` that etcd refused as compacted.
    async fn compacted(&self, requested: Revision) -> StorageError {
        self.shared.note_compacted(requested + 1);
        match self.compacted_revision().await {
            Ok(compacted) => self.compacted_error(requested, compacted),
            Err(err) => err,
        }
    }

    /// The error for a read at `requested` that etcd refused as a future revision.
    async fn future(&self, requested: Revision) -> StorageError {
        match self.current_revision().await {
            Ok(current) => StorageError::FutureRevision { requested, current },
            Err(err) => err,
        }
    }

    pub(crate) fn decode_key(prefix: &str, key: Vec<u8>) -> Result<String> {
        let key = String::from_utf8(key)
            .map_err(|e| StorageError::Internal(format!("etcd key is not UTF-8: {e}")))?;
        match key.strip_prefix(prefix) {
            Some(rest) => Ok(rest.to_owned()),
            None => Err(StorageError::Internal(format!(
                "etcd returned key {key:?} outside the prefix {prefix:?}"
            ))),
        }
    }

    pub(crate) fn decode_kv(prefix: &str, kv: etcd_client::KeyValue) -> Result<KeyValue> {
        let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
        let (key, value) = kv.into_key_value();
        Ok(KeyValue {
            key: Self::decode_key(prefix, key)?,
            value: Bytes::from(value),
            create_revision,
            mod_revision,
        })
    }

    /// The key's current value from the `Get` a failed transaction ran.
    /// Why a write whose precondition failed failed: the key is gone (NotFound) or holds
    /// another revision (Conflict, with what it holds).
    fn precondition_failed(&self, key: &str, resp: &TxnResponse) -> Result<StorageError> {
        Ok(match self.current_from(resp.op_responses())? {
            None => StorageError::NotFound {
                key: key.to_owned(),
            },
            Some(current) => StorageError::Conflict {
                key: key.to_owned(),
                current: Some(current),
            },
        })
    }

    fn current_from(&self, responses: Vec<TxnOpResponse>) -> Result<Option<KeyValue>> {
        for r in responses {
            if let TxnOpResponse::Get(mut get) = r {
                return get
                    .take_kvs()
                    .into_iter()
                    .next()
                    .map(|kv| Self::decode_kv(&self.shared.key_prefix, kv))
                    .transpose();
            }
        }
        Err(StorageError::Internal(
            "etcd transaction answered without its read".into(),
        ))
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn current_revision(&self) -> Result<Revision> {
        self.probe(0).await?.map_err(etcd_err)
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut kv = self.kv.clone();
        let full = self.full_key(key);
        let mut resp = self
            .simple_call("get", async move { kv.get(full, None).await })
            .await?;
        resp.take_kvs()
            .into_iter()
            .next()
            .map(|kv| Self::decode_kv(&self.shared.key_prefix, kv))
            .transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        start_key: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<ListResult> {
        let full_prefix = self.full_key(prefix);
        let end = prefix_range_end(&full_prefix);
        let mut start = match start_key {
            Some(s) if s > prefix => self.full_key(s),
            _ => full_prefix,
        };
        if start.is_empty() {
            // etcd needs a key: "\0" with range end "\0" is the whole keyspace.
            start = vec![0];
        }
        let at = revision.unwrap_or(0).max(0);
        // A limit of 0 is "no limit" for etcd too.
        let opts = GetOptions::new()
            .with_range(end)
            .with_revision(at)
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        let mut kv = self.kv.clone();
        let result = self
            .call("list", async move { kv.get(start, Some(opts)).await })
            .await?;
        let mut resp = match result {
            Ok(resp) => resp,
            Err(e) if is_compacted(&e) => return Err(self.compacted(at).await),
            Err(e) if is_future(&e) => return Err(self.future(at).await),
            Err(e) => return Err(etcd_err(e)),
        };
        let current = header_revision(resp.header())?;
        let (more, count) = (resp.more(), resp.count());
        let kvs = resp
            .take_kvs()
            .into_iter()
            .map(|kv| Self::decode_kv(&self.shared.key_prefix, kv))
            .collect::<Result<Vec<_>>>()?;
        Ok(ListResult {
            remaining: (count - kvs.len() as i64).max(0),
            more,
            kvs,
            revision: if at > 0 { at } else { current },
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let full_prefix = self.full_key(prefix);
        let end = prefix_range_end(&full_prefix);
        let start = if full_prefix.is_empty() {
            vec![0]
        } else {
            full_prefix
        };
        let opts = GetOptions::new().with_range(end).with_count_only();
        let mut kv = self.kv.clone();
        let resp = self
            .simple_call("count", async move { kv.get(start, Some(opts)).await })
            .await?;
        Ok(resp.count())
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let full = self.full_key(key);
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value.to_vec(), None)]);
        let mut kv = self.kv.clone();
        let resp = self
            .simple_call("create", async move { kv.txn(txn).await })
            .await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let revision = header_revision(resp.header())?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue> {
        let full = self.full_key(key);
        // The keys-only read after the put returns the key's create_revision without
        // sending the old value back.
        let txn = Txn::new()
            .when([
                Compare::mod_revision(full.clone(), CompareOp::Equal, expected_mod_revision),
                Compare::version(full.clone(), CompareOp::Greater, 0),
            ])
            .and_then([
                TxnOp::put(full.clone(), value.to_vec(), None),
                TxnOp::get(full.clone(), Some(GetOptions::new().with_keys_only())),
            ])
            .or_else([TxnOp::get(full, None)]);
        let mut kv = self.kv.clone();
        let resp = self
            .simple_call("update", async move { kv.txn(txn).await })
            .await?;
        if !resp.succeeded() {
            return Err(self.precondition_failed(key, &resp)?);
        }
        let revision = header_revision(resp.header())?;
        let create_revision = resp
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.create_revision()),
                _ => None,
            })
            .ok_or_else(|| StorageError::Internal("etcd update answered without the key".into()))?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue> {
        let full = self.full_key(key);
        let mut when = vec![Compare::version(full.clone(), CompareOp::Greater, 0)];
        if let Some(expected) = expected_mod_revision {
            when.push(Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                expected,
            ));
        }
        let txn = Txn::new()
            .when(when)
            .and_then([TxnOp::delete(
                full.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let mut kv = self.kv.clone();
        let resp = self
            .simple_call("delete", async move { kv.txn(txn).await })
            .await?;
        if !resp.succeeded() {
            return Err(self.precondition_failed(key, &resp)?);
        }
        let revision = header_revision(resp.header())?;
        let prev = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Delete(mut del) => del.take_prev_kvs().into_iter().next(),
            _ => None,
        });
        let prev = prev.ok_or_else(|| {
            StorageError::Internal("etcd delete answered without the deleted value".into())
        })?;
        let mut kv = Self::decode_kv(&self.shared.key_prefix, prev)?;
        kv.mod_revision = revision;
        Ok(kv)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.check_open()?;
        let after = after.max(0);
        // etcd cancels a watch from a compacted revision only after it was created (and up
        // to 100 ms later); a read at `after` answers now, so that the call itself fails.
        let known = self.shared.compacted.load(Ordering::Acquire);
        if after < known {
            return Err(self.compacted(after).await);
        }
        match self.probe(after.max(1)).await? {
            Ok(_) => {}
            Err(e) if is_compacted(&e) => return Err(self.compacted(after).await),
            // A watch may start after a future revision.
            Err(e) if is_future(&e) => {}
            Err(e) => return Err(etcd_err(e)),
        }
        let full_prefix = self.full_key(prefix);
        watch::start(
            self.watch.clone(),
            self.shared.clone(),
            self.closing.subscribe(),
            full_prefix,
            after,
        )
        .await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        if revision < 1 {
            // Nothing to forget before the first revision.
            let compacted = self.compacted_revision().await?;
            return if compacted <= revision.max(0) {
                Ok(())
            } else {
                Err(self.compacted_error(revision, compacted))
            };
        }
        let mut kv = self.kv.clone();
        let result = self
            .call("compact", async move { kv.compact(revision, None).await })
            .await?;
        match result {
            Ok(_) => {
                self.shared.note_compacted(revision);
                Ok(())
            }
            Err(e) if is_compacted(&e) => {
                // Already compacted to `revision` (a no-op) or beyond it.
                let compacted = self.compacted_revision().await?;
                if compacted == revision {
                    Ok(())
                } else {
                    Err(self.compacted_error(revision, compacted))
                }
            }
            Err(e) if is_future(&e) => Err(self.future(revision).await),
            Err(e) => Err(etcd_err(e)),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        let known = self.shared.compacted.load(Ordering::Acquire);
        // Revision 1 is etcd's empty initial state: a read there succeeds whether or not
        // someone compacted to exactly 1, so `known` decides that case.
        let lo = known.max(1);
        if self.readable_at(lo).await? {
            return Ok(known);
        }
        // Someone else compacted further: the compacted revision is the oldest readable one,
        // somewhere in (lo, current].
        let (mut lo, mut hi) = (lo, self.current_revision().await?);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.readable_at(mid).await? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        self.shared.note_compacted(hi);
        Ok(hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_end_is_etcds() {
        assert_eq!(prefix_range_end(b"/registry/pods/"), b"/registry/pods0");
        assert_eq!(prefix_range_end(b"a\xff"), b"b");
        assert_eq!(prefix_range_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_range_end(b""), b"\0");
    }

    #[test]
    fn keys_outside_the_prefix_are_refused() {
        assert_eq!(
            EtcdStore::decode_key("/c1", b"/c1/registry/x".to_vec()).unwrap(),
            "/registry/x"
        );
        assert!(EtcdStore::decode_key("/c1", b"/c2/registry/x".to_vec()).is_err());
        assert!(EtcdStore::decode_key("", vec![0xff]).is_err());
    }

    #[test]
    fn errors_map_to_storage_errors() {
        let compacted = etcd_client::Error::GRpcStatus(tonic::Status::out_of_range(
            "etcdserver: mvcc: required revision has been compacted",
        ));
        assert!(is_compacted(&compacted));
        assert!(!is_future(&compacted));
        let future = etcd_client::Error::GRpcStatus(tonic::Status::out_of_range(
            "etcdserver: mvcc: required revision is a future revision",
        ));
        assert!(is_future(&future));
        assert!(matches!(
            etcd_err(etcd_client::Error::GRpcStatus(tonic::Status::unavailable(
                "etcdserver: no leader"
            ))),
            StorageError::Unavailable(_)
        ));
        assert!(matches!(
            etcd_err(etcd_client::Error::GRpcStatus(
                tonic::Status::invalid_argument("etcdserver: request is too large")
            )),
            StorageError::Internal(_)
        ));
    }
}
