// kafka-go (Debian's golang-github-segmentio-kafka-go-dev, 0.2.1) against a
// running `fjord server` (address in $BOOTSTRAP). Built in GOPATH mode by
// tests/interop/run.sh.
//
// kafka-go 0.2.1 produces with Produce v2 and fetches with Fetch v2 (message
// format v1), and creates topics with CreateTopics v0: versions Kafka 4
// removed (KIP-896) and Fjord does not serve either. What it sends within
// Kafka 4's ranges works — metadata, offsets, DeleteTopics and the whole
// consumer-group protocol (FindCoordinator v0, JoinGroup v1, SyncGroup v0,
// Heartbeat v0, OffsetCommit v2, OffsetFetch v1) — and the removed versions
// fail at once with an error, never a hang. Topics and records come from
// Sarama here.
package kafkago_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/Shopify/sarama"
	kafka "github.com/segmentio/kafka-go"
)

func bootstrap() string {
	if b := os.Getenv("BOOTSTRAP"); b != "" {
		return b
	}
	return "127.0.0.1:9092"
}

func unique(prefix string) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	c.Producer.Return.Successes = true
	c.Producer.Partitioner = sarama.NewManualPartitioner
	return c
}

// topicWithRecords creates `topic` with two partitions and `n` records on
// partition 0 (Sarama).
func topicWithRecords(t *testing.T, topic string, n int) sarama.ClusterAdmin {
	a, err := sarama.NewClusterAdmin([]string{bootstrap()}, saramaConfig())
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create: %v", err)
	}
	p, err := sarama.NewSyncProducer([]string{bootstrap()}, saramaConfig())
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	for i := 0; i < n; i++ {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("r")}); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	return a
}

func dial(t *testing.T) *kafka.Conn {
	conn, err := kafka.Dial("tcp", bootstrap())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

func TestMetadataOffsetsAndDeleteTopics(t *testing.T) {
	topic := unique("kgo-admin")
	topicWithRecords(t, topic, 4)
	parts, err := dial(t).ReadPartitions(topic)
	if err != nil || len(parts) != 2 {
		t.Fatalf("partitions: %v %+v", err, parts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leader, err := kafka.DialLeader(ctx, "tcp", bootstrap(), topic, 0)
	if err != nil {
		t.Fatalf("leader: %v", err)
	}
	defer leader.Close()
	leader.SetDeadline(time.Now().Add(10 * time.Second))
	first, last, err := leader.ReadOffsets()
	if err != nil || first != 0 || last != 4 {
		t.Fatalf("offsets %d..%d: %v", first, last, err)
	}
	if err := dial(t).DeleteTopics(topic); err != nil {
		t.Fatalf("delete: %v", err)
	}
	parts, err = dial(t).ReadPartitions(topic)
	if err == nil && len(parts) > 0 {
		// Metadata v1 may create it again (auto.create.topics.enable); then
		// it is new and empty.
		leader, err := kafka.DialLeader(ctx, "tcp", bootstrap(), topic, 0)
		if err != nil {
			t.Fatalf("leader: %v", err)
		}
		defer leader.Close()
		leader.SetDeadline(time.Now().Add(10 * time.Second))
		if _, last, err := leader.ReadOffsets(); err != nil || last != 0 {
			t.Fatalf("after delete: end offset %d, %v", last, err)
		}
	}
}

func TestAGroupMemberJoinsAndCommits(t *testing.T) {
	topic := unique("kgo-group")
	group := unique("kgo-g")
	a := topicWithRecords(t, topic, 4)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           []string{bootstrap()},
		GroupID:           group,
		Topic:             topic,
		HeartbeatInterval: 300 * time.Millisecond,
		SessionTimeout:    10 * time.Second,
		RetentionTime:     24 * time.Hour,
	})
	defer r.Close()
	// A commit waits for the member's generation: JoinGroup, SyncGroup,
	// then OffsetCommit v2 (offset + 1, as kafka-go commits).
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.CommitMessages(ctx, kafka.Message{Topic: topic, Partition: 0, Offset: 2}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	res, err := a.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if b := res.GetBlock(topic, 0); b == nil || b.Err != sarama.ErrNoError || b.Offset != 3 {
		t.Fatalf("committed %+v", b)
	}
	desc, err := a.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 || desc[0].State != "Stable" || len(desc[0].Members) != 1 {
		t.Fatalf("describe group: %v %+v", err, desc)
	}
	for _, m := range desc[0].Members {
		assignment, err := m.GetMemberAssignment()
		if err != nil || len(assignment.Topics[topic]) != 2 {
			t.Fatalf("assignment %+v: %v", assignment, err)
		}
	}
}

func TestRemovedVersionsFailAtOnce(t *testing.T) {
	topic := unique("kgo-old")
	topicWithRecords(t, topic, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leader, err := kafka.DialLeader(ctx, "tcp", bootstrap(), topic, 0)
	if err != nil {
		t.Fatalf("leader: %v", err)
	}
	defer leader.Close()
	leader.SetDeadline(time.Now().Add(10 * time.Second))
	// Produce v2 is answered: UNSUPPORTED_VERSION, as Kafka 4.0 answers it.
	start := time.Now()
	_, err = leader.WriteMessages(kafka.Message{Value: []byte("x")})
	if !errors.Is(err, kafka.UnsupportedVersion) {
		t.Fatalf("produce v2: %v", err)
	}
	// Fetch v2 and CreateTopics v0 are refused by closing the connection
	// (a fresh one: kafka-go 0.2.1 spins reading after an error).
	reader, err := kafka.DialLeader(ctx, "tcp", bootstrap(), topic, 0)
	if err != nil {
		t.Fatalf("leader: %v", err)
	}
	defer reader.Close()
	reader.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := reader.ReadMessage(1024); err == nil {
		t.Fatalf("fetch v2 read a record")
	}
	if err := dial(t).CreateTopics(kafka.TopicConfig{Topic: unique("kgo-new"), NumPartitions: 1, ReplicationFactor: 1}); err == nil {
		t.Fatalf("CreateTopics v0 succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}
