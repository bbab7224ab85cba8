// kafkajs (pure JavaScript, its own protocol code) against a running
// `fjord server` (address in $BOOTSTRAP): admin, produce, a consumer group
// whose two members share the partitions, committed offsets. Transactions:
// transactions.test.mjs.
// Run by tests/interop/run.sh with `npm test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CompressionTypes } from "kafkajs";
import { kafka, unique, connected, until, consumerOf, createTopic } from "./common.mjs";

test("admin creates, lists and describes topics", async () => {
  const admin = await connected(kafka.admin());
  const topic = unique("kjs-admin");
  await createTopic(admin, topic, 3);
  // Creating it again is refused (TOPIC_ALREADY_EXISTS): kafkajs answers false.
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  assert.equal(again, false);
  assert.ok((await admin.listTopics()).includes(topic));
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(topics[0].partitions.length, 3);
  const offsets = await admin.fetchTopicOffsets(topic);
  assert.deepEqual(
    offsets.map((o) => [o.partition, o.high, o.low]).sort(),
    [[0, "0", "0"], [1, "0", "0"], [2, "0", "0"]],
  );
  await admin.deleteTopics({ topics: [topic], timeout: 5000 });
  assert.ok(!(await admin.listTopics()).includes(topic));
});

test("produce with keys, headers and gzip, then consume in a group", async () => {
  const admin = await connected(kafka.admin());
  const topic = unique("kjs-roundtrip");
  await createTopic(admin, topic, 1);
  const producer = await connected(kafka.producer());
  const messages = Array.from({ length: 20 }, (_, i) => ({
    key: `k${i}`,
    value: `v${i}`,
    headers: { trace: `t${i}` },
  }));
  const acks = await producer.send({
    topic,
    compression: CompressionTypes.GZIP,
    acks: -1,
    messages,
  });
  assert.equal(acks[0].errorCode, 0);
  assert.equal(acks[0].baseOffset, "0");

  const consumer = await connected(consumerOf({ groupId: unique("kjs-g") }));
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const seen = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen.push([
        message.offset,
        message.key.toString(),
        message.value.toString(),
        message.headers.trace.toString(),
      ]);
    },
  });
  await until(() => seen.length >= 20, 15000, "20 records");
  assert.deepEqual(
    seen,
    messages.map((m, i) => [String(i), m.key, m.value, m.headers.trace]),
  );
});

test("two consumers in a group share the partitions", async () => {
  const admin = await connected(kafka.admin());
  const topic = unique("kjs-share");
  const groupId = unique("kjs-g");
  await createTopic(admin, topic, 4);

  const members = [0, 1].map(() => ({ assigned: [], got: [] }));
  for (const m of members) {
    m.consumer = await connected(
      consumerOf({ groupId, heartbeatInterval: 300, sessionTimeout: 10000 }),
    );
    m.consumer.on(m.consumer.events.GROUP_JOIN, (e) => {
      m.assigned = e.payload.memberAssignment[topic] ?? [];
    });
    await m.consumer.subscribe({ topics: [topic], fromBeginning: true });
    await m.consumer.run({
      eachMessage: async ({ partition, message }) => {
        m.got.push([partition, message.value.toString()]);
      },
    });
  }
  // The first member's heartbeat learns of the second one and both rejoin.
  await until(
    () => members.every((m) => m.assigned.length === 2),
    15000,
    "both members holding two partitions",
  );
  const all = members.flatMap((m) => m.assigned).sort();
  assert.deepEqual(all, [0, 1, 2, 3]);

  const producer = await connected(kafka.producer());
  const sent = [];
  for (let p = 0; p < 4; p++) {
    for (let i = 0; i < 5; i++) sent.push({ partition: p, value: `p${p}-${i}` });
  }
  await producer.send({ topic, messages: sent });
  await until(
    () => members.reduce((n, m) => n + m.got.length, 0) >= sent.length,
    15000,
    "every record consumed",
  );
  for (const m of members) {
    for (const [partition] of m.got) assert.ok(m.assigned.includes(partition));
  }
  const got = members.flatMap((m) => m.got.map(([, v]) => v)).sort();
  assert.deepEqual(got, sent.map((s) => s.value).sort());
});

test("committed offsets are fetched by admin and resumed from", async () => {
  const admin = await connected(kafka.admin());
  const topic = unique("kjs-commit");
  const groupId = unique("kjs-g");
  await createTopic(admin, topic, 1);
  const producer = await connected(kafka.producer());
  await producer.send({
    topic,
    messages: Array.from({ length: 10 }, (_, i) => ({ value: `r${i}` })),
  });

  const first = await connected(consumerOf({ groupId }));
  await first.subscribe({ topics: [topic], fromBeginning: true });
  const seen = [];
  await first.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      seen.push(message.value.toString());
    },
  });
  await until(() => seen.length >= 10, 15000, "10 records");
  // Commit past the sixth record only: the next member starts at r6.
  await first.commitOffsets([{ topic, partition: 0, offset: "6" }]);
  await first.disconnect();

  const fetched = await admin.fetchOffsets({ groupId, topics: [topic] });
  assert.deepEqual(fetched, [{ topic, partitions: [{ partition: 0, offset: "6", metadata: null }] }]);

  await producer.send({ topic, messages: [{ value: "r10" }] });
  const second = await connected(consumerOf({ groupId }));
  await second.subscribe({ topics: [topic], fromBeginning: true });
  const resumed = [];
  await second.run({
    eachMessage: async ({ message }) => {
      resumed.push(message.value.toString());
    },
  });
  await until(() => resumed.length >= 5, 15000, "5 records after the commit");
  assert.deepEqual(resumed, ["r6", "r7", "r8", "r9", "r10"]);
  // Auto-commit on: the group's offset reaches the end.
  await second.disconnect();
  const end = await admin.fetchOffsets({ groupId, topics: [topic] });
  assert.equal(end[0].partitions[0].offset, "11");
  const groups = (await admin.listGroups()).groups.map((g) => g.groupId);
  assert.ok(groups.includes(groupId));
});

test("idempotent producer, offsets by time, partitions, configs, groups", async () => {
  const admin = await connected(kafka.admin());
  const topic = unique("kjs-more");
  await createTopic(admin, topic, 1);
  const producer = await connected(kafka.producer({ idempotent: true, maxInFlightRequests: 1 }));
  const before = Date.now();
  await producer.send({ topic, messages: [{ value: "a" }, { value: "b" }] });
  await producer.send({ topic, messages: [{ value: "c", timestamp: String(before + 60000) }] });
  // The first offset at or after a time (ListOffsets by timestamp).
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, before + 30000);
  assert.deepEqual(byTime, [{ partition: 0, offset: "2" }]);

  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(topics[0].partitions.length, 3);

  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ["cleanup.policy"] }],
  });
  assert.equal(resources[0].errorCode, 0);
  assert.deepEqual(
    resources[0].configEntries.map((e) => [e.configName, e.configValue]),
    [["cleanup.policy", "delete"]],
  );
  await admin.alterConfigs({
    resources: [{ type: 2, name: topic, configEntries: [{ name: "retention.ms", value: "3600000" }] }],
  });
  const altered = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2, name: topic, configNames: ["retention.ms"] }],
  });
  assert.equal(altered.resources[0].configEntries[0].configValue, "3600000");

  // A group with committed offsets, described, reset, then deleted.
  const groupId = unique("kjs-g");
  const consumer = await connected(consumerOf({ groupId }));
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  await consumer.run({ eachMessage: async () => { seen += 1; } });
  await until(() => seen >= 3, 15000, "3 records");
  const described = await admin.describeGroups([groupId]);
  assert.equal(described.groups[0].state, "Stable");
  assert.equal(described.groups[0].protocolType, "consumer");
  assert.equal(described.groups[0].members.length, 1);
  await consumer.disconnect();
  await admin.resetOffsets({ groupId, topic, earliest: true });
  // kafkajs commits the earliest sentinel (-2) itself, and Kafka's
  // coordinator stores a committed offset as sent; a consumer resolves it.
  const reset = await admin.fetchOffsets({ groupId, topics: [topic] });
  assert.deepEqual(reset[0].partitions.map((p) => p.offset), ["-2", "-2", "-2"]);
  await admin.deleteGroups([groupId]);
  const groups = (await admin.listGroups()).groups.map((g) => g.groupId);
  assert.ok(!groups.includes(groupId));
});
