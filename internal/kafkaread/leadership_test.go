package kafkaread

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
)

// TestEndsAsksAgainAfterAFailedDial: sarama answers ErrNotConnected after
// a failed dial and dials again on the next use of the broker, so Ends
// and WaitReady ask again rather than fail a recovery (seen once in CI on
// a fresh client's first ListOffsets); other errors still end them.
func TestEndsAsksAgainAfterAFailedDial(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{sarama.ErrNotConnected, true},
		{fmt.Errorf("list offsets: %w", sarama.ErrNotConnected), true},
		{sarama.ErrNotLeaderForPartition, true},
		{sarama.ErrTopicAuthorizationFailed, false},
		{fmt.Errorf("some other failure"), false},
	} {
		if got := leadershipError(c.err); got != c.want {
			t.Errorf("leadershipError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
