package smoke

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stateloop/stateloop/codec"
)

// The messages of StateFun's smoke test (commands.proto of
// statefun-smoke-e2e-common, package org.apache.flink.statefun.e2e.smoke),
// encoded by hand with protowire. The field numbers are upstream's, so the
// SDK smoke functions of StateFun read what the driver writes and the other
// way round.
//
// Encoding follows proto3: scalar fields with their zero value and empty
// message fields are not written; a command is always written, even when
// empty, because its oneof case is its meaning. Decoding skips unknown
// fields; a known field with the wrong wire type is an error. When a oneof
// or a scalar field occurs twice the last one wins (protobuf would merge two
// occurrences of a message field; the driver never writes them).

// Field numbers of commands.proto.
const (
	fieldSourceTarget   protowire.Number = 1 // SourceCommand.target
	fieldSourceCommands protowire.Number = 2 // SourceCommand.commands

	fieldCommandsCommand protowire.Number = 1 // Commands.command (repeated)

	fieldIncrement       protowire.Number = 1 // Command.increment
	fieldSend            protowire.Number = 2 // Command.send
	fieldSendAfter       protowire.Number = 3 // Command.send_after
	fieldSendEgress      protowire.Number = 4 // Command.send_egress
	fieldAsyncOperation  protowire.Number = 5 // Command.async_operation
	fieldVerify          protowire.Number = 6 // Command.verify
	fieldCancelSendAfter protowire.Number = 7 // Command.cancel_send_after

	fieldTarget   protowire.Number = 1 // Send, SendAfter, CancelSendAfter .target
	fieldCommands protowire.Number = 2 // Send, SendAfter .commands
	fieldToken    protowire.Number = 3 // SendAfter.cancellation_token
	fieldCancelTk protowire.Number = 2 // CancelSendAfter.cancellation_token

	fieldFailure          protowire.Number = 1 // AsyncOperation.failure
	fieldResolvedCommands protowire.Number = 2 // AsyncOperation.resolved_commands

	fieldExpected protowire.Number = 1 // Verify.expected

	fieldResultID       protowire.Number = 1 // VerificationResult.id
	fieldResultExpected protowire.Number = 2 // VerificationResult.expected
	fieldResultActual   protowire.Number = 3 // VerificationResult.actual
)

// maxNesting bounds how deeply Commands may nest in a decoded message, so
// that hostile bytes cannot exhaust the stack. Generated commands nest at
// most [MaxDepth] deep.
const maxNesting = 100

// SourceCommand is what the driver writes to the commands topic: commands
// for the function with id Target (the record key is the same id).
type SourceCommand struct {
	Target   int32
	Commands Commands
}

// Commands is a list of commands run in order; it is also the message that
// one function sends another (type statefun.smoke.e2e/commands).
type Commands []Command

// Command is one command: exactly one of [Increment], [Send],
// [SendAfter], [SendEgress], [AsyncOperation], [Verify] and
// [CancelSendAfter] (the oneof of upstream's Command message). A nil
// Command is a command with no case set; it is encoded as an empty message
// and does nothing.
type Command interface {
	// field returns the command's field number in the oneof.
	field() protowire.Number
	// appendTo appends the command's own message (without tag and length).
	appendTo(b []byte) []byte
}

// Increment adds one to the state of the function that runs it.
type Increment struct{}

// Send sends Commands to the function with id Target.
type Send struct {
	Target   int32
	Commands Commands
}

// SendAfter sends Commands to the function with id Target after a delay,
// cancellable with CancellationToken when it is not empty. The proto has no
// delay: each interpreter picks its own (upstream's Go interpreter 0, the JS
// one 1 s, stateloop's a random one up to Config.MaxDelay).
type SendAfter struct {
	Target            int32
	Commands          Commands
	CancellationToken string
}

// SendEgress writes a record to the discard egress.
type SendEgress struct{}

// AsyncOperation runs ResolvedCommands after an asynchronous operation that
// fails or succeeds (Failure); either way the commands run. The runtime has
// no asynchronous operations.
type AsyncOperation struct {
	Failure          bool
	ResolvedCommands Commands
}

// Verify asks the function to report its state together with Expected on
// the verification egress.
type Verify struct {
	Expected int64
}

// CancelSendAfter cancels the delayed message with CancellationToken sent to
// the function with id Target. Tokens belong to the sender, so it cancels
// only a message that the function running it sent; Target says where that
// message was going.
type CancelSendAfter struct {
	Target            int32
	CancellationToken string
}

// VerificationResult is what a function writes on the verification egress
// in answer to [Verify]: its id, the expected count it was sent and its
// actual count.
type VerificationResult struct {
	ID       int32
	Expected int64
	Actual   int64
}

func (Increment) field() protowire.Number       { return fieldIncrement }
func (Send) field() protowire.Number            { return fieldSend }
func (SendAfter) field() protowire.Number       { return fieldSendAfter }
func (SendEgress) field() protowire.Number      { return fieldSendEgress }
func (AsyncOperation) field() protowire.Number  { return fieldAsyncOperation }
func (Verify) field() protowire.Number          { return fieldVerify }
func (CancelSendAfter) field() protowire.Number { return fieldCancelSendAfter }

func (Increment) appendTo(b []byte) []byte  { return b }
func (SendEgress) appendTo(b []byte) []byte { return b }

func (c Send) appendTo(b []byte) []byte {
	b = appendInt32(b, fieldTarget, c.Target)
	return appendCommands(b, fieldCommands, c.Commands)
}

func (c SendAfter) appendTo(b []byte) []byte {
	b = appendInt32(b, fieldTarget, c.Target)
	b = appendCommands(b, fieldCommands, c.Commands)
	return appendString(b, fieldToken, c.CancellationToken)
}

func (c AsyncOperation) appendTo(b []byte) []byte {
	if c.Failure {
		b = protowire.AppendTag(b, fieldFailure, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return appendCommands(b, fieldResolvedCommands, c.ResolvedCommands)
}

func (c Verify) appendTo(b []byte) []byte { return appendInt64(b, fieldExpected, c.Expected) }

func (c CancelSendAfter) appendTo(b []byte) []byte {
	b = appendInt32(b, fieldTarget, c.Target)
	return appendString(b, fieldCancelTk, c.CancellationToken)
}

// Marshal returns the protobuf encoding of s.
func (s SourceCommand) Marshal() []byte {
	b := appendInt32(nil, fieldSourceTarget, s.Target)
	return appendCommands(b, fieldSourceCommands, s.Commands)
}

// Marshal returns the protobuf encoding of the Commands message.
func (cs Commands) Marshal() []byte { return cs.appendTo(nil) }

func (cs Commands) appendTo(b []byte) []byte {
	for _, c := range cs {
		b = appendCommand(b, c)
	}
	return b
}

// Marshal returns the protobuf encoding of r.
func (r VerificationResult) Marshal() []byte {
	b := appendInt32(nil, fieldResultID, r.ID)
	b = appendInt64(b, fieldResultExpected, r.Expected)
	return appendInt64(b, fieldResultActual, r.Actual)
}

// appendCommand appends c as one element of Commands.command.
func appendCommand(b []byte, c Command) []byte {
	var body []byte
	if c != nil {
		body = protowire.AppendTag(body, c.field(), protowire.BytesType)
		body = protowire.AppendBytes(body, c.appendTo(nil))
	}
	b = protowire.AppendTag(b, fieldCommandsCommand, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

// appendCommands appends cs as a Commands message field, unless it is
// empty.
func appendCommands(b []byte, num protowire.Number, cs Commands) []byte {
	if len(cs) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, cs.appendTo(nil))
}

func appendInt32(b []byte, num protowire.Number, v int32) []byte {
	return appendInt64(b, num, int64(v)) // proto sign-extends int32 to 64 bits
}

func appendInt64(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// UnmarshalSourceCommand decodes a SourceCommand. Malformed bytes give an
// error wrapping [codec.ErrCorrupt].
func UnmarshalSourceCommand(b []byte) (SourceCommand, error) {
	var s SourceCommand
	err := fields(b, func(f field) error {
		switch f.num {
		case fieldSourceTarget:
			v, err := f.varint("source command target")
			s.Target = int32(v)
			return err
		case fieldSourceCommands:
			if err := f.bytes("source command commands"); err != nil {
				return err
			}
			cs, err := decodeCommands(f.b, 1)
			s.Commands = cs
			return err
		}
		return nil
	})
	if err != nil {
		return SourceCommand{}, corrupt("source command", err)
	}
	return s, nil
}

// UnmarshalCommands decodes a Commands message. Malformed bytes give an
// error wrapping [codec.ErrCorrupt].
func UnmarshalCommands(b []byte) (Commands, error) {
	cs, err := decodeCommands(b, 0)
	if err != nil {
		return nil, corrupt("commands", err)
	}
	return cs, nil
}

// UnmarshalVerificationResult decodes a VerificationResult. Malformed
// bytes give an error wrapping [codec.ErrCorrupt].
func UnmarshalVerificationResult(b []byte) (VerificationResult, error) {
	var r VerificationResult
	err := fields(b, func(f field) error {
		var err error
		var v uint64
		switch f.num {
		case fieldResultID:
			v, err = f.varint("verification result id")
			r.ID = int32(v)
		case fieldResultExpected:
			v, err = f.varint("verification result expected")
			r.Expected = int64(v)
		case fieldResultActual:
			v, err = f.varint("verification result actual")
			r.Actual = int64(v)
		}
		return err
	})
	if err != nil {
		return VerificationResult{}, corrupt("verification result", err)
	}
	return r, nil
}

func corrupt(what string, err error) error {
	return fmt.Errorf("%w: smoke: decode %s: %w", codec.ErrCorrupt, what, err)
}

// decodeCommands decodes a Commands message found at nesting level depth.
func decodeCommands(b []byte, depth int) (Commands, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("commands nested more than %d deep", maxNesting)
	}
	var cs Commands
	err := fields(b, func(f field) error {
		if f.num != fieldCommandsCommand {
			return nil
		}
		if err := f.bytes("command"); err != nil {
			return err
		}
		c, err := decodeCommand(f.b, depth)
		cs = append(cs, c)
		return err
	})
	return cs, err
}

// decodeCommand decodes one Command message; nil if no case is set.
func decodeCommand(b []byte, depth int) (Command, error) {
	var c Command
	err := fields(b, func(f field) error {
		if f.num < fieldIncrement || f.num > fieldCancelSendAfter {
			return nil
		}
		if err := f.bytes("command case"); err != nil {
			return err
		}
		var err error
		switch f.num {
		case fieldIncrement:
			c = Increment{}
		case fieldSend:
			c, err = decodeSend(f.b, depth)
		case fieldSendAfter:
			c, err = decodeSendAfter(f.b, depth)
		case fieldSendEgress:
			c = SendEgress{}
		case fieldAsyncOperation:
			c, err = decodeAsyncOperation(f.b, depth)
		case fieldVerify:
			c, err = decodeVerify(f.b)
		case fieldCancelSendAfter:
			c, err = decodeCancelSendAfter(f.b)
		}
		return err
	})
	return c, err
}

func decodeSend(b []byte, depth int) (Send, error) {
	var s Send
	err := fields(b, func(f field) error {
		switch f.num {
		case fieldTarget:
			v, err := f.varint("send target")
			s.Target = int32(v)
			return err
		case fieldCommands:
			if err := f.bytes("send commands"); err != nil {
				return err
			}
			cs, err := decodeCommands(f.b, depth+1)
			s.Commands = cs
			return err
		}
		return nil
	})
	return s, err
}

func decodeSendAfter(b []byte, depth int) (SendAfter, error) {
	var s SendAfter
	err := fields(b, func(f field) error {
		switch f.num {
		case fieldTarget:
			v, err := f.varint("send after target")
			s.Target = int32(v)
			return err
		case fieldCommands:
			if err := f.bytes("send after commands"); err != nil {
				return err
			}
			cs, err := decodeCommands(f.b, depth+1)
			s.Commands = cs
			return err
		case fieldToken:
			t, err := f.str("send after cancellation token")
			s.CancellationToken = t
			return err
		}
		return nil
	})
	return s, err
}

func decodeAsyncOperation(b []byte, depth int) (AsyncOperation, error) {
	var a AsyncOperation
	err := fields(b, func(f field) error {
		switch f.num {
		case fieldFailure:
			v, err := f.varint("async operation failure")
			a.Failure = v != 0
			return err
		case fieldResolvedCommands:
			if err := f.bytes("async operation resolved commands"); err != nil {
				return err
			}
			cs, err := decodeCommands(f.b, depth+1)
			a.ResolvedCommands = cs
			return err
		}
		return nil
	})
	return a, err
}

func decodeVerify(b []byte) (Verify, error) {
	var v Verify
	err := fields(b, func(f field) error {
		if f.num != fieldExpected {
			return nil
		}
		x, err := f.varint("verify expected")
		v.Expected = int64(x)
		return err
	})
	return v, err
}

func decodeCancelSendAfter(b []byte) (CancelSendAfter, error) {
	var c CancelSendAfter
	err := fields(b, func(f field) error {
		switch f.num {
		case fieldTarget:
			v, err := f.varint("cancel send after target")
			c.Target = int32(v)
			return err
		case fieldCancelTk:
			t, err := f.str("cancel send after cancellation token")
			c.CancellationToken = t
			return err
		}
		return nil
	})
	return c, err
}

// field is one decoded field of a message: a varint in v, or a
// length-delimited value in b.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

func (f field) varint(what string) (uint64, error) {
	if f.typ != protowire.VarintType {
		return 0, fmt.Errorf("%s: wire type %d, want varint", what, f.typ)
	}
	return f.v, nil
}

// str returns a string field; like protobuf for proto3 strings, it
// rejects invalid UTF-8.
func (f field) str(what string) (string, error) {
	if err := f.bytes(what); err != nil {
		return "", err
	}
	if !utf8.Valid(f.b) {
		return "", fmt.Errorf("%s: invalid utf-8", what)
	}
	return string(f.b), nil
}

func (f field) bytes(what string) error {
	if f.typ != protowire.BytesType {
		return fmt.Errorf("%s: wire type %d, want length-delimited", what, f.typ)
	}
	return nil
}

// fields calls fn for every field of the message b, in order. Fields other
// than varints and length-delimited ones are skipped.
func fields(b []byte, fn func(field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if num > protowire.MaxValidNumber { // ConsumeTag checks only the lower bound
			return errors.New("field number out of range")
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// The codecs of the smoke message types, for [functions.NewType].

type sourceCommandCodec struct{}

func (sourceCommandCodec) Encode(s SourceCommand) ([]byte, error) { return s.Marshal(), nil }
func (sourceCommandCodec) Decode(b []byte) (SourceCommand, error) { return UnmarshalSourceCommand(b) }

type commandsCodec struct{}

func (commandsCodec) Encode(cs Commands) ([]byte, error) { return cs.Marshal(), nil }
func (commandsCodec) Decode(b []byte) (Commands, error)  { return UnmarshalCommands(b) }

type verificationResultCodec struct{}

func (verificationResultCodec) Encode(r VerificationResult) ([]byte, error) { return r.Marshal(), nil }
func (verificationResultCodec) Decode(b []byte) (VerificationResult, error) {
	return UnmarshalVerificationResult(b)
}
