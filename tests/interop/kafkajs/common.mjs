// What both kafkajs suites share: the client, pointed at $BOOTSTRAP, and
// small helpers.
import { after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";

export const BOOTSTRAP = process.env.BOOTSTRAP ?? "127.0.0.1:9092";
export const kafka = new Kafka({
  clientId: "fjord-interop-kafkajs",
  brokers: [BOOTSTRAP],
  logLevel: logLevel.ERROR,
  // A broker that does not answer fails the test, not hangs it.
  connectionTimeout: 5000,
  requestTimeout: 10000,
  retry: { retries: 3 },
});

export const unique = (prefix) => `${prefix}-${randomBytes(4).toString("hex")}`;
const open = [];
after(async () => {
  await Promise.allSettled(open.map((c) => c.disconnect()));
});
/** Connects `client`; the file's `after` hook disconnects it. */
export async function connected(client) {
  open.push(client);
  await client.connect();
  return client;
}

/** Polls `cond` until it holds or `ms` pass. */
export async function until(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Fetches wait at most 500 ms for data (kafkajs: 5 s), so that a consumer
// stops quickly: disconnect waits for the fetch in flight.
export const consumerOf = (config) => kafka.consumer({ maxWaitTimeInMs: 500, ...config });

export async function createTopic(admin, topic, numPartitions) {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  assert.equal(created, true, `${topic} created`);
}
