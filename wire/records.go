package wire

import "fmt"

// CustomerRecord is the state of one customer. LastOrder is NoOrder and
// LastLaptopType -1 for a customer with no order yet.
type CustomerRecord struct {
	CustomerID     int32
	LastOrder      int32
	OrderCount     uint64
	LastLaptopType int8
	LastIndex      uint64 // Raft index of the customer's last order
}

// RecordSize is the encoded size of one CustomerRecord.
const RecordSize = 4 + 4 + 8 + 1 + 8

func (r CustomerRecord) appendTo(dst []byte) []byte {
	dst = appendI32(dst, r.CustomerID)
	dst = appendI32(dst, r.LastOrder)
	dst = appendU64(dst, r.OrderCount)
	dst = append(dst, uint8(r.LastLaptopType))
	return appendU64(dst, r.LastIndex)
}

func (d *decoder) record() CustomerRecord {
	return CustomerRecord{CustomerID: d.i32(), LastOrder: d.i32(), OrderCount: d.u64(),
		LastLaptopType: int8(d.u8()), LastIndex: d.u64()}
}

// Record answers a Get. ReadIndex is the node's applied index when it read
// the record: a session client keeps the highest one it has seen.
type Record struct {
	CustomerRecord
	ReadIndex uint64
}

func (Record) Type() Type { return TypeRecord }

func (r Record) AppendTo(dst []byte) []byte {
	return appendU64(r.CustomerRecord.appendTo(dst), r.ReadIndex)
}

// DecodeRecord decodes a Record payload.
func DecodeRecord(b []byte) (Record, error) {
	d := decoder{b: b}
	r := Record{CustomerRecord: d.record(), ReadIndex: d.u64()}
	return r, d.finish("Record")
}

// Scan reads up to Limit records with customer id >= From, in id order.
type Scan struct {
	From        int32
	Limit       uint32
	Consistency Consistency
	MinIndex    uint64
}

// MaxScanLimit bounds one page so that a reply always fits in a frame.
const MaxScanLimit = 10000

// Validate reports a field a server must refuse.
func (s Scan) Validate() error {
	switch {
	case s.From < 0:
		return fmt.Errorf("scan start %d is negative", s.From)
	case s.Limit == 0 || s.Limit > MaxScanLimit:
		return fmt.Errorf("scan limit %d out of range 1..%d", s.Limit, MaxScanLimit)
	}
	return validConsistency(s.Consistency)
}

func (Scan) Type() Type { return TypeScan }

func (s Scan) AppendTo(dst []byte) []byte {
	dst = appendI32(dst, s.From)
	dst = appendI32(dst, int32(s.Limit))
	dst = append(dst, uint8(s.Consistency))
	return appendU64(dst, s.MinIndex)
}

// DecodeScan decodes a Scan payload.
func DecodeScan(b []byte) (Scan, error) {
	d := decoder{b: b}
	s := Scan{From: d.i32(), Limit: d.u32(), Consistency: Consistency(d.u8()), MinIndex: d.u64()}
	return s, d.finish("Scan")
}

// Records answers a Scan. Next is the id to continue from, or -1 at the end.
type Records struct {
	ReadIndex uint64
	Next      int32
	Records   []CustomerRecord
}

func (Records) Type() Type { return TypeRecords }

func (r Records) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, r.ReadIndex)
	dst = appendI32(dst, r.Next)
	dst = appendI32(dst, int32(len(r.Records)))
	for _, rec := range r.Records {
		dst = rec.appendTo(dst)
	}
	return dst
}

// DecodeRecords decodes a Records payload.
func DecodeRecords(b []byte) (Records, error) {
	d := decoder{b: b}
	r := Records{ReadIndex: d.u64(), Next: d.i32()}
	n := d.u32()
	// Check the count against what is left before allocating for it.
	if d.err == nil && uint64(n)*RecordSize > uint64(len(d.b)) {
		d.err = ErrShortPayload
	}
	if d.err == nil && n > 0 {
		r.Records = make([]CustomerRecord, 0, n)
		for i := uint32(0); i < n; i++ {
			r.Records = append(r.Records, d.record())
		}
	}
	return r, d.finish("Records")
}
