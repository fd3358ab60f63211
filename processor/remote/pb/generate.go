// Package pb holds the Go types of StateFun's remote request-reply
// protocol, generated from request_reply.proto in this directory.
//
// request_reply.pb.go is generated and committed; building and testing need
// no code generator. To regenerate it after changing the .proto file,
// install the two tools once:
//
//	apt-get update && apt-get install -y protobuf-compiler
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//
// (the protoc-gen-go version must match google.golang.org/protobuf in
// go.mod), then run go generate ./processor/remote/pb from the repository
// root.
//
// The proto package is stateloop.remote.reqreply, not StateFun's
// io.statefun.sdk.reqreply: see the comment at the top of the .proto file
// for why that keeps the wire format identical and avoids a protobuf
// registry conflict with the official StateFun Go SDK. protoc runs from the
// repository root so that the file registers under the unique path
// processor/remote/pb/request_reply.proto.
package pb

//go:generate sh -c "cd ../../.. && protoc --proto_path=. --go_out=. --go_opt=paths=source_relative processor/remote/pb/request_reply.proto"
