package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"orderly/chaos/failpoint"
	"orderly/chaos/model"
	"orderly/chaos/validate"
	"orderly/loadgen"
)

// Report is the outcome of a run.
type Report struct {
	Seed     uint64        `json:"seed"`
	Nemeses  []string      `json:"nemeses"`
	Fault    string        `json:"test_fault,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// Interrupted is how long the workload ran when the operator stopped
	// it early (0: it ran its Duration).
	Interrupted time.Duration `json:"interrupted_after_ns,omitempty"`
	Ops         int           `json:"ops"`
	Load        string        `json:"load"`
	// PeakRate is the most operations completed per second over any ten
	// seconds of the run; MeanRate over the whole run.
	PeakRate float64            `json:"peak_ops_per_sec"`
	MeanRate float64            `json:"mean_ops_per_sec"`
	OpCounts map[string]int     `json:"op_counts"`
	Faults   []failpoint.Fault  `json:"faults"`
	Verdicts []validate.Verdict `json:"verdicts"`
	// Outage per fault kind: from the fault's start to the first write
	// acknowledged that was invoked after it, worst and median.
	Outages map[string]Outage `json:"outages"`
}

// Outage summarises write outages after one kind of fault.
type Outage struct {
	Count  int           `json:"count"`
	Median time.Duration `json:"median_ns"`
	Worst  time.Duration `json:"worst_ns"`
}

// Pass reports whether every check passed.
func (r *Report) Pass() bool {
	for _, v := range r.Verdicts {
		if !v.Pass {
			return false
		}
	}
	return len(r.Verdicts) > 0
}

// Write writes summary.md, summary.json, history.json and
// timeline.png (throughput and latency per second, faults marked).
func Write(dir string, r *Report, ops []model.Op) error {
	if err := writeJSONFile(filepath.Join(dir, "summary.json"), r); err != nil {
		return err
	}
	if err := writeHistory(filepath.Join(dir, "history.json"), ops); err != nil {
		return err
	}
	var marks []loadgen.Mark
	for _, f := range r.Faults {
		marks = append(marks, loadgen.Mark{At: f.Start.Seconds(), Label: f.Kind}, loadgen.Mark{At: f.End.Seconds()})
	}
	title := fmt.Sprintf("orderly chaos: seed %d, %s", r.Seed, strings.Join(r.Nemeses, ","))
	if err := loadgen.DrawTimeline(filepath.Join(dir, "timeline.png"), title, timeline(ops, r.Duration), marks); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.md"), []byte(r.Markdown()), 0o644)
}

// Rates are the peak (over ten seconds) and mean operations per second
// completed during the run.
func Rates(ops []model.Op, until time.Duration) (peak, mean float64) {
	per := make([]int, int(until/time.Second)+1)
	n := 0
	for _, op := range ops {
		if op.Return <= until {
			per[op.Return/time.Second]++
			n++
		}
	}
	for i := 0; i+10 <= len(per); i++ {
		sum := 0
		for _, c := range per[i : i+10] {
			sum += c
		}
		peak = max(peak, float64(sum)/10)
	}
	return peak, float64(n) / until.Seconds()
}

// timeline buckets acknowledged operations by the second they completed,
// up to the end of the run (the final reads after healing are left out).
func timeline(ops []model.Op, until time.Duration) []loadgen.Second {
	var hs []*hdrhistogram.Histogram
	var errs []int64
	for _, op := range ops {
		if op.Return > until {
			continue
		}
		s := int(op.Return / time.Second)
		for len(hs) <= s {
			hs = append(hs, hdrhistogram.New(1, int64(2*time.Minute/time.Microsecond), 3))
			errs = append(errs, 0)
		}
		if op.Outcome != model.OK {
			errs[s]++
			continue
		}
		hs[s].RecordValue(max(int64((op.Return-op.Call)/time.Microsecond), 1)) //nolint:errcheck // within range
	}
	out := make([]loadgen.Second, len(hs))
	for i, h := range hs {
		out[i] = loadgen.Second{T: i, Ops: h.TotalCount(), Errors: errs[i],
			P50: float64(h.ValueAtQuantile(50)) / 1000, P99: float64(h.ValueAtQuantile(99)) / 1000}
	}
	return out
}

// Markdown is the human summary.
func (r *Report) Markdown() string {
	var b strings.Builder
	verdict := "PASS"
	if !r.Pass() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "# orderly chaos: %s\n\n", verdict)
	fmt.Fprintf(&b, "seed %d, nemeses %s, %v of load", r.Seed, strings.Join(r.Nemeses, ", "), r.Duration)
	if r.Interrupted > 0 {
		fmt.Fprintf(&b, " (**interrupted** after %v)", r.Interrupted.Round(time.Second))
	}
	fmt.Fprintf(&b, ", load %s: %.0f ops/s on average, %.0f ops/s at the peak (10 s)", r.Load, r.MeanRate, r.PeakRate)
	if r.Fault != "" {
		fmt.Fprintf(&b, ", test fault **%s** (the checks are meant to fail)", r.Fault)
	}
	fmt.Fprintf(&b, "\n\nReplay: `ordertest chaos --seed %d --nemesis %s --duration %v`\n\n", r.Seed, strings.Join(r.Nemeses, ","), r.Duration)
	b.WriteString("## Checks\n\n| check | verdict | detail |\n|---|---|---|\n")
	for _, v := range r.Verdicts {
		p := "pass"
		if !v.Pass {
			p = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", v.Name, p, v.Detail)
	}
	for _, v := range r.Verdicts {
		for _, e := range v.Errors {
			fmt.Fprintf(&b, "\n- %s: %s", v.Name, e)
		}
	}
	fmt.Fprintf(&b, "\n\n## Operations (%d)\n\n| operation | count |\n|---|---:|\n", r.Ops)
	keys := make([]string, 0, len(r.OpCounts))
	for k := range r.OpCounts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %d |\n", k, r.OpCounts[k])
	}
	fmt.Fprintf(&b, "\n## Faults (%d)\n\n| start s | kind | target | was leader | held s | error |\n|---:|---|---|---|---:|---|\n", len(r.Faults))
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "| %.1f | %s | %s | %v | %.1f | %s |\n", f.Start.Seconds(), f.Kind, f.Target, f.Leader, (f.End - f.Start).Seconds(), f.Err)
	}
	b.WriteString("\n## Write outage after each kind of fault\n\nFrom the fault's start to the first acknowledged write invoked after it.\n\n| fault | faults | median | worst |\n|---|---:|---:|---:|\n")
	kinds := make([]string, 0, len(r.Outages))
	for k := range r.Outages {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		o := r.Outages[k]
		fmt.Fprintf(&b, "| %s | %d | %v | %v |\n", k, o.Count, o.Median.Round(time.Millisecond), o.Worst.Round(time.Millisecond))
	}
	b.WriteString("\n![timeline](timeline.png)\n")
	return b.String()
}

// CountOps counts operations by kind (and level, and the seed port) and outcome.
func CountOps(ops []model.Op) map[string]int {
	m := map[string]int{}
	for _, op := range ops {
		k := string(op.Kind)
		if op.Kind == model.OpRead {
			k = op.Consistency.String() + " read"
		}
		if op.Via == model.ViaSeed {
			k = "seed-port " + k
		}
		m[k+" "+string(op.Outcome)]++
	}
	return m
}

// Outages measures, for each fault, the time from its start to the first
// acknowledged write invoked after it began.
func Outages(ops []model.Op, faults []failpoint.Fault) map[string]Outage {
	per := map[string][]time.Duration{}
	for _, f := range faults {
		if first := validate.FirstAckAfter(ops, f.Start); first >= 0 {
			per[f.Kind] = append(per[f.Kind], first-f.Start)
		}
	}
	out := map[string]Outage{}
	for k, ds := range per {
		slices.Sort(ds)
		out[k] = Outage{Count: len(ds), Median: ds[len(ds)/2], Worst: ds[len(ds)-1]}
	}
	return out
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeHistory writes ops as a JSON array, an operation per line, through
// a buffer: a 30-minute run's ten million operations marshalled at once
// would take gigabytes beside the history itself.
func writeHistory(path string, ops []model.Op) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	w.WriteString("[\n") //nolint:errcheck // the flush reports it
	for i, op := range ops {
		if i > 0 {
			w.WriteString(",") //nolint:errcheck // the flush reports it
		}
		if err := enc.Encode(op); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	w.WriteString("]\n") //nolint:errcheck // the flush reports it
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
