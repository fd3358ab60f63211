package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// kfake keeps each partition in segment files under
// <data dir>/partitions/<topic>-<partition>/: <base offset>.dat holds the
// record batches as Kafka writes them on the wire, <base offset>.idx one
// fixed-size entry per batch, in the same order, that among other things
// says whether the batch belongs to a transaction. It writes a batch to
// the .dat file and then its entry to the .idx file. A kill between the
// two leaves a batch without an entry; kfake then reads that batch as not
// transactional (visible at once, even if its transaction is aborted),
// and every entry it appends after it is read for the batch before:
// transactional batches become visible, markers become data. In the
// kill-tree crash test that showed as hundreds of duplicates.
//
// repairSegments, run before kfake loads a data directory, removes such a
// batch from the end of the partition's last segment. Nobody has seen it:
// kfake answers a produce request after both writes. If it was a
// transaction's marker, the transaction is closed again at start-up (see
// guardTransactions); a producer sends a record batch again when it gets
// no answer.

// kfakeIndexEntrySize is the size of one .idx entry (kfake's layout).
const kfakeIndexEntrySize = 15

// repairSegments removes from the end of every partition's last segment
// the record batches that have no index entry.
func repairSegments(dataDir string, logger *slog.Logger) error {
	parts, err := filepath.Glob(filepath.Join(dataDir, "partitions", "*"))
	if err != nil {
		return err
	}
	for _, dir := range parts {
		dat, err := lastSegment(dir)
		if err != nil || dat == "" {
			if err != nil {
				return err
			}
			continue
		}
		idx, err := os.Stat(strings.TrimSuffix(dat, ".dat") + ".idx")
		indexed := int64(0)
		switch {
		case err == nil:
			indexed = idx.Size() / kfakeIndexEntrySize
		case !errors.Is(err, os.ErrNotExist):
			return err
		}
		raw, err := os.ReadFile(dat)
		if err != nil {
			return err
		}
		// the byte offset of each complete batch's end
		var ends []int64
		for pos := int64(0); pos+12 <= int64(len(raw)); {
			n := int64(binary.BigEndian.Uint32(raw[pos+8 : pos+12]))
			if n <= 0 || pos+12+n > int64(len(raw)) {
				break
			}
			pos += 12 + n
			ends = append(ends, pos)
		}
		if int64(len(ends)) <= indexed {
			continue
		}
		keep := int64(0)
		if indexed > 0 {
			keep = ends[indexed-1]
		}
		logger.Warn("embedded: removing record batches the broker wrote without their index entry when it was killed",
			"segment", dat, "batches", int64(len(ends))-indexed, "bytes", int64(len(raw))-keep)
		if err := os.Truncate(dat, keep); err != nil {
			return fmt.Errorf("repair %s: %w", dat, err)
		}
	}
	return nil
}

// lastSegment returns the .dat file with the highest base offset in dir,
// or "" if there is none.
func lastSegment(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	best, last := int64(-1), ""
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".dat")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(base, 10, 64)
		if err == nil && n > best {
			best, last = n, filepath.Join(dir, e.Name())
		}
	}
	return last, nil
}
