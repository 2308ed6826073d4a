//! Each account's dated history of template categories (R8, R90, R92).

use std::collections::HashMap;

use crate::category::TemplateCategory;
use crate::event::{EventId, TemplateCategoryChange};
use crate::time::Timestamp;

/// A template is identified by (name, language), as on send records and category updates.
type TemplateKey = (String, String);

/// One category change: in force from `.0`, said by event `.1`.
type CategoryChange = (Timestamp, EventId, TemplateCategory);

#[derive(Debug, Clone, Default)]
pub struct TemplateCatalog {
    /// Changes per template, sorted by (effective_at, event id).
    changes: HashMap<TemplateKey, Vec<CategoryChange>>,
}

impl TemplateCatalog {
    pub fn record(&mut self, event_id: &EventId, change: &TemplateCategoryChange) {
        let history = self.changes.entry((change.name.clone(), change.language.clone())).or_default();
        let item = (change.effective_at, event_id.clone(), change.category);
        let at = history.partition_point(|probe| (probe.0, &probe.1) < (item.0, &item.1));
        history.insert(at, item);
    }

    /// The category Meta applied to the template at `at` according to category-change events,
    /// with the event that says so; `None` if no change took effect by then.
    pub fn category_at(
        &self,
        name: &str,
        language: &str,
        at: Timestamp,
    ) -> Option<(TemplateCategory, &EventId)> {
        if self.changes.is_empty() {
            return None;
        }
        let history = self.changes.get(&(name.to_owned(), language.to_owned()))?;
        let upto = history.partition_point(|probe| probe.0 <= at);
        upto.checked_sub(1).map(|i| (history[i].2, &history[i].1))
    }
}
