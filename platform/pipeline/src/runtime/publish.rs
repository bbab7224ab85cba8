//! Publishing what the runtime does: each pipeline's status to
//! [`STATUS_TOPIC`] every second (in a cluster, one per broker, which
//! readers merge) and the pipelines' log lines to [`LOGS_TOPIC`].

use std::sync::atomic::Ordering;
use std::time::Instant;

use fjord_sdk::Record;

use super::{LOGS_TOPIC, PipelineStatus, RunState, STATUS_TOPIC, Supervisor, now_ms};

impl Supervisor {
    pub(super) fn publish(&mut self, seconds: f64) {
        let mut batch = Vec::new();
        let node_id = self.local.node_id();
        for (name, r) in &mut self.running {
            for (level, line) in r.stats.take_events() {
                self.logs.push(name, level, line);
            }
            let source = if r.source.is_empty() {
                "connector".to_owned()
            } else {
                format!("topic {}", r.source)
            };
            let mut partitions = r.stats.partitions();
            // The end moves while a task waits on a sink: read it live.
            if let Some(topic) = self.local.topic(&r.source) {
                for p in &mut partitions {
                    if let Some(log) = topic.partition(p.partition) {
                        p.end = log.high_watermark();
                        p.lag = (p.end - p.position).max(0);
                    }
                }
            }
            let mut errors = r.errors.clone();
            if r.state == RunState::Running {
                errors.extend(r.stats.fatal_errors());
            }
            let (steps, sinks) = r.stats.statuses(seconds);
            let status = PipelineStatus {
                name: name.clone(),
                revision: r.revision,
                state: r.state,
                node_id,
                updated_ms: now_ms(),
                errors,
                warnings: r.warnings.clone(),
                source,
                steps,
                sinks,
                lag: partitions.iter().map(|p| p.lag).sum(),
                partitions,
                dead_lettered: r.stats.dead_lettered.load(Ordering::Relaxed),
                source_counters: r.stats.source_counters(),
            };
            r.last_status = Instant::now();
            batch.push(Record {
                key: Some(self.topics.status_key(name).into_bytes()),
                value: Some(serde_json::to_vec(&status).unwrap_or_default()),
                timestamp: now_ms(),
                ..Record::default()
            });
        }
        self.append(STATUS_TOPIC, &batch);
        let lines: Vec<Record> = self
            .logs
            .take()
            .into_iter()
            .map(|l| Record {
                key: Some(l.pipeline.as_bytes().to_vec()),
                value: Some(serde_json::to_vec(&l).unwrap_or_default()),
                timestamp: l.time_ms,
                ..Record::default()
            })
            .collect();
        self.append(LOGS_TOPIC, &lines);
    }

    pub(super) fn write_status_tombstone(&self, name: &str) {
        self.append(
            STATUS_TOPIC,
            &[Record {
                key: Some(self.topics.status_key(name).into_bytes()),
                timestamp: now_ms(),
                ..Record::default()
            }],
        );
    }

    fn append(&self, topic: &str, batch: &[Record]) {
        if batch.is_empty() {
            return;
        }
        if self.local.topic(topic).is_none() {
            return;
        }
        // Bounded like the supervisor's reads: a status partition between
        // leaders must not hold up tasks' handovers. (The producer still
        // delivers what it took.)
        let append = async {
            // Made inside the runtime: its timer needs the runtime's clock.
            tokio::time::timeout(super::SUPERVISOR_READS, self.topics.append(topic, 0, batch)).await
        };
        match self.handle.block_on(append) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(topic, error = %e, "cannot write pipeline status"),
            Err(_) => tracing::warn!(topic, "pipeline status not acknowledged yet"),
        }
    }
}
