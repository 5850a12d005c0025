//! Sync state in memory (tests, the local runner).

use super::*;

/// Sync-state items of the in-memory store: `(pk, sk) → item`, shared by
/// clones of the store.
#[derive(Debug, Clone, Default)]
pub struct ControlItems(Arc<Mutex<BTreeMap<(String, String), Item>>>);

impl ControlItems {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<(String, String), Item>) -> T) -> T {
        // Every mutation is one insert: a poisoned lock holds no torn item.
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut g)
    }
}

impl SyncStateStore for MemoryStore {
    async fn get_checkpoint(
        &self,
        portal: PortalId,
        object_type: ObjectType,
    ) -> Result<Option<Checkpoint>, StoreError> {
        self.stats().count_read();
        let key = checkpoint_key(portal, object_type);
        let item = self.control.with(|m| m.get(&key).cloned());
        Ok(item
            .map(|i| serde_dynamo::aws_sdk_dynamodb_1::from_item(strip(i)))
            .transpose()?)
    }

    async fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<bool, StoreError> {
        let item = checkpoint_item(checkpoint)?;
        self.stats().count_write();
        let key = checkpoint_key(checkpoint.portal_id, checkpoint.object_type);
        Ok(self.control.with(|m| {
            let stored = m.get(&key).map(|i| seq_of(i).unwrap_or(0));
            let allowed = match stored {
                None => checkpoint.seq == 1,
                Some(s) => Some(s) == checkpoint.seq.checked_sub(1),
            };
            if allowed {
                m.insert(key, item);
            }
            allowed
        }))
    }

    async fn put_run_report(&self, report: &TypeRunReport) -> Result<(), StoreError> {
        let item = report_item(report)?;
        self.stats().count_write();
        let key = report_key(report.portal_id, &report.run_id, report.object_type);
        self.control.with(|m| m.insert(key, item));
        Ok(())
    }

    async fn get_run_report(
        &self,
        portal: PortalId,
        run_id: &str,
    ) -> Result<Option<RunReport>, StoreError> {
        self.stats().count_read();
        let pk = format!("{RUN_PK_PREFIX}{portal}");
        let prefix = format!("{run_id}#");
        let items: Vec<Item> = self.control.with(|m| {
            m.iter()
                .filter(|((p, s), _)| *p == pk && s.starts_with(&prefix))
                .map(|(_, i)| i.clone())
                .collect()
        });
        let types = items
            .into_iter()
            .map(|i| serde_dynamo::aws_sdk_dynamodb_1::from_item(strip(i)))
            .collect::<Result<Vec<TypeRunReport>, _>>()?;
        Ok(RunReport::from_types(types))
    }

    async fn list_run_reports(
        &self,
        portal: PortalId,
        max_runs: usize,
    ) -> Result<Vec<RunReport>, StoreError> {
        self.stats().count_read();
        let pk = format!("{RUN_PK_PREFIX}{portal}");
        let items: Vec<Item> = self.control.with(|m| {
            m.iter()
                .filter(|((p, _), _)| *p == pk)
                .map(|(_, i)| i.clone())
                .collect()
        });
        let types = items
            .into_iter()
            .map(|i| serde_dynamo::aws_sdk_dynamodb_1::from_item(strip(i)))
            .collect::<Result<Vec<TypeRunReport>, _>>()?;
        Ok(newest_runs(types, max_runs))
    }
}
