//! The mechanics of uploaded files: receiving a body onto local disk while hashing it
//! (`spool`), deciding what it is and processing pictures (`inspect`), and keeping the
//! bytes (`storage`: local folder or S3). The rules — who may upload, attach and download,
//! quotas, clean-up — are in `service::media`.

pub mod inspect;
pub mod storage;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use banter_protocol::UserId;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, RwLock, Semaphore};

use crate::config::MediaConfig;
use crate::ratelimit::{Budget, SharedBudgets, KEYS_MAX};
pub use storage::Storage;

/// Bytes kept from the start of a body for sniffing its type.
const SNIFF_BYTES: usize = 8192;
/// Pictures decoded at once (each may take `image_pixels_max` × 8 bytes while it does).
const PICTURES_AT_ONCE: usize = 2;

/// The media part of the server's state.
pub struct Media {
    pub config: MediaConfig,
    pub storage: Storage,
    /// One permit per upload in progress on this server (`uploads_at_once_max`).
    slots: Arc<Semaphore>,
    /// Uploads in progress per user (`uploads_per_user_at_once_max`).
    in_progress: Arc<Mutex<HashMap<UserId, usize>>>,
    /// Uploads and avatar changes per user (`uploads_per_user_per_hour_max`).
    pub budget: Budget<UserId>,
    /// Pictures being decoded, a few at a time.
    pictures: Arc<Semaphore>,
    /// Whether uploads of equal bytes share one stored object (named by their SHA-256).
    /// Only on a single node: the clean-up deletes an object no upload uses any more, and
    /// an upload that found the object stored must not lose it between that finding and
    /// its record, which only this node's [`Media::blobs`] lock ensures. In a cluster
    /// every upload has an object of its own, which no other upload's clean-up can touch.
    pub deduplicate: bool,
    /// Held for reading while an upload stores its bytes and records itself, for writing
    /// while the clean-up deletes records and the objects no record uses: an upload that
    /// finds its bytes already stored cannot have them deleted under it.
    pub blobs: RwLock<()>,
}

/// An upload's turn: released (on drop) when the upload ends, however it ends.
pub struct UploadTurn {
    _slot: OwnedSemaphorePermit,
    user: UserId,
    in_progress: Arc<Mutex<HashMap<UserId, usize>>>,
}

impl Drop for UploadTurn {
    fn drop(&mut self) {
        let mut counts = self.in_progress.lock().expect("upload counts");
        if let Some(count) = counts.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

/// Why an upload could not start.
pub enum Busy {
    /// The server has `uploads_at_once_max` uploads in progress.
    Server,
    /// This user has `uploads_per_user_at_once_max` in progress.
    User,
}

/// A body received onto local disk.
pub struct Spooled {
    pub file: SpoolFile,
    pub size: u64,
    /// SHA-256 of the bytes, in hex.
    pub sha256: String,
    /// The first bytes, for sniffing.
    pub head: Vec<u8>,
}

/// A spooled file, deleted when dropped unless it was moved into storage.
pub struct SpoolFile(PathBuf);

impl SpoolFile {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        // Gone already if storage moved it in place.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Why a body could not be received.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the body is empty")]
    Empty,
    /// The client stopped sending, or the connection failed.
    #[error("the body did not arrive: {0}")]
    Body(String),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

impl Media {
    /// With `durable`, an upload's bytes reach the disk before it is answered (as a
    /// message is durable before its ack); see `durability`.
    /// Opens the storage and empties the spool; in a cluster (`shared` budgets given) the
    /// upload budget is also spent there, and equal uploads are not deduplicated.
    pub fn open(
        config: MediaConfig,
        durable: bool,
        shared: Option<Arc<dyn SharedBudgets>>,
    ) -> anyhow::Result<Media> {
        let deduplicate = shared.is_none();
        let storage = Storage::open(&config.storage, durable)?;
        std::fs::create_dir_all(&config.spool_dir)
            .with_context(|| format!("creating the spool folder {}", config.spool_dir.display()))?;
        // Left over from a crash: nothing refers to them.
        if let Ok(entries) = std::fs::read_dir(&config.spool_dir) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Media {
            slots: Arc::new(Semaphore::new(config.uploads_at_once_max)),
            in_progress: Arc::default(),
            budget: Budget::named("uploads", config.uploads_per_user, KEYS_MAX, shared),
            pictures: Arc::new(Semaphore::new(PICTURES_AT_ONCE)),
            deduplicate,
            blobs: RwLock::new(()),
            storage,
            config,
        })
    }

    /// Takes a turn to upload, or says who is full.
    pub fn turn(&self, user: UserId) -> Result<UploadTurn, Busy> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Server)?;
        let mut counts = self.in_progress.lock().expect("upload counts");
        let count = counts.entry(user).or_default();
        if *count >= self.config.uploads_per_user_at_once_max {
            return Err(Busy::User);
        }
        *count += 1;
        Ok(UploadTurn {
            _slot: slot,
            user,
            in_progress: self.in_progress.clone(),
        })
    }

    /// A new, empty spool file.
    fn spool_file(&self) -> SpoolFile {
        let name: String = (0..16)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        SpoolFile(self.config.spool_dir.join(name))
    }

    /// Writes `body` to a spool file, hashing it as it goes, and gives up as soon as it is
    /// over `bytes_max` (the part received so far is deleted).
    pub async fn spool<S, E>(&self, body: S, bytes_max: u64) -> Result<Spooled, SpoolError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let spool = self.spool_file();
        let mut file = tokio::fs::File::create(spool.path())
            .await
            .context("creating a spool file")?;
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| SpoolError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > bytes_max {
                return Err(SpoolError::TooLarge(bytes_max));
            }
            if head.len() < SNIFF_BYTES {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .context("writing a spool file")?;
        }
        if size == 0 {
            return Err(SpoolError::Empty);
        }
        file.flush().await.context("writing a spool file")?;
        if self.storage.syncs() {
            file.sync_all().await.context("syncing a spool file")?;
        }
        Ok(Spooled {
            file: spool,
            size,
            sha256: hex(&hasher.finalize()),
            head,
        })
    }

    /// Writes `bytes` to a new spool file (a re-encoded picture), with its hash.
    pub async fn spool_bytes(&self, bytes: Vec<u8>) -> anyhow::Result<Spooled> {
        let spool = self.spool_file();
        let sha256 = hex(&Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        let head = bytes[..bytes.len().min(SNIFF_BYTES)].to_vec();
        tokio::fs::write(spool.path(), bytes)
            .await
            .context("writing a spool file")?;
        Ok(Spooled {
            file: spool,
            size,
            sha256,
            head,
        })
    }

    /// Runs picture work on the blocking pool, [`PICTURES_AT_ONCE`] at a time.
    pub async fn with_picture<T: Send + 'static>(
        &self,
        work: impl FnOnce(&MediaConfig) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self.pictures.acquire().await.context("picture slots")?;
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || work(&config))
            .await
            .context("picture work")
    }
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The object names (see `storage`).
pub mod keys {
    pub fn blob(sha256: &str) -> String {
        format!("blobs/{sha256}")
    }

    pub fn thumbnail(sha256: &str) -> String {
        format!("thumbnails/{sha256}")
    }

    pub fn avatar(key: &str, size: u32) -> String {
        format!("avatars/{key}/{size}")
    }
}
