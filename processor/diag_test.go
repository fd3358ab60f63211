package processor

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/wire"
)

// traceSeq reports, for diagnosis, every committed loop record of a
// sequence number in the cycle application.
func traceSeqs(t testing.TB, client sarama.Client, topic string, seqs map[int]bool) string {
	var lines []string
	for _, r := range readTopic(t, client, topic) {
		env, err := wire.DecodeEnvelope(r.Value)
		if err != nil {
			continue
		}
		h, err := hopType.As(env.Argument)
		if err != nil || !seqs[h.Seq] {
			continue
		}
		lines = append(lines, fmt.Sprintf("seq %d hops %d to %s at %d/%d", h.Seq, h.Hops, env.Target, r.Partition, r.Offset))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func missingSeqs(t testing.TB, client sarama.Client, topic string, total int) map[int]bool {
	seen := map[string]int{}
	for _, r := range readTopic(t, client, topic) {
		seen[string(r.Value)]++
	}
	miss := map[int]bool{}
	for seq := 0; seq < total; seq++ {
		if seen[strconv.Itoa(seq)] == 0 && len(miss) < 5 {
			miss[seq] = true
		}
	}
	return miss
}
