//! Where uploaded bytes live: a folder on local disk (the default) or an S3-compatible
//! bucket, both through `object_store`, so every other part of the server sees one
//! interface. Objects are named by what they hold:
//!
//! - `blobs/<sha256>`: an upload's bytes (content-addressed: equal files are one object);
//! - `thumbnails/<sha256>`: the preview of the image stored under the same hash;
//! - `avatars/<key>/<size>`: an avatar, square, PNG, in each size.
//!
//! Objects never change once written; they are deleted only by the clean-up of uploads
//! no message uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::config::MediaStorage;

/// Parts of a multipart upload to S3: its minimum part size, so a 100 MiB file holds at
/// most this much (times [`PARTS_IN_FLIGHT`]) in memory while it is copied.
const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts sent to S3 at once per file.
const PARTS_IN_FLIGHT: usize = 2;

/// The object store, and on local disk its folder (so that a spooled file can be moved in
/// place with a rename instead of being copied).
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    /// On local disk with `durability = full`: files and the folders they are moved into
    /// are synced before an upload is answered.
    sync: bool,
}

/// A byte range of an object, as resolved against its size: `start..end`.
pub type ByteRange = std::ops::Range<u64>;

impl Storage {
    pub fn open(config: &MediaStorage, durable: bool) -> anyhow::Result<Storage> {
        match config {
            MediaStorage::Local(root) => {
                std::fs::create_dir_all(root)
                    .with_context(|| format!("creating the media folder {}", root.display()))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(root)
                    .with_context(|| format!("opening the media folder {}", root.display()))?;
                Ok(Storage {
                    store: Arc::new(store),
                    local_root: Some(root.canonicalize()?),
                    sync: durable,
                })
            }
            MediaStorage::S3 {
                bucket,
                region,
                endpoint,
                access_key_id,
                secret_access_key,
                allow_http,
            } => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_allow_http(*allow_http);
                if let Some(endpoint) = endpoint {
                    // Path-style requests (`endpoint/bucket/key`), which every
                    // S3-compatible service understands.
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_virtual_hosted_style_request(false);
                }
                if !access_key_id.0.is_empty() {
                    builder = builder
                        .with_access_key_id(&access_key_id.0)
                        .with_secret_access_key(&secret_access_key.0);
                }
                let store = builder.build().context("configuring the S3 bucket")?;
                Ok(Storage {
                    store: Arc::new(store),
                    local_root: None,
                    // The bucket's own guarantee once the upload completes.
                    sync: false,
                })
            }
        }
    }

    /// Whether spooled files must be synced before they are moved in place.
    pub fn syncs(&self) -> bool {
        self.sync
    }

    /// Whether an object exists.
    pub async fn exists(&self, key: &str) -> anyhow::Result<bool> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(err).with_context(|| format!("looking up {key}")),
        }
    }

    /// Stores the spooled file `file` as `key`, consuming the file: on local disk it is
    /// moved in place; to S3 it is streamed in parts, never read whole into memory.
    pub async fn put_file(&self, key: &str, file: &Path) -> anyhow::Result<()> {
        if let Some(root) = &self.local_root {
            let target = root.join(key);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::rename(file, &target)
                .await
                .with_context(|| format!("moving an upload to {}", target.display()))?;
            if self.sync {
                // The rename itself is durable only once its folder is synced.
                if let Some(parent) = target.parent() {
                    tokio::fs::File::open(parent).await?.sync_all().await?;
                }
            }
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(&ObjectPath::from(key))
            .await
            .with_context(|| format!("starting the upload of {key}"))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut source = tokio::fs::File::open(file).await?;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let n = source.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .with_context(|| format!("uploading {key}"))?;
            writer.write(&buffer[..n]);
        }
        writer
            .finish()
            .await
            .with_context(|| format!("finishing the upload of {key}"))?;
        tokio::fs::remove_file(file).await.ok();
        Ok(())
    }

    /// Stores small bytes (a thumbnail, an avatar) as `key`. Not synced on local disk
    /// (`object_store` writes a temporary file and renames it): after a power cut a
    /// thumbnail or avatar written just before may be missing, and its download answers
    /// `404` like any missing object; the upload's own bytes are synced.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await
            .with_context(|| format!("storing {key}"))?;
        Ok(())
    }

    /// The bytes of `key` in `range` (all of it for `None`), as a stream; `None` if the
    /// object does not exist.
    pub async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> anyhow::Result<Option<BoxStream<'static, std::io::Result<Bytes>>>> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        match self.store.get_opts(&ObjectPath::from(key), options).await {
            Ok(result) => Ok(Some(
                result
                    .into_stream()
                    .map(|chunk| chunk.map_err(std::io::Error::other))
                    .boxed(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {key}")),
        }
    }

    /// Deletes `key`; deleting what is not there is no error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err).with_context(|| format!("deleting {key}")),
        }
    }
}
