package module

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// durationUnits are the unit labels of Flink's TimeUtils.parseDuration as
// used by StateFun 3.3 (Flink 1.16): a singular label, its plural with an
// "s" where Flink has one, and "m" for minutes (added in Flink 1.15).
var durationUnits = map[string]time.Duration{
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"min": time.Minute, "m": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"µs": time.Microsecond, "micro": time.Microsecond, "micros": time.Microsecond, "microsecond": time.Microsecond, "microseconds": time.Microsecond,
	"ns": time.Nanosecond, "nano": time.Nanosecond, "nanos": time.Nanosecond, "nanosecond": time.Nanosecond, "nanoseconds": time.Nanosecond,
}

// durationFormat describes the accepted format in messages.
const durationFormat = `a duration like "10s", "10 s", "2m", "1min", "2 minutes", "100ms" or "1 day" (a bare number is milliseconds)`

// ParseDuration parses a duration as StateFun does (Flink's
// TimeUtils.parseDuration): a non-negative whole number, optional white
// space, and an optional unit label (case-insensitive): d, day(s); h,
// hour(s); m, min, minute(s); s, sec(s), second(s); ms, milli(s),
// millisecond(s); µs, micro(s), microsecond(s); ns, nano(s),
// nanosecond(s). Without a unit the number is milliseconds. There are no
// fractions, signs or compound forms like "1h30m".
//
// It returns an error for any other text and for durations that do not fit
// a time.Duration (about 292 years).
func ParseDuration(s string) (time.Duration, error) {
	t := trimJava(s)
	if t == "" {
		return 0, errors.New("empty duration")
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("duration %q does not start with a number", s)
	}
	v, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("duration %q: number out of range", s)
	}
	label := lowerASCII(trimJava(t[i:]))
	unit := time.Millisecond
	if label != "" {
		u, ok := durationUnits[label]
		if !ok {
			return 0, fmt.Errorf("duration %q: unknown unit %q", s, label)
		}
		unit = u
	}
	if v > math.MaxInt64/int64(unit) {
		return 0, fmt.Errorf("duration %q is too long (at most about 292 years)", s)
	}
	return time.Duration(v) * unit, nil
}

// trimJava trims like Java's String.trim: every character up to and
// including the space, at both ends.
func trimJava(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}

// lowerASCII lowers A-Z only; Flink lowers with Locale.US, and every unit
// label is ASCII apart from "µs", whose µ is already lower case.
func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
