// Package wire is orderly's binary protocol: the connection handshake, the
// length-prefixed frames, the messages and their codecs, and a pipelined
// client connection.
//
// A connection starts with a handshake (magic "ORDL" + uint16 version; the
// server answers with its own magic, version and a status byte). Then both
// sides exchange frames:
//
//	uint32 length | uint8 type | uint64 request_id | payload
//
// big-endian, where length counts type, request_id and payload. Requests are
// pipelined: responses carry the request_id of their request and may come in
// any order.
//
// Decoders never panic: every length is checked before it is used, and a
// malformed payload is an error value. wire imports nothing of orderly's.
package wire
