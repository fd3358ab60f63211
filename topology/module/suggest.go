package module

import "strings"

// suggest returns the candidate closest to s when it is close enough to be
// a typo: the same name in another case, or at most a third of its letters
// (at least one, at most three) added, removed or changed. It returns ""
// otherwise.
func suggest(s string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		if strings.EqualFold(s, c) {
			return c
		}
		limit := min(max(len(c)/3, 1), 3)
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if d <= limit && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b)) // not a typo of a key name
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
