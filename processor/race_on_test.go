//go:build race

package processor

// raceEnabled: the tests run under the race detector, which makes the
// runtime several times slower; the largest crash tests then run smaller.
const raceEnabled = true
