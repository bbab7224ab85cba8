// Kafka transactions with kafkajs against a running `fjord server`
// (address in $BOOTSTRAP). kafkajs speaks the oldest versions
// (InitProducerId, AddPartitionsToTxn, EndTxn, TxnOffsetCommit v0/v1), on
// which a fenced producer is told INVALID_PRODUCER_EPOCH (PRODUCER_FENCED
// came with v3 and later, KIP-588). Committed records are read by
// read_committed consumers and aborted ones are not; a second producer with
// the same transactionalId fences the first; a transaction left open is
// aborted at its transactionTimeout; offsets sent to a transaction reach the
// group only when it commits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { kafka, unique, connected, until, consumerOf, createTopic } from "./common.mjs";

// Written without a transaction after the ones under test: a
// read_committed consumer reaches it only once the last stable offset has
// passed them all (their markers are written; EndTxn may answer before).
const END = "end";

const transactional = (transactionalId, config = {}) =>
  connected(kafka.producer({ transactionalId, maxInFlightRequests: 1, idempotent: true, ...config }));

async function endPartitions(topic, partitions) {
  const producer = await connected(kafka.producer());
  await producer.send({ topic, acks: -1, messages: partitions.map((partition) => ({ value: END, partition })) });
  await producer.disconnect();
}

/** The values before END in each of `partitions` partitions. */
async function readToEnd(topic, partitions, readUncommitted, ms = 30000) {
  const consumer = await connected(consumerOf({ groupId: unique("kjs-reader"), readUncommitted }));
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const values = [];
  const ended = new Set();
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const value = message.value.toString();
      if (value === END) ended.add(partition);
      else {
        assert.ok(!ended.has(partition), `${value} after END`);
        values.push(value);
      }
    },
  });
  try {
    await until(() => ended.size === partitions, ms, `END in ${partitions} partitions; read ${values}`);
  } finally {
    await consumer.disconnect();
  }
  return values;
}

const sorted = (values) => [...values].sort();

test("committed records are read read_committed, aborted ones are not", async () => {
  const admin = await connected(kafka.admin());
  const topic = unique("kjs-txn");
  await createTopic(admin, topic, 2);
  const producer = await transactional(unique("kjs-txn-id"));
  const committed = Array.from({ length: 10 }, (_, i) => `c${i}`);
  const aborted = Array.from({ length: 10 }, (_, i) => `a${i}`);
  const messages = (values) => values.map((value, i) => ({ value, partition: i % 2 }));
  // Committed, aborted, committed: the aborted one sits mid-log.
  for (const [values, commit] of [[committed.slice(0, 5), true], [aborted, false], [committed.slice(5), true]]) {
    const txn = await producer.transaction();
    await txn.send({ topic, messages: messages(values) });
    if (commit) await txn.commit();
    else await txn.abort();
  }
  await endPartitions(topic, [0, 1]);
  assert.deepEqual(sorted(await readToEnd(topic, 2, false)), sorted(committed));
  assert.deepEqual(sorted(await readToEnd(topic, 2, true)), sorted([...committed, ...aborted]));
});

test("a second producer with the same transactionalId fences the first", async () => {
  const admin = await connected(kafka.admin());
  const topic = unique("kjs-fence");
  await createTopic(admin, topic, 1);
  const transactionalId = unique("kjs-fence-id");
  const first = await transactional(transactionalId);
  let txn = await first.transaction();
  await txn.send({ topic, messages: [{ value: "first-1", partition: 0 }] });
  await txn.commit();

  const second = await transactional(transactionalId);
  const secondTxn = await second.transaction(); // InitProducerId: the epoch moves on

  txn = await first.transaction();
  await assert.rejects(txn.send({ topic, messages: [{ value: "zombie", partition: 0 }] }), (error) => {
    assert.equal(error.type, "INVALID_PRODUCER_EPOCH", `${error}`);
    return true;
  });

  await secondTxn.send({ topic, messages: [{ value: "second-1", partition: 0 }] });
  await secondTxn.commit();
  await endPartitions(topic, [0]);
  assert.deepEqual(await readToEnd(topic, 1, false), ["first-1", "second-1"]);
  // The zombie's record never reached the log: its AddPartitionsToTxn,
  // sent first, was refused.
  assert.deepEqual(await readToEnd(topic, 1, true), ["first-1", "second-1"]);
});

test("a transaction left open is aborted at its transactionTimeout", async () => {
  const admin = await connected(kafka.admin());
  const topic = unique("kjs-timeout");
  await createTopic(admin, topic, 1);
  const stuck = await transactional(unique("kjs-timeout-id"), { transactionTimeout: 2000 });
  const started = Date.now(); // before the transaction's start
  const txn = await stuck.transaction();
  await txn.send({ topic, messages: [{ value: "open-1", partition: 0 }, { value: "open-2", partition: 0 }] });
  await endPartitions(topic, [0]);
  // END sits behind the open transaction until the coordinator aborts it.
  assert.deepEqual(await readToEnd(topic, 1, false, 40000), []);
  const waited = Date.now() - started;
  assert.ok(waited >= 2000, `read past an open transaction after ${waited} ms`);
  assert.deepEqual(await readToEnd(topic, 1, true), ["open-1", "open-2"]);
  // The coordinator bumped the epoch when it aborted: the late commit fails.
  await assert.rejects(txn.commit(), (error) => {
    assert.equal(error.type, "INVALID_PRODUCER_EPOCH", `${error}`);
    return true;
  });
});

test("offsets sent to a transaction reach the group only when it commits", async () => {
  const admin = await connected(kafka.admin());
  const source = unique("kjs-src");
  const sink = unique("kjs-sink");
  await createTopic(admin, source, 2);
  await createTopic(admin, sink, 1);
  const plain = await connected(kafka.producer());
  await plain.send({
    topic: source,
    acks: -1,
    messages: Array.from({ length: 20 }, (_, i) => ({ value: `in${i}`, partition: i % 2 })),
  });
  const groupId = unique("kjs-txn-group");
  // The group's consumer reads the inputs (and commits nothing itself).
  const consumer = await connected(consumerOf({ groupId }));
  await consumer.subscribe({ topics: [source], fromBeginning: true });
  const consumed = [];
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      consumed.push({ partition, offset: Number(message.offset), value: message.value.toString() });
    },
  });
  await until(() => consumed.length >= 20, 15000, "20 inputs");
  await consumer.disconnect();

  const committedOffsets = async () => {
    const [fetched] = await admin.fetchOffsets({ groupId, topics: [source] });
    return fetched.partitions.map((p) => [p.partition, p.offset]).sort();
  };
  const none = [[0, "-1"], [1, "-1"]];
  const producer = await transactional(unique("kjs-ctp-id"));
  const transform = async (commit) => {
    const txn = await producer.transaction();
    await txn.send({ topic: sink, messages: consumed.map((c) => ({ value: `out-${c.value}`, partition: 0 })) });
    const next = [0, 1].map((partition) => ({
      partition,
      offset: String(Math.max(...consumed.filter((c) => c.partition === partition).map((c) => c.offset)) + 1),
    }));
    await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: source, partitions: next }] });
    // Sent but not committed: the group shows none of it.
    assert.deepEqual(await committedOffsets(), none);
    if (commit) await txn.commit();
    else await txn.abort();
  };
  await transform(false);
  assert.deepEqual(await committedOffsets(), none);
  await transform(true);
  assert.deepEqual(await committedOffsets(), [[0, "10"], [1, "10"]]);

  await endPartitions(sink, [0]);
  const expected = sorted(consumed.map((c) => `out-${c.value}`));
  assert.deepEqual(sorted(await readToEnd(sink, 1, false)), expected);
  assert.equal((await readToEnd(sink, 1, true)).length, 40);
});
