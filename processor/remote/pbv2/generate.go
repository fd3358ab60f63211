// Package pbv2 holds the Go types of StateFun 2.x's remote request-reply
// protocol, generated from request_reply.proto in this directory.
//
// request_reply.pb.go is generated and committed; building and testing need
// no code generator. To regenerate it after changing the .proto file,
// install the two tools as package pb says (protoc and protoc-gen-go of
// the version in go.mod), then run go generate ./processor/remote/pbv2
// from the repository root.
//
// The proto package is stateloop.remote.reqreply.v2; see the comment at
// the top of the .proto file. protoc runs from the repository root so that
// the file registers under the unique path
// processor/remote/pbv2/request_reply.proto.
package pbv2

//go:generate sh -c "cd ../../.. && protoc --proto_path=. --proto_path=/usr/include --go_out=. --go_opt=paths=source_relative processor/remote/pbv2/request_reply.proto"
