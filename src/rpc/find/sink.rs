//! The response side of a find: matches gathered into batches, progress counters, and the
//! bounded channel to the reader. Every send waits for room, so an engine that produces faster
//! than the caller reads is held back here (memory stays bounded).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tonic::Status;

use crate::proto;

/// A batch holding matches is sent at the latest this long after the previous message, so a
/// match found during a long scan reaches the caller soon.
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// A progress message (without matches) is sent when nothing was sent for this long.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Why an engine stopped before the end.
#[derive(Debug)]
pub(super) enum Halt {
    /// The request's `limit` is reached: the find is complete.
    Limit,
    /// The reader went away (cancelled, deadline, disconnected): nobody to answer.
    Gone,
    /// A failure, sent to the caller as the stream's status.
    Failed(Status),
}

type Sender = mpsc::Sender<Result<proto::FindObjectsResponse, Status>>;

/// Where an engine puts what it finds.
pub(super) struct Sink {
    tx: Sender,
    batch: Vec<proto::FoundObject>,
    batch_size: usize,
    limit: Option<u64>,
    scanned: u64,
    matched: u64,
    engine: proto::FindEngine,
    note: &'static str,
    last_sent: Instant,
}

impl Sink {
    pub(super) fn new(
        tx: Sender,
        batch_size: usize,
        limit: Option<u64>,
        engine: proto::FindEngine,
        note: &'static str,
    ) -> Self {
        Self {
            tx,
            batch: Vec::with_capacity(batch_size),
            batch_size,
            limit,
            scanned: 0,
            matched: 0,
            engine,
            note,
            last_sent: Instant::now(),
        }
    }

    /// Counts one object looked at; sends what is due (a batch held for [`FLUSH_INTERVAL`],
    /// or progress after [`PROGRESS_INTERVAL`] of silence).
    pub(super) async fn scanned(&mut self) -> Result<(), Halt> {
        self.scanned += 1;
        let quiet = self.last_sent.elapsed();
        if (!self.batch.is_empty() && quiet >= FLUSH_INTERVAL) || quiet >= PROGRESS_INTERVAL {
            self.flush().await?;
        }
        Ok(())
    }

    /// Adds one match; sends the batch when full. [`Halt::Limit`] once `limit` matches are
    /// gathered.
    pub(super) async fn matched(&mut self, found: proto::FoundObject) -> Result<(), Halt> {
        self.batch.push(found);
        self.matched += 1;
        if self.batch.len() >= self.batch_size || self.last_sent.elapsed() >= FLUSH_INTERVAL {
            self.flush().await?;
        }
        if self.limit.is_some_and(|limit| self.matched >= limit) {
            return Err(Halt::Limit);
        }
        Ok(())
    }

    /// Sends the matches gathered so far (or, with none, just the progress).
    pub(super) async fn flush(&mut self) -> Result<(), Halt> {
        self.send(false).await
    }

    async fn send(&mut self, done: bool) -> Result<(), Halt> {
        let matches = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
        let message = proto::FindObjectsResponse {
            matches,
            progress: Some(proto::FindProgress {
                scanned: self.scanned as i64,
                matched: self.matched as i64,
                engine: self.engine as i32,
                note: self.note.to_owned(),
                done,
            }),
        };
        self.tx.send(Ok(message)).await.map_err(|_| Halt::Gone)?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// Ends the stream: the last batch with `done`, or after a failure the matches found so
    /// far and then the failure's status.
    pub(super) async fn close(mut self, outcome: Result<(), Halt>) {
        match outcome {
            Ok(()) | Err(Halt::Limit) => {
                let _ = self.send(true).await;
            }
            Err(Halt::Gone) => {}
            Err(Halt::Failed(status)) => {
                if !self.batch.is_empty() && self.flush().await.is_err() {
                    return;
                }
                let _ = self.tx.send(Err(status)).await;
            }
        }
    }
}
