//! `delivery: exactly-once` in the tasks: each source partition (or the
//! source connector) writes in transactions of its own id, and each
//! checkpoint commits its sink, dead-letter, changelog and position records
//! with its source offset. The writer behind a task's [`Topics`] is the
//! broker's own on a single node and a Kafka client's in a cluster
//! (`topics/txn.rs`); the tasks do not ask which.

use super::error::TopicsError;
use super::stats::PipelineStats;
use super::stop::Stopped;
use super::task::{Io, TopicTask};
use super::topics::Topics;

impl Io {
    /// Under exactly-once, topics writing in transactions of `id`, made
    /// once the id's previous producer is fenced (its open transaction
    /// aborted), wherever it ran; retried until made or the task is
    /// stopped.
    pub(super) fn transactional(&self, id: &str) -> Result<Option<Topics>, Stopped> {
        if !self.exactly_once {
            return Ok(None);
        }
        let mut made = None;
        self.retry("starting the transactional producer", || {
            made = Some(self.handle.block_on(self.topics.transactional(id))?);
            Ok::<_, TopicsError>(())
        })?;
        Ok(made)
    }

    /// When the task ends: a transaction its writer lost makes the
    /// pipeline's tasks start again (from the last commit); one still open
    /// (stopped mid-delivery, a fatal error) is aborted now rather than left
    /// holding read_committed readers of its partitions until its timeout.
    pub(super) fn end_transaction(&self, stats: &PipelineStats) {
        if self.topics.transaction_lost() {
            let e = "the transaction could not be committed and was aborted; \
                     starting again from the last commit";
            self.logs.push(&self.pipeline, "warn", e.to_owned());
            stats.transaction_lost();
        } else if self.topics.in_transaction()
            && let Err(e) = self.handle.block_on(self.topics.abort_transaction())
        {
            self.logs.push(
                &self.pipeline,
                "warn",
                format!("cannot abort the open transaction: {e}"),
            );
        }
    }
}

impl TopicTask {
    /// Exactly-once: each partition's offset joins its transaction, which
    /// commits (its sink and changelog records become visible to
    /// read_committed readers with the offset). Retried until it succeeds,
    /// the task is stopped, or the transaction is lost: a stopped task's
    /// open transaction is aborted, and the next one resumes from the last
    /// commit.
    pub(super) fn commit_transactions(&mut self) -> Result<(), Stopped> {
        let leads: Vec<bool> = self
            .works
            .iter()
            .map(|w| self.io.topics.local().leads(&w.log))
            .collect();
        if let Err(denied) = self.io.permissions.to_commit() {
            self.io.logs.push(
                &self.io.pipeline,
                "warn",
                format!("cannot commit progress of {}: {denied}", self.group),
            );
            return Ok(());
        }
        for (w, leads) in self.works.iter_mut().zip(leads) {
            let Some(topics) = &w.txn else { continue };
            if !leads || (w.position == w.committed && !topics.in_transaction()) {
                continue;
            }
            let offsets = [(self.topic.as_str(), w.log.index(), w.position)];
            let io = self.io.with_topics(Some(topics));
            io.retry("committing the transaction", || {
                io.handle.block_on(topics.commit(&self.group, &offsets))
            })?;
            w.committed = w.position;
        }
        Ok(())
    }

    /// Ends each partition's transaction as [`Io::end_transaction`] does.
    pub(super) fn end_transactions(&self) {
        for w in &self.works {
            self.io
                .with_topics(w.txn.as_ref())
                .end_transaction(&self.stats);
        }
    }
}
