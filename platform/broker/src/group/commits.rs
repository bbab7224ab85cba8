//! Offset commits as the coordinator sees them: who may commit (a member
//! of the current generation, or anyone while the group is empty) and the
//! committed offsets kept per group. Writing them to `__consumer_offsets`
//! is `offsets_topic.rs`; the wire format is `apis/offsets.rs`.

use std::time::Instant;

use super::coordinator::GroupCoordinator;
use super::state::{CommittedOffset, Group, GroupState};
use crate::error::GroupError;

impl GroupCoordinator {
    /// Checks that `member_id` of `generation` may commit offsets for
    /// `group_id` (creating the group for a simple commit), and stores
    /// `offsets`.
    pub(crate) fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: Vec<((String, i32), CommittedOffset)>,
    ) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let mut groups = self.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        // A commit without generation (admin tools, manual assignment) is
        // allowed only while nobody is a member.
        let simple = generation < 0 && member_id.is_empty();
        if simple {
            if !group.members.is_empty() {
                return Err(GroupError::UnknownMember);
            }
        } else {
            Self::check_member(group, member_id, instance_id, generation)?;
            if group.state == GroupState::CompletingRebalance {
                return Err(GroupError::RebalanceInProgress);
            }
            if let Some(member) = group.members.get_mut(member_id) {
                member.last_seen = Instant::now();
            }
        }
        group.offsets.extend(offsets);
        Ok(())
    }

    /// Sets (or with `None` removes) a committed offset without membership
    /// checks: loading `__consumer_offsets`, or applying a commit that
    /// [`commit`](Self::commit) authorised and the log stored.
    pub(crate) fn set_offset(
        &self,
        group_id: &str,
        key: (String, i32),
        value: Option<CommittedOffset>,
    ) {
        let mut groups = self.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        match value {
            Some(v) => {
                group.offsets.insert(key, v);
            }
            None => {
                group.offsets.remove(&key);
            }
        }
    }
}
