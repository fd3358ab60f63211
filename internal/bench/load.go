package bench

import (
	"os"
	"strconv"
	"strings"
)

// loadAverage returns the machine's 1-minute load average from
// /proc/loadavg, -1 where there is none.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return -1
	}
	return v
}

// loadText formats a load average, "unknown" if it is negative.
func loadText(l float64) string {
	if l < 0 {
		return "unknown"
	}
	return strconv.FormatFloat(l, 'f', 2, 64)
}
