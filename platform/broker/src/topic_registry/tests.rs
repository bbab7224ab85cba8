//! The registry against real files in a temporary directory.

use super::*;

#[test]
fn topics_survive_reopen() -> Result<(), BrokerError> {
    let dir = tempfile::tempdir().map_err(|e| BrokerError::metadata("tmp", e))?;
    let id = {
        let registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
        let configs =
            TopicConfigs::from_pairs([("retention.ms", "1000")]).map_err(BrokerError::Config)?;
        let topic = registry
            .create("t", 3, configs, false)
            .map_err(|e| BrokerError::Config(e.message))?
            .ok_or_else(|| BrokerError::Config("not created".into()))?;
        registry.close_all()?;
        topic.id()
    };
    let registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
    let topic = registry
        .get("t")
        .ok_or_else(|| BrokerError::Config("lost".into()))?;
    assert_eq!(topic.id(), id);
    assert_eq!(topic.partition_count(), 3);
    assert_eq!(topic.configs().get("retention.ms"), Some("1000"));
    Ok(())
}

fn config_error(e: ApiError) -> BrokerError {
    BrokerError::Config(e.message)
}

/// The entries of the data directory, but for the registry's own.
fn partition_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !matches!(n.as_str(), "topics" | "cluster.yaml") && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn the_partition_limit_refuses_before_any_file() -> Result<(), BrokerError> {
    let dir = tempfile::tempdir().map_err(|e| BrokerError::metadata("tmp", e))?;
    let registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
    registry.set_partition_limit(5);
    registry
        .create("small", 3, TopicConfigs::default(), false)
        .map_err(config_error)?;
    let refused = registry
        .create("big", 3, TopicConfigs::default(), false)
        .err();
    assert!(
        refused
            .as_ref()
            .is_some_and(|e| e.code == ResponseError::PolicyViolation.code()
                && e.message.contains("max.partitions"))
    );
    let grown = registry.add_partitions("small", 6, false).err();
    assert_eq!(
        grown.map(|e| e.code),
        Some(ResponseError::PolicyViolation.code())
    );
    // validate_only answers the same.
    assert!(
        registry
            .create("big", 3, TopicConfigs::default(), true)
            .is_err()
    );
    assert_eq!(
        partition_dirs(dir.path()),
        ["small-0", "small-1", "small-2"]
    );
    assert!(!registry.topic_file("big").exists());
    // Up to the limit is fine, and internal topics are exempt.
    registry
        .add_partitions("small", 5, false)
        .map_err(config_error)?;
    registry
        .create("__consumer_offsets", 2, TopicConfigs::default(), false)
        .map_err(config_error)?;
    assert_eq!(registry.hosted_partitions(), 7);
    Ok(())
}

/// A creation that fails part-way (here: partition 5's path is taken by
/// a file that cannot be removed as a directory) removes the partitions
/// it made before.
#[test]
fn a_failed_creation_leaves_nothing_behind() -> Result<(), BrokerError> {
    let dir = tempfile::tempdir().map_err(|e| BrokerError::metadata("tmp", e))?;
    let registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
    let blocker = dir.path().join("t-5");
    fs::write(&blocker, b"in the way").map_err(|e| BrokerError::metadata(&blocker, e))?;
    let failed = registry
        .create("t", 10, TopicConfigs::default(), false)
        .err();
    assert!(failed.is_some_and(|e| e.code == ResponseError::KafkaStorageError.code()));
    assert_eq!(partition_dirs(dir.path()), ["t-5"]);
    assert!(registry.get("t").is_none());
    assert!(!registry.topic_file("t").exists());

    // Growing fails the same way and keeps the partitions it had.
    fs::remove_file(&blocker).map_err(|e| BrokerError::metadata(&blocker, e))?;
    registry
        .create("t", 2, TopicConfigs::default(), false)
        .map_err(config_error)?;
    fs::write(&blocker, b"in the way").map_err(|e| BrokerError::metadata(&blocker, e))?;
    assert!(registry.add_partitions("t", 8, false).is_err());
    assert_eq!(partition_dirs(dir.path()), ["t-0", "t-1", "t-5"]);
    let topic = registry
        .get("t")
        .ok_or_else(|| BrokerError::Config("lost".into()))?;
    assert_eq!(topic.partition_count(), 2);
    assert_eq!(topic.partitions().len(), 2);
    Ok(())
}

/// 247 to 249 characters: the topic file is `<name>.yaml` (254 bytes at
/// most), and its temporary copy must not be longer than 255.
#[test]
fn the_longest_names_are_created_reopened_and_deleted() -> Result<(), BrokerError> {
    let dir = tempfile::tempdir().map_err(|e| BrokerError::metadata("tmp", e))?;
    let names: Vec<String> = (247..=249).map(|n| "n".repeat(n)).collect();
    {
        let registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
        for name in &names {
            registry
                .create(name, 2, TopicConfigs::default(), false)
                .map_err(config_error)?;
            registry
                .add_partitions(name, 3, false)
                .map_err(config_error)?;
        }
        registry.close_all()?;
    }
    let registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
    for name in &names {
        let topic = registry
            .get(name)
            .ok_or_else(|| BrokerError::Config("lost".into()))?;
        assert_eq!(topic.partition_count(), 3);
        registry.delete(name).map_err(config_error)?;
    }
    // Renamed for `file.delete.delay.ms`, within the 255-byte name limit.
    let left = partition_dirs(dir.path());
    assert_eq!(left.len(), 9);
    assert!(
        left.iter()
            .all(|n| n.ends_with("-delete") && n.len() <= 255)
    );
    Ok(())
}

/// `file.delete.delay.ms` for topic deletion: each partition directory is
/// renamed `<topic>-<partition>.<uuid>-delete` and deleted by the first
/// retention round after the delay; with 0, deleted at once; a restart
/// deletes those it finds.
#[test]
fn deleted_partition_dirs_wait_for_the_delay() -> Result<(), BrokerError> {
    let dir = tempfile::tempdir().map_err(|e| BrokerError::metadata("tmp", e))?;
    let registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
    let delayed = TopicConfigs::from_pairs([("file.delete.delay.ms", "60000")])
        .map_err(BrokerError::Config)?;
    let at_once =
        TopicConfigs::from_pairs([("file.delete.delay.ms", "0")]).map_err(BrokerError::Config)?;
    registry
        .create("slow", 2, delayed.clone(), false)
        .map_err(config_error)?;
    registry
        .create("fast", 1, at_once, false)
        .map_err(config_error)?;
    registry.delete("fast").map_err(config_error)?;
    assert_eq!(partition_dirs(dir.path()), ["slow-0", "slow-1"]);
    registry.delete("slow").map_err(config_error)?;
    // After the deletion: its due time is at most this + the delay.
    let now = crate::clock::now_ms();
    let left = partition_dirs(dir.path());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left[0].starts_with("slow-0.") && left[0].ends_with("-delete"),
        "{left:?}"
    );
    // The name is free at once: a topic of the same name starts empty.
    registry
        .create("slow", 1, delayed, false)
        .map_err(config_error)?;
    assert_eq!(partition_dirs(dir.path()).len(), 3);
    registry.maintain(now + 1000, true, false);
    assert_eq!(partition_dirs(dir.path()).len(), 3, "before the delay");
    registry.maintain(now + 60_000, true, false);
    assert_eq!(partition_dirs(dir.path()), ["slow-0"]);

    registry.delete("slow").map_err(config_error)?;
    registry.close_all()?;
    drop(registry);
    assert_eq!(partition_dirs(dir.path()).len(), 1);
    let _registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
    assert!(
        partition_dirs(dir.path()).is_empty(),
        "a restart deletes them"
    );
    Ok(())
}

#[test]
fn colliding_names_are_refused_with_the_existing_one() -> Result<(), BrokerError> {
    let dir = tempfile::tempdir().map_err(|e| BrokerError::metadata("tmp", e))?;
    let registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
    registry
        .create("coll.a.b", 1, TopicConfigs::default(), false)
        .map_err(config_error)?;
    let refused = registry
        .create("coll_a_b", 1, TopicConfigs::default(), true)
        .err();
    assert!(
        refused.is_some_and(|e| e.code == ResponseError::InvalidTopicException.code()
            && e.message.contains("coll.a.b"))
    );
    assert!(registry.get("coll_a_b").is_none());
    Ok(())
}

#[test]
fn temporary_files_left_by_a_crash_are_removed() -> Result<(), BrokerError> {
    let dir = tempfile::tempdir().map_err(|e| BrokerError::metadata("tmp", e))?;
    drop(TopicRegistry::open(dir.path(), LogConfig::default(), None)?);
    let leftovers = [
        dir.path().join("topics").join(format!("{TMP_PREFIX}1-0")),
        dir.path().join(format!("{TMP_PREFIX}1-1")),
    ];
    for leftover in &leftovers {
        fs::write(leftover, b"name: half").map_err(|e| BrokerError::metadata(leftover, e))?;
    }
    let _registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
    assert!(leftovers.iter().all(|l| !l.exists()));
    Ok(())
}

/// The topic configs `preallocate` and `segment.bytes` reach the log: a
/// new partition's active segment file has its full size from creation.
#[test]
fn preallocate_topic_config_preallocates_the_active_segment() -> Result<(), BrokerError> {
    let dir = tempfile::tempdir().map_err(|e| BrokerError::metadata("tmp", e))?;
    let registry = TopicRegistry::open(dir.path(), LogConfig::default(), None)?;
    let configs = TopicConfigs::from_pairs([("preallocate", "true"), ("segment.bytes", "1048576")])
        .map_err(BrokerError::Config)?;
    registry
        .create("pre", 1, configs, false)
        .map_err(config_error)?;
    registry
        .create("plain", 1, TopicConfigs::default(), false)
        .map_err(config_error)?;
    let length = |topic: &str| {
        fs::metadata(
            dir.path()
                .join(format!("{topic}-0/00000000000000000000.log")),
        )
        .map(|m| m.len())
        .map_err(|e| BrokerError::metadata("segment", e))
    };
    assert_eq!(length("pre")?, 1_048_576);
    assert_eq!(length("plain")?, 0);
    Ok(())
}
