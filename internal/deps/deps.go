// Package deps pins module dependencies that no package imports yet, so
// go mod tidy keeps them while the code that uses them is being written.
package deps

import (
	_ "github.com/IBM/sarama"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/spf13/cobra"
	_ "github.com/syndtr/goleveldb/leveldb"
	_ "github.com/twmb/franz-go/pkg/kfake"
)
