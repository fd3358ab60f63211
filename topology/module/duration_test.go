package module_test

import (
	"testing"
	"time"

	"github.com/stateloop/stateloop/topology/module"
)

func TestParseDurationAcceptsFlinkFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"10s", 10 * time.Second},
		{"10 s", 10 * time.Second},
		{" 10  S ", 10 * time.Second},
		{"1min", time.Minute},
		{"2m", 2 * time.Minute},
		{"2 minutes", 2 * time.Minute},
		{"1minutes", time.Minute},
		{"10second", 10 * time.Second},
		{"10secs", 10 * time.Second},
		{"1 day", 24 * time.Hour},
		{"3d", 72 * time.Hour},
		{"2 hours", 2 * time.Hour},
		{"100ms", 100 * time.Millisecond},
		{"100 millis", 100 * time.Millisecond},
		{"7µs", 7 * time.Microsecond},
		{"7 micros", 7 * time.Microsecond},
		{"9ns", 9},
		{"9 nanoseconds", 9},
		{"60000", time.Minute},
		{"0", 0},
		{"0s", 0},
	}
	for _, tc := range tests {
		got, err := module.ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseDurationRejectsOtherFormats(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", "  ", "s", "-1s", "+1s", "1.5s", "1h30m", "10 sekunden", "1 mins", "1 hrs", "PT1M",
		"99999999999999999999", // overflows int64
		"106752d",              // overflows time.Duration
	} {
		if got, err := module.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}
