//! SQLite backend (being written).
use crate::{OpenOptions, StoreResult};

pub struct SqliteStore;

impl SqliteStore {
    pub async fn open(_url: &str, _options: &OpenOptions) -> StoreResult<SqliteStore> {
        todo!()
    }
}
