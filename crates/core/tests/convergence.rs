//! Property: any interleaving of edits, undos and redos, deliveries, disconnects (clean or
//! silent) and reconnects from N clients ends, once everyone is back and the network is quiet, with every client's view
//! equal to the server's state and nothing left unconfirmed.

mod common;

use common::{edit, Sim};
use keyboardia_core::protocol::*;
use keyboardia_core::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Edit(usize, u8, u8, u8),
    Up(usize),
    Down(usize),
    Drop(usize, bool),
    Reconnect(usize),
    Wait(u16),
    /// Undo (false) or redo (true) by a client.
    Undo(usize, bool),
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..n, any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(c, k, a, b)| Op::Edit(c, k, a, b)),
        6 => (0..n).prop_map(Op::Up),
        6 => (0..n).prop_map(Op::Down),
        1 => (0..n, any::<bool>()).prop_map(|(c, b)| Op::Drop(c, b)),
        2 => (0..n).prop_map(Op::Reconnect),
        1 => (0u16..3000).prop_map(Op::Wait),
        3 => (0..n, any::<bool>()).prop_map(|(c, r)| Op::Undo(c, r)),
    ]
}

fn run(n: usize, ops: Vec<Op>, config: LiveConfig) {
    let mut sim = Sim::new(n, config);
    for i in 0..n {
        sim.connect(i);
    }
    for o in ops {
        match o {
            Op::Edit(c, k, a, b) => {
                // Edits a client's own view refuses (e.g. unknown track) are not sent at all.
                let _ = sim.edit(c, edit(k, a, b));
            }
            Op::Up(c) => {
                sim.deliver_up(c);
            }
            Op::Down(c) => {
                sim.deliver_down(c);
            }
            Op::Drop(c, notify) => sim.disconnect(c, notify),
            Op::Reconnect(c) => {
                if sim.clients[c].conn.is_none() {
                    sim.connect(c);
                }
            }
            Op::Wait(ms) => sim.advance(ms as f64),
            Op::Undo(c, redo) => {
                let _ = sim.undo(c, redo);
            }
        }
    }
    // Everyone comes back; the network goes quiet.
    sim.advance(60_000.0);
    for i in 0..n {
        if sim.clients[i].conn.is_none() {
            sim.connect(i);
        }
    }
    sim.settle();
    let server = sim.server.state().clone();
    server.validate().expect("server state stays valid");
    for i in 0..n {
        let c = &sim.clients[i].sync;
        assert_eq!(c.pending_count(), 0, "client {i} has unconfirmed edits");
        assert_eq!(
            c.confirmed(),
            Some(&server),
            "client {i} confirmed state diverged"
        );
        assert_eq!(c.view(), Some(&server), "client {i} view diverged");
        assert_eq!(c.seq(), sim.server.seq());
    }
    // The durable log replayed onto the initial state gives the same state (restart safety).
    let mut replay = SessionState::starter();
    for a in &sim.log {
        apply(&mut replay, &a.change);
    }
    assert_eq!(replay, server);
    assert_eq!(sim.log.len() as u64, sim.server.seq());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_converges(n in 2usize..6, ops in prop::collection::vec(op(5), 0..300)) {
        let ops = ops.into_iter().map(|o| match o {
            Op::Edit(c, k, a, b) => Op::Edit(c % n, k, a, b),
            Op::Up(c) => Op::Up(c % n),
            Op::Down(c) => Op::Down(c % n),
            Op::Drop(c, b) => Op::Drop(c % n, b),
            Op::Reconnect(c) => Op::Reconnect(c % n),
            Op::Undo(c, r) => Op::Undo(c % n, r),
            w => w,
        }).collect();
        run(n, ops, LiveConfig::default());
    }

    #[test]
    fn converges_with_a_tiny_replay_window(ops in prop::collection::vec(op(3), 0..300)) {
        // Reconnecting clients mostly get snapshots instead of replays.
        run(3, ops, LiveConfig { replay_window: 3, ..LiveConfig::default() });
    }
}
