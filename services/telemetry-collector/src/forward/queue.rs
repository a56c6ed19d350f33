//! The bounded queue between the receivers (many producers, on the hot path) and one destination's
//! export loop (the single consumer), bounded in items rather than requests.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use metrics::Gauge;
use tokio::sync::Notify;

/// Why a request did not enter the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PushError {
    /// Its items do not fit in the room left.
    Full,
    /// The queue is closed for shutdown.
    Closed,
}

/// Requests waiting to be exported, with their item counts.
pub(super) struct ExportQueue<R> {
    state: Mutex<State<R>>,
    /// Wakes the export loop when a request arrives or the queue closes. `notify_one` keeps a
    /// permit when the loop is not waiting yet, so a wake-up between its check and its wait is
    /// never lost.
    ready: Notify,
    capacity: usize,
    size: Gauge,
}

struct State<R> {
    requests: VecDeque<(R, usize)>,
    items: usize,
    closed: bool,
}

impl<R> ExportQueue<R> {
    /// An empty queue holding at most `capacity` items, mirroring its size in `size`.
    pub(super) fn new(capacity: usize, size: Gauge) -> Self {
        size.set(0.0);
        Self {
            state: Mutex::new(State { requests: VecDeque::new(), items: 0, closed: false }),
            ready: Notify::new(),
            capacity,
            size,
        }
    }

    /// Appends `request` of `items` items if they fit; never waits.
    pub(super) fn push(&self, request: R, items: usize) -> Result<(), PushError> {
        {
            let mut state = self.lock();
            if state.closed {
                return Err(PushError::Closed);
            }
            if items > self.capacity - state.items {
                return Err(PushError::Full);
            }
            state.requests.push_back((request, items));
            state.items += items;
            self.size.set(state.items as f64);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Waits for the next requests and takes the oldest ones whose items add up to at most
    /// `max_items` (always at least one request). `None` once the queue is closed and empty.
    pub(super) async fn take_batch(&self, max_items: usize) -> Option<(Vec<R>, usize)> {
        loop {
            {
                let mut state = self.lock();
                let mut taken = Vec::new();
                let mut items = 0;
                while let Some((_, next)) = state.requests.front() {
                    if !taken.is_empty() && items + next > max_items {
                        break;
                    }
                    let Some((request, count)) = state.requests.pop_front() else { break };
                    taken.push(request);
                    items += count;
                }
                if !taken.is_empty() {
                    state.items -= items;
                    self.size.set(state.items as f64);
                    return Some((taken, items));
                }
                if state.closed {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }

    /// Refuses every later push and lets the export loop finish once the queue is empty.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Empties the queue, answering how many items it held.
    pub(super) fn drain(&self) -> usize {
        let mut state = self.lock();
        let items = state.items;
        state.requests.clear();
        state.items = 0;
        self.size.set(0.0);
        items
    }

    /// Items waiting.
    pub(super) fn items(&self) -> usize {
        self.lock().items
    }

    /// Holders of the lock never panic while holding it, so a poisoned lock is still consistent.
    fn lock(&self) -> MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn queue(capacity: usize) -> ExportQueue<&'static str> {
        ExportQueue::new(capacity, Gauge::noop())
    }

    #[test]
    fn a_request_that_does_not_fit_is_refused_and_the_queue_is_unchanged() {
        let queue = queue(10);
        assert_eq!(queue.push("a", 6), Ok(()));
        assert_eq!(queue.push("b", 5), Err(PushError::Full));
        assert_eq!(queue.push("c", 4), Ok(()));
        assert_eq!(queue.items(), 10);
    }

    #[tokio::test]
    async fn batches_take_the_oldest_requests_up_to_the_item_limit() {
        let queue = queue(100);
        for (request, items) in [("a", 3), ("b", 4), ("c", 2), ("d", 50)] {
            queue.push(request, items).expect("fits");
        }
        assert_eq!(queue.take_batch(9).await, Some((vec!["a", "b", "c"], 9)));
        // A request above the limit still goes out, alone.
        assert_eq!(queue.take_batch(9).await, Some((vec!["d"], 50)));
        assert_eq!(queue.items(), 0);
    }

    #[tokio::test]
    async fn the_consumer_wakes_for_a_push_and_ends_when_closed_and_empty() {
        let queue = std::sync::Arc::new(queue(10));
        let consumer = tokio::spawn({
            let queue = queue.clone();
            async move { (queue.take_batch(10).await, queue.take_batch(10).await) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        queue.push("a", 1).expect("fits");
        tokio::time::sleep(Duration::from_millis(20)).await;
        queue.close();
        assert_eq!(queue.push("b", 1), Err(PushError::Closed));
        let (first, second) = consumer.await.expect("consumer ran");
        assert_eq!((first, second), (Some((vec!["a"], 1)), None));
    }

    #[test]
    fn draining_answers_the_items_left() {
        let queue = queue(10);
        queue.push("a", 2).expect("fits");
        queue.push("b", 3).expect("fits");
        assert_eq!((queue.drain(), queue.items()), (5, 0));
    }
}
