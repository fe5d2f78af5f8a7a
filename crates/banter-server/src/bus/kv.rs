//! A NATS cluster's shared state (budgets, presence) in JetStream key-value buckets,
//! changed by compare-and-set: read a key with its revision, compute, write only if the
//! revision is still the same, and start again if another node wrote in between. Buckets
//! keep one value per key, in JetStream's file storage, so they outlive a NATS restart; a
//! bucket that is gone all the same (a NATS server started afresh) is created again by
//! the first operation that misses it.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use bytes::Bytes;

/// Attempts of one compare-and-set before giving up (each loses only to another node's
/// write of the same key).
pub const CAS_ATTEMPTS: usize = 16;

#[derive(Clone)]
pub struct Bucket {
    store: kv::Store,
    client: async_nats::Client,
    name: String,
    max_age: Duration,
}

/// A key's value and the revision a write must name to replace it. A key that was
/// deleted has a revision but no value.
pub struct Read {
    pub value: Option<Bytes>,
    pub revision: Option<u64>,
}

impl Bucket {
    /// Opens bucket `name`, creating it if needed; values are dropped `max_age` (zero:
    /// never) after their last write. The first node to start creates it with its
    /// `max_age`.
    pub async fn open(
        client: async_nats::Client,
        name: String,
        max_age: Duration,
    ) -> anyhow::Result<Bucket> {
        let jetstream = async_nats::jetstream::new(client.clone());
        if jetstream.get_key_value(name.as_str()).await.is_err() {
            create(&client, &name, max_age).await?;
        }
        let store = jetstream
            .get_key_value(name.as_str())
            .await
            .with_context(|| format!("opening the NATS key-value bucket {name}"))?;
        Ok(Bucket {
            store,
            client,
            name,
            max_age,
        })
    }

    /// Creates the bucket again if it is gone (after an operation failed).
    async fn recreate(&self) {
        if let Err(err) = create(&self.client, &self.name, self.max_age).await {
            tracing::debug!(error = %err, bucket = %self.name, "could not create the bucket again");
        }
    }

    pub async fn read(&self, key: &str) -> anyhow::Result<Read> {
        let entry = self.store.entry(key).await?;
        Ok(match entry {
            None => Read {
                value: None,
                revision: None,
            },
            Some(entry) => Read {
                value: matches!(entry.operation, Operation::Put).then_some(entry.value),
                revision: Some(entry.revision),
            },
        })
    }

    /// Writes `value` (or deletes the key, for `None`) if the key is still at `revision`
    /// (`None`: if it never existed). False when another write came first.
    pub async fn write(
        &self,
        key: &str,
        value: Option<Bytes>,
        revision: Option<u64>,
    ) -> anyhow::Result<bool> {
        let written = match (value, revision) {
            (Some(value), revision) => self
                .store
                .update(key, value, revision.unwrap_or(0))
                .await
                .map(|_| ()),
            (None, Some(revision)) => self.store.delete_expect_revision(key, Some(revision)).await,
            (None, None) => return Ok(true),
        };
        match written {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Every key whose name starts with `prefix` (a walk over the whole bucket).
    pub async fn keys_starting(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        use futures_util::TryStreamExt;
        let keys: Vec<String> = self.store.keys().await?.try_collect().await?;
        Ok(keys.into_iter().filter(|k| k.starts_with(prefix)).collect())
    }

    /// Deletes the bucket (tests clean up after themselves).
    pub async fn remove(client: async_nats::Client, name: &str) -> anyhow::Result<()> {
        async_nats::jetstream::new(client)
            .delete_key_value(name)
            .await?;
        Ok(())
    }
}

/// Creates a key-value bucket: the JetStream stream `KV_<name>` laid out as the
/// key-value convention says, one value per key. Asked of the JetStream API
/// directly rather than through `create_key_value`, because async-nats 0.52 cannot read
/// the stream-create reply of NATS 2.9 servers (the bucket is made, the call fails).
async fn create(client: &async_nats::Client, name: &str, max_age: Duration) -> anyhow::Result<()> {
    let config = serde_json::json!({
        "name": format!("KV_{name}"),
        "subjects": [format!("$KV.{name}.>")],
        "max_msgs_per_subject": 1,
        "max_age": u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX),
        "storage": "file",
        "num_replicas": 1,
        "discard": "new",
        "allow_rollup_hdrs": true,
        "deny_delete": true,
        "allow_direct": true,
    });
    let reply = client
        .request(
            format!("$JS.API.STREAM.CREATE.KV_{name}"),
            serde_json::to_vec(&config)?.into(),
        )
        .await
        .with_context(|| {
            format!("creating the NATS key-value bucket {name} (is JetStream enabled?)")
        })?;
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload)
        .with_context(|| format!("creating the NATS key-value bucket {name}"))?;
    match reply.get("error") {
        // Another node created it first: the same bucket.
        Some(error) if error["err_code"] == 10058 => Ok(()),
        Some(error) => anyhow::bail!("creating the NATS key-value bucket {name}: {error}"),
        None => Ok(()),
    }
}

/// What a compare-and-set does with a key.
pub enum Write {
    /// Nothing: the answer needs no change.
    Keep,
    Put(Bytes),
    Delete,
}

/// Changes `key` by compare-and-set: `change` gets the current value and says what to
/// write and what to answer; it runs again when another node wrote first.
pub async fn change<T>(
    bucket: &Bucket,
    key: &str,
    mut change: impl FnMut(Option<&[u8]>) -> (Write, T),
) -> anyhow::Result<T> {
    for attempt in 0..CAS_ATTEMPTS {
        let read = match bucket.read(key).await {
            Ok(read) => read,
            Err(err) if attempt == 0 => {
                // Perhaps the bucket is gone (a NATS server started afresh): once more.
                tracing::debug!(error = %err, "a key-value read failed; retrying");
                bucket.recreate().await;
                bucket.read(key).await?
            }
            Err(err) => return Err(err),
        };
        let (write, answer) = change(read.value.as_deref());
        let value = match write {
            Write::Keep => return Ok(answer),
            Write::Delete if read.value.is_none() => return Ok(answer),
            Write::Delete => None,
            Write::Put(value) => Some(value),
        };
        if bucket.write(key, value, read.revision).await? {
            return Ok(answer);
        }
    }
    anyhow::bail!("{key} kept changing under {CAS_ATTEMPTS} attempts")
}
