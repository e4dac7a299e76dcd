package wire

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// -update-corpus rewrites testdata/fuzz from samples(); the files are
// checked in and run by plain `go test` as unit tests.
var updateCorpus = flag.Bool("update-corpus", false, "write the fuzz seed corpus to testdata/fuzz")

// fuzzDecoder checks a decoder's contract on any input: no panic, and a
// payload it accepts re-encodes to the same bytes.
func fuzzDecoder(f *testing.F, t Type) {
	for _, m := range samples() {
		if m.Type() == t {
			f.Add(m.AppendTo(nil))
		}
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	if *updateCorpus {
		writeCorpus(f, f.Name())
	}
	f.Fuzz(func(tt *testing.T, b []byte) {
		m, err := Decode(t, b)
		if err != nil {
			return
		}
		again, err := Decode(t, m.AppendTo(nil))
		if err != nil {
			tt.Fatalf("re-decode of an accepted %s: %v", t, err)
		}
		if !reflect.DeepEqual(m, again) {
			tt.Fatalf("%s does not survive a round trip: %#v vs %#v", t, m, again)
		}
	})
}

func writeCorpus(f *testing.F, name string) {
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.RemoveAll(dir); err != nil { // drop samples of older formats
		f.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	for i, m := range samples() {
		for _, b := range [][]byte{m.AppendTo(nil), AppendFrame(nil, 1, m)} {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d-%d", i, len(b))), []byte(body), 0o644); err != nil {
				f.Fatal(err)
			}
		}
	}
}

func FuzzDecodeOrder(f *testing.F)          { fuzzDecoder(f, TypeOrder) }
func FuzzDecodeLaptopInfo(f *testing.F)     { fuzzDecoder(f, TypeLaptopInfo) }
func FuzzDecodeGet(f *testing.F)            { fuzzDecoder(f, TypeGet) }
func FuzzDecodeRecord(f *testing.F)         { fuzzDecoder(f, TypeRecord) }
func FuzzDecodeScan(f *testing.F)           { fuzzDecoder(f, TypeScan) }
func FuzzDecodeRecords(f *testing.F)        { fuzzDecoder(f, TypeRecords) }
func FuzzDecodeStatusInfo(f *testing.F)     { fuzzDecoder(f, TypeStatusInfo) }
func FuzzDecodeReadIndexReply(f *testing.F) { fuzzDecoder(f, TypeReadIndexReply) }
func FuzzDecodeMemberList(f *testing.F)     { fuzzDecoder(f, TypeMemberList) }
func FuzzDecodeAddMember(f *testing.F)      { fuzzDecoder(f, TypeAddMember) }
func FuzzDecodeRemoveMember(f *testing.F)   { fuzzDecoder(f, TypeRemoveMember) }
func FuzzDecodeTransferLeader(f *testing.F) { fuzzDecoder(f, TypeTransferLeader) }
func FuzzDecodePublish(f *testing.F)        { fuzzDecoder(f, TypePublish) }
func FuzzDecodeError(f *testing.F)          { fuzzDecoder(f, TypeError) }
func FuzzDecodeEmpty(f *testing.F)          { fuzzDecoder(f, TypeStatus) }
func FuzzDecodeAsRole(f *testing.F)         { fuzzDecoder(f, TypeAsRole) }
func FuzzDecodeAlarmList(f *testing.F)      { fuzzDecoder(f, TypeAlarmList) }
func FuzzDecodeReportAlarms(f *testing.F)   { fuzzDecoder(f, TypeReportAlarms) }
func FuzzDecodeBackup(f *testing.F)         { fuzzDecoder(f, TypeBackup) }
func FuzzDecodeBackupChunk(f *testing.F)    { fuzzDecoder(f, TypeBackupChunk) }
func FuzzDecodeWatch(f *testing.F)          { fuzzDecoder(f, TypeWatch) }
func FuzzDecodeEvents(f *testing.F)         { fuzzDecoder(f, TypeEvents) }
func FuzzDecodeCompacted(f *testing.F)      { fuzzDecoder(f, TypeCompacted) }
func FuzzDecodeShardReadIndex(f *testing.F) { fuzzDecoder(f, TypeShardReadIndex) }
func FuzzDecodeShardMap(f *testing.F)       { fuzzDecoder(f, TypeShardMap) }
func FuzzDecodePublishShard(f *testing.F)   { fuzzDecoder(f, TypePublishShard) }
func FuzzDecodeShardStatus(f *testing.F)    { fuzzDecoder(f, TypeShardStatus) }
func FuzzDecodeShardMember(f *testing.F)    { fuzzDecoder(f, TypeShardMember) }
func FuzzDecodeShardScan(f *testing.F)      { fuzzDecoder(f, TypeShardScan) }

// FuzzReadFrame feeds any byte stream to the frame reader and every
// decoder behind it, as a server's read loop does.
func FuzzReadFrame(f *testing.F) {
	var stream []byte
	for i, m := range samples() {
		f.Add(AppendFrame(nil, uint64(i), m))
		stream = AppendFrame(stream, uint64(i), m)
	}
	f.Add(stream)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	if *updateCorpus {
		writeCorpus(f, f.Name())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := NewFrameReader(bytes.NewReader(b), 4096)
		for {
			fm, err := fr.ReadFrame()
			if err != nil {
				return
			}
			_, _ = Decode(fm.Type, fm.Payload)
		}
	})
}
