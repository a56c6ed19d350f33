//! What the span and log stores share: an index behind one lock, kept within its bounds by
//! evicting the oldest items, which are freed outside the lock and counted.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use opentelemetry_proto::tonic::resource::v1::Resource;

use super::{StoreMetrics, StoreStats, service_name};

/// The data structure behind a store's lock.
pub trait Index: Debug + Default {
    /// The store's bounds.
    type Settings: Debug;
    /// The export request whose items the store keeps.
    type Request;
    /// One stored item as converted outside the lock.
    type Item;
    /// What one eviction removes (a trace, a record), to be freed outside the lock.
    type Evicted;

    /// The `store` label of the store's metrics.
    const STORE: &'static str;
    /// The counter of items evicted from the store.
    const EVICTED_ITEMS_METRIC: &'static str;
    /// The counter of items skipped as duplicates of stored ones, if the store skips any.
    const DUPLICATE_ITEMS_METRIC: Option<&'static str> = None;

    /// The items of `request` the store keeps, one batch per resource with any.
    fn batches(request: &Self::Request) -> Vec<ResourceBatch<Self::Item>>;
    /// Adds converted items; returns how many it skipped as duplicates of stored ones.
    fn insert(&mut self, batch: Vec<ResourceBatch<Self::Item>>) -> usize;
    /// Evicts, oldest first, until `settings` hold.
    fn evict(&mut self, settings: &Self::Settings, evicted: &mut Vec<Self::Evicted>);
    /// Items and estimated bytes held.
    fn occupancy(&self) -> (usize, usize);
    /// Items and whole traces evicted since the store was created.
    fn evictions(&self) -> (u64, u64);
    /// Items skipped as duplicates since the store was created.
    fn duplicates(&self) -> u64 {
        0
    }
}

/// A store: its index behind one lock, the bounds it is kept within and the metric handles it
/// reports to. Shared by the receivers and the query API.
#[derive(Debug)]
pub struct Store<I: Index> {
    settings: I::Settings,
    index: Mutex<I>,
    metrics: StoreMetrics,
}

impl<I: Index> Store<I> {
    /// An empty store bounded by `settings`.
    #[must_use]
    pub fn new(settings: I::Settings) -> Self {
        Self {
            settings,
            index: Mutex::default(),
            metrics: StoreMetrics::new(I::STORE, I::EVICTED_ITEMS_METRIC, I::DUPLICATE_ITEMS_METRIC),
        }
    }

    /// Stores the items of `request` and returns how many (duplicates of stored items skipped, not
    /// counted); evicts the oldest if that takes the store over a bound.
    pub fn insert(&self, request: &I::Request) -> usize {
        let batch = I::batches(request);
        let stored: usize = batch.iter().map(|group| group.items.len()).sum();
        if stored == 0 {
            return 0;
        }
        let mut evicted = Vec::new();
        let (occupancy, before, after, duplicates) = {
            let mut index = self.lock();
            let before = index.evictions();
            let duplicates = index.insert(batch);
            index.evict(&self.settings, &mut evicted);
            (index.occupancy(), before, index.evictions(), duplicates)
        };
        // Freed outside the lock: an evicted trace may hold thousands of allocations.
        drop(evicted);
        self.metrics.record(occupancy, after.0 - before.0, after.1 - before.1, duplicates as u64);
        stored - duplicates
    }

    /// Occupancy and eviction totals.
    #[must_use]
    pub fn stats(&self) -> StoreStats {
        let index = self.lock();
        let ((items, bytes), (evicted_items, evicted_traces)) = (index.occupancy(), index.evictions());
        StoreStats { items, bytes, evicted_items, evicted_traces, duplicate_items: index.duplicates() }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, I> {
        // The index stays consistent between statements, so a panic elsewhere does not spoil it.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The items of one resource, converted outside the lock, and the resource's service.
pub struct ResourceBatch<T> {
    pub(super) service: Arc<str>,
    pub(super) items: Vec<T>,
}

impl<T> ResourceBatch<T> {
    /// What `convert` keeps of the items of every scope of a resource; `None` when nothing.
    pub(super) fn convert<'a, P: 'a>(
        resource: Option<&Resource>,
        scopes: impl Iterator<Item = &'a [P]> + Clone,
        convert: impl Fn(&P, &Arc<str>) -> Option<T>,
    ) -> Option<Self> {
        let resource_attributes = resource.map_or(&[][..], |resource| &resource.attributes);
        let service: Arc<str> = Arc::from(service_name(resource_attributes));
        let mut items = Vec::with_capacity(scopes.clone().map(<[P]>::len).sum());
        for scope in scopes {
            items.extend(scope.iter().filter_map(|item| convert(item, &service)));
        }
        (!items.is_empty()).then_some(Self { service, items })
    }
}

/// The one shared copy of service name `name` in `services`, which interns them.
pub(super) fn interned<V>(services: &HashMap<Arc<str>, V>, name: &Arc<str>) -> Arc<str> {
    services.get_key_value(&**name).map_or_else(|| Arc::clone(name), |(interned, _)| Arc::clone(interned))
}
