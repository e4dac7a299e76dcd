package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"orderly/chaos/model"
	"orderly/wire"
)

// TestHistoryIsOneJSONArray: the streamed history reads back as the
// operations written.
func TestHistoryIsOneJSONArray(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	for _, ops := range [][]model.Op{nil, {
		{Client: 1, Via: model.ViaBalancer, Kind: model.OpOrder, Customer: 7, Number: 1, Call: time.Millisecond, Return: 2 * time.Millisecond, Outcome: model.OK, Count: 1, Last: 1, Index: 9},
		{Client: 2, Via: model.ViaNodes, Kind: model.OpRead, Consistency: wire.Linearizable, Customer: 7, Outcome: model.Failed, Err: "NotLeader: \"n1\""},
	}} {
		if err := writeHistory(path, ops); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var got []model.Op
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("history.json of %d operations: %v\n%s", len(ops), err, b)
		}
		if len(got) != len(ops) || (len(ops) > 0 && !reflect.DeepEqual(got, ops)) {
			t.Fatalf("read back %+v, wrote %+v", got, ops)
		}
	}
}
