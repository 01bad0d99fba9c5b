//! The databases this process is attached to, by (device, inode).
//!
//! Two attachments to one database from one process would each open their own descriptors
//! and fight each other's DMS and read-slot protocol as two processes would, for no gain;
//! the second one is refused instead.

use std::collections::BTreeSet;
use std::sync::Mutex;

static ATTACHED: Mutex<BTreeSet<(u64, u64)>> = Mutex::new(BTreeSet::new());

/// Membership of one database in the registry; removed on drop.
#[derive(Debug)]
pub(crate) struct Registration {
    key: (u64, u64),
}

impl Registration {
    /// Registers the file `(dev, ino)`; `None` if this process is already attached to it.
    pub(crate) fn register(dev: u64, ino: u64) -> Option<Self> {
        let key = (dev, ino);
        let inserted = ATTACHED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key);
        // Built only when inserted: dropping a Registration removes its key.
        inserted.then(|| Self { key })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut set = ATTACHED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        set.remove(&self.key);
    }
}
