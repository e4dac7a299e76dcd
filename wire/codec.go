package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrShortPayload means a payload ended before all of a message's fields.
var ErrShortPayload = errors.New("wire: payload too short")

// ErrTrailingBytes means a payload had bytes after the last field.
var ErrTrailingBytes = errors.New("wire: trailing bytes after message")

// maxString is the longest string a message may carry (uint16 prefix).
const maxString = 1<<16 - 1

// decoder reads big-endian fields from a payload and remembers the first
// error, so a message decoder is a straight list of reads and one check.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = ErrShortPayload
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) i32() int32 { return int32(d.u32()) }

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) str() string {
	n := int(d.u16())
	if b := d.take(n); b != nil {
		return string(b)
	}
	return ""
}

// finish returns the first error, or ErrTrailingBytes if input is left over.
func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrTrailingBytes
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", what, d.err)
	}
	return nil
}

func appendI32(dst []byte, v int32) []byte { return binary.BigEndian.AppendUint32(dst, uint32(v)) }

func appendU16(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }

func appendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// appendStr appends a uint16-prefixed string, cutting it at maxString bytes
// so an encoder can never produce a frame its own decoder rejects.
func appendStr(dst []byte, s string) []byte {
	if len(s) > maxString {
		s = s[:maxString]
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}
