// @platformatic/kafka against a real fjord server (started by
// tests/interop/run.sh, address in $BOOTSTRAP): admin creates a topic,
// a producer writes to it, two consumers of one group share its partitions
// and commit, and the offsets they committed are there. This client fetches
// by topic id (Fetch v13+ form) and describes topics with Metadata v12; it
// read nothing from a broker that offered only Fetch v12. A transactional
// producer's committed records are read read_committed, its aborted ones
// are not.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import {
  Admin,
  Consumer,
  FetchIsolationLevels,
  Producer,
  MessagesStreamModes,
  stringDeserializers,
  stringSerializers
} from '@platformatic/kafka'

const bootstrapBrokers = [process.env.BOOTSTRAP ?? '127.0.0.1:9092']
const TIMEOUT_MS = 30_000

/** Waits until `ready()`, or fails with `what()` after a deadline. */
async function waitFor (ready, what) {
  const deadline = Date.now() + TIMEOUT_MS
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(what())
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

test('admin, producer and a consumer group', { timeout: 60_000 }, async t => {
  const topic = `platformatic-${randomUUID()}`
  const groupId = `platformatic-group-${randomUUID()}`

  const admin = new Admin({ clientId: 'interop-admin', bootstrapBrokers })
  t.after(() => admin.close())
  const created = await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 })
  assert.equal(created.length, 1)
  assert.equal(created[0].name, topic)
  assert.equal(created[0].partitions, 2)
  assert.ok(created[0].id, 'the new topic has an id')
  const topics = await admin.listTopics()
  assert.ok(topics.includes(topic), `${topic} listed`)

  const producer = new Producer({
    clientId: 'interop-producer',
    bootstrapBrokers,
    serializers: stringSerializers
  })
  t.after(() => producer.close())
  const count = 20
  const messages = []
  for (let i = 0; i < count; i++) {
    messages.push({
      topic,
      partition: i % 2,
      key: `key-${i}`,
      value: `value-${i}`,
      headers: { index: String(i) }
    })
  }
  const sent = await producer.send({ messages, acks: -1 })
  assert.equal(sent.offsets.length, 2, 'both partitions written')

  // Two members of one group: the partitions are shared out, and between
  // them every record is read once, key, value and header intact.
  const members = [0, 1].map(
    i =>
      new Consumer({
        groupId,
        clientId: `interop-consumer-${i}`,
        bootstrapBrokers,
        deserializers: stringDeserializers,
        maxWaitTime: 200,
        sessionTimeout: 10_000,
        heartbeatInterval: 500
      })
  )
  t.after(() => Promise.all(members.map(m => m.close(true))))
  const received = []
  const streams = await Promise.all(
    members.map(m =>
      m.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false })
    )
  )
  const errors = []
  for (const stream of streams) {
    stream.on('data', message => received.push(message))
    stream.on('error', error => errors.push(error))
  }
  await waitFor(
    () => received.length >= count || errors.length > 0,
    () => `only ${received.length} of ${count} consumed`
  )
  assert.deepEqual(errors, [])
  const byKey = new Map(received.map(m => [m.key, m]))
  assert.equal(byKey.size, count, 'each record once')
  for (let i = 0; i < count; i++) {
    const m = byKey.get(`key-${i}`)
    assert.ok(m, `key-${i} consumed`)
    assert.equal(m.value, `value-${i}`)
    assert.equal(m.partition, i % 2)
    assert.equal(m.offset, BigInt(Math.floor(i / 2)))
    assert.equal(m.headers.get('index'), String(i))
  }

  // Each member committed what it read; the group's offsets show it.
  for (const m of received) {
    await m.commit()
  }
  const groups = await admin.describeGroups({ groups: [groupId] })
  const group = groups.get(groupId)
  assert.equal(group.state, 'STABLE')
  assert.equal(group.members.size, 2, 'two members share the topic')
  const assigned = []
  for (const member of group.members.values()) {
    for (const [name, assignment] of member.assignments ?? new Map()) {
      if (name === topic) assigned.push(...assignment.partitions)
    }
  }
  assert.deepEqual(assigned.sort(), [0, 1], 'the partitions are shared out')
  const committed = await admin.listConsumerGroupOffsets({ groups: [groupId] })
  const offsets = []
  for (const group of committed.groups ?? committed) {
    for (const t of group.topics ?? []) {
      if (t.name !== topic) continue
      for (const p of t.partitions) offsets[p.partitionIndex] = p.committedOffset
    }
  }
  assert.deepEqual(offsets, [10n, 10n], 'the next offsets are committed')
})

/** The values before 'end' in partition 0 of `topic`, read with `isolationLevel`. */
async function readToEnd (t, topic, isolationLevel) {
  const consumer = new Consumer({
    groupId: `platformatic-reader-${randomUUID()}`,
    clientId: 'interop-reader',
    bootstrapBrokers,
    deserializers: stringDeserializers,
    maxWaitTime: 200
  })
  t.after(() => consumer.close(true))
  const stream = await consumer.consume({
    topics: [topic],
    mode: MessagesStreamModes.EARLIEST,
    autocommit: false,
    isolationLevel
  })
  const values = []
  let ended = false
  const errors = []
  stream.on('data', message => {
    if (message.value === 'end') ended = true
    else if (!ended) values.push(message.value)
  })
  stream.on('error', error => errors.push(error))
  await waitFor(() => ended || errors.length > 0, () => `no 'end'; read ${values}`)
  assert.deepEqual(errors, [])
  await consumer.close(true)
  return values
}

test('committed transactions are read read_committed, aborted ones are not', { timeout: 60_000 }, async t => {
  const topic = `platformatic-txn-${randomUUID()}`
  const admin = new Admin({ clientId: 'interop-admin', bootstrapBrokers })
  t.after(() => admin.close())
  await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 })
  const producer = new Producer({
    clientId: 'interop-transactional',
    bootstrapBrokers,
    serializers: stringSerializers,
    idempotent: true,
    transactionalId: `platformatic-txn-${randomUUID()}`
  })
  t.after(() => producer.close())
  for (const [value, commit] of [['c1', true], ['a1', false], ['c2', true]]) {
    const transaction = await producer.beginTransaction()
    await transaction.send({ messages: [{ topic, partition: 0, value }] })
    if (commit) await transaction.commit()
    else await transaction.abort()
  }
  // Written without a transaction after them: a read_committed consumer
  // reaches it only once their markers are written.
  const plain = new Producer({ clientId: 'interop-plain', bootstrapBrokers, serializers: stringSerializers })
  t.after(() => plain.close())
  await plain.send({ messages: [{ topic, partition: 0, value: 'end' }], acks: -1 })

  assert.deepEqual(await readToEnd(t, topic, FetchIsolationLevels.READ_COMMITTED), ['c1', 'c2'])
  assert.deepEqual(await readToEnd(t, topic, FetchIsolationLevels.READ_UNCOMMITTED), ['c1', 'a1', 'c2'])
})
