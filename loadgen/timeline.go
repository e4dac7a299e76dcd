package loadgen

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Second is one second of a run.
type Second struct {
	T      int     `json:"t"`
	Ops    int64   `json:"ops"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	Errors int64   `json:"errors"`
}

// timeline keeps a latency histogram per second of the run; operations
// count in the second they completed.
type timeline struct {
	mu   sync.Mutex
	secs []*hdrhistogram.Histogram
	errs []int64
}

func newTimeline() *timeline { return &timeline{} }

func (t *timeline) add(at, d time.Duration, failed bool) {
	s := int(at / time.Second)
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.secs) <= s {
		t.secs = append(t.secs, nil)
		t.errs = append(t.errs, 0)
	}
	if failed {
		t.errs[s]++
		return
	}
	if t.secs[s] == nil {
		t.secs[s] = newHistogram()
	}
	record(t.secs[s], d)
}

func (t *timeline) seconds() []Second {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Second, len(t.secs))
	for i, h := range t.secs {
		out[i] = Second{T: i, Errors: t.errs[i]}
		if h != nil {
			s := summarize(h)
			out[i].Ops, out[i].P50, out[i].P99 = s.Count, s.P50, s.P99
		}
	}
	return out
}

// WriteCSV writes the timeline as t,ops_per_s,p50_ms,p99_ms,errors.
func WriteCSV(w io.Writer, tl []Second) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"t", "ops_per_s", "p50_ms", "p99_ms", "errors"}) //nolint:errcheck // checked by Flush
	for _, s := range tl {
		cw.Write([]string{strconv.Itoa(s.T), strconv.FormatInt(s.Ops, 10), //nolint:errcheck // checked by Flush
			strconv.FormatFloat(s.P50, 'f', 3, 64), strconv.FormatFloat(s.P99, 'f', 3, 64), strconv.FormatInt(s.Errors, 10)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write timeline csv: %w", err)
	}
	return nil
}
