//! The coordinator's timers, driven by explicit `tick` instants instead of
//! waiting: rebalance timeout, initial rebalance delay, session expiry and
//! offset retention.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::classic::JoinRequest;
use super::coordinator::{GroupCoordinator, GroupSettings, Pending};
use super::state::{CommittedOffset, GroupState, JoinResult};
use crate::error::group_error_code;

/// The error code a Heartbeat of `member` in `generation` of group `g`
/// gets (0: none).
fn heartbeat_code(c: &GroupCoordinator, member: &str, generation: i32) -> i16 {
    c.heartbeat("g", member, None, generation)
        .err()
        .map_or(0, |e| group_error_code(&e))
}

fn coordinator(delay_ms: u64) -> GroupCoordinator {
    GroupCoordinator::new(GroupSettings {
        initial_rebalance_delay: Duration::from_millis(delay_ms),
        max_size: 3,
        ..GroupSettings::for_tests()
    })
}

fn request(member: &str, session_ms: i32, rebalance_ms: i32) -> JoinRequest {
    JoinRequest {
        group_id: "g".to_string(),
        member_id: member.to_string(),
        instance_id: None,
        client_id: "c".to_string(),
        client_host: String::new(),
        session_timeout_ms: session_ms,
        rebalance_timeout_ms: rebalance_ms,
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), Bytes::from_static(b"m"))],
        require_member_id: false,
    }
}

fn waiting(pending: Pending<JoinResult>) -> oneshot::Receiver<JoinResult> {
    match pending {
        Pending::Wait(rx) => rx,
        Pending::Ready(r) => panic!("answered at once: {r:?}"),
    }
}

fn state(c: &GroupCoordinator) -> GroupState {
    c.lock().get("g").map_or(GroupState::Dead, |g| g.state)
}

#[test]
fn the_initial_delay_holds_the_first_generation_back() {
    let c = coordinator(200);
    let mut rx = waiting(c.join(request("", 10_000, 10_000)));
    c.tick(Instant::now(), 0);
    assert!(rx.try_recv().is_err(), "completed before the delay");
    c.tick(Instant::now() + Duration::from_millis(250), 0);
    let joined = rx.try_recv().expect("completed after the delay");
    assert!(joined.error.is_none(), "{:?}", joined.error);
    assert_eq!(joined.generation, 1);
    assert_eq!(state(&c), GroupState::CompletingRebalance);
}

#[test]
fn a_member_that_does_not_rejoin_in_the_rebalance_timeout_is_removed() {
    let c = coordinator(0);
    let mut first = waiting(c.join(request("", 30_000, 500)));
    c.tick(Instant::now(), 0);
    let a = first.try_recv().expect("generation 1");
    let sync = c.sync("g", &a.member_id, None, 1, None, None, Vec::new());
    assert!(matches!(sync, Pending::Ready(ref r) if r.error.is_none()));
    // A second member starts a rebalance; A never rejoins.
    let mut second = waiting(c.join(request("", 30_000, 500)));
    c.tick(Instant::now(), 0);
    assert!(second.try_recv().is_err(), "waits for A");
    c.tick(Instant::now() + Duration::from_millis(600), 0);
    let b = second
        .try_recv()
        .expect("completed at the rebalance timeout");
    assert!(b.error.is_none(), "{:?}", b.error);
    assert_eq!(b.generation, 2);
    assert_eq!(b.leader, b.member_id, "B leads alone");
    assert_eq!(b.members.len(), 1);
    assert_eq!(heartbeat_code(&c, &a.member_id, 2), 25, "A is gone");
}

#[test]
fn an_expired_session_removes_the_member_and_empties_the_group() {
    let c = coordinator(0);
    let mut rx = waiting(c.join(request("", 100, 1000)));
    c.tick(Instant::now(), 0);
    let a = rx.try_recv().expect("generation 1");
    assert!(matches!(
        c.sync("g", &a.member_id, None, 1, None, None, Vec::new()),
        Pending::Ready(_)
    ));
    c.tick(Instant::now() + Duration::from_millis(50), 0);
    assert_eq!(heartbeat_code(&c, &a.member_id, 1), 0);
    c.tick(Instant::now() + Duration::from_millis(300), 0);
    assert_eq!(heartbeat_code(&c, &a.member_id, 1), 25);
}

#[test]
fn offsets_of_an_empty_group_expire_after_retention() {
    let c = coordinator(0);
    let offset = |ts| CommittedOffset {
        offset: 5,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: ts,
    };
    c.set_offset("g", ("t".to_string(), 0), Some(offset(1_000)));
    c.set_offset("g", ("t".to_string(), 1), Some(offset(50_000)));
    // The group is seen empty from 5 000: retention (60 s) counts from the
    // later of that and each commit.
    c.tick(Instant::now(), 5_000);
    c.tick(Instant::now(), 64_000);
    assert_eq!(c.lock()["g"].offsets.len(), 2, "nothing is 60 s past both");
    c.tick(Instant::now(), 70_000);
    let groups = c.lock();
    let kept: Vec<_> = groups["g"].offsets.keys().cloned().collect();
    assert_eq!(kept, vec![("t".to_string(), 1)]);
}

fn join_code(pending: Pending<JoinResult>) -> Option<i16> {
    match pending {
        Pending::Ready(r) => r.error.map(|e| group_error_code(&e)),
        Pending::Wait(_) => None,
    }
}

#[test]
fn a_group_takes_at_most_group_max_size_members_pending_ones_included() {
    let c = coordinator(0);
    let _a = waiting(c.join(request("", 10_000, 10_000)));
    let _b = waiting(c.join(request("", 10_000, 10_000)));
    // A KIP-394 first join holds a place too: its id is pending.
    let pending = request("", 10_000, 10_000);
    let pending_id = match c.join(JoinRequest {
        require_member_id: true,
        ..pending
    }) {
        Pending::Ready(r) => {
            assert_eq!(r.error.map(|e| group_error_code(&e)), Some(79));
            r.member_id
        }
        Pending::Wait(_) => panic!("a first v4 join waits"),
    };
    assert_eq!(
        join_code(c.join(request("", 10_000, 10_000))),
        Some(81),
        "a fourth member is refused with GROUP_MAX_SIZE_REACHED"
    );
    // The pending member itself still gets in.
    let _c = waiting(c.join(request(&pending_id, 10_000, 10_000)));
    assert_eq!(c.lock()["g"].members.len(), 3);
}

#[test]
fn oversized_protocol_metadata_is_refused_before_a_group_exists() {
    let c = coordinator(0);
    let mut big = request("", 10_000, 10_000);
    big.protocols = vec![("range".to_string(), Bytes::from(vec![0u8; 1024]))];
    assert_eq!(join_code(c.join(big)), Some(42));
    assert!(c.lock().get("g").is_none(), "no group left behind");
    let mut fits = request("", 10_000, 10_000);
    fits.protocols = vec![("range".to_string(), Bytes::from(vec![0u8; 1019]))];
    drop(waiting(c.join(fits)));
}
