package wire

import (
	"encoding/json"
	"fmt"
)

// AppInfo is what each stream thread of a running application publishes
// about the application in its consumer group membership: the user data
// of its JoinGroup metadata (ConsumerGroupMemberMetadata.UserData), which
// DescribeGroups returns while the group is stable. `stateloop describe`
// and the HTTP API read it from there, so that they know the function
// types, ingresses and egresses of the application that runs, not of a
// configuration file. Anyone who may describe the group can read it: it
// names no endpoint URLs and no other secrets.
//
// It is JSON, an object with "stateloop": 1 (the format's version); any
// other user data is not AppInfo.
//
// It must be the same on every start of an instance thread with the same
// topology: the broker compares a static member's join metadata with the
// one it knew, and only an unchanged one takes its partitions back without
// a rebalance of the group (KIP-345). So it holds nothing that changes
// from one start to the next, such as the time of the start.
type AppInfo struct {
	Stateloop  int             `json:"stateloop"`
	App        string          `json:"app"`
	Instance   string          `json:"instance"`
	Thread     int             `json:"thread"`
	Threads    int             `json:"threads"`
	Partitions int32           `json:"partitions"`
	Functions  []FunctionInfo  `json:"functions"`
	Namespaces []NamespaceInfo `json:"namespaces,omitempty"`
	Ingresses  []IngressInfo   `json:"ingresses,omitempty"`
	Egresses   []EgressInfo    `json:"egresses,omitempty"`
}

// FunctionInfo is a function type of the topology: a Go function with the
// state it declares, or a remote one.
type FunctionInfo struct {
	Type   string      `json:"type"`
	Remote bool        `json:"remote,omitempty"`
	State  []StateInfo `json:"state,omitempty"`
}

// StateInfo is a state value a Go function declares.
type StateInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Expires is "after-write 5m0s", "after-call 1h0m0s" or empty.
	Expires string `json:"expires,omitempty"`
}

// NamespaceInfo is a namespace the application serves as a whole.
type NamespaceInfo struct {
	Namespace string `json:"namespace"`
	Remote    bool   `json:"remote,omitempty"`
}

// IngressInfo is an ingress of the topology.
type IngressInfo struct {
	Topic     string   `json:"topic"`
	ValueType string   `json:"value_type"`
	Targets   []string `json:"targets,omitempty"`
	Router    bool     `json:"router,omitempty"`
}

// EgressInfo is an egress of the topology.
type EgressInfo struct {
	ID       string   `json:"id"`
	Topics   []string `json:"topics,omitempty"`
	AnyTopic bool     `json:"any_topic,omitempty"`
}

// appInfoVersion is the version of AppInfo's format.
const appInfoVersion = 1

// AppendAppInfo appends the encoding of i (with its version set) to b.
func AppendAppInfo(b []byte, i AppInfo) []byte {
	i.Stateloop = appInfoVersion
	j, err := json.Marshal(i)
	if err != nil { // AppInfo has only strings, numbers, bools and times
		panic(fmt.Sprintf("wire: encode app info: %v", err))
	}
	return append(b, j...)
}

// DecodeAppInfo decodes the user data of a group member. It returns false
// for user data that is not AppInfo (nil, or another program's), and an
// error wrapping ErrMalformed for AppInfo that does not decode.
func DecodeAppInfo(b []byte) (AppInfo, bool, error) {
	var probe struct {
		Stateloop int `json:"stateloop"`
	}
	if len(b) == 0 || json.Unmarshal(b, &probe) != nil || probe.Stateloop == 0 {
		return AppInfo{}, false, nil
	}
	var i AppInfo
	if err := json.Unmarshal(b, &i); err != nil {
		return AppInfo{}, true, fmt.Errorf("%w: app info: %w", ErrMalformed, err)
	}
	if i.Stateloop != appInfoVersion {
		return AppInfo{}, true, fmt.Errorf("%w: app info of format %d, this program reads %d: use the stateloop of the application's version", ErrMalformed, i.Stateloop, appInfoVersion)
	}
	return i, true, nil
}
