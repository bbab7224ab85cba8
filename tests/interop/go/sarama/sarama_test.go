// Sarama (Debian's golang-github-shopify-sarama-dev, 1.22) against a
// running `fjord server` (address in $BOOTSTRAP): admin, produce, a
// consumer group whose two members share the partitions, committed offsets.
// Built in GOPATH mode by tests/interop/run.sh.
package sarama_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/Shopify/sarama"
)

func bootstrap() []string {
	if b := os.Getenv("BOOTSTRAP"); b != "" {
		return []string{b}
	}
	return []string{"127.0.0.1:9092"}
}

func unique(prefix string) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// config speaks Kafka 2.1's request versions: sarama's default (0.8.2)
// sends Produce v0 and Fetch v0, which Kafka 4 (and Fjord) no longer serve
// (KIP-896). Offsets are committed as Sarama does by default, with
// OffsetCommit v1 (v2 only with Consumer.Offsets.Retention set): Kafka 4
// dropped v1, Fjord serves it.
func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	c.ClientID = "fjord-interop-sarama"
	c.Net.DialTimeout = 5 * time.Second
	c.Net.ReadTimeout = 10 * time.Second
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	c.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	return c
}

func admin(t *testing.T) sarama.ClusterAdmin {
	a, err := sarama.NewClusterAdmin(bootstrap(), config())
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func createTopic(t *testing.T, a sarama.ClusterAdmin, topic string, partitions int32) {
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}
	if err := a.CreateTopic(topic, detail, false); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

func produce(t *testing.T, topic string, msgs []*sarama.ProducerMessage) {
	c := config()
	c.Producer.Compression = sarama.CompressionSnappy
	p, err := sarama.NewSyncProducer(bootstrap(), c)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// until polls cond until it holds or the deadline passes.
func until(t *testing.T, what string, d time.Duration, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAdminCreatesListsAndDeletesTopics(t *testing.T) {
	a := admin(t)
	topic := unique("sarama-admin")
	createTopic(t, a, topic, 3)
	err := a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	if terr, ok := err.(*sarama.TopicError); !ok || terr.Err != sarama.ErrTopicAlreadyExists {
		t.Fatalf("creating it again: %v", err)
	}
	// ListTopics: metadata, then every topic's configs with DescribeConfigs
	// v0 (which Kafka 4 dropped; Fjord serves it).
	topics, err := a.ListTopics()
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if d, ok := topics[topic]; !ok || d.NumPartitions != 3 || d.ReplicationFactor != 1 {
		t.Fatalf("listed %+v", topics[topic])
	}
	meta, err := a.DescribeTopics([]string{topic})
	if err != nil || len(meta) != 1 || len(meta[0].Partitions) != 3 {
		t.Fatalf("describe: %v %+v", err, meta)
	}
	// AlterConfigs (v0), then DescribeConfigs (v0) and ListTopics see it as
	// a non-default.
	value := "3600000"
	if err := a.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": &value}, false); err != nil {
		t.Fatalf("alter config: %v", err)
	}
	entries, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms", "cleanup.policy"}})
	if err != nil {
		t.Fatalf("describe config: %v", err)
	}
	got := map[string]string{}
	for _, e := range entries {
		got[e.Name] = fmt.Sprintf("%s default=%v", e.Value, e.Default)
	}
	if got["retention.ms"] != "3600000 default=false" || got["cleanup.policy"] != "delete default=true" {
		t.Fatalf("configs %v", got)
	}
	topics, err = a.ListTopics()
	if err != nil || topics[topic].ConfigEntries["retention.ms"] == nil || *topics[topic].ConfigEntries["retention.ms"] != value {
		t.Fatalf("listed configs %v (%v)", topics[topic].ConfigEntries, err)
	}
	if err := a.DeleteTopic(topic); err != nil {
		t.Fatalf("delete: %v", err)
	}
	topics, err = a.ListTopics()
	if _, ok := topics[topic]; err != nil || ok {
		t.Fatalf("still listed after delete (%v)", err)
	}
}

func TestProduceThenConsumeAPartition(t *testing.T) {
	a := admin(t)
	topic := unique("sarama-roundtrip")
	createTopic(t, a, topic, 1)
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 10; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{
			Topic: topic, Partition: 0,
			Key:     sarama.StringEncoder(fmt.Sprintf("k%d", i)),
			Value:   sarama.StringEncoder(fmt.Sprintf("v%d", i)),
			Headers: []sarama.RecordHeader{{Key: []byte("trace"), Value: []byte(fmt.Sprintf("t%d", i))}},
		})
	}
	produce(t, topic, msgs)
	for i, m := range msgs {
		if m.Offset != int64(i) {
			t.Fatalf("message %d at offset %d", i, m.Offset)
		}
	}
	consumer, err := sarama.NewConsumer(bootstrap(), config())
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, 3)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	defer pc.Close()
	for i := 3; i < 10; i++ {
		select {
		case m := <-pc.Messages():
			got := fmt.Sprintf("%d %s=%s %s=%s", m.Offset, m.Key, m.Value, m.Headers[0].Key, m.Headers[0].Value)
			want := fmt.Sprintf("%d k%d=v%d trace=t%d", i, i, i, i)
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case err := <-pc.Errors():
			t.Fatalf("consume: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("no record %d", i)
		}
	}
}

// member is one consumer-group member's handler: what it was assigned and
// what it read.
type member struct {
	mu       sync.Mutex
	assigned []int32
	got      map[string]int32 // value -> partition
}

func (m *member) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.assigned = nil
	for _, ps := range s.Claims() {
		m.assigned = append(m.assigned, ps...)
	}
	return nil
}
func (m *member) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (m *member) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		m.mu.Lock()
		m.got[string(msg.Value)] = msg.Partition
		m.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}
func (m *member) snapshot() ([]int32, map[string]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	got := map[string]int32{}
	for k, v := range m.got {
		got[k] = v
	}
	return append([]int32(nil), m.assigned...), got
}

func TestTwoGroupMembersShareThePartitionsAndCommit(t *testing.T) {
	a := admin(t)
	topic := unique("sarama-group")
	group := unique("sarama-g")
	createTopic(t, a, topic, 4)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	members := []*member{{got: map[string]int32{}}, {got: map[string]int32{}}}
	var groups []sarama.ConsumerGroup
	for _, m := range members {
		g, err := sarama.NewConsumerGroup(bootstrap(), group, config())
		if err != nil {
			t.Fatalf("group: %v", err)
		}
		groups = append(groups, g)
		wg.Add(1)
		go func(m *member) {
			defer wg.Done()
			// Consume returns at each rebalance; a member rejoins until cancelled.
			for ctx.Err() == nil {
				if err := g.Consume(ctx, []string{topic}, m); err != nil && ctx.Err() == nil {
					t.Errorf("consume: %v", err)
					return
				}
			}
		}(m)
	}
	defer func() {
		cancel()
		for _, g := range groups {
			g.Close()
		}
		wg.Wait()
	}()

	until(t, "both members holding two partitions", 20*time.Second, func() bool {
		a0, _ := members[0].snapshot()
		a1, _ := members[1].snapshot()
		return len(a0) == 2 && len(a1) == 2
	})
	a0, _ := members[0].snapshot()
	a1, _ := members[1].snapshot()
	all := append(append([]int32(nil), a0...), a1...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if fmt.Sprint(all) != "[0 1 2 3]" {
		t.Fatalf("assignments %v and %v", a0, a1)
	}

	var msgs []*sarama.ProducerMessage
	for p := int32(0); p < 4; p++ {
		for i := 0; i < 5; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{
				Topic: topic, Partition: p, Value: sarama.StringEncoder(fmt.Sprintf("p%d-%d", p, i)),
			})
		}
	}
	produce(t, topic, msgs)
	until(t, "every record consumed", 20*time.Second, func() bool {
		_, g0 := members[0].snapshot()
		_, g1 := members[1].snapshot()
		return len(g0)+len(g1) == len(msgs)
	})
	for _, m := range members {
		assigned, got := m.snapshot()
		for v, p := range got {
			if fmt.Sprint(assigned) == "" || !contains(assigned, p) {
				t.Fatalf("%s read from partition %d, assigned %v", v, p, assigned)
			}
		}
	}
	// The marked offsets are committed (every 100 ms): 5 on each partition.
	until(t, "offsets committed", 10*time.Second, func() bool {
		res, err := a.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2, 3}})
		if err != nil {
			return false
		}
		for p := int32(0); p < 4; p++ {
			b := res.GetBlock(topic, p)
			if b == nil || b.Err != sarama.ErrNoError || b.Offset != 5 {
				return false
			}
		}
		return true
	})
	groupsListed, err := a.ListConsumerGroups()
	if err != nil || groupsListed[group] != "consumer" {
		t.Fatalf("list groups: %v %v", err, groupsListed)
	}
	desc, err := a.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 || desc[0].State != "Stable" || len(desc[0].Members) != 2 {
		t.Fatalf("describe group: %v %+v", err, desc)
	}
}

func contains(s []int32, x int32) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
